"""Plain-Python twin of the convolution chapter: the tutorial's ConvLayer and MaxPoolingLayer.

Written the way the tutorial writes them: every output pixel, every
sensitivity-map entry and every filter gradient comes from a loop over
output positions and a numpy slice (``get_patch``).  Two places differ from
the published code because it is wrong there, and fastnn's kernels follow
the corrected version:

* the sensitivity map of the layer below pads the expanded map by
  ``K - 1`` on each side and crops the zero padding afterwards, so it is
  right for rectangular filters and for ``zero_padding > K - 1`` (the
  published code pads by ``(W + K - 1 - expanded_width) / 2``);
* max pooling adds the error to the maximum's position instead of
  assigning it, which matters when windows overlap (stride < window).

Also here: batch-first helpers ``(N, C, H, W)`` for the batched layers,
built from the same per-sample functions.  Strides and paddings are
``(vertical, horizontal)`` pairs in the helpers, single ints in the classes.
"""

import numpy as np


def get_patch(input_array, i, j, filter_width, filter_height, stride):
    """The region of `input_array` (2-D or 3-D, depth first) that output ``(i, j)`` sees."""
    sh, sw = _pair(stride)
    start_i = i * sh
    start_j = j * sw
    return input_array[..., start_i:start_i + filter_height, start_j:start_j + filter_width]


def get_max_index(array):
    """Row and column of the first maximum of a 2-D array, in row-major order."""
    max_i, max_j = 0, 0
    max_value = array[0, 0]
    for i in range(array.shape[0]):
        for j in range(array.shape[1]):
            if array[i, j] > max_value:
                max_value = array[i, j]
                max_i, max_j = i, j
    return max_i, max_j


def conv(input_array, kernel_array, output_array, stride, bias):
    """``output[i, j] = sum(patch(i, j) * kernel) + bias`` for every output position (2-D or 3-D input)."""
    output_height, output_width = output_array.shape
    kernel_height, kernel_width = kernel_array.shape[-2:]
    for i in range(output_height):
        for j in range(output_width):
            patch = get_patch(input_array, i, j, kernel_width, kernel_height, stride)
            output_array[i, j] = (patch * kernel_array).sum() + bias


def padding(input_array, zp):
    """The input surrounded by `zp` zeros (an int or a ``(rows, columns)`` pair), 2-D or 3-D."""
    zh, zw = _pair(zp)
    if zh == 0 and zw == 0:
        return input_array
    height, width = input_array.shape[-2:]
    padded = np.zeros(input_array.shape[:-2] + (height + 2 * zh, width + 2 * zw), dtype=input_array.dtype)
    padded[..., zh:zh + height, zw:zw + width] = input_array
    return padded


def element_wise_op(array, op):
    """Apply `op` to every element of `array` in place."""
    for value in np.nditer(array, op_flags=["readwrite"]):
        value[...] = op(value)


def expand_sensitivity_map(sensitivity_array, expanded_height, expanded_width, stride):
    """Spread a strided sensitivity map onto the stride-1 grid, zeros in between."""
    sh, sw = _pair(stride)
    depth, height, width = sensitivity_array.shape
    expanded = np.zeros((depth, expanded_height, expanded_width), dtype=sensitivity_array.dtype)
    for i in range(height):
        for j in range(width):
            expanded[:, i * sh, j * sw] = sensitivity_array[:, i, j]
    return expanded


def conv_forward(input_array, weights, biases, stride, zero_padding):
    """Weighted input of one sample: `input_array` ``(C, H, W)``, `weights` ``(F, C, KH, KW)`` -> ``(F, OH, OW)``."""
    sh, sw = _pair(stride)
    padded = padding(input_array, zero_padding)
    filter_number, _, filter_height, filter_width = weights.shape
    output_height = (padded.shape[1] - filter_height) // sh + 1
    output_width = (padded.shape[2] - filter_width) // sw + 1
    output = np.zeros((filter_number, output_height, output_width), dtype=np.result_type(input_array, weights))
    for f in range(filter_number):
        conv(padded, weights[f], output[f], stride, biases[f])
    return output


def conv_backward(input_array, weights, sensitivity_array, stride, zero_padding):
    """The tutorial's back propagation for one sample: ``(delta_below, weights_grad, bias_grad)``.

    delta_below: the expanded sensitivity map padded by ``K - 1``,
    convolved with each filter rotated by 180 degrees, summed over filters,
    cropped to the unpadded input (no activation derivative here).
    weights_grad: the padded input convolved with the expanded map;
    bias_grad: the sum of the sensitivity map.
    """
    zh, zw = _pair(zero_padding)
    dtype = np.result_type(input_array, weights, sensitivity_array)
    padded_input = padding(np.asarray(input_array, dtype=dtype), zero_padding)
    filter_number, channel_number, filter_height, filter_width = weights.shape
    expanded = expand_sensitivity_map(
        sensitivity_array,
        padded_input.shape[1] - filter_height + 1,
        padded_input.shape[2] - filter_width + 1,
        stride,
    )
    full = padding(expanded, (filter_height - 1, filter_width - 1))
    delta_padded = np.zeros(padded_input.shape, dtype=dtype)
    for f in range(filter_number):
        flipped = weights[f, :, ::-1, ::-1]
        for d in range(channel_number):
            delta = np.zeros(padded_input.shape[1:], dtype=dtype)
            conv(full[f], flipped[d], delta, 1, 0)
            delta_padded[d] += delta
    delta_below = delta_padded[:, zh:zh + input_array.shape[1], zw:zw + input_array.shape[2]].copy()
    weights_grad = np.zeros(weights.shape, dtype=dtype)
    bias_grad = np.zeros(filter_number, dtype=dtype)
    for f in range(filter_number):
        for d in range(channel_number):
            conv(padded_input[d], expanded[f], weights_grad[f, d], 1, 0)
        bias_grad[f] = expanded[f].sum()
    return delta_below, weights_grad, bias_grad


def pool_forward(input_array, filter_height, filter_width, stride, reduce):
    """``reduce(window)`` of every window (``np.max`` or ``np.mean``): ``(C, H, W)`` -> ``(C, OH, OW)``."""
    sh, sw = _pair(stride)
    depth, height, width = input_array.shape
    output = np.zeros((depth, (height - filter_height) // sh + 1, (width - filter_width) // sw + 1),
                      dtype=input_array.dtype)
    for d in range(depth):
        for i in range(output.shape[1]):
            for j in range(output.shape[2]):
                output[d, i, j] = reduce(get_patch(input_array[d], i, j, filter_width, filter_height, stride))
    return output


def max_pool_backward(input_array, sensitivity_array, filter_height, filter_width, stride):
    """The error of each window goes to its first maximum (added, so overlapping windows sum)."""
    sh, sw = _pair(stride)
    delta = np.zeros(input_array.shape, dtype=input_array.dtype)
    for d in range(sensitivity_array.shape[0]):
        for i in range(sensitivity_array.shape[1]):
            for j in range(sensitivity_array.shape[2]):
                patch = get_patch(input_array[d], i, j, filter_width, filter_height, stride)
                k, l = get_max_index(patch)
                delta[d, i * sh + k, j * sw + l] += sensitivity_array[d, i, j]
    return delta


def avg_pool_backward(input_shape, sensitivity_array, filter_height, filter_width, stride):
    """Each window's error is shared equally by its ``KH*KW`` inputs (overlaps sum)."""
    sh, sw = _pair(stride)
    delta = np.zeros(input_shape, dtype=sensitivity_array.dtype)
    for d in range(sensitivity_array.shape[0]):
        for i in range(sensitivity_array.shape[1]):
            for j in range(sensitivity_array.shape[2]):
                patch = get_patch(delta[d], i, j, filter_width, filter_height, stride)
                patch += sensitivity_array[d, i, j] / (filter_height * filter_width)
    return delta


class Filter:
    """One filter: `weights` ``(depth, height, width)`` uniform in [-1e-4, 1e-4], `bias` 0."""

    def __init__(self, width, height, depth, rng=None):
        self.weights = np.random.default_rng(rng).uniform(-1e-4, 1e-4, (depth, height, width))
        self.bias = 0
        self.weights_grad = np.zeros(self.weights.shape)
        self.bias_grad = 0

    def __repr__(self):
        return "filter weights:\n%s\nbias:\n%s" % (repr(self.weights), repr(self.bias))

    def get_weights(self):
        return self.weights

    def get_bias(self):
        return self.bias

    def update(self, learning_rate):
        self.weights -= learning_rate * self.weights_grad
        self.bias -= learning_rate * self.bias_grad


class ConvLayer:
    """The tutorial's convolution layer, one sample ``(depth, height, width)`` at a time."""

    def __init__(self, input_width, input_height, channel_number, filter_width, filter_height, filter_number,
                 zero_padding, stride, activator, learning_rate, rng=None):
        self.input_width = input_width
        self.input_height = input_height
        self.channel_number = channel_number
        self.filter_width = filter_width
        self.filter_height = filter_height
        self.filter_number = filter_number
        self.zero_padding = zero_padding
        self.stride = stride
        self.output_width = ConvLayer.calculate_output_size(input_width, filter_width, zero_padding, stride)
        self.output_height = ConvLayer.calculate_output_size(input_height, filter_height, zero_padding, stride)
        self.output_array = np.zeros((filter_number, self.output_height, self.output_width))
        rng = np.random.default_rng(rng)
        self.filters = [Filter(filter_width, filter_height, channel_number, rng) for _ in range(filter_number)]
        self.activator = activator
        self.learning_rate = learning_rate

    def forward(self, input_array):
        self.input_array = input_array
        self.padded_input_array = padding(input_array, self.zero_padding)
        for f in range(self.filter_number):
            filter = self.filters[f]
            conv(self.padded_input_array, filter.get_weights(), self.output_array[f], self.stride,
                 filter.get_bias())
        element_wise_op(self.output_array, self.activator.forward)

    def backward(self, input_array, sensitivity_array, activator):
        self.forward(input_array)
        weights = np.array([f.get_weights() for f in self.filters], dtype=float)
        delta, weights_grad, bias_grad = conv_backward(
            np.asarray(input_array, dtype=float), weights, sensitivity_array, self.stride, self.zero_padding)
        derivative_array = np.array(input_array, dtype=float)
        element_wise_op(derivative_array, activator.backward)
        self.delta_array = delta * derivative_array
        for f, filter in enumerate(self.filters):
            filter.weights_grad = weights_grad[f]
            filter.bias_grad = bias_grad[f]

    def update(self):
        for filter in self.filters:
            filter.update(self.learning_rate)

    @staticmethod
    def calculate_output_size(input_size, filter_size, zero_padding, stride):
        return (input_size - filter_size + 2 * zero_padding) // stride + 1


class MaxPoolingLayer:
    """The tutorial's max pooling layer, one sample ``(depth, height, width)`` at a time."""

    def __init__(self, input_width, input_height, channel_number, filter_width, filter_height, stride):
        self.input_width = input_width
        self.input_height = input_height
        self.channel_number = channel_number
        self.filter_width = filter_width
        self.filter_height = filter_height
        self.stride = stride
        self.output_width = (input_width - filter_width) // stride + 1
        self.output_height = (input_height - filter_height) // stride + 1
        self.output_array = np.zeros((channel_number, self.output_height, self.output_width))

    def forward(self, input_array):
        self.output_array = pool_forward(np.asarray(input_array, dtype=float), self.filter_height,
                                         self.filter_width, self.stride, np.max)

    def backward(self, input_array, sensitivity_array):
        self.delta_array = max_pool_backward(np.asarray(input_array, dtype=float), sensitivity_array,
                                             self.filter_height, self.filter_width, self.stride)


def _pair(value):
    return (value, value) if np.ndim(value) == 0 else tuple(value)

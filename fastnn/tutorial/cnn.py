"""The tutorial's convolution chapter: ``Filter``, ``ConvLayer``, ``MaxPoolingLayer``.

Same constructors, attributes and methods as the tutorial's ``cnn`` module,
one sample ``(depth, height, width)`` at a time in float64, computed by
`fastnn.kernels.conv` and `fastnn.kernels.pool`.  Differences, all on the
side of the mathematics: rectangular filters and any zero padding give the
right sensitivity map, max pooling with overlapping windows adds the errors
up, and output sizes use integer division (``(W - F + 2P) // S + 1``).

The filters' weights live in one ``(F, C, KH, KW)`` array of the layer;
each ``Filter`` sees its slice, so ``layer.filters[i].weights = array``,
``.bias = x``, in-place edits (``weights[d, i, j] += eps``) and whole
replacement of ``layer.filters[i]`` all take effect on the next forward.
"""

import numpy as np

from .._checks import as_float_array, check_int, check_real, make_rng, rate_attribute
from ..kernels import conv as _conv
from ..kernels import pool as _pool
from ..kernels.optim import all_finite
from .activators import activation_code


def _sample(value, name, shape):
    """`value` as a finite, C-contiguous float64 array of `shape`; arrays that already are pass through untouched."""
    if type(value) is np.ndarray and value.dtype == np.float64 and value.shape == shape and value.flags.c_contiguous:
        if not all_finite(value):
            raise ValueError(f"{name} contains NaN or infinity")
        return value
    return as_float_array(value, name, shape=shape)


def _set_sizes(layer, **sizes):
    """Set each size as an attribute of `layer`, checked to be an int >= 1."""
    for name, value in sizes.items():
        setattr(layer, name, check_int(value, name, 1))


class Filter:
    """One filter: `weights` ``(depth, height, width)`` uniform in [-1e-4, 1e-4], `bias` 0.

    `rng` (a seed or a numpy Generator) draws the initial weights.
    """

    def __init__(self, width, height, depth, rng=None):
        shape = (check_int(depth, "depth", 1), check_int(height, "height", 1), check_int(width, "width", 1))
        self._weights = make_rng(rng).uniform(-1e-4, 1e-4, shape)
        self._bias = np.zeros(1)
        self.weights_grad = np.zeros(shape)
        self.bias_grad = 0

    @property
    def weights(self):
        return self._weights

    @weights.setter
    def weights(self, value):
        # copied into the existing storage, which may be a slice of a ConvLayer's weight array
        self._weights[...] = as_float_array(value, "weights", shape=self._weights.shape)

    @property
    def bias(self):
        return float(self._bias[0])

    @bias.setter
    def bias(self, value):
        self._bias[0] = check_real(value, "bias")

    def __repr__(self):
        return "filter weights:\n%s\nbias:\n%s" % (repr(self.weights), repr(self.bias))

    def get_weights(self):
        return self.weights

    def get_bias(self):
        return self.bias

    def update(self, learning_rate):
        """Gradient descent: ``weights -= rate * weights_grad``, ``bias -= rate * bias_grad``."""
        self._weights -= learning_rate * np.asarray(self.weights_grad)
        self._bias[0] -= learning_rate * self.bias_grad


class ConvLayer:
    """The tutorial's convolution layer: `filter_number` filters over a ``(channel_number, H, W)`` input.

    ``forward(input_array)`` sets ``output_array`` ``(filter_number, OH,
    OW)``, the activator applied; ``backward(input_array, sensitivity_array,
    activator)`` runs the forward pass again (as the tutorial does), then
    sets ``delta_array`` (the sensitivity map of the layer below, times
    ``activator.backward(input_array)``) and each filter's ``weights_grad``
    and ``bias_grad``; ``update()`` descends the gradient.  `rng` (a seed or
    a numpy Generator) draws the initial weights.
    """

    learning_rate = rate_attribute()

    def __init__(self, input_width, input_height, channel_number, filter_width, filter_height, filter_number,
                 zero_padding, stride, activator, learning_rate, rng=None):
        _set_sizes(self, input_width=input_width, input_height=input_height, channel_number=channel_number,
                   filter_width=filter_width, filter_height=filter_height)
        self.filter_number = check_int(filter_number, "filter_number", 1)
        self.zero_padding = check_int(zero_padding, "zero_padding", 0)
        self.stride = check_int(stride, "stride", 1)
        self.output_width = ConvLayer.calculate_output_size(input_width, filter_width, zero_padding, stride)
        self.output_height = ConvLayer.calculate_output_size(input_height, filter_height, zero_padding, stride)
        self.output_array = np.zeros((self.filter_number, self.output_height, self.output_width))
        self.activator = activator
        self._code = activation_code(activator)
        self.learning_rate = learning_rate
        shape = (self.filter_number, self.channel_number, self.filter_height, self.filter_width)
        self._weights = np.zeros(shape)
        self._bias = np.zeros(self.filter_number)
        self._weights_grad = np.zeros(shape)
        self._bias_grad = np.zeros(self.filter_number)
        generator = make_rng(rng)
        self.filters = [Filter(filter_width, filter_height, channel_number, generator) for _ in range(filter_number)]
        self._bound = []
        self._bind_filters()

    def _bind_filters(self):
        """Make the layer's arrays the storage of ``self.filters`` (after a filter was replaced)."""
        if len(self.filters) != self.filter_number:
            raise ValueError(f"filters must hold {self.filter_number} Filter objects, got {len(self.filters)}")
        for i, filter in enumerate(self.filters):
            if not isinstance(filter, Filter):
                raise TypeError(f"filters[{i}] must be a Filter, got {type(filter).__name__}")
            if filter is not (self._bound[i] if i < len(self._bound) else None):
                self._weights[i] = as_float_array(filter.weights, f"filters[{i}].weights",
                                                  shape=self._weights.shape[1:])
                self._bias[i] = filter.bias
                filter._weights = self._weights[i]
                filter._bias = self._bias[i:i + 1]
        self._bound = list(self.filters)

    def forward(self, input_array):
        """``output_array[f] = activator(conv(pad(input_array), filters[f].weights, stride) + filters[f].bias)``."""
        x = _sample(input_array, "input_array", (self.channel_number, self.input_height, self.input_width))
        if self.filters != self._bound:
            self._bind_filters()
        self.input_array = x
        _conv.conv_forward_sample(x, self._weights, self._bias, self.stride, self.stride, self.zero_padding,
                                  self.zero_padding, self._code, self.output_array)

    def backward(self, input_array, sensitivity_array, activator):
        """Forward again, then ``delta_array``, ``weights_grad`` and ``bias_grad`` (see the class docstring)."""
        x = _sample(input_array, "input_array", (self.channel_number, self.input_height, self.input_width))
        delta = _sample(sensitivity_array, "sensitivity_array", self.output_array.shape)
        code_below = activation_code(activator)
        if self.filters != self._bound:
            self._bind_filters()
        self.input_array = x
        self.delta_array = np.empty(x.shape)
        _conv.conv_forward_sample(x, self._weights, self._bias, self.stride, self.stride, self.zero_padding,
                                  self.zero_padding, self._code, self.output_array)
        _conv.conv_gradients_sample(x, self._weights, delta, self.stride, self.stride, self.zero_padding,
                                    self.zero_padding, code_below, True, self.delta_array, self._weights_grad,
                                    self._bias_grad)
        for i, filter in enumerate(self.filters):
            filter.weights_grad = self._weights_grad[i]
            filter.bias_grad = float(self._bias_grad[i])

    def update(self):
        """Every filter descends its gradient with ``learning_rate``."""
        for filter in self.filters:
            filter.update(self.learning_rate)

    @property
    def padded_input_array(self):
        """The last input surrounded by ``zero_padding`` zeros (the tutorial keeps it as an attribute)."""
        return np.pad(self.input_array, ((0, 0),) + ((self.zero_padding, self.zero_padding),) * 2)

    @staticmethod
    def calculate_output_size(input_size, filter_size, zero_padding, stride):
        """``(input_size - filter_size + 2 * zero_padding) // stride + 1``; ValueError if the filter does not fit."""
        size = _conv.output_size(check_int(input_size, "input_size", 1), check_int(filter_size, "filter_size", 1),
                                 check_int(zero_padding, "zero_padding", 0), check_int(stride, "stride", 1))
        if size < 1:
            raise ValueError(f"filter_size {filter_size} is larger than the padded input "
                             f"(input_size {input_size} + 2 * zero_padding {zero_padding})")
        return size


class MaxPoolingLayer:
    """The tutorial's max pooling over a ``(channel_number, H, W)`` input, no padding.

    ``forward(input_array)`` sets ``output_array``; ``backward(input_array,
    sensitivity_array)`` sets ``delta_array``: each window's error goes to
    its maximum, the first in row-major order on ties (added up where
    windows overlap).
    """

    def __init__(self, input_width, input_height, channel_number, filter_width, filter_height, stride):
        _set_sizes(self, input_width=input_width, input_height=input_height, channel_number=channel_number,
                   filter_width=filter_width, filter_height=filter_height)
        self.stride = check_int(stride, "stride", 1)
        if filter_width > input_width or filter_height > input_height:
            raise ValueError(f"the filter ({filter_height}, {filter_width}) is larger than the input "
                             f"({input_height}, {input_width})")
        self.output_width = (input_width - filter_width) // stride + 1
        self.output_height = (input_height - filter_height) // stride + 1
        self.output_array = np.zeros((self.channel_number, self.output_height, self.output_width))

    def forward(self, input_array):
        x = _sample(input_array, "input_array", (self.channel_number, self.input_height, self.input_width))
        _pool.max_pool_planes(x, self.filter_height, self.filter_width, self.stride, self.stride, self.output_array)

    def backward(self, input_array, sensitivity_array):
        x = _sample(input_array, "input_array", (self.channel_number, self.input_height, self.input_width))
        delta = _sample(sensitivity_array, "sensitivity_array", self.output_array.shape)
        self.delta_array = np.empty(x.shape)
        _pool.max_pool_planes_backward(x, delta, self.filter_height, self.filter_width, self.stride, self.stride,
                                       self.delta_array)


"""Max pooling and average pooling, forward and backward, any window and stride.

Shapes: planes ``(P, H, W)`` for the ``*_planes`` kernels (one sample
``(C, H, W)``: the tutorial's ``MaxPoolingLayer``), batches ``(N, C, H, W)``
for the ``*_pool2d_*`` kernels, outputs with ``OH = (H - KH) // SH + 1`` and
``OW = (W - KW) // SW + 1`` (no padding; the fronts check ``KH <= H``,
``KW <= W``).

* max: ``a[i,j] = max_{u<KH, v<KW} x[i*SH+u, j*SW+v]``; backward adds
  ``delta[i,j]`` at the position of the window's maximum, the first one in
  row-major order on ties (the tutorial's ``get_max_index``).  Overlapping
  windows (stride < window) add up, where the tutorial's code assigns.
* average: ``a[i,j] = mean(window)``; backward shares ``delta[i,j]`` equally
  among the window's ``KH*KW`` inputs.

Backward kernels overwrite the input gradient.  Batched kernels run over
samples in parallel (a batch of one without a parallel region); each
sample's gradient is its own, so the result does not depend on the thread
count.
"""

import numpy as np
from numba import prange

from ._jit import jit


@jit
def _max_plane_2x2(x, out):
    """2x2 windows, stride 2 (the common case): four loads and three selects per output."""
    out_h, out_w = out.shape
    for i in range(out_h):
        top = x[2 * i]
        bottom = x[2 * i + 1]
        dst = out[i]
        for j in range(out_w):
            best = top[2 * j]
            value = top[2 * j + 1]
            best = value if value > best else best
            value = bottom[2 * j]
            best = value if value > best else best
            value = bottom[2 * j + 1]
            dst[j] = value if value > best else best


@jit
def _max_plane(x, kh, kw, sh, sw, out):
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        _max_plane_2x2(x, out)
        return
    out_h, out_w = out.shape
    for i in range(out_h):
        dst = out[i]
        first = x[i * sh]
        for j in range(out_w):
            dst[j] = first[j * sw]
        # row by row over the window, so the inner loop runs along the output row with selects, not branches
        for u in range(kh):
            row = x[i * sh + u]
            for v in range(kw):
                for j in range(out_w):
                    value = row[j * sw + v]
                    dst[j] = value if value > dst[j] else dst[j]


@jit
def _max_plane_backward_2x2(x, grad_out, grad_x):
    """2x2 windows, stride 2: each window's four gradients written at once (the error or zero)."""
    out_h, out_w = grad_out.shape
    zero = type(grad_out[0, 0])(0)
    for i in range(out_h):
        top = x[2 * i]
        bottom = x[2 * i + 1]
        g_top = grad_x[2 * i]
        g_bottom = grad_x[2 * i + 1]
        errors = grad_out[i]
        for j in range(out_w):
            best = top[2 * j]
            at = 0
            value = top[2 * j + 1]
            at = 1 if value > best else at
            best = value if value > best else best
            value = bottom[2 * j]
            at = 2 if value > best else at
            best = value if value > best else best
            at = 3 if bottom[2 * j + 1] > best else at
            error = errors[j]
            g_top[2 * j] = error if at == 0 else zero
            g_top[2 * j + 1] = error if at == 1 else zero
            g_bottom[2 * j] = error if at == 2 else zero
            g_bottom[2 * j + 1] = error if at == 3 else zero
    # rows and columns that no window covers (odd sizes)
    grad_x[2 * out_h:, :] = 0
    grad_x[:2 * out_h, 2 * out_w:] = 0


@jit
def _max_plane_backward(x, grad_out, kh, kw, sh, sw, grad_x, best, at):
    """`best`, `at`: scratch rows of length OW (the running maximum and its window index)."""
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        _max_plane_backward_2x2(x, grad_out, grad_x)
        return
    out_h, out_w = grad_out.shape
    grad_x[:, :] = 0
    for i in range(out_h):
        first = x[i * sh]
        for j in range(out_w):
            best[j] = first[j * sw]
            at[j] = 0
        for u in range(kh):
            row = x[i * sh + u]
            for v in range(kw):
                for j in range(out_w):
                    value = row[j * sw + v]
                    higher = value > best[j]
                    best[j] = value if higher else best[j]
                    at[j] = u * kw + v if higher else at[j]
        errors = grad_out[i]
        for j in range(out_w):
            grad_x[i * sh + at[j] // kw, j * sw + at[j] % kw] += errors[j]


@jit
def _avg_plane(x, kh, kw, sh, sw, out):
    out_h, out_w = out.shape
    scale = type(x[0, 0])(1) / type(x[0, 0])(kh * kw)
    for i in range(out_h):
        dst = out[i]
        dst[:] = 0
        for u in range(kh):
            row = x[i * sh + u]
            for v in range(kw):
                for j in range(out_w):
                    dst[j] += row[j * sw + v]
        for j in range(out_w):
            dst[j] *= scale


@jit
def _avg_plane_backward(grad_out, kh, kw, sh, sw, grad_x):
    out_h, out_w = grad_out.shape
    scale = type(grad_out[0, 0])(1) / type(grad_out[0, 0])(kh * kw)
    grad_x[:, :] = 0
    for i in range(out_h):
        errors = grad_out[i]
        for u in range(kh):
            row = grad_x[i * sh + u]
            for v in range(kw):
                for j in range(out_w):
                    row[j * sw + v] += errors[j] * scale


@jit
def max_pool_planes(x, kh, kw, sh, sw, out):
    """Max pooling of every plane: `x` ``(P, H, W)`` into `out` ``(P, OH, OW)``."""
    for p in range(x.shape[0]):
        _max_plane(x[p], kh, kw, sh, sw, out[p])


@jit
def max_pool_planes_backward(x, grad_out, kh, kw, sh, sw, grad_x):
    """Error of each window to its first maximum: `grad_out` ``(P, OH, OW)`` into `grad_x` ``(P, H, W)``."""
    best = np.empty(grad_out.shape[2], x.dtype)
    at = np.empty(grad_out.shape[2], np.int64)
    for p in range(x.shape[0]):
        _max_plane_backward(x[p], grad_out[p], kh, kw, sh, sw, grad_x[p], best, at)


@jit(parallel=True)
def max_pool2d_forward(x, kh, kw, sh, sw, out):
    """Batched max pooling: `x` ``(N, C, H, W)`` into `out` ``(N, C, OH, OW)``."""
    if x.shape[0] == 1:  # one sample: no parallel region, no threads to wake
        max_pool_planes(x[0], kh, kw, sh, sw, out[0])
        return
    for n in prange(x.shape[0]):
        for c in range(x.shape[1]):
            _max_plane(x[n, c], kh, kw, sh, sw, out[n, c])


@jit(parallel=True)
def max_pool2d_backward(x, grad_out, kh, kw, sh, sw, grad_x):
    """Batched max-pooling gradient: `grad_out` ``(N, C, OH, OW)`` into `grad_x` ``(N, C, H, W)``."""
    if x.shape[0] == 1:
        max_pool_planes_backward(x[0], grad_out[0], kh, kw, sh, sw, grad_x[0])
        return
    for n in prange(x.shape[0]):
        best = np.empty(grad_out.shape[3], x.dtype)
        at = np.empty(grad_out.shape[3], np.int64)
        for c in range(x.shape[1]):
            _max_plane_backward(x[n, c], grad_out[n, c], kh, kw, sh, sw, grad_x[n, c], best, at)


@jit(parallel=True)
def avg_pool2d_forward(x, kh, kw, sh, sw, out):
    """Batched average pooling: `x` ``(N, C, H, W)`` into `out` ``(N, C, OH, OW)``."""
    if x.shape[0] == 1:
        for c in range(x.shape[1]):
            _avg_plane(x[0, c], kh, kw, sh, sw, out[0, c])
        return
    for n in prange(x.shape[0]):
        for c in range(x.shape[1]):
            _avg_plane(x[n, c], kh, kw, sh, sw, out[n, c])


@jit(parallel=True)
def avg_pool2d_backward(grad_out, kh, kw, sh, sw, grad_x):
    """Batched average-pooling gradient: `grad_out` ``(N, C, OH, OW)`` into `grad_x` ``(N, C, H, W)``."""
    if grad_out.shape[0] == 1:
        for c in range(grad_out.shape[1]):
            _avg_plane_backward(grad_out[0, c], kh, kw, sh, sw, grad_x[0, c])
        return
    for n in prange(grad_out.shape[0]):
        for c in range(grad_out.shape[1]):
            _avg_plane_backward(grad_out[n, c], kh, kw, sh, sw, grad_x[n, c])

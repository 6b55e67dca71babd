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
samples in parallel; each sample's gradient is its own, so the result does
not depend on the thread count.
"""

from numba import prange

from ._jit import jit


@jit
def _max_plane(x, kh, kw, sh, sw, out):
    out_h, out_w = out.shape
    for i in range(out_h):
        for j in range(out_w):
            best = x[i * sh, j * sw]
            for u in range(kh):
                row = x[i * sh + u, j * sw:j * sw + kw]
                for v in range(kw):
                    if row[v] > best:
                        best = row[v]
            out[i, j] = best


@jit
def _max_plane_backward(x, grad_out, kh, kw, sh, sw, grad_x):
    out_h, out_w = grad_out.shape
    grad_x[:, :] = 0
    for i in range(out_h):
        for j in range(out_w):
            best = x[i * sh, j * sw]
            best_u = 0
            best_v = 0
            for u in range(kh):
                for v in range(kw):
                    if x[i * sh + u, j * sw + v] > best:
                        best = x[i * sh + u, j * sw + v]
                        best_u = u
                        best_v = v
            grad_x[i * sh + best_u, j * sw + best_v] += grad_out[i, j]


@jit
def _avg_plane(x, kh, kw, sh, sw, out):
    out_h, out_w = out.shape
    area = type(x[0, 0])(kh * kw)
    for i in range(out_h):
        for j in range(out_w):
            total = type(x[0, 0])(0)
            for u in range(kh):
                row = x[i * sh + u, j * sw:j * sw + kw]
                for v in range(kw):
                    total += row[v]
            out[i, j] = total / area


@jit
def _avg_plane_backward(grad_out, kh, kw, sh, sw, grad_x):
    out_h, out_w = grad_out.shape
    area = type(grad_out[0, 0])(kh * kw)
    grad_x[:, :] = 0
    for i in range(out_h):
        for j in range(out_w):
            share = grad_out[i, j] / area
            for u in range(kh):
                row = grad_x[i * sh + u, j * sw:j * sw + kw]
                for v in range(kw):
                    row[v] += share


@jit
def max_pool_planes(x, kh, kw, sh, sw, out):
    """Max pooling of every plane: `x` ``(P, H, W)`` into `out` ``(P, OH, OW)``."""
    for p in range(x.shape[0]):
        _max_plane(x[p], kh, kw, sh, sw, out[p])


@jit
def max_pool_planes_backward(x, grad_out, kh, kw, sh, sw, grad_x):
    """Error of each window to its first maximum: `grad_out` ``(P, OH, OW)`` into `grad_x` ``(P, H, W)``."""
    for p in range(x.shape[0]):
        _max_plane_backward(x[p], grad_out[p], kh, kw, sh, sw, grad_x[p])


@jit(parallel=True)
def max_pool2d_forward(x, kh, kw, sh, sw, out):
    """Batched max pooling: `x` ``(N, C, H, W)`` into `out` ``(N, C, OH, OW)``."""
    for n in prange(x.shape[0]):
        for c in range(x.shape[1]):
            _max_plane(x[n, c], kh, kw, sh, sw, out[n, c])


@jit(parallel=True)
def max_pool2d_backward(x, grad_out, kh, kw, sh, sw, grad_x):
    """Batched max-pooling gradient: `grad_out` ``(N, C, OH, OW)`` into `grad_x` ``(N, C, H, W)``."""
    for n in prange(x.shape[0]):
        for c in range(x.shape[1]):
            _max_plane_backward(x[n, c], grad_out[n, c], kh, kw, sh, sw, grad_x[n, c])


@jit(parallel=True)
def avg_pool2d_forward(x, kh, kw, sh, sw, out):
    """Batched average pooling: `x` ``(N, C, H, W)`` into `out` ``(N, C, OH, OW)``."""
    for n in prange(x.shape[0]):
        for c in range(x.shape[1]):
            _avg_plane(x[n, c], kh, kw, sh, sw, out[n, c])


@jit(parallel=True)
def avg_pool2d_backward(grad_out, kh, kw, sh, sw, grad_x):
    """Batched average-pooling gradient: `grad_out` ``(N, C, OH, OW)`` into `grad_x` ``(N, C, H, W)``."""
    for n in prange(grad_out.shape[0]):
        for c in range(grad_out.shape[1]):
            _avg_plane_backward(grad_out[n, c], kh, kw, sh, sw, grad_x[n, c])

"""Convolution: forward pass, the sensitivity map of the layer below, filter and bias gradients.

Shapes: input ``x`` ``(N, C, H, W)`` (one sample ``(C, H, W)`` for the
``*_sample`` kernels), filters ``weight`` ``(F, C, KH, KW)``, ``bias``
``(F,)``, output ``(N, F, OH, OW)`` with ``OH = (H - KH + 2*PH) // SH + 1``
(the tutorial's integer division), any stride, any zero padding.

The tutorial's formulas, computed without materialising its intermediate
arrays:

* forward: ``a[f,i,j] = act(sum_{c,kh,kw} w[f,c,kh,kw] * xp[c, i*SH+kh, j*SW+kw] + b[f])``
  where ``xp`` is the zero-padded input;
* sensitivity map of the layer below: expand ``delta`` for the stride
  (zeros between its entries), pad it, convolve with the filters rotated by
  180 degrees and sum over the filters, then multiply by the lower layer's
  activation derivative;
* ``dw[f,c,kh,kw] = sum_{i,j} delta[f,i,j] * xp[c, i*SH+kh, j*SW+kw]`` and
  ``db[f] = sum_{i,j} delta[f,i,j]``.

How it is made fast: the padded input is stored with flattened rows, split
into ``SH*SW`` stride phases (plane ``(c, ry, rx)`` holds
``xp[c, u*SH+ry, v*SW+rx]``), and the output is computed with the padded
width as its row stride.  Every filter tap ``(c, kh, kw)`` is then one
contiguous slice of that buffer, so each output plane is a sum of
``weight * slice`` terms over contiguous memory (the ``KW - 1`` columns
where a window would wrap around are computed and dropped).  Small images
of one batch chunk lie side by side in that buffer, so the slices stay
long.  Taps go four at a time and output channels six at a time, with
scalar weights, so the inner loop is one vectorised pass that keeps the
weights in registers.

The filter gradients are dot products of the error map (laid out like the
output) with the same slices.  The sensitivity map of the layer below is
computed either the tutorial's way, a sum over slices of the zero-padded
error map per stride phase (the expanded map without its zeros), or, when
that would mostly multiply padding zeros (small maps, many filters), by
adding each error map into the slice of every tap (the transpose of the
forward pass); both give the tutorial's sums, and a cost estimate from the
shapes picks one per call.

Batched kernels run over fixed chunks of the batch in parallel (``prange``);
the chunk count depends on the batch size only, and the per-chunk gradient
buffers are added in chunk order, so results do not depend on the thread
count.  The ``*_sample`` kernels do one sample without a parallel region
(Conv2D uses them for a batch of one), and the backward pass can skip the
input gradient (a model's first layer).  Kernels trust their callers:
shapes, dtypes and ``OH, OW >= 1`` are validated by the Python fronts.
"""

import numpy as np
from numba import prange

from ._jit import jit
from .activation import IDENTITY, activate, derivative
from .pool import max_pool_planes, max_pool_planes_backward

# A batch of N samples is cut into min(N, max(MIN_CHUNKS, N // CHUNK_SAMPLES))
# chunks: enough for a few threads, and enough samples in each chunk to lay
# them side by side (below).  The count depends on N only, never on the
# number of threads.
MIN_CHUNKS = 8
CHUNK_SAMPLES = 8
# Samples of a chunk are laid side by side until the flattened output rows
# reach about this length: long vector loops, few horizontal sums.
GROUP_LENGTH = 1536


def output_size(size, kernel, padding, stride):
    """``(size - kernel + 2*padding) // stride + 1``: the tutorial's output size (may be < 1)."""
    return (size - kernel + 2 * padding) // stride + 1


# ----------------------------------------------------------------------------
# The two inner engines: sums of weighted contiguous slices, and dot products
# with them.  Everything else arranges data so that these do the work.
#
# Both are register-blocked: one pass over the positions p handles a block
# of rows and taps, and the block is sized so that its weights (or running
# sums), the slices' values and the output rows all fit in the 32 vector
# registers.  Blocks of 8 taps x 4 rows spilled the 32 weights to the stack
# and reloaded one per multiply-add; 4 taps x 6 rows keeps them in registers
# (about 100 GFLOP/s on one core here, from 80).  The slices are taken in the
# block's own function: views returned by a helper call cost two atomic
# reference-count updates each, which tripled the time of a pass over the
# 136 positions of one 10x10 output (a batch of one).


@jit
def _taps_one_at_a_time(buf, offsets, weights, length, out, out_offsets, m, rows, t):
    """Taps t.. of rows m..m+rows-1 of :func:`_accumulate_taps`, one tap per pass (the few left over)."""
    for r in range(m, m + rows):
        o = out[out_offsets[r]:out_offsets[r] + length]
        for k in range(t, weights.shape[1]):
            a = buf[offsets[k]:offsets[k] + length]
            w = weights[r, k]
            for p in range(length):
                o[p] += w * a[p]


@jit
def _taps_6(buf, offsets, weights, length, out, out_offsets, m):
    """Rows m..m+5 of :func:`_accumulate_taps`, four taps per pass."""
    o0 = out[out_offsets[m]:out_offsets[m] + length]
    o1 = out[out_offsets[m + 1]:out_offsets[m + 1] + length]
    o2 = out[out_offsets[m + 2]:out_offsets[m + 2] + length]
    o3 = out[out_offsets[m + 3]:out_offsets[m + 3] + length]
    o4 = out[out_offsets[m + 4]:out_offsets[m + 4] + length]
    o5 = out[out_offsets[m + 5]:out_offsets[m + 5] + length]
    t = 0
    while t + 4 <= weights.shape[1]:
        a0 = buf[offsets[t]:offsets[t] + length]
        a1 = buf[offsets[t + 1]:offsets[t + 1] + length]
        a2 = buf[offsets[t + 2]:offsets[t + 2] + length]
        a3 = buf[offsets[t + 3]:offsets[t + 3] + length]
        w00, w01, w02, w03 = weights[m, t], weights[m, t + 1], weights[m, t + 2], weights[m, t + 3]
        w10, w11, w12, w13 = weights[m + 1, t], weights[m + 1, t + 1], weights[m + 1, t + 2], weights[m + 1, t + 3]
        w20, w21, w22, w23 = weights[m + 2, t], weights[m + 2, t + 1], weights[m + 2, t + 2], weights[m + 2, t + 3]
        w30, w31, w32, w33 = weights[m + 3, t], weights[m + 3, t + 1], weights[m + 3, t + 2], weights[m + 3, t + 3]
        w40, w41, w42, w43 = weights[m + 4, t], weights[m + 4, t + 1], weights[m + 4, t + 2], weights[m + 4, t + 3]
        w50, w51, w52, w53 = weights[m + 5, t], weights[m + 5, t + 1], weights[m + 5, t + 2], weights[m + 5, t + 3]
        for p in range(length):
            x0 = a0[p]
            x1 = a1[p]
            x2 = a2[p]
            x3 = a3[p]
            o0[p] += w00 * x0 + w01 * x1 + w02 * x2 + w03 * x3
            o1[p] += w10 * x0 + w11 * x1 + w12 * x2 + w13 * x3
            o2[p] += w20 * x0 + w21 * x1 + w22 * x2 + w23 * x3
            o3[p] += w30 * x0 + w31 * x1 + w32 * x2 + w33 * x3
            o4[p] += w40 * x0 + w41 * x1 + w42 * x2 + w43 * x3
            o5[p] += w50 * x0 + w51 * x1 + w52 * x2 + w53 * x3
        t += 4


@jit
def _taps_4(buf, offsets, weights, length, out, out_offsets, m):
    """Rows m..m+3 of :func:`_accumulate_taps`, four taps per pass."""
    o0 = out[out_offsets[m]:out_offsets[m] + length]
    o1 = out[out_offsets[m + 1]:out_offsets[m + 1] + length]
    o2 = out[out_offsets[m + 2]:out_offsets[m + 2] + length]
    o3 = out[out_offsets[m + 3]:out_offsets[m + 3] + length]
    t = 0
    while t + 4 <= weights.shape[1]:
        a0 = buf[offsets[t]:offsets[t] + length]
        a1 = buf[offsets[t + 1]:offsets[t + 1] + length]
        a2 = buf[offsets[t + 2]:offsets[t + 2] + length]
        a3 = buf[offsets[t + 3]:offsets[t + 3] + length]
        w00, w01, w02, w03 = weights[m, t], weights[m, t + 1], weights[m, t + 2], weights[m, t + 3]
        w10, w11, w12, w13 = weights[m + 1, t], weights[m + 1, t + 1], weights[m + 1, t + 2], weights[m + 1, t + 3]
        w20, w21, w22, w23 = weights[m + 2, t], weights[m + 2, t + 1], weights[m + 2, t + 2], weights[m + 2, t + 3]
        w30, w31, w32, w33 = weights[m + 3, t], weights[m + 3, t + 1], weights[m + 3, t + 2], weights[m + 3, t + 3]
        for p in range(length):
            x0 = a0[p]
            x1 = a1[p]
            x2 = a2[p]
            x3 = a3[p]
            o0[p] += w00 * x0 + w01 * x1 + w02 * x2 + w03 * x3
            o1[p] += w10 * x0 + w11 * x1 + w12 * x2 + w13 * x3
            o2[p] += w20 * x0 + w21 * x1 + w22 * x2 + w23 * x3
            o3[p] += w30 * x0 + w31 * x1 + w32 * x2 + w33 * x3
        t += 4


@jit
def _taps_1(buf, offsets, weights, length, out, out_offsets, m):
    """Row m of :func:`_accumulate_taps`, eight taps per pass."""
    o0 = out[out_offsets[m]:out_offsets[m] + length]
    t = 0
    while t + 8 <= weights.shape[1]:
        a0 = buf[offsets[t]:offsets[t] + length]
        a1 = buf[offsets[t + 1]:offsets[t + 1] + length]
        a2 = buf[offsets[t + 2]:offsets[t + 2] + length]
        a3 = buf[offsets[t + 3]:offsets[t + 3] + length]
        a4 = buf[offsets[t + 4]:offsets[t + 4] + length]
        a5 = buf[offsets[t + 5]:offsets[t + 5] + length]
        a6 = buf[offsets[t + 6]:offsets[t + 6] + length]
        a7 = buf[offsets[t + 7]:offsets[t + 7] + length]
        w00, w01, w02, w03 = weights[m, t], weights[m, t + 1], weights[m, t + 2], weights[m, t + 3]
        w04, w05, w06, w07 = weights[m, t + 4], weights[m, t + 5], weights[m, t + 6], weights[m, t + 7]
        for p in range(length):
            x0 = a0[p]
            x1 = a1[p]
            x2 = a2[p]
            x3 = a3[p]
            x4 = a4[p]
            x5 = a5[p]
            x6 = a6[p]
            x7 = a7[p]
            o0[p] += (w00 * x0 + w01 * x1 + w02 * x2 + w03 * x3
                      + w04 * x4 + w05 * x5 + w06 * x6 + w07 * x7)
        t += 8


@jit
def _accumulate_taps(buf, offsets, weights, length, out, out_offsets):
    """``out[out_offsets[m] + p] += sum_t weights[m, t] * buf[offsets[t] + p]`` for ``p < length``.

    buf, out: 1-D (distinct arrays; the M output rows must not overlap, or
    at least not within a block of six rows taken together);
    offsets: ``(T,)`` and out_offsets: ``(M,)`` int64; weights: ``(M, T)``.
    Rows go six or four at a time with four taps per pass, the last one to
    three rows one at a time with eight taps per pass; the taps left over
    go one at a time.
    """
    rows, taps = weights.shape
    # Row numbers are int64 from the start: a literal 0 would compile every callee twice.
    first, m = np.int64(0), np.int64(0)
    while m + 6 <= rows:
        _taps_6(buf, offsets, weights, length, out, out_offsets, m)
        m += 6
    if m + 4 <= rows:
        _taps_4(buf, offsets, weights, length, out, out_offsets, m)
        m += 4
    _taps_one_at_a_time(buf, offsets, weights, length, out, out_offsets, first, m, taps - taps % 4)
    for r in range(m, rows):
        _taps_1(buf, offsets, weights, length, out, out_offsets, r)
    _taps_one_at_a_time(buf, offsets, weights, length, out, out_offsets, m, rows - m, taps - taps % 8)


@jit
def _dots_one_at_a_time(rows, buf, offsets, length, out, m, count, t):
    """Taps t.. of rows m..m+count-1 of :func:`_accumulate_dots`, one tap per pass."""
    for r in range(m, m + count):
        d = rows[r, :length]
        for k in range(t, out.shape[1]):
            a = buf[offsets[k]:offsets[k] + length]
            s = type(out[r, k])(0)
            for p in range(length):
                s += d[p] * a[p]
            out[r, k] += s


@jit
def _dots_4(rows, buf, offsets, length, out, m):
    """Rows m..m+3 of :func:`_accumulate_dots`, six taps per pass: 24 running sums."""
    r0 = rows[m, :length]
    r1 = rows[m + 1, :length]
    r2 = rows[m + 2, :length]
    r3 = rows[m + 3, :length]
    t = 0
    while t + 6 <= out.shape[1]:
        a0 = buf[offsets[t]:offsets[t] + length]
        a1 = buf[offsets[t + 1]:offsets[t + 1] + length]
        a2 = buf[offsets[t + 2]:offsets[t + 2] + length]
        a3 = buf[offsets[t + 3]:offsets[t + 3] + length]
        a4 = buf[offsets[t + 4]:offsets[t + 4] + length]
        a5 = buf[offsets[t + 5]:offsets[t + 5] + length]
        zero = type(out[m, t])(0)
        s00 = s01 = s02 = s03 = s04 = s05 = zero
        s10 = s11 = s12 = s13 = s14 = s15 = zero
        s20 = s21 = s22 = s23 = s24 = s25 = zero
        s30 = s31 = s32 = s33 = s34 = s35 = zero
        for p in range(length):
            d0 = r0[p]
            d1 = r1[p]
            d2 = r2[p]
            d3 = r3[p]
            x = a0[p]
            s00 += d0 * x
            s10 += d1 * x
            s20 += d2 * x
            s30 += d3 * x
            x = a1[p]
            s01 += d0 * x
            s11 += d1 * x
            s21 += d2 * x
            s31 += d3 * x
            x = a2[p]
            s02 += d0 * x
            s12 += d1 * x
            s22 += d2 * x
            s32 += d3 * x
            x = a3[p]
            s03 += d0 * x
            s13 += d1 * x
            s23 += d2 * x
            s33 += d3 * x
            x = a4[p]
            s04 += d0 * x
            s14 += d1 * x
            s24 += d2 * x
            s34 += d3 * x
            x = a5[p]
            s05 += d0 * x
            s15 += d1 * x
            s25 += d2 * x
            s35 += d3 * x
        out[m, t] += s00
        out[m, t + 1] += s01
        out[m, t + 2] += s02
        out[m, t + 3] += s03
        out[m, t + 4] += s04
        out[m, t + 5] += s05
        out[m + 1, t] += s10
        out[m + 1, t + 1] += s11
        out[m + 1, t + 2] += s12
        out[m + 1, t + 3] += s13
        out[m + 1, t + 4] += s14
        out[m + 1, t + 5] += s15
        out[m + 2, t] += s20
        out[m + 2, t + 1] += s21
        out[m + 2, t + 2] += s22
        out[m + 2, t + 3] += s23
        out[m + 2, t + 4] += s24
        out[m + 2, t + 5] += s25
        out[m + 3, t] += s30
        out[m + 3, t + 1] += s31
        out[m + 3, t + 2] += s32
        out[m + 3, t + 3] += s33
        out[m + 3, t + 4] += s34
        out[m + 3, t + 5] += s35
        t += 6


@jit
def _dots_2(rows, buf, offsets, length, out, m):
    """Rows m, m+1 of :func:`_accumulate_dots`, eight taps per pass: 16 running sums."""
    r0 = rows[m, :length]
    r1 = rows[m + 1, :length]
    t = 0
    while t + 8 <= out.shape[1]:
        a0 = buf[offsets[t]:offsets[t] + length]
        a1 = buf[offsets[t + 1]:offsets[t + 1] + length]
        a2 = buf[offsets[t + 2]:offsets[t + 2] + length]
        a3 = buf[offsets[t + 3]:offsets[t + 3] + length]
        a4 = buf[offsets[t + 4]:offsets[t + 4] + length]
        a5 = buf[offsets[t + 5]:offsets[t + 5] + length]
        a6 = buf[offsets[t + 6]:offsets[t + 6] + length]
        a7 = buf[offsets[t + 7]:offsets[t + 7] + length]
        zero = type(out[m, t])(0)
        s00 = s01 = s02 = s03 = s04 = s05 = s06 = s07 = zero
        s10 = s11 = s12 = s13 = s14 = s15 = s16 = s17 = zero
        for p in range(length):
            d0 = r0[p]
            d1 = r1[p]
            x = a0[p]
            s00 += d0 * x
            s10 += d1 * x
            x = a1[p]
            s01 += d0 * x
            s11 += d1 * x
            x = a2[p]
            s02 += d0 * x
            s12 += d1 * x
            x = a3[p]
            s03 += d0 * x
            s13 += d1 * x
            x = a4[p]
            s04 += d0 * x
            s14 += d1 * x
            x = a5[p]
            s05 += d0 * x
            s15 += d1 * x
            x = a6[p]
            s06 += d0 * x
            s16 += d1 * x
            x = a7[p]
            s07 += d0 * x
            s17 += d1 * x
        out[m, t] += s00
        out[m, t + 1] += s01
        out[m, t + 2] += s02
        out[m, t + 3] += s03
        out[m, t + 4] += s04
        out[m, t + 5] += s05
        out[m, t + 6] += s06
        out[m, t + 7] += s07
        out[m + 1, t] += s10
        out[m + 1, t + 1] += s11
        out[m + 1, t + 2] += s12
        out[m + 1, t + 3] += s13
        out[m + 1, t + 4] += s14
        out[m + 1, t + 5] += s15
        out[m + 1, t + 6] += s16
        out[m + 1, t + 7] += s17
        t += 8


@jit
def _accumulate_dots(rows, buf, offsets, length, out):
    """``out[m, t] += sum_{p < length} rows[m, p] * buf[offsets[t] + p]``.

    rows: ``(M, >= length)``; buf: 1-D; offsets: ``(T,)`` int64; out: ``(M, T)``.
    Four rows and six taps per pass (24 running sums in registers), then
    two rows and eight taps, then one row.
    """
    count, taps = out.shape
    # int64 from the start, not literals: each callee then compiles once.
    first, m, pair = np.int64(0), np.int64(0), np.int64(2)
    while m + 4 <= count:
        _dots_4(rows, buf, offsets, length, out, m)
        m += 4
    _dots_one_at_a_time(rows, buf, offsets, length, out, first, m, taps - taps % 6)
    if m + 2 <= count:
        _dots_2(rows, buf, offsets, length, out, m)
        _dots_one_at_a_time(rows, buf, offsets, length, out, m, pair, taps - taps % 8)
        m += 2
    _dots_one_at_a_time(rows, buf, offsets, length, out, m, count - m, first)


# ----------------------------------------------------------------------------
# Layout.  A group of samples is stored side by side as one wide image: in
# every row of a phase plane, sample s owns the `seg_w` columns starting at
# ``s * seg_w``.  A window never straddles two samples, so the flattened
# output rows simply get longer, which keeps the vector loops long on small
# images.


@jit
def _layout(per_chunk, height, width, kh, kw, sh, sw, ph, pw):
    """``(out_h, out_w, plane_h, seg_w, group, row, plane)`` for chunks of up to `per_chunk` samples.

    `group` samples (at most `per_chunk`) side by side make flattened output
    rows of about GROUP_LENGTH values; `row` is a phase plane's row length
    and `plane` its size.
    """
    out_h = (height + 2 * ph - kh) // sh + 1
    out_w = (width + 2 * pw - kw) // sw + 1
    plane_h = (height + 2 * ph + sh - 1) // sh
    seg_w = (width + 2 * pw + sw - 1) // sw
    widest = max(1, min(per_chunk, GROUP_LENGTH // (out_h * seg_w)))
    # as many samples in each group of a chunk as possible, without a short last group
    groups = (per_chunk + widest - 1) // widest
    group = (per_chunk + groups - 1) // groups
    row = group * seg_w
    return out_h, out_w, plane_h, seg_w, group, row, plane_h * row


@jit
def _forward_offsets(channels, kh, kw, sh, sw, row, plane):
    """Offset of tap ``(c, i, j)`` (in ``weight.reshape(F, -1)`` order) in the phase-split buffer."""
    offsets = np.empty(channels * kh * kw, np.int64)
    t = 0
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                offsets[t] = ((c * sh + i % sh) * sw + j % sw) * plane + (i // sh) * row + j // sw
                t += 1
    return offsets


@jit
def _load_group(x, first, count, group, sh, sw, ph, pw, seg_w, row, plane, buf):
    """Write samples ``x[first : first+count]`` (zeros for the remaining segments) into the group buffer.

    Only interior positions are written; the caller zeroes `buf` once and
    the padding stays zero.
    """
    channels, height, width = x.shape[1:]
    for s in range(group):
        for c in range(channels):
            for y in range(height):
                padded = y + ph
                start = (padded // sh) * row + s * seg_w
                if sw == 1:
                    base = (c * sh + padded % sh) * plane + start + pw
                    dst = buf[base:base + width]
                    if s < count:
                        src = x[first + s, c, y]
                        for j in range(width):
                            dst[j] = src[j]
                    else:
                        dst[:] = 0
                else:
                    for rx in range(sw):
                        base = ((c * sh + padded % sh) * sw + rx) * plane + start
                        # column v of this phase holds padded column v*sw + rx, i.e. x column v*sw + rx - pw
                        v = max(0, (pw - rx + sw - 1) // sw)
                        col = v * sw + rx - pw
                        while col < width:
                            buf[base + v] = x[first + s, c, y, col] if s < count else 0
                            v += 1
                            col += sw


@jit
def _unload_group(buf, first, count, sh, sw, ph, pw, seg_w, row, plane, x, activation_below, grad_x):
    """The inverse of :func:`_load_group`, times ``f'(x)``: ``grad_x[first+s] = buf(s) * f'(x[first+s])``."""
    channels, height, width = x.shape[1:]
    for s in range(count):
        for c in range(channels):
            for y in range(height):
                padded = y + ph
                start = (padded // sh) * row + s * seg_w
                below = x[first + s, c, y]
                dst = grad_x[first + s, c, y]
                if sw == 1:
                    base = (c * sh + padded % sh) * plane + start + pw
                    src = buf[base:base + width]
                    if activation_below == IDENTITY:
                        for j in range(width):
                            dst[j] = src[j]
                    else:
                        for j in range(width):
                            dst[j] = src[j] * derivative(below[j], activation_below)
                else:
                    for rx in range(sw):
                        base = ((c * sh + padded % sh) * sw + rx) * plane + start
                        v = max(0, (pw - rx + sw - 1) // sw)
                        col = v * sw + rx - pw
                        while col < width:
                            dst[col] = buf[base + v] * derivative(below[col], activation_below)
                            v += 1
                            col += sw


@jit
def _group_length(out_h, out_w, seg_w, row, count):
    """Length of the flattened output rows of a group holding `count` samples."""
    return (out_h - 1) * row + (count - 1) * seg_w + out_w


@jit
def _forward_group(x, w2, bias, offsets, first, count, sh, sw, ph, pw, layout, activation, buf, acc, acc_offsets,
                   out):
    """``out[n,f,i,j] = act(b[f] + sum_t w2[f,t] * tap_t(n)[i,j])`` for ``first <= n < first+count``."""
    out_h, out_w, plane_h, seg_w, group, row, plane = layout
    filters = w2.shape[0]
    _load_group(x, first, count, group, sh, sw, ph, pw, seg_w, row, plane, buf)
    length = _group_length(out_h, out_w, seg_w, row, count)
    for f in range(filters):
        acc[acc_offsets[f]:acc_offsets[f] + length] = bias[f]
    _accumulate_taps(buf, offsets, w2, length, acc, acc_offsets)
    for s in range(count):
        for f in range(filters):
            for i in range(out_h):
                start = acc_offsets[f] + i * row + s * seg_w
                src = acc[start:start + out_w]
                dst = out[first + s, f, i]
                if activation == IDENTITY:
                    for j in range(out_w):
                        dst[j] = src[j]
                else:
                    for j in range(out_w):
                        dst[j] = activate(src[j], activation)


@jit
def _load_errors(grad_out, first, count, group, seg_w, row, errors, grad_bias):
    """Error maps of a group, row stride `row`, into `errors` ``(F, >= length)``; adds their sums to `grad_bias`.

    Segments past `count` are zeroed; the columns between segments stay zero.
    """
    filters, out_h, out_w = grad_out.shape[1:]
    for s in range(group):
        for f in range(filters):
            total = type(grad_bias[f])(0)
            for i in range(out_h):
                dst = errors[f, i * row + s * seg_w:i * row + s * seg_w + out_w]
                if s < count:
                    src = grad_out[first + s, f, i]
                    for j in range(out_w):
                        dst[j] = src[j]
                        total += src[j]
                else:
                    dst[:] = 0
            grad_bias[f] += total


@jit
def _gather_plan(weight, height, width, sh, sw, ph, pw, out_h, out_w, group, with_weights):
    """Tap tables for the sensitivity map of the layer below, computed as the tutorial does.

    The tutorial expands the error map for the stride, pads it and convolves
    it with the filters rotated by 180 degrees.  Split by the phase
    ``(ry, rx)`` of the input position, that is a stride-1 convolution of the
    unexpanded error map, padded by ``ceil(K/S) - 1``, with the rotated
    sub-filter ``w[:, :, ry::SH, rx::SW]``.  The padded error maps of a group
    lie side by side, `pad_w` columns each, in planes of ``pad_h`` rows.

    Returns ``plan`` ``(SH*SW, 7)`` int64 rows ``(ry, rx, u0, u1, v0, v1,
    first tap)``: the phase covers input rows ``u*SH + ry - PH`` for
    ``u0 <= u < u1`` (columns likewise); its taps are ``offsets[first :
    next first]``, with weights ``weights[C*first : C*next first]`` as a
    ``(C, taps)`` block.  Also ``pad_h, pad_w, lead_h, lead_w``: plane size
    and the zero rows and columns before each error map.  Without
    `with_weights` the weights are left out (empty).
    """
    filters, channels, kh, kw = weight.shape
    lead_h = (kh + sh - 1) // sh - 1
    lead_w = (kw + sw - 1) // sw - 1
    pad_h = max(out_h, (ph + height + sh - 1) // sh) + lead_h
    pad_w = max(out_w, (pw + width + sw - 1) // sw) + lead_w
    row = group * pad_w
    plan = np.zeros((sh * sw + 1, 7), np.int64)
    offsets = np.empty(filters * kh * kw, np.int64)
    weights = np.empty(filters * kh * kw * channels if with_weights else 0, weight.dtype)
    first = 0
    for ry in range(sh):
        for rx in range(sw):
            r = ry * sw + rx
            ka = (kh - ry + sh - 1) // sh if ry < kh else 0
            kb = (kw - rx + sw - 1) // sw if rx < kw else 0
            u0 = max(0, (ph - ry + sh - 1) // sh)
            v0 = max(0, (pw - rx + sw - 1) // sw)
            plan[r, 0] = ry
            plan[r, 1] = rx
            plan[r, 2] = u0
            plan[r, 3] = max(u0, (ph + height - ry + sh - 1) // sh)
            plan[r, 4] = v0
            plan[r, 5] = max(v0, (pw + width - rx + sw - 1) // sw)
            plan[r, 6] = first
            taps = filters * ka * kb
            block = weights[channels * first:channels * (first + taps) if with_weights else 0]
            block = block.reshape((channels if with_weights else 0, taps))
            t = 0
            for f in range(filters):
                for a in range(ka):
                    for b in range(kb):
                        offsets[first + t] = (f * pad_h + u0 - a + lead_h) * row + v0 - b + lead_w
                        for c in range(block.shape[0]):
                            block[c, t] = weight[f, c, ry + a * sh, rx + b * sw]
                        t += 1
            first += taps
    plan[sh * sw, 6] = first
    return plan, offsets, weights, pad_h, pad_w, lead_h, lead_w


@jit
def _gather_length(plan, r, pad_w, row, count):
    """Flattened output length of phase `r` for a group of `count` samples (0 if the phase is empty)."""
    u0, u1, v0, v1 = plan[r, 2], plan[r, 3], plan[r, 4], plan[r, 5]
    if u1 == u0 or v1 == v0:
        return 0
    return (u1 - u0 - 1) * row + (count - 1) * pad_w + v1 - v0


@jit
def _gather_group(grad_out, first, count, group, plan, offsets, weights, pad_h, pad_w, lead_h, lead_w,
                  sh, sw, ph, pw, x, activation_below, ebuf, acc, acc_offsets, grad_x):
    """Sensitivity map of the layer below for a group, by the tutorial's full convolution (see _gather_plan)."""
    filters, out_h, out_w = grad_out.shape[1:]
    channels = grad_x.shape[1]
    row = group * pad_w
    for s in range(group):
        for f in range(filters):
            for i in range(out_h):
                base = (f * pad_h + i + lead_h) * row + s * pad_w + lead_w
                dst = ebuf[base:base + out_w]
                if s < count:
                    src = grad_out[first + s, f, i]
                    for j in range(out_w):
                        dst[j] = src[j]
                else:
                    dst[:] = 0
    for r in range(plan.shape[0] - 1):
        length = _gather_length(plan, r, pad_w, row, count)
        if length == 0:
            continue
        ry, rx, u0, u1, v0, v1 = plan[r, 0], plan[r, 1], plan[r, 2], plan[r, 3], plan[r, 4], plan[r, 5]
        start, stop = plan[r, 6], plan[r + 1, 6]
        for c in range(channels):
            acc[acc_offsets[c]:acc_offsets[c] + length] = 0
        block = weights[channels * start:channels * stop].reshape((channels, stop - start))
        _accumulate_taps(ebuf, offsets[start:stop], block, length, acc, acc_offsets)
        for s in range(count):
            for c in range(channels):
                for u in range(u0, u1):
                    y = u * sh + ry - ph
                    base = acc_offsets[c] + (u - u0) * row + s * pad_w
                    src = acc[base:base + v1 - v0]
                    for j in range(v1 - v0):
                        col = (v0 + j) * sw + rx - pw
                        grad_x[first + s, c, y, col] = src[j] * derivative(x[first + s, c, y, col], activation_below)


@jit
def _scatter_plan(weight, forward_offsets, used):
    """Weights ``(KH*KW, C, F)`` and output offsets ``(KH*KW, C)`` of the scatter (empty unless `used`)."""
    filters, channels, kh, kw = weight.shape
    taps = kh * kw if used else 0
    weights = np.empty((taps, channels, filters), weight.dtype)
    out_offsets = np.empty((taps, channels), np.int64)
    for i in range(kh if used else 0):
        for j in range(kw):
            for c in range(channels):
                out_offsets[i * kw + j, c] = forward_offsets[(c * kh + i) * kw + j]
                for f in range(filters):
                    weights[i * kw + j, c, f] = weight[f, c, i, j]
    return weights, out_offsets


@jit
def _tap_cost(taps):
    """Relative cost of a tap loop: taps left over after the passes of eight cost about twice as much."""
    return taps + taps % 8


@jit
def _prefer_scatter(kh, kw, filters, length, plan, pad_w, group):
    """Whether scattering the error map through each tap beats the tutorial's full convolution.

    Both give the same sums; the full convolution pays for the zero border of
    the padded error map, the scatter for passes over only F filters.
    """
    scatter = kh * kw * length * _tap_cost(filters)
    gather = 0
    for r in range(plan.shape[0] - 1):
        taps = plan[r + 1, 6] - plan[r, 6]
        gather += _gather_length(plan, r, pad_w, group * pad_w, group) * _tap_cost(taps)
    return scatter < gather


@jit
def _backward_group(x, grad_out, first, count, offsets, layout, sh, sw, ph, pw, activation_below, input_grad, scatter,
                    scatter_weights, scatter_offsets, error_offsets, plan, goffsets, gweights, pad_h, pad_w,
                    lead_h, lead_w, buf, errors, dbuf, ebuf, acc, acc_offsets, grad_x, grad_w2, grad_bias):
    """Sums added into `grad_w2` ``(F, C*KH*KW)`` and `grad_bias`, and the group's `grad_x` rows if `input_grad`."""
    out_h, out_w, plane_h, seg_w, group, row, plane = layout
    _load_group(x, first, count, group, sh, sw, ph, pw, seg_w, row, plane, buf)
    _load_errors(grad_out, first, count, group, seg_w, row, errors, grad_bias)
    length = _group_length(out_h, out_w, seg_w, row, count)
    _accumulate_dots(errors, buf, offsets, length, grad_w2)
    if not input_grad:
        return
    if scatter:
        dbuf[:] = 0
        flat = errors.reshape(-1)
        taps, channels, filters = scatter_weights.shape
        if channels % 6 == 0:
            # All taps in one call: rows (tap, channel) go six at a time, each block one tap's channels, whose
            # slices never overlap (the rule of _accumulate_taps); the blocks run in tap order, as below.
            _accumulate_taps(flat, error_offsets, scatter_weights.reshape((taps * channels, filters)), length, dbuf,
                             scatter_offsets.reshape(-1))
        else:
            for k in range(taps):
                _accumulate_taps(flat, error_offsets, scatter_weights[k], length, dbuf, scatter_offsets[k])
        _unload_group(dbuf, first, count, sh, sw, ph, pw, seg_w, row, plane, x, activation_below, grad_x)
    else:
        _gather_group(grad_out, first, count, group, plan, goffsets, gweights, pad_h, pad_w, lead_h, lead_w,
                      sh, sw, ph, pw, x, activation_below, ebuf, acc, acc_offsets, grad_x)


# The helpers below allocate outside the parallel kernels on purpose: an array
# expression inside a parallel=True function becomes a parallel region of its
# own, one more thread synchronisation per call.


@jit
def _forward_tables(channels, filters, kh, kw, sh, sw, layout):
    """Tap offsets, flattened output length and accumulator row offsets of the forward pass."""
    out_h, out_w, plane_h, seg_w, group, row, plane = layout
    longest = _group_length(out_h, out_w, seg_w, row, group)
    return _forward_offsets(channels, kh, kw, sh, sw, row, plane), longest, np.arange(filters) * longest


@jit
def _partial_sums(chunks, filters, taps, like):
    """Zeroed per-chunk gradient buffers ``(chunks, F, taps)`` and ``(chunks, F)`` of `like`'s dtype."""
    return np.zeros((chunks, filters, taps), like.dtype), np.zeros((chunks, filters), like.dtype)


@jit
def _chunk_count(count):
    return min(count, max(MIN_CHUNKS, count // CHUNK_SAMPLES))


@jit
def _chunk_bounds(count, chunks, k):
    return k * count // chunks, (k + 1) * count // chunks


@jit
def _forward_chunk(x, w2, bias, offsets, lo, hi, sh, sw, ph, pw, layout, activation, acc_offsets, out):
    """Forward pass of samples ``lo <= n < hi``, group by group, with the chunk's own buffers."""
    group, plane = layout[4], layout[6]
    buf = np.zeros(x.shape[1] * sh * sw * plane, x.dtype)
    acc = np.empty(w2.shape[0] * _group_length(layout[0], layout[1], layout[3], layout[5], group), x.dtype)
    for first in range(lo, hi, group):
        _forward_group(x, w2, bias, offsets, first, min(group, hi - first), sh, sw, ph, pw, layout, activation,
                       buf, acc, acc_offsets, out)


@jit
def _backward_chunk(x, grad_out, lo, hi, offsets, layout, sh, sw, ph, pw, activation_below, input_grad, scatter,
                    scatter_weights, scatter_offsets, error_offsets, plan, goffsets, gweights, pad_h, pad_w, lead_h,
                    lead_w, longest, acc_offsets, grad_x, grad_w2, grad_bias):
    """Gradients of samples ``lo <= n < hi``: `grad_x` rows, sums added into `grad_w2` and `grad_bias`."""
    channels = x.shape[1]
    filters = grad_out.shape[1]
    group, plane = layout[4], layout[6]
    length = _group_length(layout[0], layout[1], layout[3], layout[5], group)
    buf = np.zeros(channels * sh * sw * plane, x.dtype)
    errors = np.zeros((filters, length), x.dtype)
    dbuf = np.empty(channels * sh * sw * plane if input_grad and scatter else 0, x.dtype)
    ebuf = np.zeros(filters * pad_h * group * pad_w if input_grad and not scatter else 0, x.dtype)
    acc = np.empty(channels * longest if input_grad and not scatter else 0, x.dtype)
    for first in range(lo, hi, group):
        _backward_group(x, grad_out, first, min(group, hi - first), offsets, layout, sh, sw, ph, pw,
                        activation_below, input_grad, scatter, scatter_weights, scatter_offsets, error_offsets,
                        plan, goffsets, gweights, pad_h, pad_w, lead_h, lead_w, buf, errors, dbuf, ebuf, acc,
                        acc_offsets, grad_x, grad_w2, grad_bias)


@jit(parallel=True)
def conv2d_forward(x, weight, bias, sh, sw, ph, pw, activation, out):
    """Batched forward: `x` ``(N, C, H, W)``, `weight` ``(F, C, KH, KW)``, `bias` ``(F,)`` into `out` ``(N, F, OH, OW)``.

    ``out[n,f,i,j] = act(sum_{c,kh,kw} w[f,c,kh,kw] * xp[n,c,i*SH+kh,j*SW+kw] + b[f])``;
    `activation` is a code from `fastnn.kernels.activation` (IDENTITY for none).
    """
    count, channels, height, width = x.shape
    filters, _, kh, kw = weight.shape
    chunks = _chunk_count(count)
    layout = _layout((count + chunks - 1) // chunks, height, width, kh, kw, sh, sw, ph, pw)
    offsets, _, acc_offsets = _forward_tables(channels, filters, kh, kw, sh, sw, layout)
    w2 = weight.reshape((filters, channels * kh * kw))
    for k in prange(chunks):
        lo, hi = _chunk_bounds(count, chunks, k)
        _forward_chunk(x, w2, bias, offsets, lo, hi, sh, sw, ph, pw, layout, activation, acc_offsets, out)


@jit
def _backward_tables(weight, height, width, sh, sw, ph, pw, layout, input_grad):
    """Everything the backward pass derives from the weights and shapes once per call.

    Weight tables of the input gradient only for the method chosen, and
    none without `input_grad`.
    """
    out_h, out_w, plane_h, seg_w, group, row, plane = layout
    filters, channels, kh, kw = weight.shape
    offsets = _forward_offsets(channels, kh, kw, sh, sw, row, plane)
    length = _group_length(out_h, out_w, seg_w, row, group)
    plan, goffsets, gweights, pad_h, pad_w, lead_h, lead_w = _gather_plan(
        weight, height, width, sh, sw, ph, pw, out_h, out_w, group, False)
    scatter = _prefer_scatter(kh, kw, filters, length, plan, pad_w, group)
    if input_grad and not scatter:
        gweights = _gather_plan(weight, height, width, sh, sw, ph, pw, out_h, out_w, group, True)[2]
    scatter_weights, scatter_offsets = _scatter_plan(weight, offsets, input_grad and scatter)
    longest = 0
    for r in range(plan.shape[0] - 1):
        longest = max(longest, _gather_length(plan, r, pad_w, group * pad_w, group))
    return (offsets, length, plan, goffsets, gweights, pad_h, pad_w, lead_h, lead_w, scatter, scatter_weights,
            scatter_offsets, np.arange(filters) * length, np.arange(channels) * longest, longest)


@jit(parallel=True)
def conv2d_backward(x, weight, grad_out, sh, sw, ph, pw, activation_below, input_grad, grad_x, grad_weight,
                    grad_bias):
    """Batched backward: `grad_out` ``(N, F, OH, OW)`` is the error on the layer's weighted input.

    Writes `grad_x` ``(N, C, H, W)`` (times the derivative of
    `activation_below` at `x`; IDENTITY for the plain gradient) if
    `input_grad` (a first layer needs none, and `grad_x` may then be
    empty), and
    overwrites `grad_weight` ``(F, C, KH, KW)`` and `grad_bias` ``(F,)`` with
    the sums over the batch.  Bit-identical for any thread count.
    """
    count, channels, height, width = x.shape
    filters, _, kh, kw = weight.shape
    chunks = _chunk_count(count)
    layout = _layout((count + chunks - 1) // chunks, height, width, kh, kw, sh, sw, ph, pw)
    (offsets, _, plan, goffsets, gweights, pad_h, pad_w, lead_h, lead_w, scatter, scatter_weights,
     scatter_offsets, error_offsets, acc_offsets, longest) = _backward_tables(
        weight, height, width, sh, sw, ph, pw, layout, input_grad)
    taps = channels * kh * kw
    partial_w, partial_b = _partial_sums(chunks, filters, taps, x)
    for k in prange(chunks):
        lo, hi = _chunk_bounds(count, chunks, k)
        _backward_chunk(x, grad_out, lo, hi, offsets, layout, sh, sw, ph, pw, activation_below, input_grad,
                        scatter, scatter_weights, scatter_offsets, error_offsets, plan, goffsets, gweights, pad_h,
                        pad_w, lead_h, lead_w, longest, acc_offsets, grad_x, partial_w[k], partial_b[k])
    # fixed chunk order: the sums do not depend on which thread ran which chunk
    gw = grad_weight.reshape((filters, taps))
    for f in range(filters):
        for t in range(taps):
            total = partial_w[0, f, t]
            for k in range(1, chunks):
                total += partial_w[k, f, t]
            gw[f, t] = total
        total = partial_b[0, f]
        for k in range(1, chunks):
            total += partial_b[k, f]
        grad_bias[f] = total


@jit
def conv_forward_sample(x, weight, bias, sh, sw, ph, pw, activation, out):
    """One sample, serial: `x` ``(C, H, W)`` into `out` ``(F, OH, OW)``.

    The tutorial's ``ConvLayer.forward``, and Conv2D on a batch of one (no
    parallel region: no threads to wake).
    """
    channels, height, width = x.shape
    filters, _, kh, kw = weight.shape
    layout = _layout(1, height, width, kh, kw, sh, sw, ph, pw)
    offsets, _, acc_offsets = _forward_tables(channels, filters, kh, kw, sh, sw, layout)
    _forward_chunk(x.reshape((1, channels, height, width)), weight.reshape((filters, channels * kh * kw)), bias,
                   offsets, 0, 1, sh, sw, ph, pw, layout, activation, acc_offsets, out.reshape((1,) + out.shape))


@jit
def conv_gradients_sample(x, weight, grad_out, sh, sw, ph, pw, activation_below, input_grad, grad_x, grad_weight,
                          grad_bias):
    """One sample, serial: the tutorial's ``ConvLayer.backward`` after its forward pass, Conv2D on a batch of one.

    `grad_out` ``(F, OH, OW)`` is the sensitivity map of this layer;
    `grad_x` ``(C, H, W)`` receives the sensitivity map of the layer below
    (times the derivative of `activation_below` at `x`) if `input_grad`
    (else it may be empty), `grad_weight` ``(F, C, KH, KW)`` and
    `grad_bias` ``(F,)`` are overwritten.  No parallel region: a batch of
    one wakes no threads.
    """
    channels, height, width = x.shape
    filters, _, kh, kw = weight.shape
    layout = _layout(1, height, width, kh, kw, sh, sw, ph, pw)
    (offsets, _, plan, goffsets, gweights, pad_h, pad_w, lead_h, lead_w, scatter, scatter_weights,
     scatter_offsets, error_offsets, acc_offsets, longest) = _backward_tables(
        weight, height, width, sh, sw, ph, pw, layout, input_grad)
    grad_weight[:] = 0
    grad_bias[:] = 0
    _backward_chunk(x.reshape((1, channels, height, width)), grad_out.reshape((1,) + grad_out.shape), 0, 1,
                    offsets, layout, sh, sw, ph, pw, activation_below, input_grad, scatter, scatter_weights,
                    scatter_offsets, error_offsets, plan, goffsets, gweights, pad_h, pad_w, lead_h, lead_w, longest,
                    acc_offsets, grad_x.reshape((1,) + grad_x.shape),
                    grad_weight.reshape((filters, channels * kh * kw)), grad_bias)


@jit
def conv_pool_forward_sample(x, weight, bias, sh, sw, ph, pw, activation, pool_kh, pool_kw, pool_sh, pool_sw, out,
                             pooled):
    """One sample, serial: :func:`conv_forward_sample` into `out` ``(F, OH, OW)``, then max pooling into `pooled`.

    A convolution, its activation and a max pooling in one call (Conv2D on
    a batch of one): the pooling is kernels.pool.max_pool_planes.
    """
    conv_forward_sample(x, weight, bias, sh, sw, ph, pw, activation, out)
    max_pool_planes(out, pool_kh, pool_kw, pool_sh, pool_sw, pooled)


@jit
def pool_conv_gradients_sample(x, weight, out, grad_pooled, sh, sw, ph, pw, activation, pool_kh, pool_kw, pool_sh,
                               pool_sw, activation_below, input_grad, grad_out, grad_x, grad_weight, grad_bias):
    """The backward pass of :func:`conv_pool_forward_sample` in one call.

    The error of the pooled map `grad_pooled` goes to each window's first
    maximum of `out` (kernels.pool.max_pool_planes_backward) into
    `grad_out`, is multiplied by the derivative of `activation` read from
    `out`, and :func:`conv_gradients_sample` takes it from there.
    """
    max_pool_planes_backward(out, grad_pooled, pool_kh, pool_kw, pool_sh, pool_sw, grad_out)
    if activation != IDENTITY:
        g = grad_out.reshape(-1)
        y = out.reshape(-1)
        for i in range(g.shape[0]):
            g[i] *= derivative(y[i], activation)
    conv_gradients_sample(x, weight, grad_out, sh, sw, ph, pw, activation_below, input_grad, grad_x, grad_weight,
                          grad_bias)

"""``exp``, ``sigmoid`` and ``tanh`` written in plain arithmetic, so that loops calling them vectorize;
a switch that flushes subnormal numbers to zero while a kernel runs; and
:func:`prefer_wide_vectors`, which lets one kernel use 512-bit vectors.

Numba lowers ``math.exp`` and ``math.tanh`` to scalar libm calls: a loop over
a gate vector then costs 3 ns (sigmoid) to 16 ns (tanh) per element, more
than the matrix products of a small LSTM step.  The functions here are a
Cody-Waite range reduction, a Taylor polynomial (degree 7 in float32, 13 in
float64) and an exponent built from integer bits; LLVM turns a loop over
them into SIMD code (about 0.6 ns per float32 element).  Accuracy, measured against float64 numpy:
tanh within 2 ulp, sigmoid within a few ulp in float32 and 15 ulp (3e-15) in
float64 over ``|z| < 40`` (the fast-math "reassoc" flag may fold the two
halves of ln 2 together).  NaN propagates; +-inf give the limits; results
below about 1.6e-38 (float32) or 3e-308 (float64) are flushed to zero.

All three are dtype-generic: float32 in, float32 out.

Subnormal numbers (below 1.2e-38 in float32) cost a hundred cycles per
operation on x86.  Saturated gates and vanishing gradients produce them in
real training: an LSTM step measured 7x slower once they appeared.  Kernels
therefore bracket their work with :func:`flush_subnormals` and
:func:`restore_fp`, which set the SSE control register's flush-to-zero and
denormals-are-zero bits for the calling thread and put the old value back,
as TensorFlow does on CPUs; elsewhere the two do nothing.
"""

import math
import platform

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._jit import jit


def pow2(n):
    """``2.0 ** n`` for an integral float `n` in the normal exponent range (pure Python fallback)."""
    return type(n)(math.ldexp(1.0, int(n)))


@intrinsic
def _pow2_bits(typingctx, n):
    """``2**n`` by writing ``n + bias`` into the exponent bits (float32 or float64 `n`, integral, not NaN)."""
    if not isinstance(n, types.Float):
        return None
    bits = n.bitwidth
    mantissa, bias = (23, 127) if bits == 32 else (52, 1023)

    def codegen(context, builder, signature, args):
        int_type = ir.IntType(bits)
        float_type = context.get_value_type(n)
        exponent = builder.add(builder.fptosi(args[0], int_type), ir.Constant(int_type, bias))
        return builder.bitcast(builder.shl(exponent, ir.Constant(int_type, mantissa)), float_type)

    return n(n), codegen


@overload(pow2)
def _pow2_overload(n):
    if isinstance(n, types.Float):
        return lambda n: _pow2_bits(n)
    return None


@jit
def exp_parts(y):
    """For ``y <= 0``: ``(q, s)`` with ``exp(y) = s * (1 + q)``, ``s = 2**k`` and ``q = exp(r) - 1``.

    Keeping ``q`` apart gives ``expm1(y) = s*q + (s - 1)`` without
    cancellation.  Below ``exp(y) ~ 1e-38`` (float32) or ``1e-307`` (float64)
    ``s`` is 0: results are flushed to zero instead of going through
    subnormals, which cost a hundred times more.  NaN stays NaN.
    """
    T = type(y)
    single = T(1e-50) == T(0)  # true only in float32; a constant once compiled
    lower = T(-87.0) if single else T(-708.0)
    # NaN is replaced here (converting it to an integer below would be undefined) and restored at the end.
    clamped = y if y >= lower else lower
    k = np.floor(clamped * T(1.4426950408889634) + T(0.5))
    # ln 2 split so that k * ln2_hi is exact: r = y - k ln 2 to about one ulp, |r| <= 0.35.
    r = (clamped - k * T(0.693145751953125)) - k * T(1.4286068203094173e-06)
    # Taylor series of exp(r) - 1: the first omitted term is below half an ulp (degree 7 for float32, 13 for float64).
    if single:
        q = T(1 / 5040)
    else:
        q = T(1 / 6227020800)
        q = q * r + T(1 / 479001600)
        q = q * r + T(1 / 39916800)
        q = q * r + T(1 / 3628800)
        q = q * r + T(1 / 362880)
        q = q * r + T(1 / 40320)
        q = q * r + T(1 / 5040)
    q = q * r + T(1 / 720)
    q = q * r + T(1 / 120)
    q = q * r + T(1 / 24)
    q = q * r + T(1 / 6)
    q = q * r + T(0.5)
    q = (q * r + T(1)) * r
    s = T(0) if y < lower else pow2(k)
    return (q if y == y else y), s


@jit
def sigmoid(z):
    """``1 / (1 + exp(-z))`` without overflow: ``e = exp(-|z|)``, then ``1/(1+e)`` or ``e/(1+e)``."""
    one = type(z)(1)
    q, s = exp_parts(-abs(z))
    e = s + s * q
    d = one / (one + e)
    return d if z >= 0 else e * d


@jit
def tanh(z):
    """``tanh(z) = -m / (m + 2)`` with ``m = expm1(-2|z|)``, sign restored: accurate near 0 too."""
    one = type(z)(1)
    a = abs(z)
    q, s = exp_parts(-(a + a))
    m = s * q + (s - one)
    t = -m / (m + one + one)
    return t if z >= 0 else -t


X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
FLUSH_BITS = 0x8040  # MXCSR: flush-to-zero (bit 15) and denormals-are-zero (bit 6)


def flush_subnormals():
    """Make subnormal inputs and results zero on this thread; returns the previous state for :func:`restore_fp`."""
    return 0


def restore_fp(state):
    """Put back the floating-point state that :func:`flush_subnormals` returned."""


def _mxcsr_call(builder, name, slot):
    function = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [slot.type]), name)
    builder.call(function, [slot])


@intrinsic
def _read_mxcsr(typingctx):
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)

    return types.uint32(), codegen


@intrinsic
def _write_mxcsr(typingctx, value):
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return types.void(types.uint32), codegen


@overload(flush_subnormals)
def _flush_overload():
    if not X86:
        return lambda: np.uint32(0)

    def flush():
        state = _read_mxcsr()
        _write_mxcsr(state | np.uint32(FLUSH_BITS))
        return state

    return flush


@overload(restore_fp)
def _restore_overload(state):
    if not X86:
        return lambda state: None
    return lambda state: _write_mxcsr(state)


class _WideVectorAttributes(ir.values.FunctionAttributes):
    """A function's LLVM attributes plus ``"prefer-vector-width"="512"`` (llvmlite's own set takes flags only)."""

    def __bool__(self):
        return True

    def _to_list(self, ret_type):
        return super()._to_list(ret_type) + ['"prefer-vector-width"="512"']


def prefer_wide_vectors():
    """Let LLVM vectorize the calling kernel's loops with 512-bit registers where the CPU has AVX-512.

    LLVM prefers 256-bit vectors on Intel's AVX-512 CPUs (wide instructions
    once lowered their clock), so Numba's loops use half of the registers'
    width.  A loop bound by loads and stores from L1/L2 cache gains from the
    full width: the tutorial LSTM's kernel at 32 -> 64, whose recurrent
    products stream 128 KB of weights per step, measured 55 -> 44 us.  The
    attribute covers the calling function only, so each kernel opts in;
    setting it for every kernel (``NUMBA_CPU_FEATURES``) measured 0.83x to
    1.17x across the benchmark's workloads.  It does nothing on other CPUs,
    and nothing if llvmlite's attribute set has a layout this does not know
    (nor in Python, with NUMBA_DISABLE_JIT).
    """


@intrinsic
def _prefer_wide_vectors(typingctx):
    """Add the attribute to the function being compiled (see :func:`prefer_wide_vectors`)."""

    def codegen(context, builder, signature, args):
        function = builder.function
        attributes = function.attributes
        if type(attributes) is ir.values.FunctionAttributes:
            wide = _WideVectorAttributes()
            set.update(wide, attributes)
            wide.alignstack, wide.personality = attributes.alignstack, attributes.personality
            function.attributes = wide
        return context.get_dummy_value()

    return types.none(), codegen


# Inlined into the caller, so that the intrinsic marks the kernel that calls it, not a function of its own.
@overload(prefer_wide_vectors, inline="always")
def _prefer_wide_vectors_overload():
    return lambda: _prefer_wide_vectors()

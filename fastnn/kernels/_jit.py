"""The one place that holds fastnn's Numba options.

Every kernel is compiled through :func:`jit`, so that caching, fast-math and
the error model are decided here and nowhere else.
"""

import numba

# Fast-math without "nnan"/"ninf" (NaN and inf checks keep working, so a
# diverging loss is still detected) and without "afn"/"arcp" (exp, tanh and
# division stay exact to the last bit of libm).  "reassoc" is what lets LLVM
# vectorize dot products and sums; "contract" allows fused multiply-adds.
FASTMATH = frozenset({"nsz", "contract", "reassoc"})


def jit(function=None, *, parallel=False, cache=True, inline=False):
    """Compile `function` in nopython mode with fastnn's options.

    Compilation is lazy (on first call, per argument types) and cached on
    disk, so only the first run on a machine pays it.  ``cache=False`` is for
    kernels specialised on a user's Python function, whose compiled code
    cannot be reused by another process.  ``inline=True`` is for small
    helpers called once per node or row from a hot loop: Numba then pastes
    them into the caller, which saves the call and the reference counting
    of the array views they create.  Kernels release the GIL.
    """
    options = dict(
        cache=cache,
        fastmath=set(FASTMATH),
        parallel=parallel,
        error_model="numpy",
        nogil=True,
    )
    if inline:
        options["inline"] = "always"
    if function is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(function)

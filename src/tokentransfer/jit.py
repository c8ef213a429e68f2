"""numba where it imports: the decorators of the compiled rules, walk step and walk loop.

numba is a pinned dependency. Where it does not import, :func:`compile` and :func:`inline`
return the function itself, so the very same code runs as Python (slow, the same results).
"""

from __future__ import annotations

try:
    import numba
except Exception:  # noqa: BLE001
    numba = None


def available() -> bool:
    """Whether numba imports here (else the compiled functions run as Python)."""
    return numba is not None


def compile(fn):  # noqa: A001
    """``fn`` compiled by numba (cached on disk), or ``fn`` itself without numba."""
    return numba.njit(cache=True, nogil=True)(fn) if numba is not None else fn


def inline(fn):
    """``fn`` compiled to be inlined into its compiled callers: a call with array arguments
    otherwise costs a reference count update per array, which was most of a walk step."""
    return numba.njit(cache=True, nogil=True, inline="always")(fn) if numba is not None else fn

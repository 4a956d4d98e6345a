"""Compiled inner loops (numba) for the hot paths of the offline pipeline.

Why: every stage of ``imuhip analyze`` used to walk whole-session arrays several times through
numpy temporaries (a 1-hour 4-sensor session is 2.88 M samples); the page faults and memory
traffic of those temporaries cost more than the arithmetic. A kernel here does one pass per
sample with no temporaries.

Rules for every kernel module in this package:

- ``@njit(cache=True, nogil=True)`` via :func:`jit` below; never ``fastmath`` (it drops NaN and
  inf semantics, and a gap is a NaN here) and never ``parallel`` (the benchmark's targets are
  single core, and the batch runner already uses every core).
- Kernels take and return plain contiguous numpy arrays; argument checking (shapes, dtypes,
  finiteness policy) stays in the Python wrapper that calls them, so errors keep their messages.
- Each kernel has a test comparing it with the numpy expression it replaced (kept in the test as a
  reference), within a stated tolerance (bit-identical where the arithmetic order is the same).

The compiled code is cached on disk next to the module (``__pycache__``), so only the first call
on a machine pays the compile time; ``imuhip bench`` reports that first-call cost separately.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """Compile ``func`` with the package's settings (cached, GIL released, strict IEEE)."""
    return numba.njit(cache=True, nogil=True)(func)  # type: ignore[return-value]


def cache_is_cold() -> bool:
    """True when no compiled kernel of this package is cached on disk yet.

    Then the first analysis in this installation compiles every kernel it meets (~20 s of CPU
    once); commands use this to say so instead of appearing to hang. Checks numba's in-tree
    cache (``__pycache__`` beside this package) and its user-wide fallback
    (``NUMBA_CACHE_DIR`` or the user cache directory) for any index file of this package.
    """
    import os
    from pathlib import Path

    here = Path(__file__).resolve().parent
    places = [here / "__pycache__"]
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        places.append(Path(env))
    places.append(Path.home() / ".cache" / "numba")
    for place in places:
        # numba's user-wide cache mirrors the source tree: only this package's entries count
        pattern = "*.nbi" if place == places[0] else "**/imuhip/kernels/*.nbi"
        try:
            if any(place.glob(pattern)):
                return False
        except OSError:
            continue
    return True

"""Shared numeric helpers of the compiled (numba) kernels: :func:`jit`, per-sample helpers, cache.

Each stage keeps its compiled inner loops beside its Python, in a ``_<name>_kernels.py`` module
(``ingest/_decode_kernels.py``, ``orientation/_heading_kernels.py``, ``gait/_joints_kernels.py``,
...); this module is the one small place for what they share.

Why kernels: every stage of ``imuhip analyze`` used to walk whole-session arrays several times
through numpy temporaries (a 1-hour 4-sensor session is 2.88 M samples); the page faults and
memory traffic of those temporaries cost more than the arithmetic. A kernel does one pass per
sample with no temporaries.

Rules for every kernel module:

- ``@njit(cache=True, nogil=True)`` via :func:`jit` below; never ``fastmath`` (it drops NaN and
  inf semantics, and a gap is a NaN here) and never ``parallel`` (the benchmark's targets are
  single core, and the batch runner already uses every core).
- Kernels take and return plain contiguous numpy arrays; argument checking (shapes, dtypes,
  finiteness policy) stays in the Python wrapper that calls them, so errors keep their messages.
- Each kernel is tested against a reference (a numpy expression, a published formula or scipy)
  within a stated tolerance.

The compiled code is cached on disk next to each kernel module (``__pycache__``), so only the
first call on a machine pays the compile time; ``imuhip bench`` reports that first-call cost.

Per-sample helpers shared by the kernel modules (compiled, called from them).

One copy of each small operation that several kernels need, written out in the operation order
of the numpy code the kernels replaced, so every caller stays bit-identical to it:

* quaternion product, rotation and norm in the order of ``conventions._quat_mul``,
  ``conventions._quat_rotate_into`` and ``np.linalg.norm`` (scalar first ``[w, x, y, z]``,
  Hamilton; see :mod:`imuhip.conventions`);
* numpy's pairwise summation of a contiguous run (``numpy/_core/src/umath/loops_utils.h.src``:
  runs of <= 128 values summed with 8 interleaved accumulators, longer runs split in two at a
  multiple of 8; Higham, "The accuracy of floating point summation", SIAM J. Sci. Comput. 14
  (1993), doi:10.1137/0914050), so ``pairwise_sum(x, 0, len(x)) == x.sum()``;
* ``np.interp`` on one bracket with numpy's NaN fall-backs (C ``arr_interp``).

None of them can divide by zero (:func:`interp2` returns before its division when ``x0 ==
x1``), so the error model of the compiling wrapper makes no difference: the modules that
use numpy's error model (the heading and joint kernels) get the same code as the others. No
recursion (numba's on-disk cache cannot load self-recursive functions): the pairwise tree is
walked with an explicit stack.

Caching: numba keys a cached kernel on the contents of its own source file only (its cache
invalidation does not follow calls into other files, numba PR #8396 unmerged), so a kernel in
``gait/_joints_kernels.py`` compiled with an older helper from here would keep being loaded after
this file
changed -- also after a package upgrade, since the ``__pycache__`` files outlive it. Importing
this module therefore adds this file's content hash to the cache stamp of every function cached
from a kernel module (:func:`_stamp_kernels_with_core`); every kernel module imports it before its
first ``@jit``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numba
import numpy as np
import numpy.typing as npt

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """Compile ``func`` with the package's settings (cached, GIL released, strict IEEE)."""
    return numba.njit(cache=True, nogil=True)(func)  # type: ignore[return-value]


def jit_numpy_errors(func: F) -> F:
    """:func:`jit`'s settings (cached, GIL released, no fastmath) with numpy's error model.

    A float division by zero gives inf/nan as in numpy instead of raising, so the divisions need
    no per-element check and the loops vectorise (1.6x faster for the heading and joint-angle
    kernels). Results are otherwise the same IEEE operations.
    """
    return numba.njit(cache=True, nogil=True, error_model="numpy")(func)  # type: ignore[return-value]


def cache_is_cold() -> bool:
    """True when no compiled kernel of this package is cached on disk yet.

    Then the first analysis in this installation compiles every kernel it meets (~20 s of CPU
    once); commands use this to say so instead of appearing to hang. Checks where numba caches
    for any index file of this package: ``NUMBA_CACHE_DIR`` alone when it is set (numba then
    writes nowhere else), else the in-tree cache (``__pycache__`` beside each kernel module) and
    the user-wide fallback (the user cache directory).
    """
    import hashlib
    import os

    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:  # numba then caches there only, a folder "<dir name>_<sha1 of its path>" per source dir
        src = Path(__file__).absolute().parent  # as numba names it: absolute, links kept
        dirs = {src, *(p.parent for p in src.rglob("_*kernels.py"))}
        subs = (f"{d.name}_{hashlib.sha1(str(d).encode()).hexdigest()}" for d in dirs)
        return not any(any((Path(env) / sub).glob("*.nbi")) for sub in subs)
    here = Path(__file__).resolve().parent
    places = [here, Path.home() / ".cache" / "numba"]
    for place in places:
        # numba's user-wide cache mirrors the source tree: only this package's entries count
        pattern = "**/__pycache__/*.nbi" if place == here else "**/imuhip/**/*.nbi"
        try:
            if any(place.glob(pattern)):
                return False
        except OSError:
            continue
    return True


def _stamp_kernels_with_core() -> None:
    """Make numba's on-disk cache of the kernel modules' functions depend on this file too.

    Each source-file cache locator numba tries (user-provided dir, in-tree ``__pycache__``,
    user-wide dir) gets a subclass, tried just before it, that serves only the package's
    ``*_kernels.py`` files (and this one) and returns ``(numba's stamp of the file, hash of
    this file)`` as the source stamp: a kernel compiled against other helpers misses the cache
    and is recompiled (once). Uses numba internals (``numba.core.caching``); if they are not as
    expected this does nothing and the old behaviour (stamp of the file alone) stays.
    """
    try:
        from numba.core import caching

        impl: Any = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl")  # noqa: B009
        mixin: Any = caching._SourceFileBackedLocatorMixin
        bases = list(impl._locator_classes)
    except (ImportError, AttributeError):  # pragma: no cover - other numba internals
        return
    if getattr(impl, "_imuhip_kernels_stamped", False):
        return
    me = Path(__file__).resolve()
    package = me.parent
    core_hash = hashlib.sha256(me.read_bytes()).hexdigest()

    def wrap(base: Any) -> Any:
        class _KernelsLocator(base):  # type: ignore[misc, valid-type]
            @classmethod
            def from_function(cls, py_func: Any, py_file: str) -> Any:
                src = Path(py_file).resolve()
                kernel_file = src.name.endswith("_kernels.py") and src.is_relative_to(package)
                if not (kernel_file or src == me):
                    return None
                return super().from_function(py_func, py_file)

            def get_source_stamp(self) -> Any:
                return (super().get_source_stamp(), core_hash)

        _KernelsLocator.__name__ = _KernelsLocator.__qualname__ = "ImuhipKernels" + base.__name__
        return _KernelsLocator

    classes: list[Any] = []
    for base in bases:
        if isinstance(base, type) and issubclass(base, mixin):
            classes.append(wrap(base))
        classes.append(base)
    impl._locator_classes = classes
    impl._imuhip_kernels_stamped = True


_stamp_kernels_with_core()

__all__ = [
    "PW_BLOCK",
    "PW_DEPTH",
    "cache_is_cold",
    "interp2",
    "jit",
    "jit_numpy_errors",
    "pairwise_block",
    "pairwise_plan",
    "pairwise_sum",
    "quat_mul",
    "quat_norm",
    "quat_normalize_np",
    "quat_rotate",
    "segment_quat",
    "sum_sq3",
]

PW_BLOCK = 128
"""numpy's ``PW_BLOCKSIZE``: runs up to this long are summed directly (8 accumulators)."""

PW_DEPTH = 64
"""Split levels of the pairwise tree kept on the explicit stack (n halves per level: ample)."""


@jit
def quat_mul(  # pragma: no cover - compiled
    pw: float, px: float, py: float, pz: float, qw: float, qx: float, qy: float, qz: float
) -> tuple[float, float, float, float]:
    """Hamilton product ``p ⊗ q`` in the expression order of ``conventions._quat_mul``."""
    return (
        pw * qw - px * qx - py * qy - pz * qz,
        pw * qx + px * qw + py * qz - pz * qy,
        pw * qy - px * qz + py * qw + pz * qx,
        pw * qz + px * qy - py * qx + pz * qw,
    )


@jit
def quat_rotate(  # pragma: no cover - compiled
    w: float, ux: float, uy: float, uz: float, vx: float, vy: float, vz: float
) -> tuple[float, float, float]:
    """``v`` rotated by the unit quaternion ``[w, ux, uy, uz]``, as
    ``conventions._quat_rotate_into``: ``v + w t + u × t`` with ``t = 2 u × v``."""
    tx = 2.0 * (uy * vz - uz * vy)
    ty = 2.0 * (uz * vx - ux * vz)
    tz = 2.0 * (ux * vy - uy * vx)
    return (
        vx + w * tx + (uy * tz - uz * ty),
        vy + w * ty + (uz * tx - ux * tz),
        vz + w * tz + (ux * ty - uy * tx),
    )


@jit
def quat_norm(w: float, x: float, y: float, z: float) -> float:  # pragma: no cover - compiled
    """``|q|`` with the squares summed in order (``np.linalg.norm`` of a row of 4)."""
    n2 = w * w
    n2 += x * x
    n2 += y * y
    n2 += z * z
    return float(np.sqrt(n2))


@jit
def sum_sq3(a: float, b: float, c: float) -> float:  # pragma: no cover - compiled
    """``a*a + b*b + c*c`` summed left to right (``np.sum(v * v)`` of a row of 3)."""
    s = a * a
    s += b * b
    s += c * c
    return s


@jit
def pairwise_block(a: npt.NDArray[np.float64], lo: int, n: int) -> float:  # pragma: no cover
    """numpy's pairwise sum of a run ``a[lo:lo + n]`` of ``n <= 128`` values (a leaf of the
    pairwise tree): a plain loop below 8 values, else 8 interleaved partial sums."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    stop8 = n - (n % 8)
    while i < stop8:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@jit
def pairwise_plan(n: int) -> npt.NDArray[np.int64]:  # pragma: no cover - compiled
    """numpy's pairwise summation tree over ``n > 128`` values, flattened in evaluation order.

    numpy recurses (a run longer than 128 splits at ``n // 2`` rounded down to a multiple of 8,
    left half first, then ``left + right``); this walks the same tree with an explicit stack.
    Returns ``(K, 2)`` int64 rows: ``(offset, length)`` for a leaf (a run of ``length <= 128``
    values from ``offset``, summed by :func:`pairwise_block`; every leaf holds at least 64) and
    ``(0, 0)`` for "replace the last two partial sums by their sum" (left + right).
    """
    cap = 2 * (n // 64) + 2
    plan = np.empty((cap, 2), np.int64)
    seg_lo = np.empty(PW_DEPTH, np.int64)
    seg_n = np.empty(PW_DEPTH, np.int64)
    state = np.empty(PW_DEPTH, np.int64)
    seg_lo[0] = 0
    seg_n[0] = n
    state[0] = 0
    sp = 1
    k = 0
    while sp > 0:
        t = sp - 1
        m = seg_n[t]
        if m <= PW_BLOCK:
            plan[k, 0] = seg_lo[t]
            plan[k, 1] = m
            k += 1
            sp -= 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if state[t] == 0:  # left half first
            state[t] = 1
            seg_lo[sp] = seg_lo[t]
            seg_n[sp] = n2
            state[sp] = 0
            sp += 1
        elif state[t] == 1:  # then the right half
            state[t] = 2
            seg_lo[sp] = seg_lo[t] + n2
            seg_n[sp] = m - n2
            state[sp] = 0
            sp += 1
        else:  # both done: left + right
            plan[k, 0] = 0
            plan[k, 1] = 0
            k += 1
            sp -= 1
    return plan[:k]


@jit
def pairwise_sum(a: npt.NDArray[np.float64], lo: int, n: int) -> float:  # pragma: no cover
    """numpy's pairwise sum of ``a[lo:lo + n]`` (same order of additions as ``x.sum()``)."""
    if n <= PW_BLOCK:
        return pairwise_block(a, lo, n)
    plan = pairwise_plan(n)
    vals = np.empty(PW_DEPTH + 1)
    vp = 0
    for k in range(plan.shape[0]):
        if plan[k, 1] > 0:
            vals[vp] = pairwise_block(a, lo + plan[k, 0], plan[k, 1])
            vp += 1
        else:
            vals[vp - 2] = vals[vp - 2] + vals[vp - 1]
            vp -= 1
    return float(vals[0])


@jit
def interp2(x: float, x0: float, x1: float, y0: float, y1: float) -> float:  # pragma: no cover
    """``np.interp(x, [x0, x1], [y0, y1])`` with numpy's arithmetic and fall-backs."""
    if x != x:
        return x
    if x > x1:
        return y1
    if x < x0:
        return y0
    if x >= x1:  # numpy: the last grid point (j == len - 1) returns fp[-1]
        return y1
    if x == x0:
        return y0
    slope = (y1 - y0) / (x1 - x0)
    res = slope * (x - x0) + y0
    if res != res:
        res = slope * (x - x1) + y1
        if res != res and y0 == y1:
            res = y0
    return res


@jit_numpy_errors
def quat_normalize_np(w: float, x: float, y: float, z: float) -> tuple[float, float, float, float]:
    # conventions._quat_normalize: the norm in np.linalg.norm's order, then q / n (numpy's
    # error model here: a zero norm gives inf/nan, no exception)
    n = quat_norm(w, x, y, z)
    return w / n, x / n, y / n, z / n


@jit_numpy_errors
def segment_quat(q: np.ndarray, i: int, cal: np.ndarray) -> tuple[float, float, float, float]:
    # joints.segment_orientation: normalize(q_world_sensor) ⊗ q_sensor_segment; an empty
    # ``cal`` means ``q`` already holds the segment orientation (used as given)
    if cal.shape[0] == 0:
        return q[i, 0], q[i, 1], q[i, 2], q[i, 3]
    w, x, y, z = quat_normalize_np(q[i, 0], q[i, 1], q[i, 2], q[i, 3])
    return quat_mul(w, x, y, z, cal[0], cal[1], cal[2], cal[3])

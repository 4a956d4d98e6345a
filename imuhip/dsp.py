"""The few signal-processing routines the analysis needs, without ``scipy.signal``.

``import scipy.signal`` costs 0.45-0.65 s on this project's 2-core machines (scipy 1.17 rewrites
the docstring of every exported function at import, and the module pulls in ``scipy.stats``):
~40 % of a warm ``imuhip analyze`` of a short session, every time, for four functions. These
are those four, written after scipy's own implementations (same algorithms, same operation
order; ``tests/unit/test_dsp.py`` checks each against ``scipy.signal`` on fixed and random
inputs):

* :func:`butter_lowpass`, :func:`butter_lowpass_sos` -- ``scipy.signal.butter(N, Wn)``
  (digital low-pass; ``sos`` of order 2, one section): analog prototype, pre-warped bilinear
  transform;
* :func:`filtfilt` and :func:`sosfiltfilt` -- zero-phase filtering with odd extension of
  ``3 x`` the filter length and the steady-state initial conditions (``lfilter_zi``,
  ``sosfilt_zi``);
* :func:`find_peaks` -- local maxima (plateau midpoints), then ``height``, ``distance``
  (highest first), ``prominence`` and ``width`` at half prominence, in scipy's order.

and :func:`moving_average` -- ``scipy.ndimage.uniform_filter1d(x, size, mode="nearest")``
(which would pull in ``scipy.ndimage`` and ``scipy.special``, ~0.1 s more).

Anything else stays with scipy (imported where it is used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip import _dsp_kernels as _k

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "butter_lowpass",
    "butter_lowpass_sos",
    "filtfilt",
    "filtfilt_padlen",
    "find_peaks",
    "moving_average",
    "moving_std",
    "sosfiltfilt",
    "sosfiltfilt_padlen",
]


# -- design ----------------------------------------------------------------------------------
def _butter_zpk(order: int, wn: float) -> tuple[npt.NDArray[np.complex128], complex]:
    """Poles and gain of the digital Butterworth low-pass (zeros: ``order`` at -1)."""
    if not (isinstance(order, int) and order >= 1):
        raise ValueError(f"order must be a positive integer, got {order!r}")
    if not (0.0 < wn < 1.0):
        raise ValueError(f"normalised cut-off must lie in (0, 1), got {wn}")
    m = np.arange(-order + 1, order, 2)
    p = -np.exp(1j * np.pi * m / (2 * order))  # analog prototype (buttap), k = 1
    fs = 2.0
    warped = 2 * fs * np.tan(np.pi * wn / fs)
    p = warped * p  # lp2lp_zpk
    k = warped**order
    fs2 = 2.0 * fs
    p_z = (fs2 + p) / (fs2 - p)  # bilinear_zpk
    k_z = k * np.real(1.0 / np.prod(fs2 - p))
    return p_z, k_z


def butter_lowpass(order: int, wn: float) -> tuple[FloatArray, FloatArray]:
    """Digital Butterworth low-pass ``(b, a)``, ``wn`` the cut-off as a fraction of the Nyquist
    frequency (``scipy.signal.butter(order, wn)``)."""
    p, k = _butter_zpk(order, float(wn))
    b = np.real(k * np.poly(-np.ones(order))).astype(np.float64)
    a = np.real(np.poly(p)).astype(np.float64)
    return b, a


def butter_lowpass_sos(wn: float) -> FloatArray:
    """The 2nd-order Butterworth low-pass as one second-order section, ``(1, 6)``
    ``[b0, b1, b2, 1, a1, a2]`` (``scipy.signal.butter(2, wn, output="sos")``)."""
    b, a = butter_lowpass(2, wn)
    return np.concatenate([b, a])[None, :]


def _lfilter_zi(b: FloatArray, a: FloatArray) -> FloatArray:
    """Steady-state initial state of the ``lfilter`` loop for a unit step (``lfilter_zi``);
    ``b`` and ``a`` of equal length, ``a[0] == 1``."""
    n = len(a)
    companion = np.zeros((n - 1, n - 1))
    companion[0, :] = -a[1:] / a[0]
    companion[np.arange(1, n - 1), np.arange(0, n - 2)] = 1.0
    i_minus_a = np.eye(n - 1) - companion.T
    rhs = b[1:] - a[1:] * b[0]
    return np.asarray(np.linalg.solve(i_minus_a, rhs), dtype=np.float64)


# -- filtering (the loops: imuhip._dsp_kernels) ----------------------------------------------


def filtfilt_padlen(b: npt.ArrayLike, a: npt.ArrayLike) -> int:
    """Samples :func:`filtfilt` pads each end with; a signal must be longer than this."""
    return 3 * max(len(np.atleast_1d(a)), len(np.atleast_1d(b)))


def sosfiltfilt_padlen(sos: npt.ArrayLike) -> int:
    """Samples :func:`sosfiltfilt` pads each end with; a signal must be longer than this."""
    s = np.atleast_2d(np.asarray(sos, dtype=np.float64))
    ntaps = 2 * s.shape[0] + 1 - min(int((s[:, 2] == 0).sum()), int((s[:, 5] == 0).sum()))
    return 3 * ntaps


def _along(x: FloatArray, axis: int, f: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """``f`` applied to each 1-D line of 2-D ``x`` along ``axis``."""
    lines = np.moveaxis(x, axis, -1)
    out = np.stack([f(np.ascontiguousarray(line)) for line in lines])
    return np.ascontiguousarray(np.moveaxis(out, -1, axis))


def _odd_ext(x: FloatArray, n: int) -> FloatArray:
    left = 2.0 * x[0] - x[n:0:-1]
    right = 2.0 * x[-1] - x[-2 : -(n + 2) : -1]
    return np.concatenate([left, x, right])


def filtfilt(b: FloatArray, a: FloatArray, x: npt.ArrayLike) -> FloatArray:
    """Zero-phase ``(b, a)`` filtering of 1-D ``x`` (``scipy.signal.filtfilt`` defaults)."""
    b = np.asarray(b, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    x = np.ascontiguousarray(x, dtype=np.float64)
    edge = filtfilt_padlen(b, a)
    if x.ndim != 1 or len(x) <= edge:
        raise ValueError(f"need a 1-D signal longer than {edge} samples, got shape {x.shape}")
    if a[0] != 1.0:
        b, a = b / a[0], a / a[0]
    n = max(len(a), len(b))
    b = np.concatenate([b, np.zeros(n - len(b))])
    a = np.concatenate([a, np.zeros(n - len(a))])
    zi = _lfilter_zi(b, a)
    ext = _odd_ext(x, edge)
    y = _k.lfilter(b, a, ext, zi * ext[0])
    y = _k.lfilter(b, a, np.ascontiguousarray(y[::-1]), zi * y[-1])
    return np.ascontiguousarray(y[::-1][edge:-edge])


def _sosfilt_zi(sos: FloatArray) -> FloatArray:
    zi = np.empty((sos.shape[0], 2))
    scale = 1.0
    for s in range(sos.shape[0]):
        b, a = sos[s, :3], sos[s, 3:]
        zi[s] = scale * _lfilter_zi(b, a)
        scale *= b.sum() / a.sum()
    return zi


def sosfiltfilt(sos: FloatArray, x: npt.ArrayLike, axis: int = -1) -> FloatArray:
    """Zero-phase filtering with second-order sections along ``axis`` of a 1-D or 2-D ``x``
    (``scipy.signal.sosfiltfilt`` defaults: odd extension, steady-state initial conditions)."""
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or np.any(sos[:, 3] != 1.0):
        raise ValueError(f"sos must be (n_sections, 6) with a0 = 1, got {sos.tolist()}")
    x = np.asarray(x, dtype=np.float64)
    edge = sosfiltfilt_padlen(sos)
    if x.ndim == 2:
        return _along(x, axis, lambda line: sosfiltfilt(sos, line))
    if x.ndim != 1 or len(x) <= edge:
        raise ValueError(f"need a signal longer than {edge} samples, got shape {x.shape}")
    zi = _sosfilt_zi(sos)
    ext = _odd_ext(np.ascontiguousarray(x), edge)
    y = _k.sosfilt(sos, ext, zi * ext[0])
    y = _k.sosfilt(sos, np.ascontiguousarray(y[::-1]), zi * y[-1])
    return np.ascontiguousarray(y[::-1][edge:-edge])


# -- peaks -----------------------------------------------------------------------------------


def find_peaks(
    x: npt.ArrayLike,
    *,
    height: float | None = None,
    distance: float | None = None,
    prominence: float | None = None,
    width: float | None = None,
) -> tuple[IntArray, dict[str, Any]]:
    """Peaks of 1-D ``x`` as ``scipy.signal.find_peaks`` with scalar minimum conditions.

    Returns the peak indices and the properties computed on the way (``peak_heights``,
    ``prominences``, ``left_bases``, ``right_bases``, ``widths``) for the peaks kept.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {x.shape}")
    if distance is not None and not distance >= 1:
        raise ValueError(f"distance must be >= 1, got {distance}")
    peaks = _k.local_maxima(x) if len(x) >= 3 else np.zeros(0, dtype=np.int64)
    props: dict[str, Any] = {}
    if height is not None:
        keep = x[peaks] >= height
        peaks = peaks[keep]
        props["peak_heights"] = x[peaks]
    if distance is not None and len(peaks) > 1:
        # ascending height, numpy's default sort as scipy's (ties: the same order)
        order = np.argsort(x[peaks]).astype(np.int64)
        keep = _k.select_by_distance(peaks, order, int(np.ceil(distance)))
        peaks = peaks[keep]
        props = {k: v[keep] for k, v in props.items()}
    if prominence is not None or width is not None:
        prom, lb, rb = _k.prominences(x, peaks)
        props.update(prominences=prom, left_bases=lb, right_bases=rb)
        if prominence is not None:
            keep = prom >= prominence
            peaks = peaks[keep]
            props = {k: v[keep] for k, v in props.items()}
        if width is not None:
            w = _k.widths(x, peaks, props["prominences"], props["left_bases"], props["right_bases"])
            keep = w >= width
            peaks = peaks[keep]
            props = {k: v[keep] for k, v in props.items()}
            props["widths"] = w[keep]
    return peaks, props


# -- moving average ----------------------------------------------------------------------------


def moving_average(x: npt.ArrayLike, size: int, axis: int = -1) -> FloatArray:
    """``scipy.ndimage.uniform_filter1d(x, size, axis=axis, mode="nearest")`` for 1-D or 2-D
    float ``x``: the centred mean of ``size`` samples, the ends repeated beyond the edges."""
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return _k.moving_average_1d(np.ascontiguousarray(x), size)
    if x.ndim != 2:
        raise ValueError(f"x must be 1-D or 2-D, got shape {x.shape}")
    return _along(x, axis, lambda line: _k.moving_average_1d(line, size))


def moving_std(x: npt.ArrayLike, size: int, axis: int = -1) -> FloatArray:
    """Centred moving standard deviation (population) of 1-D or 2-D ``x``: the square root of
    ``moving_average(x * x) - moving_average(x) ** 2``, clipped at 0 (the difference of two
    running means can round a hair below it)."""
    x = np.asarray(x, dtype=np.float64)
    mean = moving_average(x, size, axis)
    var = moving_average(x * x, size, axis) - mean * mean
    return np.sqrt(np.maximum(var, 0.0))

"""The walking direction: the pelvis heading averaged over whole strides.

Pelvic rotation swings the pelvis heading once per stride around the direction of travel, so a
centred moving average of the pelvis anterior axis over whole periods of that oscillation leaves
the walking direction (:func:`walking_direction`) that the pelvis angles are measured against
(:func:`imuhip.gait.joints.pelvis_angles`, Baker 2001, doi:10.1016/S0966-6362(01)00105-3). The
period comes from the heading's spectrum (:func:`heading_oscillation_period_s`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.dsp import moving_average
from imuhip.gait import _gait_kernels as _kg
from imuhip.gait import _joints_kernels as _kq

__all__ = [
    "WALKING_TURN_MAX_DEG",
    "beside_turn",
    "heading_oscillation_period_s",
    "walking_direction",
]

FloatArray = npt.NDArray[np.float64]

WALKING_TURN_MAX_DEG = 2.0
"""A stride's pelvis rotation range is left out (``nan``) when the walking direction it is
measured against turns by more than this within the stride: beside a turn the ~2-stride average
bends into it and the range grows by about the bend (docs/joint_angles.md, "Pelvis rotation
beside a turn")."""

_NO_CAL = np.zeros(0)
"""Empty sensor-to-segment rotation / heading offset: the kernels use the arrays as given."""
_NO_MASK = np.zeros(0, dtype=np.bool_)
"""Empty validity mask: every sample counts."""


def _checked_raw(name: str, q: npt.ArrayLike) -> FloatArray:
    """:func:`as_unit_quat`'s checks without normalising (the kernels normalise per sample)."""
    arr = np.ascontiguousarray(q, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) or (4,), got {arr.shape}")
    if _kq.first_bad_quat(arr.reshape(-1, 4)) >= 0:
        raise ValueError("quaternion must be finite and non-zero")
    return arr


def heading_oscillation_period_s(
    q_world_pelvis: npt.ArrayLike,
    rate_hz: float,
    valid: npt.ArrayLike | None = None,
    band_hz: tuple[float, float] = (0.5, 2.5),
) -> float | None:
    """Period of the dominant oscillation of the pelvis heading (stride or step period).

    Pelvic rotation swings the heading once per stride (and obliquity/tilt couple in at the step
    frequency). A moving average over a whole number of these periods removes the oscillation
    exactly, whatever the cadence; a fixed window leaves a stride-frequency ripple of
    ``sinc(f T)`` (about 10 % of the pelvic rotation range at cadences 100 and 124 with a 2.2 s
    window), which then shows in the pelvis rotation range.

    Parameters
    ----------
    q_world_pelvis : (N, 4) float
        Pelvis segment (or sensor) orientation, world frame.
    rate_hz : float
    valid : (N,) bool, optional
    band_hz : (low, high)
        Search band (stride frequency 0.5–1.25 Hz and step frequency up to 2.5 Hz).

    Returns
    -------
    float or None
        Seconds; ``None`` without a clear spectral peak (no walking).
    """
    qp = _checked_raw("q_world_pelvis", q_world_pelvis)
    if qp.ndim != 2:
        return None
    fx, fy = _kq.forward_xy(qp, _NO_CAL, _NO_CAL)  # normalises, as as_unit_quat did
    return _oscillation_period(fx, fy, rate_hz, valid, band_hz)


def _oscillation_period(
    fx: FloatArray,
    fy: FloatArray,
    rate_hz: float,
    valid: npt.ArrayLike | None,
    band_hz: tuple[float, float],
) -> float | None:
    """:func:`heading_oscillation_period_s` from the pelvis X axis' horizontal components
    (they may be weighted by ``valid``: the other samples are not used)."""
    n = len(fx)
    if n < 4 * rate_hz:
        return None
    v = _NO_MASK if valid is None else np.ascontiguousarray(valid, dtype=np.bool_)
    ok, count = _kq.usable_heading(fx, fy, v)
    if count < 4 * rate_hz:
        return None
    # heading unwrapped over the usable samples, bridged linearly across the others
    psi = np.arctan2(fy, fx)
    _kq.unwrap_bridge(psi, ok, psi)
    # remove turns and drift (slower than any gait rhythm)
    psi -= moving_average(psi, max(1, round(3.0 * rate_hz)))
    if np.std(psi) < np.deg2rad(0.25):  # standing still: no gait rhythm to lock onto
        return None
    nfft = 1 << int(np.ceil(np.log2(8 * n)))
    _kq.hann_times(psi)
    got = _band_power(psi, nfft, rate_hz, band_hz)
    if got is None:
        return None
    f, spec = got
    k = int(np.argmax(spec))
    if spec[k] < 10.0 * np.median(spec) or spec[k] <= 0:
        return None
    return float(1.0 / f[k])


def _next_fast_len(n: int) -> int:
    """The smallest ``m >= n`` whose prime factors are all <= 11: the lengths numpy's pocketfft
    transforms with its own radix passes (``scipy.fft.next_fast_len``, complex transforms)."""
    m = max(1, int(n))
    while True:
        r = m
        for p in (2, 3, 5, 7, 11):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _band_power(
    x: FloatArray, nfft: int, rate_hz: float, band_hz: tuple[float, float]
) -> tuple[FloatArray, FloatArray] | None:
    """``|rfft(x, nfft)|**2`` on the bins whose ``rfftfreq`` lies in ``band_hz`` (inclusive).

    Only the band's bins, by Bluestein's chirp-z algorithm (Rabiner, Schafer & Rader 1969,
    doi:10.1109/TAU.1969.1162034): ``X[k] = c[k] sum_n (x[n] c[n]) conj(c[k - n])`` with
    ``c[j] = exp(-i pi j^2 / nfft)``, a convolution done with FFTs of length
    ``next_fast_len(N + bins - 1)`` instead of one real FFT of ``nfft`` (8x zero-padded, to
    the next power of two): the same frequencies and values within round-off (tests), ~4x less
    work. The chirp phase ``j^2 mod 2 nfft`` is exact in integers
    (:func:`imuhip.gait._joints_kernels.chirp`).

    Returns ``(frequencies_hz, power)`` of the band bins, or ``None`` when no bin is in the band.
    """
    n = len(x)
    step_hz = 1.0 / (nfft * (1.0 / rate_hz))  # np.fft.rfftfreq's bin spacing, its expression
    lo = max(0, int(np.floor(band_hz[0] / step_hz)) - 2)
    hi = min(nfft // 2, int(np.ceil(band_hz[1] / step_hz)) + 2)
    kk = np.arange(lo, hi + 1)
    fk = kk * step_hz
    band = (fk >= band_hz[0]) & (fk <= band_hz[1])
    if not band.any():
        return None
    kk, fk = kk[band], fk[band]
    k0, nb = int(kk[0]), len(kk)
    jmax = max(n - 1, k0 + nb - 1, abs(k0 - n + 1))
    chirp = _kq.chirp(jmax + 1, nfft)
    length = _next_fast_len(n + nb - 1)
    a, b = _kq.bluestein_inputs(x, chirp, k0, nb, length)
    fa = np.fft.fft(a)
    fa *= np.fft.fft(b)
    del a, b
    y = np.fft.ifft(fa)[n - 1 : n - 1 + nb]
    y *= chirp[k0 : k0 + nb]
    power = np.asarray(y.real * y.real + y.imag * y.imag, dtype=np.float64)
    return np.asarray(fk, dtype=np.float64), power


def walking_direction(
    q_world_pelvis: npt.ArrayLike,
    rate_hz: float,
    window_s: float = 2.2,
    valid: npt.ArrayLike | None = None,
) -> FloatArray:
    """Walking direction: centred moving average of the pelvis anterior axis, horizontal.

    Pelvic rotation oscillates once per stride around the direction of travel, so averaging the
    horizontal projection of the pelvis X axis over about two strides leaves the mean heading; in a
    turn the estimate follows with a lag of about half the window.

    Parameters
    ----------
    q_world_pelvis : (N, 4) float
        Pelvis segment orientation, world frame.
    rate_hz : float
        Sample rate.
    window_s : float
        Averaging window (seconds).
    valid : (N,) bool, optional
        Samples to use; invalid samples are bridged by their valid neighbours.

    Returns
    -------
    (N, 3) float
        Unit horizontal vectors in the world frame.
    """
    qp = _checked_raw("q_world_pelvis", q_world_pelvis)
    if qp.ndim != 2:
        raise ValueError(f"q_world_pelvis must have shape (N, 4), got {qp.shape}")
    w = np.ones(len(qp)) if valid is None else np.asarray(valid, dtype=np.float64)
    fx, fy = _kq.forward_xy(qp, _NO_CAL, w)  # normalises, as as_unit_quat did
    dx, dy = _walking_xy(fx, fy, w, rate_hz, window_s)
    out = np.zeros((len(dx), 3))
    out[:, 0] = dx
    out[:, 1] = dy
    return out


def _walking_xy(
    fx_w: FloatArray,
    fy_w: FloatArray,
    w: FloatArray,
    rate_hz: float,
    window_s: float,
) -> tuple[FloatArray, FloatArray]:
    """:func:`walking_direction`'s horizontal components from the pelvis X axis' ones times the
    weights ``w`` (validity as 0/1), in one kernel pass.

    Per column, the operations of the ``(N, 3)`` version (its vertical column is zero: it adds
    exact zeros to the norms).
    """
    if rate_hz <= 0 or window_s <= 0:
        raise ValueError("rate_hz and window_s must be positive")
    size = max(1, round(window_s * rate_hz))
    dx, dy, good = _kq.walking_unit_xy(fx_w, fy_w, np.ascontiguousarray(w), size)
    if good == 0:
        raise ValueError("no valid pelvis samples with a horizontal anterior axis")
    return dx, dy


def _walking_unit(dx: FloatArray, dy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """cos and sin of :func:`walking_frame`'s heading: the walking direction, renormalised."""
    n = np.sqrt(dx * dx + dy * dy)
    if np.any(n < 1e-9) or not np.all(np.isfinite(n)):
        raise ValueError("walking_dir_world must have a non-zero finite horizontal component")
    dx /= n
    dy /= n
    return dx, dy


def beside_turn(
    walking_heading_rad: npt.ArrayLike, start: npt.ArrayLike, stop: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """Strides ``[start, stop)`` (sample indices) within which the walking direction turns by
    more than :data:`WALKING_TURN_MAX_DEG` (``walking_heading_rad`` unwrapped, radians)."""
    wh = np.ascontiguousarray(np.asarray(walking_heading_rad, dtype=np.float64).reshape(-1, 1))
    a = np.clip(np.asarray(start, dtype=np.int64), 0, len(wh))
    b = np.maximum(np.clip(np.asarray(stop, dtype=np.int64), 0, len(wh)), a)
    hi = np.empty(len(a))
    lo = np.empty(len(a))
    _kg.stride_extrema(wh, 0, a, b, hi, lo)  # NaN for an empty stride: not beside a turn
    return np.degrees(hi - lo) > WALKING_TURN_MAX_DEG

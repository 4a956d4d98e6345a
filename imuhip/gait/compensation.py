"""Hip–lumbar compensation index (HLCI), one value per side (``docs/compensation_index.md``).

No published index links a hip internal-rotation deficit to pelvic/lumbar compensation during gait,
so this module defines one from two ingredients found in the literature:

1. **Transverse ratio** ``R_S = ln(T / H_S)``: the trunk transverse range ``T`` (pelvis rotation
   range, plus the lumbar rotation range when a lumbar sensor is worn) relative to the hip
   rotation excursion ``H_S`` of side S. A stiff hip moves less (``H_S`` down) while the pelvis
   and lumbar spine turn more to complete the step (``T`` up): both raise ``R_S``.
2. **Absorption phase** ``Φ_S``: the mean absolute relative phase (Hilbert transform, continuous
   relative phase; Lamb & Stöckl 2014, doi:10.1016/j.clinbiomech.2014.03.008) between pelvis
   rotation and the side-adjusted hip rotation during stance. When the stance femur is held by the
   foot, pelvis rotation is absorbed at the hip and the two are in phase (``Φ ≈ 0°``); a hip that
   cannot rotate carries the femur with the pelvis ("en bloc") and the phase relation is lost.

Each ingredient is standardised against the typical-walker reference
(:class:`CompensationReference`) and the index is their sum scaled by 1/√2, so that it is
~N(0, 1) for typical walkers when the ingredients are independent:
``HLCI_S = (z_R + z_Φ) / √2``. The normal band is ``|HLCI| <= 1.96``; above it the side is
flagged as compensating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.gait import _gait_kernels as _kg
from imuhip.gait.events import Stride
from imuhip.ingest.parallel import map_sensors
from imuhip.types import JointAngles

__all__ = [
    "COMPENSATION_MIN_STRIDES",
    "CompensationFinding",
    "CompensationReference",
    "CompensationResult",
    "absorption_phase_deg",
    "compensation_finding",
    "compensation_index",
]

FloatArray = npt.NDArray[np.float64]

COMPENSATION_MIN_STRIDES = 5
"""Strides a side needs (each with a trunk/hip ratio and an absorption phase) for its index.

The index z-scores a median over strides against the spread of such medians in typical walkers
(fitted on sessions of ~25 strides a side); from one or two strides a single odd step (a step
beside a turn, a start) decides it, and its flag would be a finding made of one step. A short
walkway trial (2-4 valid strides a side, few of them straight enough for the pelvis rotation
range) gets no index rather than that; the report says why."""

# right hip IR ≈ −pelvis rotation when the stance femur is fixed; left mirrored: +pelvis rotation
_ABSORB_SIGN = {"right": -1.0, "left": 1.0}


@dataclass(frozen=True, slots=True)
class CompensationReference:
    """Typical-walker reference of the two ingredients (see ``docs/compensation_index.md``).

    ``ratio_mean`` / ``ratio_sd``: ln(trunk transverse range / hip rotation excursion), without
    and with a lumbar sensor. ``phase_mean_deg`` / ``phase_sd_deg``: stance absorption phase.
    """

    ratio_mean: float = 0.15
    ratio_sd: float = 0.3
    ratio_mean_lumbar: float = 0.55
    ratio_sd_lumbar: float = 0.3
    phase_mean_deg: float = 107.0
    phase_sd_deg: float = 8.0
    band: float = 1.96


@dataclass(frozen=True, slots=True)
class CompensationResult:
    """Index of one side with its ingredients (session medians over valid strides)."""

    side: str
    index: float
    ratio: float
    z_ratio: float
    phase_deg: float
    z_phase: float
    with_lumbar: bool
    n_strides: int
    flagged: bool


def absorption_phase_deg(
    pelvis_rot_rad: FloatArray, hip_ir_rad: FloatArray, side: str, stance: npt.NDArray[np.bool_]
) -> float:
    """Mean absolute continuous relative phase (degrees, 0–180) over the stance samples.

    Parameters
    ----------
    pelvis_rot_rad, hip_ir_rad : (K,) float64
        Pelvis rotation and hip IR of side ``side`` over one stride (or a walking bout).
    side : str
    stance : (K,) bool
        Samples that belong to the stance phase.
    """
    if len(pelvis_rot_rad) < 8 or not stance.any():
        return float("nan")
    p = pelvis_rot_rad - np.mean(pelvis_rot_rad)
    h = _ABSORB_SIGN[side] * (hip_ir_rad - np.mean(hip_ir_rad))
    if np.ptp(p) < 1e-6 or np.ptp(h) < 1e-6:
        return float("nan")
    d = _abs_relative_phase(p[None, :], h[None, :])[0]
    return float(np.degrees(np.mean(d[stance])))


def _abs_relative_phase(p: FloatArray, h: FloatArray) -> FloatArray:
    """``|wrap(angle(hilbert(p)) - angle(hilbert(h)))|`` row-wise, rad, shape of ``p``.

    The analytic signals are those of :func:`scipy.signal.hilbert` (one-sided spectrum doubled,
    Marple 1999, doi:10.1109/78.782222) with the forward transform of the real rows done by
    ``rfft`` (half the work of hilbert's complex FFT), and the wrapped phase difference is
    ``angle(z_p * conj(z_h))`` (one ``arctan2`` instead of two plus ``exp``); within ~1e-15 rad
    of the former ``np.angle(np.exp(1j * (phi_p - phi_h)))``.
    """
    s, n = p.shape
    x = np.concatenate([p, h])
    spec = np.fft.rfft(x, axis=-1)
    full = np.zeros(x.shape, dtype=np.complex128)
    half = (n + 1) // 2
    full[:, 0] = spec[:, 0]
    full[:, 1:half] = 2 * spec[:, 1:half]
    if n % 2 == 0:
        full[:, n // 2] = spec[:, n // 2]
    z = np.fft.ifft(full, axis=-1)
    return np.asarray(np.abs(np.angle(z[:s] * np.conj(z[s:]))))


def _absorption_phases_deg(
    pelvis_rot_rad: FloatArray,
    hip_ir_rad: FloatArray,
    side: str,
    bounds: Sequence[tuple[int, int]],
    stances: Sequence[npt.NDArray[np.bool_]],
) -> list[float]:
    """:func:`absorption_phase_deg` of many strides ``[a, b)`` of one side, the same values.

    ``stances[i]`` must be a prefix mask (stance runs from the stride's IC to its toe-off);
    see :func:`_absorption_phases_prefix_deg`.
    """
    counts = np.empty(len(stances), dtype=np.int64)
    for i, st in enumerate(stances):
        c = int(np.count_nonzero(st))
        if not st[:c].all():
            raise ValueError(f"stance {i} is not a prefix of its stride (IC to toe-off)")
        counts[i] = c
    b = np.asarray(bounds, dtype=np.int64).reshape(-1, 2)
    return _absorption_phases_prefix_deg(
        pelvis_rot_rad, hip_ir_rad, side, b[:, 0], b[:, 1], counts
    ).tolist()


def _absorption_phases_prefix_deg(
    pelvis_rot_rad: FloatArray,
    hip_ir_rad: FloatArray,
    side: str,
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    n_stance: npt.NDArray[np.int64],
) -> FloatArray:
    """:func:`absorption_phase_deg` of many strides ``[start, stop)`` whose stance is their
    first ``n_stance`` samples; the same values, ``(S,)`` float64.

    Strides of equal length go through one row-wise :func:`_abs_relative_phase` call (row-wise
    FFTs and reductions are those of the one-stride calls); the stance means are numpy's (pairwise)
    means of each row's prefix (:func:`imuhip.gait._gait_kernels.prefix_means`).
    """
    out = np.full(len(start), np.nan)
    lengths = stop - start
    usable = np.flatnonzero((lengths >= 8) & (n_stance > 0))
    if not len(usable):
        return out
    sign = _ABSORB_SIGN[side]
    order = usable[np.argsort(lengths[usable], kind="stable")]
    cuts = np.flatnonzero(np.diff(lengths[order])) + 1
    for rows in np.split(order, cuts):
        k = int(lengths[rows[0]])
        idx = start[rows][:, None] + np.arange(k, dtype=np.int64)
        p = pelvis_rot_rad[idx]
        hr = hip_ir_rad[idx]
        p = p - np.mean(p, axis=1, keepdims=True)
        h = sign * (hr - np.mean(hr, axis=1, keepdims=True))
        ok = (np.ptp(p, axis=1) >= 1e-6) & (np.ptp(h, axis=1) >= 1e-6)
        if not ok.any():
            continue
        sel = np.flatnonzero(ok)
        d = np.ascontiguousarray(_abs_relative_phase(p[sel], h[sel]))
        means = np.empty(len(sel))
        _kg.prefix_means(d, np.minimum(n_stance[rows[sel]], k), means)
        out[rows[sel]] = np.degrees(means)
    return out


def compensation_index(
    angles: JointAngles,
    strides: Sequence[Stride],
    per_stride: Sequence[dict[str, float]],
    ref: CompensationReference | None = None,
) -> dict[str, CompensationResult]:
    """Hip–lumbar compensation index per side (module docstring).

    Parameters
    ----------
    angles : JointAngles
    strides : sequence of Stride
        All strides; only valid ones with a toe-off enter.
    per_stride : sequence of dict
        :func:`imuhip.gait.metrics.stride_metrics` of each stride.
    ref : CompensationReference, optional

    Returns
    -------
    dict
        ``side -> CompensationResult`` for the sides with at least
        :data:`COMPENSATION_MIN_STRIDES` usable strides.
    """
    ref = ref or CompensationReference()
    out: dict[str, CompensationResult] = {}
    if angles.pelvis_rad is None:
        return out
    with_lumbar = angles.lumbar_rad is not None
    t_s = np.asarray(angles.t_s, dtype=np.float64)
    n_t = len(t_s)
    pelvis_rot = np.ascontiguousarray(angles.pelvis_rad[:, 0])

    def one(side: str) -> CompensationResult | None:
        hip = angles.hip_rad[side]
        use = [
            (s, m)
            for s, m in zip(strides, per_stride, strict=True)
            if s.side == side and s.valid and s.to_s is not None
        ]
        ratios = _log_ratios([m for _, m in use], with_lumbar)
        n = len(use)
        a = np.clip(np.fromiter((s.start_idx for s, _ in use), np.int64, n), 0, n_t)
        b = np.maximum(np.clip(np.fromiter((s.stop_idx for s, _ in use), np.int64, n), 0, n_t), a)
        to_s = np.fromiter((s.to_s for s, _ in use), np.float64, n)
        # stance = the samples of [a, b) before the toe-off: a prefix, the grid being sorted
        n_stance = np.clip(np.searchsorted(t_s, to_s, side="left") - a, 0, b - a)
        n_stance[np.isnan(to_s)] = 0
        phases = _absorption_phases_prefix_deg(
            pelvis_rot, np.ascontiguousarray(hip[:, 2]), side, a, b, n_stance
        )
        return side_index(side, ratios, phases, with_lumbar, ref)

    sides = [side for side in ("left", "right") if side in angles.hip_rad]
    for side, res in zip(sides, map_sensors(one, sides, n_t), strict=True):
        if res is not None:  # the sides are independent: a thread each on a long session
            out[side] = res
    return out


def _log_ratios(per_stride: Sequence[dict[str, float]], with_lumbar: bool) -> FloatArray:
    """:func:`stride_log_ratio` of every stride, the usable ones only, in order (same values)."""
    nan = float("nan")
    h = np.array([m.get("hip_rotation_excursion_deg", nan) for m in per_stride], np.float64)
    trunk = np.array([m.get("pelvis_rotation_range_deg", nan) for m in per_stride], np.float64)
    if with_lumbar:
        trunk += np.array([m.get("lumbar_rotation_range_deg", nan) for m in per_stride], np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(h) & np.isfinite(trunk) & (h > 0.1) & (trunk > 0.1)
    return np.log(trunk[ok] / h[ok])


def stride_log_ratio(per_stride: dict[str, float], with_lumbar: bool) -> float | None:
    """ln(trunk transverse range / hip rotation excursion) of one stride, ``None`` if unusable.

    Trunk is the pelvis rotation range, plus the lumbar rotation range when ``with_lumbar``.
    """
    h = per_stride.get("hip_rotation_excursion_deg", float("nan"))
    trunk = per_stride.get("pelvis_rotation_range_deg", float("nan"))
    if with_lumbar:
        trunk += per_stride.get("lumbar_rotation_range_deg", float("nan"))
    if np.isfinite(h) and np.isfinite(trunk) and h > 0.1 and trunk > 0.1:
        return float(np.log(trunk / h))
    return None


def side_index(
    side: str,
    ratios: Sequence[float] | FloatArray,
    phases_deg: Sequence[float] | FloatArray,
    with_lumbar: bool,
    ref: CompensationReference,
) -> CompensationResult | None:
    """The index of one side from its per-stride log ratios and absorption phases.

    Medians over strides, z-scored against ``ref``, combined as ``(z_ratio + z_phase) / sqrt 2``;
    ``None`` when fewer than :data:`COMPENSATION_MIN_STRIDES` strides give a ratio or a finite
    phase.
    """
    ph = np.asarray(phases_deg, dtype=np.float64)
    ph = ph[np.isfinite(ph)]
    if min(len(ratios), len(ph)) < COMPENSATION_MIN_STRIDES:
        return None
    ratio = float(np.median(ratios))
    phase = float(np.median(ph))
    mu, sd = (
        (ref.ratio_mean_lumbar, ref.ratio_sd_lumbar)
        if with_lumbar
        else (ref.ratio_mean, ref.ratio_sd)
    )
    z_r = (ratio - mu) / sd
    z_p = (phase - ref.phase_mean_deg) / ref.phase_sd_deg
    idx = (z_r + z_p) / np.sqrt(2.0)
    return CompensationResult(
        side,
        float(idx),
        ratio,
        float(z_r),
        phase,
        float(z_p),
        with_lumbar,
        len(ratios),
        bool(idx > ref.band),
    )


@dataclass(frozen=True, slots=True)
class CompensationFinding:
    """What the per-side indices mean together, for one flag and the report's first screen.

    ``pattern`` is ``"none"`` (no side above the band), ``"restricted_side"`` (a hip is restricted
    and the trunk compensates: the finding belongs to that hip, whatever side's index crossed the
    band), ``"whole_trunk"`` (both indices above the band and no side restricted: the trunk turns
    more than both hips, e.g. a bilateral restriction) or ``"one_side"`` (one index above the band
    and no side restricted). ``side`` is the side the finding belongs to (``None`` for
    ``"whole_trunk"`` and ``"none"``); ``index`` the index of that side (the larger one otherwise).
    """

    pattern: str
    side: str | None
    index: float
    indices: dict[str, float]
    band: float
    message: str


def compensation_finding(
    indices: dict[str, float], band: float, restricted_side: str | None
) -> CompensationFinding:
    """Attribute the compensation to a side (``docs/compensation_index.md``, "Reading the index").

    Compensation turns the whole trunk, so the unrestricted side's index rises too and may cross
    the band alone (README walker: left 2.04, right 2.65 with the right hip capped). The hip the
    trunk compensates for is the restricted one (``restricted_side``: the side with the smaller
    hip rotation excursion, CI excluding 0), never simply each side above the band.

    Parameters
    ----------
    indices : dict
        ``side -> index`` (non-finite values are ignored).
    band : float
        Upper end of the normal band.
    restricted_side : str, optional
        ``"left"`` / ``"right"`` when the excursion asymmetry names a restricted hip.
    """
    idx = {s: float(v) for s, v in indices.items() if np.isfinite(v)}
    above = sorted(s for s, v in idx.items() if v > band)
    both = ", ".join(f"{s} {v:.2f}" for s, v in sorted(idx.items()))
    tail = f" (index {both}; normal band ≤ {band:g})"
    if not above:
        return CompensationFinding(
            "none",
            None,
            max(idx.values(), default=float("nan")),
            idx,
            band,
            "no pelvis/lumbar compensation above the normal band" + (tail if idx else ""),
        )
    if restricted_side is not None and restricted_side in idx:
        return CompensationFinding(
            "restricted_side",
            restricted_side,
            idx[restricted_side],
            idx,
            band,
            f"pelvis and lumbar spine compensate for the restricted {restricted_side} hip: trunk "
            f"rotation is large relative to hip rotation{tail}",
        )
    if len(above) == 2:
        return CompensationFinding(
            "whole_trunk",
            None,
            max(idx.values()),
            idx,
            band,
            "the whole trunk turns more than both hips and no side is restricted more than the "
            f"other: a bilateral hip restriction or a stiff trunk{tail}",
        )
    side = above[0]
    return CompensationFinding(
        "one_side",
        side,
        idx[side],
        idx,
        band,
        f"trunk rotation is large relative to the {side} hip's rotation{tail}",
    )

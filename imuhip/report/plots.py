"""The report's figures as inline SVG (:mod:`imuhip.report.svg`), drawn once each.

What is drawn is summarised so the cost does not grow with the session: mean ± SD curves
over 101 points of the gait cycle per side, at most :data:`MAX_STRIDE_CURVES` faint stride curves
per side (evenly spread over the session), and per-stride excursions as dots up to
:data:`MAX_DOTS` strides per side, as one line beyond.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from imuhip.gait.norms import GAIT_NORMS
from imuhip.report.curves import CycleSampler, stride_bounds_s, toe_off_pct
from imuhip.report.svg import Chart

if TYPE_CHECKING:
    from imuhip.pipeline import SessionResult

__all__ = [
    "COLORS",
    "MAX_DOTS",
    "MAX_STRIDE_CURVES",
    "excursion_over_time_svg",
    "hip_cycle_svg",
    "trunk_svgs",
]

FloatArray = npt.NDArray[np.float64]

COLORS: Final = {"left": "#1f77b4", "right": "#d62728"}
MAX_STRIDE_CURVES: Final = 40
MAX_DOTS: Final = 400
_X = np.linspace(0.0, 100.0, 101)


def _spread(n: int, cap: int) -> npt.NDArray[np.intp]:
    """Up to ``cap`` indices evenly spread over ``range(n)``."""
    if n <= cap:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, cap).round().astype(np.intp))


def hip_cycle_svg(res: SessionResult) -> tuple[str | None, dict[str, int]]:
    """Left and right hip rotation over the gait cycle on one axis, and strides per side.

    Mean ± SD band per side, every stride faintly (at most :data:`MAX_STRIDE_CURVES` per side),
    the mean toe-off per side (dashed), and the normative excursion as grey bands centred on
    the subject's mean level (the absolute level depends on calibration and is not normed).
    """
    sides: list[str] = [s for s in ("left", "right") if s in res.angles.hip_rad]
    curves = {s: np.degrees(CycleSampler(res, s)(res.angles.hip_rad[s][:, 2])) for s in sides}
    counts = {s: len(c) for s, c in curves.items()}
    if not any(counts.values()):
        return None, counts
    ch = Chart(
        "Hip rotation over the gait cycle",
        "gait cycle (% from initial contact of that side)",
        "hip rotation (°): + internal / − external",
        (0.0, 100.0),
        width=760,
        height=360,
    )
    means = [c.mean(axis=0) for c in curves.values() if len(c)]
    centre = float(np.mean([0.5 * (m.max() + m.min()) for m in means]))
    norm = GAIT_NORMS["hip_rotation_excursion_deg"]
    ch.hband(
        centre - norm.high / 2,
        centre + norm.high / 2,
        "#9e9e9e",
        0.12,
        f"typical excursion ≤ {norm.high:g}°",
    )
    ch.hband(
        centre - norm.low / 2,
        centre + norm.low / 2,
        "#9e9e9e",
        0.22,
        f"typical excursion ≥ {norm.low:g}°",
    )
    for s, c in curves.items():
        if not len(c):
            continue
        col = COLORS[s]
        ch.lines(_X, c[_spread(len(c), MAX_STRIDE_CURVES)], col, width=0.6, opacity=0.18)
    for s, c in curves.items():
        if not len(c):
            continue
        col = COLORS[s]
        m, sd = c.mean(axis=0), c.std(axis=0)
        ch.fill(_X, m - sd, m + sd, col, 0.2)
        ch.lines(_X, m, col, width=2.2, label=f"{s}: mean ± SD of {len(c)} strides")
        to = toe_off_pct(res, s)
        if to is not None:
            ch.vline(to, col, label=f"{s} toe-off ({to:.0f} %)")
    return ch.svg(), counts


def excursion_over_time_svg(res: SessionResult) -> str | None:
    """Hip rotation excursion of every valid stride against its time in the session."""
    t_end = float(res.angles.t_s[-1]) if len(res.angles.t_s) else 0.0
    minutes = t_end > 300.0
    scale = 1.0 / 60.0 if minutes else 1.0
    ch = Chart(
        "Hip rotation excursion per stride",
        f"time in session ({'min' if minutes else 's'}) at initial contact",
        "excursion (°, max − min per stride)",
        (0.0, max(t_end * scale, 1e-3)),
        width=760,
        height=280,
    )
    norm = GAIT_NORMS["hip_rotation_excursion_deg"]
    ch.hband(norm.low, norm.high, "#9e9e9e", 0.15, f"typical {norm.low:g}–{norm.high:g}°")
    any_side = False
    for s in ("left", "right"):
        rows = [
            (st.ic_s, m.get("hip_rotation_excursion_deg", np.nan))
            for st, m in zip(res.strides, res.per_stride, strict=True)
            if st.side == s and st.valid
        ]
        if not rows:
            continue
        any_side = True
        t, v = (np.asarray(a, dtype=np.float64) for a in zip(*rows, strict=True))
        label = f"{s} ({len(v)} strides)"
        if len(v) <= MAX_DOTS:
            ch.points(t * scale, v, COLORS[s], label=label)
        else:
            ch.lines(t * scale, v, COLORS[s], width=0.8, opacity=0.8, label=label)
    return ch.svg() if any_side else None


_PELVIS = (
    (0, "Pelvis rotation", "° (+ counter-clockwise from above)"),
    (1, "Pelvis obliquity", "° (+ right side up)"),
    (2, "Pelvis tilt", "° (+ anterior tilt)"),
)
_LUMBAR = (
    (2, "Lumbar rotation (relative to pelvis)", "° (+ towards the right)"),
    (1, "Lumbar side-bending (rel. to pelvis)", "° (+ to the right)"),
    (0, "Lumbar flexion (relative to pelvis)", "° (+ forward)"),
)


def trunk_svgs(res: SessionResult) -> list[str]:
    """Pelvis and lumbar angles over the right (else left) gait cycle, mean ± SD each."""
    side = "right" if len(stride_bounds_s(res, "right")[0]) else "left"
    panels: list[tuple[str, str, FloatArray]] = []
    if res.angles.pelvis_rad is not None:
        panels += [(t, y, res.angles.pelvis_rad[:, i]) for i, t, y in _PELVIS]
    if res.angles.lumbar_rad is not None:
        panels += [(t, y, res.angles.lumbar_rad[:, i]) for i, t, y in _LUMBAR]
    out = []
    sample = CycleSampler(res, side)
    for title, ylabel, sig in panels:
        c = np.degrees(sample(sig))
        ch = Chart(title, f"% of {side} gait cycle", ylabel, (0.0, 100.0), width=370, height=250)
        if len(c):
            m, sd = c.mean(axis=0), c.std(axis=0)
            ch.fill(_X, m - sd, m + sd, "#555", 0.2)
            ch.lines(_X, m, "#222", width=1.8)
        out.append(ch.svg())
    return out

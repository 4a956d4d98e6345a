"""Live stride counts and per-stride hip rotation excursion, with the report's gait code.

:class:`LiveStrides` runs the offline event detection and stride metrics on a sliding window of
the live session grid: every ``hop_s`` (2 s of grid) it takes the last ``window_s`` (16 s) of the
fused orientations (:meth:`imuhip.live.hips.LiveHips.orientations`) and the live hip angles,
runs :func:`imuhip.gait.events.session_events` (the same event source per side, constraints,
validity rules and turning check as ``analyze``) and
:func:`imuhip.gait.metrics.stride_metrics_many` (the report's ``hip_rotation_excursion_deg``),
and counts each stride once: a stride enters when it lies wholly inside the window's interior
(``margin_s`` from both ends, where the window edges cannot move its events). The counts are
what the report will show up to the session-level checks the offline analysis makes over the
whole session (stride-time outliers and partial steps against the whole session's medians);
``docs/live.md`` gives the measured agreement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.errors import ImuhipError
from imuhip.gait.events import (
    MAX_HIP_ROTATION_EXCURSION_DEG,
    EventConfig,
    Stride,
    is_partial_step,
    pelvis_heading_rad,
    session_events,
)
from imuhip.gait.metrics import stride_metrics_many
from imuhip.types import JointAngles

__all__ = ["MIN_VALID_STRIDES_PER_SIDE", "LiveStrides", "SideStrides"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

MIN_VALID_STRIDES_PER_SIDE: Final = 10
"""Valid strides per side after which the live view says "enough data": a per-side mean over
10 strides has a standard error of ~0.3 of the stride-to-stride SD (1-2 deg of excursion),
below the 2 deg left-right difference the report flags (:data:`imuhip.gait.norms.
ASYMMETRY_MIN_DEG`)."""


@dataclass
class SideStrides:
    """What one side's strides so far give (degrees, the report's per-stride definition)."""

    total: int = 0
    valid: int = 0
    excursion_deg: list[float] = field(default_factory=list)  # valid strides, in order
    ic_s: list[float] = field(default_factory=list)  # their initial contacts, session s
    flexion_range_deg: list[float] = field(default_factory=list)  # their hip flexion ranges
    last_ic_s: float = -np.inf

    def count(self, stride: Stride, metrics: dict[str, float]) -> None:
        """Count one new stride; a valid one with a hip flexion range below
        :data:`~imuhip.gait.events.PARTIAL_STEP_MIN_FRAC` of the median of the valid strides so
        far (at least 3) is a partial step, excluded as the report excludes it
        (:func:`~imuhip.gait.events.mark_partial_steps`, there against the session's median);
        one whose hip rotation excursion no hip can make is excluded too
        (:func:`~imuhip.gait.events.mark_implausible`)."""
        self.total += 1
        self.last_ic_s = stride.ic_s
        if not stride.valid:
            return
        if metrics.get("hip_rotation_excursion_deg", 0.0) > MAX_HIP_ROTATION_EXCURSION_DEG:
            return
        flex = metrics.get("hip_flexion_range_deg", float("nan"))
        seen = self.flexion_range_deg
        if is_partial_step(flex, seen):
            return
        self.valid += 1
        self.excursion_deg.append(metrics["hip_rotation_excursion_deg"])
        self.ic_s.append(stride.ic_s)
        if np.isfinite(flex):
            seen.append(flex)

    @property
    def mean_excursion_deg(self) -> float | None:
        """Mean hip rotation excursion over the valid strides (the report's session value)."""
        return float(np.mean(self.excursion_deg)) if self.excursion_deg else None

    @property
    def last_excursion_deg(self) -> float | None:
        """Excursion of the latest valid stride."""
        return self.excursion_deg[-1] if self.excursion_deg else None


class LiveStrides:
    """Sliding-window stride detection over the live grid (see the module docstring).

    Parameters
    ----------
    rate_hz : float
        Grid rate.
    window_s, hop_s, margin_s : float
        Window length, how often it runs, and the edge margin a counted stride keeps.
    cfg : EventConfig, optional
        As ``AnalysisConfig().events``.
    """

    def __init__(
        self,
        rate_hz: float,
        *,
        window_s: float = 16.0,
        hop_s: float = 2.0,
        margin_s: float = 1.5,
        cfg: EventConfig | None = None,
    ) -> None:
        if not window_s > 2 * margin_s + hop_s:
            raise ValueError(
                f"window_s must exceed 2 * margin_s + hop_s, got {window_s}, {margin_s}, {hop_s}"
            )
        self.rate_hz = float(rate_hz)
        self.win = round(window_s * rate_hz)
        self.hop = round(hop_s * rate_hz)
        self.margin_s = float(margin_s)
        self.cfg = cfg or EventConfig()
        self.sides = {"left": SideStrides(), "right": SideStrides()}
        cap = self.win + self.hop + 2
        self._k = np.full(cap, -1, np.int64)  # grid index held in each ring slot
        self._hip = {s: np.full((cap, 3), np.nan) for s in self.sides}
        self._next_k: int | None = None  # window end of the next run
        #: first grid index with a live hip angle: strides before it (the calibration period)
        #: are not counted live (the report counts them)
        self.first_k: int | None = None

    # -- input ---------------------------------------------------------------------------------
    def add(self, side: str, k: npt.NDArray[np.int64], angles_rad: FloatArray) -> None:
        """Live hip angles of one side on grid indices ``k`` (rad, flexion/adduction/IR)."""
        if side not in self._hip or not len(k):
            return
        if self.first_k is None:
            self.first_k = int(k[0])
        slot = k % len(self._k)
        stale = self._k[slot] != k
        for s in self._hip.values():  # a slot reused for a newer row forgets the older one
            s[slot[stale]] = np.nan
        self._k[slot] = k
        self._hip[side][slot] = angles_rad

    def ready(self, k_done: int) -> bool:
        """The next window (ending at ``k_done``) is due."""
        if self._next_k is None:
            self._next_k = k_done + self.hop
            return False
        return k_done >= self._next_k

    # -- processing ----------------------------------------------------------------------------
    def run(self, hips: object, k_done: int, *, final: bool = False) -> None:
        """Detect the strides of the window ending at ``k_done`` and count the new ones.

        ``hips`` is the :class:`~imuhip.live.hips.LiveHips` (segment calibration, grid rows);
        ``final``: the session ended at ``k_done`` (no end margin: no later data can move the
        last strides' events).
        """
        from imuhip.live.hips import LiveHips

        assert isinstance(hips, LiveHips) and hips.segcal is not None
        self._next_k = k_done + self.hop
        kb = k_done + 1
        ka = kb - self.win
        have = [p for p, st in hips.stores.items() if st.holds(ka, kb)]
        if "pelvis" not in have:
            return
        ori = hips.orientations(have, ka, kb)
        ks = np.arange(ka, kb)
        slot = ks % len(self._k)
        held = self._k[slot] == ks
        hip = {}
        for side, arr in self._hip.items():
            if f"thigh_{side[0]}" not in have:  # its thigh's rows do not cover the window
                continue
            a = np.where(held[:, None], arr[slot], np.nan)
            if np.isfinite(a).all(axis=1).any():
                hip[side] = a
        if not hip:
            return
        valid = np.all([np.isfinite(a).all(axis=1) for a in hip.values()], axis=0)
        filled = {s: _bridged(a) for s, a in hip.items()}
        angles = JointAngles(
            t_s=ori.t_s, hip_rad=filled, pelvis_rad=None, lumbar_rad=None, valid=valid
        )
        try:
            heading = pelvis_heading_rad(ori, hips.segcal)
            _, strides, _ = session_events(ori, hips.segcal, valid, tuple(hip), heading, self.cfg)
        except (ImuhipError, ValueError) as err:
            log.debug("live strides: window at %.1f s skipped: %s", ka / self.rate_hz, err)
            return
        lo = max(ori.t_s[0] + self.margin_s, (self.first_k or 0) / self.rate_hz)
        hi = ori.t_s[-1] - (0.0 if final else self.margin_s)
        new = [
            s
            for s in strides
            if s.ic_s >= lo and s.next_ic_s <= hi and s.ic_s > self.sides[s.side].last_ic_s + 0.3
        ]
        if not new:
            return
        per = stride_metrics_many(angles, new)
        for s, m in zip(new, per, strict=True):
            self.sides[s.side].count(s, m)

    # -- output --------------------------------------------------------------------------------
    @property
    def enough(self) -> bool:
        """Both sides have :data:`MIN_VALID_STRIDES_PER_SIDE` valid strides."""
        return all(s.valid >= MIN_VALID_STRIDES_PER_SIDE for s in self.sides.values())


def _bridged(a: FloatArray) -> FloatArray:
    """``a`` (rows of angles) with rows holding a non-finite value replaced by the straight line
    between the finite rows around them (the nearest one at the ends; zeros if none is finite).

    The stride metrics low-pass hip rotation (:mod:`imuhip.gait.smoothing`), so a filler must
    not jump: zeros in a gap would leak into the strides beside it. Strides over a gap are
    excluded (``gap``) whatever fills it.
    """
    ok = np.isfinite(a).all(axis=1)
    if ok.all():
        return a
    if not ok.any():
        return np.zeros_like(a)
    idx = np.arange(len(a))
    out = a.copy()
    for c in range(a.shape[1]):
        out[~ok, c] = np.interp(idx[~ok], idx[ok], a[ok, c])
    return out

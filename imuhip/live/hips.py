"""Live hip angles on the session grid: the offline calibration, heading anchor and angles.

:class:`LiveHips` receives each sensor's fused orientations on the session grid
(:mod:`imuhip.live.grid`) and produces hip angles for every grid point all needed sensors have
reached, with the same code as the offline analysis:

* **segment calibration**: :func:`imuhip.orientation.segment_calibration.calibrate_segments` on
  the calibration period (the still standing and the first walking), retried each second until
  it succeeds;
* **relative heading**: the walking-axis anchor of :mod:`imuhip.orientation.heading` (the same
  windows, 8 s every 2 s, on the same grid, 6D and 9D as ``AnalysisConfig(relative_heading=
  "walking")``); causally, each window's offset holds from the end of that window on, where the
  offline analysis interpolates between window centres;
* **angles**: :func:`imuhip.gait.joints.hip_angles` of the heading-corrected segments.

A sensor whose filter restarted after a long gap starts a new *epoch*: its heading is unrelated
to the anchor, so the side's angle is withheld ("re-converging") until a window of
``HeadingConfig.reanchor_window_s`` after the restart has re-anchored it; windows growing from
there take over until a regular one lies after the restart. These are the offline analysis's
anchors (:mod:`imuhip.orientation.heading._epochs`), which marks the same rows invalid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from imuhip.conventions import Side, quat_mul
from imuhip.errors import CalibrationError
from imuhip.gait.joints import hip_angles
from imuhip.orientation import _heading_kernels as _hk
from imuhip.orientation import heading
from imuhip.orientation.segment_calibration import SegmentCalConfig, calibrate_segments
from imuhip.types import OrientationSession, SegmentCalibration

__all__ = ["HipUpdate", "LiveHips"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

THIGH_SIDE = {"thigh_l": Side.LEFT, "thigh_r": Side.RIGHT}
_CAL_TRY_EVERY_S = 1.0  # retry the segment calibration this often
_CAL_MIN_S = 6.0  # first try: 2 s standing + 4 s walking (SegmentCalConfig minima)
_CAL_MAX_S = 20.0  # calibration buffer: older data is dropped (bounded memory)
# after a filter restart the heading is re-anchored on a short window (HeadingConfig.
# reanchor_window_s, from the restart on), then on windows growing by one hop from the same
# start until a regular window lies after the restart: the anchors of the offline analysis
# (imuhip.orientation.heading._epochs), held causally


@dataclass
class _Store:
    """One sensor's fused rows on the grid, from grid index ``k0`` on."""

    k0: int | None = None
    q: FloatArray = field(default_factory=lambda: np.empty((0, 4)))
    acc: FloatArray = field(default_factory=lambda: np.empty((0, 3)))
    gyr: FloatArray = field(default_factory=lambda: np.empty((0, 3)))
    mag: FloatArray | None = None
    valid: npt.NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, bool))
    epoch: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def k_end(self) -> int:
        """One past the last grid index held (``k0`` when empty)."""
        return (self.k0 or 0) + len(self.valid)

    def append(
        self,
        k0: int,
        q: FloatArray,
        acc: FloatArray,
        gyr: FloatArray,
        mag: FloatArray | None,
        valid: npt.NDArray[np.bool_],
        epoch: int,
    ) -> None:
        if self.k0 is None:
            self.k0 = k0
            if mag is not None:
                self.mag = np.empty((0, 3))
        end = self.k_end
        if k0 < end:  # overlap (clock model moved back): keep what is there
            cut = end - k0
            q, acc, gyr, valid = q[cut:], acc[cut:], gyr[cut:], valid[cut:]
            mag = None if mag is None else mag[cut:]
            k0 = end
        if not len(valid):
            return
        pad = k0 - end  # rows never produced (between runs): invalid, no epoch
        ep = np.full(pad + len(valid), epoch, np.int64)
        ep[:pad] = -1
        q_pad = np.tile([1.0, 0.0, 0.0, 0.0], (pad, 1))
        z = np.zeros((pad, 3))
        self.q = np.concatenate([self.q, q_pad, q])
        self.acc = np.concatenate([self.acc, z, acc])
        self.gyr = np.concatenate([self.gyr, z, gyr])
        if self.mag is not None:
            self.mag = np.concatenate([self.mag, z, np.zeros_like(acc) if mag is None else mag])
        self.valid = np.concatenate([self.valid, np.zeros(pad, bool), valid])
        self.epoch = np.concatenate([self.epoch, ep])

    def rows(self, ka: int, kb: int) -> slice:
        """Row slice of grid indices ``[ka, kb)``."""
        base = self.k0 or 0
        return slice(ka - base, kb - base)

    def trim(self, keep_from: int) -> None:
        """Forget rows before grid index ``keep_from``."""
        if self.k0 is None or keep_from <= self.k0:
            return
        n = min(keep_from - self.k0, len(self.valid))
        self.q, self.acc, self.gyr = self.q[n:], self.acc[n:], self.gyr[n:]
        self.mag = None if self.mag is None else self.mag[n:]
        self.valid, self.epoch = self.valid[n:], self.epoch[n:]
        self.k0 += n


@dataclass
class _Anchor:
    """Heading offset of one thigh against the pelvis, valid for one pair of filter epochs."""

    off_rad: float
    epochs: tuple[int, int]  # (pelvis, thigh)
    provisional: bool
    start: int = 0  # provisional: first row and length of its window
    length: int = 0


@dataclass(frozen=True, slots=True)
class HipUpdate:
    """Hip angles of one side on grid indices ``k`` (rad, ``[flexion, adduction, IR]``)."""

    side: str
    k: npt.NDArray[np.int64]
    angles_rad: FloatArray


class LiveHips:
    """Segment calibration, heading anchor and hip angles over the live session grid.

    Parameters
    ----------
    placements : sequence of str
    rate_hz : float
        Grid rate.
    seg_cfg : SegmentCalConfig, optional
        As the offline analysis (its defaults = ``AnalysisConfig()``'s).
    """

    def __init__(
        self,
        placements: list[str],
        rate_hz: float,
        seg_cfg: SegmentCalConfig | None = None,
    ) -> None:
        self.rate_hz = float(rate_hz)
        self.stores = {p: _Store() for p in placements}
        self.seg_cfg = seg_cfg or SegmentCalConfig()
        self.hcfg = heading.HeadingConfig()
        self.win = max(2, round(self.hcfg.window_s * self.rate_hz))
        self.hop = max(1, round(self.hcfg.hop_s * self.rate_hz))
        self.thighs = [t for t in THIGH_SIDE if t in self.stores]
        self.need = ["pelvis", *self.thighs] if "pelvis" in self.stores else []
        self.segcal: SegmentCalibration | None = None
        self.first_k: dict[str, int] = {}  # first grid index of each sensor
        self.origin: int | None = None  # grid index 0 of the offline grid (first row of any)
        self.k_done: int | None = None  # hip angles computed up to here (inclusive)
        self.next_win: int | None = None  # start of the next regular heading window
        self.anchor: dict[str, _Anchor] = {}
        self.epoch = dict.fromkeys(placements, 0)
        self.restart_k: dict[str, int] = {}
        self._next_cal_try: int | None = None
        self.calibrated_at_k: int | None = None

    # -- input ---------------------------------------------------------------------------------
    def add(
        self,
        placement: str,
        k0: int,
        q: FloatArray,
        acc: FloatArray,
        gyr: FloatArray,
        mag: FloatArray | None,
        valid: npt.NDArray[np.bool_],
        *,
        restart: bool = False,
    ) -> None:
        """Fused rows of one sensor from grid index ``k0`` on."""
        if placement not in self.stores:
            return
        if restart:
            self.epoch[placement] += 1
            self.restart_k[placement] = k0
        if placement not in self.first_k:
            self.first_k[placement] = k0
        self.stores[placement].append(k0, q, acc, gyr, mag, valid, self.epoch[placement])

    # -- state ---------------------------------------------------------------------------------
    def k_ready(self) -> int | None:
        """Last grid index every needed sensor has reached."""
        if not self.need or any(self.stores[p].k0 is None for p in self.need):
            return None
        return min(self.stores[p].k_end for p in self.need) - 1

    def reconverging(self, side: str) -> bool:
        """The side's angle is withheld after a filter restart (until re-anchored)."""
        t = f"thigh_{Side(side).suffix}"
        if self.segcal is None or t not in self.stores:
            return False
        a = self.anchor.get(t)
        cur = (self.epoch["pelvis"], self.epoch[t])
        return (a is None and max(cur) > 0) or (a is not None and a.epochs != cur)

    # -- processing ----------------------------------------------------------------------------
    def update(self) -> list[HipUpdate]:
        """Advance to the last grid index all needed sensors have; the new hip angles."""
        kr = self.k_ready()
        if kr is None:  # a needed sensor has no data (yet): keep only the calibration buffer
            cap = round(_CAL_MAX_S * self.rate_hz)
            for st in self.stores.values():
                st.trim(st.k_end - cap)
            return []
        if self.segcal is None and not self._try_calibrate(kr):
            return []
        out: list[HipUpdate] = []
        assert self.k_done is not None and self.next_win is not None
        while self.k_done < kr:
            # the next moment the anchors may change: the end of a regular window, or of a short
            # one after a restart; angles up to it use the anchors known before it
            shorts = self._short_windows()
            reg_end = self.next_win + self.win - 1
            stop = min(kr, reg_end, *[s + w - 1 for s, w in shorts])
            out += self._angles(self.k_done + 1, stop + 1)
            self.k_done = stop
            if stop == reg_end:
                self._fit_regular(self.next_win)
                self.next_win += self.hop
            for s, w in shorts:
                if s + w - 1 == stop:
                    self._fit_short(s, w)
        keep = min(self.next_win, self.k_done + 1 - 2 * self.win)
        for st in self.stores.values():
            st.trim(keep)
        return out

    def _short_windows(self) -> list[tuple[int, int]]:
        """Short re-anchoring windows pending (start, length), one per side needing one."""
        out = []
        w = round(self.hcfg.reanchor_window_s * self.rate_hz)
        assert self.k_done is not None
        for t in self.thighs:
            a = self.anchor.get(t)
            if not self._needs_anchor(t):
                if a is not None and a.provisional:  # the next growing window, if any
                    n = a.length + self.hop
                    while a.start + n - 1 <= self.k_done:  # that one found no walking
                        n += self.hop
                    if n <= self.win:
                        out.append((a.start, n))
                continue
            r = max(self.restart_k.get("pelvis", 0), self.restart_k.get(t, 0))
            s = r
            # slide by 1 s while the last try found no walking
            while s + w - 1 <= self.k_done:
                s += round(self.rate_hz)
            out.append((s, w))
        return out

    def _needs_anchor(self, t: str) -> bool:
        a = self.anchor.get(t)
        cur = (self.epoch["pelvis"], self.epoch[t])
        return max(cur) > 0 and (a is None or a.epochs != cur)

    def _try_calibrate(self, kr: int) -> bool:
        self.origin = min(self.first_k.values())
        have = [p for p, st in self.stores.items() if st.k0 is not None]
        ka = max(self.stores[p].k0 or 0 for p in have)
        kr = min(kr, *(self.stores[p].k_end - 1 for p in have))
        if kr - ka + 1 > _CAL_MAX_S * self.rate_hz:
            ka = kr + 1 - round(_CAL_MAX_S * self.rate_hz)
            for st in self.stores.values():
                st.trim(ka)
        if self._next_cal_try is None:
            self._next_cal_try = ka + round(_CAL_MIN_S * self.rate_hz)
        if kr < self._next_cal_try:
            return False
        self._next_cal_try = kr + round(_CAL_TRY_EVERY_S * self.rate_hz)
        ori = self.orientations(have, ka, kr + 1)
        try:
            segcal = calibrate_segments(ori, self.seg_cfg)
        except CalibrationError as err:
            log.debug("live segment calibration not yet possible: %s", err)
            return False
        if not all(p in segcal.q_sensor_segment for p in self.need):
            return False
        self.segcal = segcal
        self.calibrated_at_k = kr
        # heading windows on the offline grid: starts at origin + i * hop; the ones already
        # complete anchor the start (offline holds the first window's offset backwards)
        self.next_win = self.origin
        self.k_done = self.origin - 1
        while self.next_win + self.win - 1 <= kr:
            self._fit_regular(self.next_win)
            self.next_win += self.hop
        self.k_done = kr
        log.info("live segment calibration at %.1f s", kr / self.rate_hz)
        return True

    def orientations(self, placements: list[str], ka: int, kb: int) -> OrientationSession:
        """The grid rows ``[ka, kb)`` of ``placements`` as an :class:`OrientationSession`."""
        sl = {p: self.stores[p].rows(ka, kb) for p in placements}
        st = self.stores
        return OrientationSession(
            t_s=np.arange(ka, kb) / self.rate_hz,
            rate_hz=self.rate_hz,
            q_world_sensor={p: st[p].q[sl[p]] for p in placements},
            acc_m_s2={p: st[p].acc[sl[p]] for p in placements},
            gyr_rad_s={p: st[p].gyr[sl[p]] for p in placements},
            valid={p: st[p].valid[sl[p]] for p in placements},
            source="vqf_online",
            mag_ut={p: _rows_or_none(st[p].mag, sl[p]) for p in placements},
        )

    def _fit(self, ka: int, kb: int, cfg: heading.HeadingConfig) -> dict[str, float]:
        """Walking-axis offsets of the thighs over grid rows ``[ka, kb)`` whose pelvis and
        thigh rows all belong to the current filter epochs (the offline fit on that window)."""
        assert self.segcal is not None
        cal = self.segcal.q_sensor_segment
        pel = self.stores["pelvis"]
        ps = pel.rows(ka, kb)
        if ps.start < 0 or not np.all(pel.epoch[ps] == self.epoch["pelvis"]):
            return {}
        c = np.ascontiguousarray
        args: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray, str]] = []
        for t in self.thighs:
            st = self.stores[t]
            ts = st.rows(ka, kb)
            if ts.start >= 0 and np.all(st.epoch[ts] == self.epoch[t]):
                ok = c(st.valid[ts] & pel.valid[ps], dtype=np.bool_)
                q = c(st.q[ts], dtype=np.float64)
                cal_t = c(cal[t], dtype=np.float64)
                args.append((q, cal_t, q, c(st.gyr[ts], dtype=np.float64), ok, t))
        if not args:
            return {}
        first = args[0]
        fits = heading._heading_fit(
            c(pel.q[ps], dtype=np.float64),
            c(cal["pelvis"], dtype=np.float64),
            first[0],
            first[1],
            first[2],
            first[3],
            first[4],
            self.rate_hz,
            cfg,
            first[5],
            "mean_axis",
            (0.0, 0.0, 1.0),
            second=args[1] if len(args) > 1 else None,
        )
        out = {}
        for a, f in zip(args, fits, strict=True):
            if f.off_rad is not None and len(f.off_rad):
                out[a[5]] = float(f.off_rad[-1])
        return out

    def _fit_regular(self, ka: int) -> None:
        for t, off in self._fit(ka, ka + self.win, self.hcfg).items():
            self.anchor[t] = _Anchor(off, (self.epoch["pelvis"], self.epoch[t]), False)

    def _fit_short(self, ka: int, w: int) -> None:
        cfg = replace(self.hcfg, window_s=w / self.rate_hz, hop_s=w / self.rate_hz)
        for t, off in self._fit(ka, ka + w, cfg).items():
            a = self.anchor.get(t)
            if self._needs_anchor(t):
                log.info("%s: heading re-anchored after a filter restart", t)
            elif a is None or not a.provisional or a.start != ka or w <= a.length:
                continue
            self.anchor[t] = _Anchor(off, (self.epoch["pelvis"], self.epoch[t]), True, ka, w)

    def _angles(self, ka: int, kb: int) -> list[HipUpdate]:
        """Hip angles of grid rows ``[ka, kb)`` with the anchors as they stand."""
        assert self.segcal is not None
        cal = self.segcal.q_sensor_segment
        pel = self.stores["pelvis"]
        ps = pel.rows(ka, kb)
        if ps.start < 0:
            return []
        q_pel = quat_mul(pel.q[ps], cal["pelvis"])
        out = []
        for t in self.thighs:
            a = self.anchor.get(t)
            st = self.stores[t]
            ts = st.rows(ka, kb)
            if a is None or ts.start < 0:
                continue
            ok = (
                pel.valid[ps]
                & st.valid[ts]
                & (pel.epoch[ps] == a.epochs[0])
                & (st.epoch[ts] == a.epochs[1])
            )
            if not ok.any():
                continue
            q_t = quat_mul(st.q[ts][ok], cal[t])
            q_t = _hk.heading_fix(np.ascontiguousarray(q_t), np.full(len(q_t), a.off_rad))
            ang = hip_angles(q_pel[ok], q_t, THIGH_SIDE[t])
            out.append(HipUpdate(THIGH_SIDE[t].value, np.arange(ka, kb)[ok], ang))
        return out


def _rows_or_none(a: FloatArray | None, sl: slice) -> FloatArray | None:
    return None if a is None else a[sl]

"""Live hip angles on the session grid: the offline calibration, heading anchor and angles.

:class:`LiveHips` receives each sensor's fused orientations on the session grid
(:mod:`imuhip.live.grid`) and produces hip angles for every grid point all needed sensors have
reached, with the same code as the offline analysis:

* **segment calibration**: :func:`imuhip.orientation.segment_calibration.calibrate_segments` on
  the calibration period (the still standing and the first walking), retried each second until
  it succeeds;
* **relative heading**: the walking-axis anchor of :mod:`imuhip.orientation.heading` (the same
  windows, 8 s every 2 s, on the same grid, 6D and 9D as ``AnalysisConfig(relative_heading=
  "walking")``), interpolated between window centres exactly as offline: a grid row's angle is
  produced once the anchor after it is known, i.e. ``window_s / 2`` to ``window_s / 2 + hop_s``
  (4-6 s) behind the newest data; rows after the last anchor of a filter epoch pair hold its
  offset once the pair has ended (a restart) or the session ends (:meth:`LiveHips.finish`), and
  after :data:`MAX_WAIT_S` without a new anchor (standing still) rather than wait longer;
* **angles**: :func:`imuhip.gait.joints.hip_angles` of the heading-corrected segments.

(Holding each window's offset from the end of that window on, with no delay, left live hip
rotation up to 1.9 deg off the offline angle when the relative heading of a 6D session moved.)

A sensor whose filter restarted after a long gap starts a new *epoch*: its heading is unrelated
to the anchor, so the side's angle is withheld ("re-converging") until a window of
``HeadingConfig.reanchor_window_s`` after the restart has re-anchored it; windows growing from
there take over until a regular one lies after the restart. These are the offline analysis's
anchors (:mod:`imuhip.orientation.heading._epochs`), which marks the same rows invalid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from imuhip.conventions import Side, quat_mul
from imuhip.errors import CalibrationError
from imuhip.gait.joints import hip_angles
from imuhip.live._hip_rows import Knots as _Knots
from imuhip.live._hip_rows import Store as _Store
from imuhip.orientation import _heading_kernels as _hk
from imuhip.orientation import heading
from imuhip.orientation.fusion.session import RESET_GAP_S
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
SILENT_S = 2.0
"""A thigh without rows this long while the pelvis and the other thigh go on is not waited for."""
MAX_WAIT_S = 60.0
"""Longest a row waits for the next heading anchor (no walking): then it holds the last one."""
# after a filter restart the heading is re-anchored on a short window (HeadingConfig.
# reanchor_window_s, from the restart on), then on windows growing by one hop from the same
# start until a regular window lies after the restart: the anchors of the offline analysis
# (imuhip.orientation.heading._epochs)


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
        # live waits for standing still (not the walking posture: offline finds the standing
        # later, flexion ~10 deg apart) and 4 s of walking (not a short trial's 2-s fallback)
        self.seg_cfg = seg_cfg or SegmentCalConfig(
            walking_posture_fallback=False, short_movement_s=SegmentCalConfig().min_movement_s
        )
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
        #: per thigh and filter epoch pair (pelvis, thigh): the heading anchor knots
        self.knots: dict[str, dict[tuple[int, int], _Knots]] = {t: {} for t in self.thighs}
        #: per thigh: last grid row settled (its angle produced, or known to have none)
        self.kf: dict[str, int] = {}
        #: rows kept before :attr:`k_final` for readers of :meth:`orientations` (live strides)
        self.keep_before_final = 0
        self._finished = False
        self._restart_rows = round((RESET_GAP_S + 0.1) * self.rate_hz)
        self.last_emitted: dict[str, int] = {}  # per thigh: last grid row with an angle

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
        """Last grid index every needed sensor has reached; a thigh that has been silent for
        :data:`SILENT_S` while the others went on is not waited for (its side has no angles
        for those rows, the other side goes on; it comes back through a filter restart)."""
        if not self.need or any(self.stores[p].k0 is None for p in self.need):
            return None
        lead = max(self.stores[p].k_end for p in self.need) - 1
        alive = [p for p in self.need if p == "pelvis" or not self._silent(p, lead)]
        return min(self.stores[p].k_end for p in alive) - 1

    def _silent(self, p: str, k: int) -> bool:
        """Sensor ``p``'s last row lies more than :data:`SILENT_S` behind grid row ``k``."""
        return k - (self.stores[p].k_end - 1) > round(SILENT_S * self.rate_hz)

    @property
    def k_final(self) -> int | None:
        """Last grid row settled on every thigh (angles up to it are final)."""
        return min(self.kf.values()) if self.kf and len(self.kf) == len(self.thighs) else None

    def reconverging(self, side: str) -> bool:
        """The side's angle is withheld after a filter restart: until it is re-anchored and its
        first angle after the restart is final."""
        t = f"thigh_{Side(side).suffix}"
        if self.segcal is None or t not in self.stores:
            return False
        a = self.anchor.get(t)
        cur = (self.epoch["pelvis"], self.epoch[t])
        if (a is None and max(cur) > 0) or (a is not None and a.epochs != cur):
            return True
        restart = max(self.restart_k.get("pelvis", -1), self.restart_k.get(t, -1))
        return restart >= 0 and self.last_emitted.get(t, -1) < restart

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
            self.k_done = stop
            if stop == reg_end:
                self._fit_regular(self.next_win)
                self.next_win += self.hop
            for s, w in shorts:
                if s + w - 1 == stop:
                    self._fit_short(s, w)
        out += self._emit()
        keep = min(self.next_win, self.k_done + 1 - 2 * self.win)
        if self.kf:
            keep = min(keep, min(self.kf.values()) + 1 - self.keep_before_final)
        for st in self.stores.values():
            st.trim(keep)
        return out

    def finish(self) -> list[HipUpdate]:
        """End of the session: the rows still waiting for an anchor hold the last one."""
        out = self.update()
        self._finished = True
        return out + self._emit()

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

    def _calibration_rows(self, kr: int) -> tuple[list[str], int, int] | None:
        """The sensors and grid rows ``[ka, kr]`` a calibration try can use: rows all of them
        hold, up to ``kr`` (the needed sensors' :meth:`k_ready`). An optional sensor silent for
        :data:`SILENT_S` behind ``kr`` is left out (as :meth:`k_ready` leaves a silent thigh),
        and so is one whose rows end before another's begin (no row in common). ``None``
        while the needed sensors themselves share no row."""
        have = [
            p
            for p, st in self.stores.items()
            if st.k0 is not None and (p in self.need or not self._silent(p, kr))
        ]
        while True:
            ka = max(self.stores[p].k0 or 0 for p in have)
            kb = min(kr, *(self.stores[p].k_end - 1 for p in have))
            if kb >= ka:
                return have, ka, kb
            optional = [p for p in have if p not in self.need]
            if not optional:
                return None
            # the optional sensor whose rows end first (a lagging one), or else begin last
            late = min(optional, key=lambda p: (self.stores[p].k_end, -(self.stores[p].k0 or 0)))
            have.remove(late)

    def _try_calibrate(self, kr: int) -> bool:
        self.origin = min(self.first_k.values())
        rows = self._calibration_rows(kr)
        if rows is None:
            return False
        have, ka, kr = rows
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
        self.kf = dict.fromkeys(self.thighs, kr)
        log.info("live segment calibration at %.1f s", kr / self.rate_hz)
        return True

    def orientations(self, placements: list[str], ka: int, kb: int) -> OrientationSession:
        """The grid rows ``[ka, kb)`` of ``placements`` as an :class:`OrientationSession`
        (each placement must hold them all: a slice past a store's ends would wrap around)."""
        st = self.stores
        for p in placements:
            if not st[p].holds(ka, kb):
                raise ValueError(
                    f"{p}: rows [{st[p].k0}, {st[p].k_end}) do not hold grid rows [{ka}, {kb})"
                )
        sl = {p: st[p].rows(ka, kb) for p in placements}
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

    def _fit(
        self, ka: int, kb: int, cfg: heading.HeadingConfig
    ) -> dict[str, tuple[float, tuple[int, int]]]:
        """Walking-axis offsets of the thighs over grid rows ``[ka, kb)`` whose pelvis and
        thigh rows each belong to one filter epoch (the offline fit on that window), with that
        epoch pair."""
        assert self.segcal is not None
        cal = self.segcal.q_sensor_segment
        pel = self.stores["pelvis"]
        ps = pel.rows(ka, kb)
        if ps.start < 0 or ps.stop > len(pel.epoch):
            return {}
        pe = int(pel.epoch[ps.start])
        if pe < 0 or not np.all(pel.epoch[ps] == pe):
            return {}
        c = np.ascontiguousarray
        args: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray, str]] = []
        pairs: dict[str, tuple[int, int]] = {}
        for t in self.thighs:
            st = self.stores[t]
            ts = st.rows(ka, kb)
            if ts.start < 0 or ts.stop > len(st.epoch):
                continue
            te = int(st.epoch[ts.start])
            if te >= 0 and np.all(st.epoch[ts] == te):
                pairs[t] = (pe, te)
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
                out[a[5]] = (float(f.off_rad[-1]), pairs[a[5]])
        return out

    def _fit_regular(self, ka: int) -> None:
        for t, (off, pair) in self._fit(ka, ka + self.win, self.hcfg).items():
            self.anchor[t] = _Anchor(off, pair, False)
            self.knots[t].setdefault(pair, _Knots()).add(ka + 0.5 * self.win, off, ka + self.win)

    def _fit_short(self, ka: int, w: int) -> None:
        cfg = replace(self.hcfg, window_s=w / self.rate_hz, hop_s=w / self.rate_hz)
        for t, (off, pair) in self._fit(ka, ka + w, cfg).items():
            a = self.anchor.get(t)
            if self._needs_anchor(t):
                log.info("%s: heading re-anchored after a filter restart", t)
            elif a is None or not a.provisional or a.start != ka or w <= a.length:
                continue
            self.anchor[t] = _Anchor(off, pair, True, ka, w)
            self.knots[t].setdefault(pair, _Knots()).add(ka + 0.5 * w, off, ka + w)

    def _emit(self) -> list[HipUpdate]:
        """Hip angles of the rows whose heading offset is now final, per thigh (see the module
        docstring); advances :attr:`kf`."""
        if self.segcal is None or self.k_done is None:
            return []
        out = []
        for t in self.thighs:
            ka, kb = self.kf[t] + 1, self.k_done + 1
            if ka >= kb:
                continue
            pel, st = self.stores["pelvis"], self.stores[t]
            pe, p_ok = _held(pel, ka, kb)  # rows not held (not yet, or no more): epoch -1
            te, t_ok = _held(st, ka, kb)
            pair = np.where((pe < 0) | (te < 0), -1, pe * 1_000_003 + te)
            cut = np.flatnonzero(np.diff(pair)) + 1
            bounds = [0, *cut.tolist(), len(pair)]
            offs = np.full(len(pair), np.nan)
            settled = len(pair)
            for i in range(len(bounds) - 1):
                a, b = bounds[i], bounds[i + 1]
                if pair[a] < 0:
                    continue
                key = (int(pe[a]), int(te[a]))
                knots = self.knots[t].get(key)
                later = pair[b:]
                # the pair has ended: another one follows, or a gap longer than the filter's
                # restart gap (data after it start a new epoch), or the session ended
                closed = (
                    self._finished
                    or bool(np.any((later >= 0) & (later != pair[a])))
                    or (len(later) > self._restart_rows and bool(np.all(later < 0)))
                )
                stop = b
                if not closed:
                    lim = self.k_done + 1 - 0.5 * self.win  # every knot up to here is known
                    known = [c for c in (knots.centres if knots else []) if c <= lim]
                    stop = min(b, int(np.floor(known[-1])) + 1 - ka) if known else a
                    if ka + b - 1 - (ka + stop) > MAX_WAIT_S * self.rate_hz and knots:
                        stop = b - round(MAX_WAIT_S * self.rate_hz)  # standing: hold the last
                    stop = max(stop, a)
                if knots and stop > a:
                    rows = np.arange(ka + a, ka + stop, dtype=np.float64)
                    offs[a:stop] = np.interp(rows, knots.centres, knots.offs)
                    if key != (0, 0):  # re-converging after a restart: before its first anchor
                        offs[a:stop][rows < knots.first_end] = np.nan
                if stop < b:
                    settled = stop
                    break
            ok = p_ok[:settled] & t_ok[:settled] & np.isfinite(offs[:settled])
            self.kf[t] = ka + settled - 1
            # bounded memory: knots no unsettled row needs, epoch pairs no row will need
            rest = (pe[settled:] >= 0) & (te[settled:] >= 0)
            keep = set(zip(pe[settled:][rest].tolist(), te[settled:][rest].tolist(), strict=True))
            keep.add((self.epoch["pelvis"], self.epoch[t]))
            for key in list(self.knots[t]):
                if key in keep:
                    self.knots[t][key].forget_before(self.kf[t] + 1)
                else:
                    del self.knots[t][key]
            if not ok.any():
                continue
            cal = self.segcal.q_sensor_segment
            k = np.arange(ka, ka + settled)[ok]
            q_pel = quat_mul(pel.q[k - (pel.k0 or 0)], cal["pelvis"])
            q_t = quat_mul(st.q[k - (st.k0 or 0)], cal[t])
            q_t = _hk.heading_fix(np.ascontiguousarray(q_t), offs[:settled][ok])
            ang = hip_angles(q_pel, q_t, THIGH_SIDE[t])
            self.last_emitted[t] = int(k[-1])
            out.append(HipUpdate(THIGH_SIDE[t].value, k, ang))
        return out


def _held(st: _Store, ka: int, kb: int) -> tuple[npt.NDArray[np.int64], BoolArray]:
    """Filter epoch and validity of grid rows ``[ka, kb)`` of one store (-1 / False where the
    store holds no row)."""
    ep = np.full(kb - ka, -1, np.int64)
    ok = np.zeros(kb - ka, bool)
    if st.k0 is not None:
        lo, hi = max(ka, st.k0), min(kb, st.k_end)
        if hi > lo:
            ep[lo - ka : hi - ka] = st.epoch[lo - st.k0 : hi - st.k0]
            ok[lo - ka : hi - ka] = st.valid[lo - st.k0 : hi - st.k0]
    return ep, ok


def _rows_or_none(a: FloatArray | None, sl: slice) -> FloatArray | None:
    return None if a is None else a[sl]

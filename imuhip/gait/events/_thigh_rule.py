"""The thigh rule (fallback without a shank sensor): IC and TO from the zero crossings.

IC follows maximal thigh inclination and TO maximal extension by fixed fractions of the stride
(normative gait phases, docstring of :mod:`imuhip.gait.events`); the per-peak loop is compiled
(:func:`imuhip.gait._gait_kernels.thigh_events`). Where the heel strike shows in the thigh's
angular velocity, the contact is then taken from it (:func:`_thigh_impact_ics`). The first step
out of standing has no maximal inclination before its contact and is found by
:func:`_thigh_bout_start_ics`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.gait import _gait_kernels as _kg
from imuhip.gait.events._config import EventConfig, FloatArray


def _thigh_events(
    t_s: FloatArray,
    wf: FloatArray,
    wm: FloatArray,
    peaks: npt.NDArray[np.intp],
    rate_hz: float,
    cfg: EventConfig,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Initial contacts, toe-offs and first-step contacts (session seconds) of the thigh rule.

    ``wf`` is the low-passed signal with flexion positive, ``wm`` the lightly filtered one
    (``minima_lowpass_hz``, same sign), ``peaks`` the swing peaks. The first-step contacts
    (:func:`_thigh_bout_start_ics`) are also among the initial contacts.
    """
    # the thigh rule's per-peak loop, compiled (same decisions and arithmetic)
    ic_a, to_a, ic_zc, ic_period = _kg.thigh_events(
        t_s,
        np.ascontiguousarray(wf),
        np.asarray(peaks, dtype=np.int64),
        rate_hz,
        cfg.min_stride_s,
        cfg.max_stride_s,
        cfg.thigh_ic_offset_frac,
        cfg.thigh_to_offset_frac,
    )
    if cfg.thigh_impact_min_sharpness is not None:
        ic_a = _thigh_impact_ics(t_s, wf, wm, ic_a, ic_zc, ic_period, rate_hz, cfg)
    first = _thigh_bout_start_ics(t_s, wf, peaks, rate_hz, cfg)
    if len(first):
        ic_a = np.sort(np.concatenate([ic_a, first]))
    return ic_a, to_a, first


def _thigh_impact_ics(
    t_s: FloatArray,
    wf: FloatArray,
    wm: FloatArray,
    ic_norm: FloatArray,
    zc_idx: npt.NDArray[np.int64],
    period_s: FloatArray,
    rate_hz: float,
    cfg: EventConfig,
) -> FloatArray:
    """Normative thigh ICs moved to the heel strike where the thigh shows it (seconds, sorted).

    On real legs the heel strike jolts the thigh: its sagittal angular velocity falls sharply
    for ~30-50 ms and rebounds (the impact arrests the shank under the moving thigh), a V that
    is sharper than anything else between maximal thigh inclination and mid-stance (the
    terminal-swing deceleration before it and the loading response after it take ~100 ms on
    either side). For each normative IC, the V is searched on ``wm`` (the lightly filtered
    signal, so the jolt is not smeared) from the maximal inclination before it (``zc_idx``: the
    first + to - zero crossing of ``wf`` after the swing peak, from which the normative IC was
    timed; not the last crossing before the normative IC, which on a slow step can be the
    jolt's own rebound crossing back through zero) for ``thigh_impact_search_s``, and when no V
    there passes the gate below, on to ``thigh_impact_search_frac`` of the local stride time
    (``period_s``, the one the normative IC was timed with; a slow step): every local
    minimum, its highest point within ``thigh_impact_half_s`` before (not before the crossing)
    and after; the V's sharpness is the smaller of its two mean slopes. The sharpest V is the
    impact when its sharpness reaches ``thigh_impact_min_sharpness`` times the swing's peak
    rate (per second; the jolt scales with walking speed), and the IC is the steepest fall
    into it, the contact's onset. The heel strike's V can rebound into a positive spike whose
    fall makes a second, sharper V 50-80 ms later (real trials: gaittoolbox right leg at 17.02
    and 18.38 s, +100 and +50 ms from the foot's contact); so a V that passes the gate, is at
    least ``thigh_impact_rebound_frac`` as sharp and lies within ``thigh_impact_rebound_s``
    before the sharpest is taken instead (there: +40 and 0 ms). Otherwise (a slow or
    shuffling step, a turn, a smooth simulated leg) the normative IC stays.

    Measured against the foot sensors' contacts (``docs/validation.md``, gaittoolbox and
    OpenSense trials): the normative ICs lie 18-60 ms from them (median per side), these 10-35 ms.
    """
    n = len(wm)
    if n < 5 or not len(ic_norm):
        return ic_norm
    ic_norm = np.ascontiguousarray(ic_norm, dtype=np.float64)
    out = _kg.thigh_impact_ics(  # the per-IC loop, compiled
        t_s,
        np.ascontiguousarray(wf),
        np.ascontiguousarray(wm),
        np.gradient(wm),
        np.ascontiguousarray(zc_idx, dtype=np.int64),
        ic_norm,
        max(1, round(cfg.thigh_impact_half_s * rate_hz)),
        max(2, round(cfg.thigh_impact_search_s * rate_hz)),
        np.round(cfg.thigh_impact_search_frac * period_s * rate_hz).astype(np.int64),
        rate_hz,
        float(cfg.thigh_impact_min_sharpness or 0.0),
        round((cfg.thigh_impact_rebound_s or 0.0) * rate_hz),
        cfg.thigh_impact_rebound_frac,
    )
    return np.sort(out)


def _positive_lobe(
    wf: FloatArray, i: int, lo: int, hi: int, open_start: bool = False
) -> tuple[int, int] | None:
    """``[a, b)``: the run of ``wf > 0`` containing index ``i``, limited to ``[lo, hi)``.

    ``None`` when the run is not closed by a sample ``<= 0`` before ``hi``, or before ``lo``
    (with ``open_start``: a run reaching ``lo > 0`` starts there; standing before a bout may
    sway slightly positive for seconds, which adds ~nothing to the lobe's integral; a run
    reaching the first sample of the recording is still rejected as truncated).
    """
    a = i
    while a > lo and wf[a - 1] > 0:
        a -= 1
    b = i
    while b < hi and wf[b] > 0:
        b += 1
    if b >= hi or a == 0 or (a <= lo and not open_start):
        return None
    return a, b


def _thigh_bout_start_ics(
    t_s: FloatArray, wf: FloatArray, peaks: npt.NDArray[np.intp], rate_hz: float, cfg: EventConfig
) -> FloatArray:
    """Initial contact of the first step of each walking bout, thigh rule (seconds, sorted).

    The thigh rule times IC from the maximal inclination of the swing before it. The first step
    out of standing has no such swing: the thigh starts from the standing posture, swings
    forward slowly and with a fraction of the steady excursion while the mean posture moves
    from standing to walking, so its zero crossing lies after the contact (by ~0.1 s in the
    simulator) and its peak is far below the swing-peak threshold.

    For each full swing peak ``p0`` that starts a bout (no full swing within ``max_stride_s``
    before it) the stance before ``p0`` (the negative lobe holding the minimum before ``p0``)
    is taken. When a positive lobe (forward rotation) precedes it within ``max_stride_s``,
    does not reach the start of the recording (a truncated swing), and its forward excursion
    (the lobe's integral) is at least ``thigh_first_step_min_frac`` of the median excursion of
    the bout's next (up to three) full swings, it is the first step. Its contact is where the
    thigh stops swinging forward and starts to rotate back over the planted foot: the last
    local maximum of the angular velocity between the lobe's peak and its end or, when the
    arrest shows only as a shoulder, the point of greatest concavity (most negative second
    difference over ``thigh_first_step_shoulder_s``). The standing leg (the one that does not
    step first) has no forward lobe before its first stance, so no contact is invented for
    it. Strides starting at these contacts are gait initiation, not steady walking
    (:func:`segment_strides` marks them ``standing``).

    Cost: a few short numpy operations per bout (not per stride).
    """
    frac = cfg.thigh_first_step_min_frac
    if frac is None or not len(peaks):
        return np.zeros(0)
    max_n = int(cfg.max_stride_s * rate_hz)
    min_w = (cfg.thigh_swing_min_width_s or 0.0) * rate_hz  # narrower: no swing
    jolt = max(1, round(cfg.thigh_impact_half_s * rate_hz))
    n = len(wf)
    out: list[float] = []
    for k in range(len(peaks)):
        p0 = int(peaks[k])
        if k > 0 and p0 - int(peaks[k - 1]) <= max_n:
            continue  # not the first swing of a bout
        lo = max(0, p0 - max_n, int(peaks[k - 1]) + 1 if k > 0 else 0)
        if p0 - lo < 3:
            continue
        m = lo + int(np.argmin(wf[lo:p0]))  # deepest point of the stance before the swing
        i = m
        while i > lo and wf[i] <= 0:
            i -= 1
        if wf[i] <= 0:
            continue
        lobe = _positive_lobe(wf, i, lo, m, open_start=True)  # forward rotation before it
        if lobe is None:
            continue
        a, b = lobe
        if b - a < min_w:
            # the heel strike's jolt can cut the step's lobe: its fall dips below zero and its
            # rebound is a short positive run before the stance. A run narrower than a swing
            # with another one ending within a jolt's half-width before it is that rebound:
            # the step's forward lobe is the run before, and it ends at the jolt
            j = a - 1
            while j > max(lo, a - jolt) and wf[j] <= 0:
                j -= 1
            earlier = _positive_lobe(wf, j, lo, a, open_start=True) if wf[j] > 0 else None
            if earlier is not None:
                a, b = earlier
        exc = float(np.sum(wf[a:b])) / rate_hz
        ref = []
        for j in range(k, min(k + 3, len(peaks))):
            if j > k and int(peaks[j]) - int(peaks[j - 1]) > max_n:
                break
            full = _positive_lobe(wf, int(peaks[j]), 0, n)
            if full is not None:
                ref.append(float(np.sum(wf[full[0] : full[1]])) / rate_hz)
        if not ref or exc < frac * float(np.median(ref)):
            continue
        pk = a + int(np.argmax(wf[a:b]))
        seg = wf[pk:b]  # from the lobe's peak to its last positive sample
        if len(seg) < 3:
            continue
        maxima = np.flatnonzero((seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1
        if len(maxima):
            i_ic = pk + int(maxima[-1])
        else:
            h = max(1, round(cfg.thigh_first_step_shoulder_s * rate_hz))
            lo2, hi2 = max(pk, h), min(b - 1, n - 1 - h)
            if hi2 < lo2:
                continue
            idx = np.arange(lo2, hi2 + 1)
            i_ic = int(idx[np.argmin(wf[idx + h] - 2.0 * wf[idx] + wf[idx - h])])
        out.append(float(t_s[i_ic]))
    return np.asarray(out, dtype=np.float64)

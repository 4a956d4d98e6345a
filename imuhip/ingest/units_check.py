"""Physical plausibility of the gyroscope's unit: catch rad/s vs deg/s mix-ups (a factor 57.3).

A gyroscope whose data were recorded in rad/s but labelled deg/s (or the reverse) gives
orientations that are wrong with no error anywhere downstream. The magnitude heuristics of the
fusion (:mod:`imuhip.orientation.fusion._inputs`) catch only values beyond any MEMS range. This
module asks
two physical questions that do not depend on the label:

1. **Tilt consistency** (any slow enough motion: a seated ROM test, a calibration movement, a
   hand-held rotation). The accelerometer sees the gravity direction ``u`` turn in the sensor
   frame; a rigid rotation at angular velocity ``w`` (sensor frame) turns it at
   ``du/dt = u x w``. Both sides are low-pass filtered (``lowpass_hz``) and compared on the
   quasi-static samples (``| |acc| - g | < static_tol_m_s2``) by least squares,
   ``gain = <du/dt, u x w> / <u x w, u x w>``. A right unit gives ``gain ~ 1``; a gyro read
   57.3x too large gives ``1/57.3``, too small ``57.3``. Used only when the accelerometer alone
   shows enough tilt travel and the two sides correlate (else linear accelerations dominate, as
   in walking). The relation is the strapdown kinematic equation used by every
   accelerometer-aided attitude filter, e.g. Mahony et al. 2008, IEEE TAC 53(5):1203-1218,
   doi:10.1109/TAC.2008.923738.
2. **Walking range** (clearly dynamic windows: the low-passed specific-force norm varies as in
   walking). The 95th percentile of the gyro norm in those windows is compared with the angular
   velocities of body segments in walking: thigh sagittal angular velocity peaks at about
   3-6 rad/s (Tong & Granat 1999, Med Eng Phys 21(2):87-94, doi:10.1016/S1350-4533(99)00030-2),
   shank about 5-7 rad/s in mid-swing (Aminian et al. 2002, J Biomech 35(5):689-699,
   doi:10.1016/S0021-9290(02)00008-8), pelvis and trunk about 0.5-1.5 rad/s (pelvic rotation,
   obliquity and tilt ranges of 5-13 deg at ~1 Hz). So while walking any segment sensor reads
   well inside 0.25-15 rad/s; the same data off by 57.3 lie below 0.1 rad/s (the gyro noise
   floor) or above 30 rad/s.

Thresholds, measured margins and the data checked are in ``docs/units_check.md``.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from imuhip.conventions import GRAVITY_M_S2
from imuhip.errors import ImuhipError
from imuhip.ingest.parallel import map_sensors

if TYPE_CHECKING:
    from imuhip.types import AlignedSensor, AlignedSession, SessionMeta

__all__ = [
    "DEG_PER_RAD",
    "STUCK_REFUSED",
    "GyroUnitsConfig",
    "GyroUnitsError",
    "GyroUnitsResult",
    "check_gyro_units",
    "check_session_gyro_units",
    "import_record_for_report",
    "input_quality",
]

log = logging.getLogger(__name__)

DEG_PER_RAD: Final = 180.0 / math.pi
"""The factor of a rad/s vs deg/s mix-up (57.2958)."""

Status = Literal["ok", "suspected", "ambiguous", "not_enough_motion", "dead"]


class GyroUnitsError(ImuhipError):
    """A sensor's gyroscope is clearly in the wrong unit (off by a factor of about 57.3)."""


@dataclass(frozen=True, slots=True)
class GyroUnitsConfig:
    """Thresholds of :func:`check_gyro_units` (units in the names; see ``docs/units_check.md``).

    Attributes
    ----------
    analysis_rate_hz : float
        Samples are block-averaged down to about this rate first (both tests use < 4 Hz).
    lowpass_hz : float
        Cut-off of the zero-phase 2nd-order Butterworth low-pass on acc and gyro (tilt test).
    static_tol_m_s2 : float
        Quasi-static samples: ``| |acc| - g |`` below this (raw and low-passed / 2).
    min_tilt_travel_rad : float
        Tilt test only if the accelerometer alone shows this much tilt path on those samples.
    min_tilt_correlation : float
        ... and the two sides of ``du/dt = u x w`` correlate at least this much.
    log10_band : float
        ``|log10(gain)|`` within this is "ok"; within this of ``±log10(57.3)`` is "suspected".
    window_s : float
        Window of the walking-range test.
    dynamic_acc_sd_m_s2 : float
        A window is dynamic if the SD of the low-passed (``dynamic_lowpass_hz``) specific-force
        norm exceeds this (walking: 1.5-4 m/s²; taps and vibration are filtered out).
    dynamic_lowpass_hz : float
    min_dynamic_windows : int
    walk_clear_low_rad_s, walk_ok_low_rad_s, walk_ok_high_rad_s, walk_clear_high_rad_s : float
        Bands for the 95th percentile gyro norm in dynamic windows: below ``clear_low`` (or
        above ``clear_high``) is a clear unit mistake, ``ok_low``-``ok_high`` plausible,
        between them ambiguous.
    """

    analysis_rate_hz: float = 25.0
    lowpass_hz: float = 2.0
    static_tol_m_s2: float = 1.0
    min_tilt_travel_rad: float = 1.0
    min_tilt_correlation: float = 0.7
    log10_band: float = 0.6
    window_s: float = 2.0
    dynamic_acc_sd_m_s2: float = 0.8
    dynamic_lowpass_hz: float = 4.0
    min_dynamic_windows: int = 3
    walk_clear_low_rad_s: float = 0.10
    walk_ok_low_rad_s: float = 0.25
    walk_ok_high_rad_s: float = 15.0
    walk_clear_high_rad_s: float = 30.0


@dataclass(frozen=True, slots=True)
class GyroUnitsResult:
    """Outcome of :func:`check_gyro_units`.

    Attributes
    ----------
    status : {"ok", "suspected", "ambiguous", "not_enough_motion", "dead"}
    suspected_factor : float or None
        With ``"suspected"`` (and ``"ambiguous"`` when one test points to it): the factor the
        gyroscope data should be multiplied by: ``57.2958`` (rad/s data labelled deg/s, so
        read 57.3x too small) or ``1/57.2958`` (deg/s data labelled rad/s).
    message : str
        One sentence for users.
    tilt_gain, tilt_correlation, tilt_travel_rad : float or None
        The tilt test (None when not computed).
    dynamic_windows : int
    dynamic_gyr_p95_rad_s : float or None
        The walking-range test (None without dynamic windows).
    """

    status: Status
    suspected_factor: float | None
    message: str
    tilt_gain: float | None = None
    tilt_correlation: float | None = None
    tilt_travel_rad: float | None = None
    dynamic_windows: int = 0
    dynamic_gyr_p95_rad_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the report's ``quality.gyro_units`` entry per sensor)."""
        return asdict(self)


_Verdict = tuple[Literal["ok", "suspected", "ambiguous"], float | None]


@functools.lru_cache(maxsize=32)
def _butter_sos(fc_hz: float, rate_hz: float) -> npt.NDArray[np.float64]:
    from imuhip.dsp import butter_lowpass_sos

    return butter_lowpass_sos(fc_hz / (rate_hz / 2.0))


def _lowpass(x: npt.NDArray[np.float64], fc_hz: float, rate_hz: float) -> npt.NDArray[np.float64]:
    from imuhip.dsp import sosfiltfilt

    if fc_hz >= 0.45 * rate_hz or len(x) < 16:
        return x
    return np.asarray(sosfiltfilt(_butter_sos(fc_hz, rate_hz), x, axis=0), dtype=np.float64)


def _tilt_test(
    acc: npt.NDArray[np.float64],
    gyr: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    rate_hz: float,
    cfg: GyroUnitsConfig,
) -> tuple[float | None, float | None, float]:
    """``(gain, correlation, tilt_travel_rad)``; gain/correlation None if not computable."""
    if len(acc) < 2:  # no derivative (a sensor with a few samples, after block averaging)
        return None, None, 0.0
    a = _lowpass(acc, cfg.lowpass_hz, rate_hz)
    w = _lowpass(gyr, cfg.lowpass_hz, rate_hz)
    da = np.gradient(a, 1.0 / rate_hz, axis=0)
    pred = np.cross(a, w)
    m = valid & (np.abs(np.linalg.norm(acc, axis=1) - GRAVITY_M_S2) < cfg.static_tol_m_s2)
    m &= np.abs(np.linalg.norm(a, axis=1) - GRAVITY_M_S2) < cfg.static_tol_m_s2 / 2
    if np.count_nonzero(m) < 2:
        return None, None, 0.0
    da, pred = da[m], pred[m]
    travel = float(np.sum(np.linalg.norm(da, axis=1)) / rate_hz / GRAVITY_M_S2)
    num = float(np.sum(da * pred))
    den = float(np.sum(pred * pred))
    dd = float(np.sum(da * da))
    if not (den > 0 and dd > 0):
        return None, None, travel
    return num / den, num / math.sqrt(den * dd), travel


def _walk_test(
    acc: npt.NDArray[np.float64],
    gyr: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_],
    rate_hz: float,
    cfg: GyroUnitsConfig,
) -> tuple[int, float | None]:
    """``(dynamic windows, p95 gyro norm in them)``."""
    n = max(2, round(cfg.window_s * rate_hz))
    nw = len(acc) // n
    if nw == 0:
        return 0, None
    f = np.linalg.norm(_lowpass(acc, cfg.dynamic_lowpass_hz, rate_hz), axis=1)[: nw * n]
    f = f.reshape(nw, n)
    v = valid[: nw * n].reshape(nw, n)
    full = v.all(axis=1)  # only windows without gaps
    dyn = full & (f.std(axis=1) > cfg.dynamic_acc_sd_m_s2)
    if not dyn.any():
        return 0, None
    g = np.linalg.norm(gyr[: nw * n], axis=1).reshape(nw, n)[dyn]
    return int(np.count_nonzero(dyn)), float(np.percentile(g, 95))


def _classify_gain(gain: float, cfg: GyroUnitsConfig) -> _Verdict:
    if gain <= 0:
        return "ambiguous", None
    lg = math.log10(gain)
    lf = math.log10(DEG_PER_RAD)
    if abs(lg) < cfg.log10_band:
        return "ok", None
    if abs(lg - lf) < cfg.log10_band:
        return "suspected", DEG_PER_RAD  # gyro reads 57.3x too small
    if abs(lg + lf) < cfg.log10_band:
        return "suspected", 1.0 / DEG_PER_RAD  # gyro reads 57.3x too large
    return "ambiguous", None


def _classify_walk(p95: float, cfg: GyroUnitsConfig) -> _Verdict:
    if p95 < cfg.walk_clear_low_rad_s:
        return "suspected", DEG_PER_RAD
    if p95 < cfg.walk_ok_low_rad_s:
        return "ambiguous", DEG_PER_RAD
    if p95 <= cfg.walk_ok_high_rad_s:
        return "ok", None
    if p95 <= cfg.walk_clear_high_rad_s:
        return "ambiguous", 1.0 / DEG_PER_RAD
    return "suspected", 1.0 / DEG_PER_RAD


def _mistake(factor: float) -> str:
    if factor > 1:
        return (
            "reads about 57.3x too small: data in rad/s labelled deg/s? (multiply by 57.3, "
            "i.e. declare rad/s)"
        )
    return (
        "reads about 57.3x too large: data in deg/s labelled rad/s? (multiply by pi/180, "
        "i.e. declare deg/s)"
    )


def _all_finite(x: npt.NDArray[np.float64]) -> bool:
    """Every element finite (a compiled early-exit scan; no (N, 3) temporaries)."""
    from imuhip.ingest._align_kernels import all_finite

    return bool(all_finite(np.ascontiguousarray(x)))


def check_gyro_units(
    acc_m_s2: npt.ArrayLike,
    gyr_rad_s: npt.ArrayLike,
    rate_hz: float,
    valid: npt.ArrayLike | None = None,
    cfg: GyroUnitsConfig | None = None,
) -> GyroUnitsResult:
    """Is the gyroscope physically consistent with the accelerometer and with human motion?

    Parameters
    ----------
    acc_m_s2 : (N, 3) float, sensor frame, m/s²
    gyr_rad_s : (N, 3) float, sensor frame, rad/s as labelled
    rate_hz : float
        Uniform sample rate.
    valid : (N,) bool, optional
        Samples that are real (filled gap samples are not used for statistics).
    cfg : GyroUnitsConfig, optional

    Returns
    -------
    GyroUnitsResult
        ``"ok"``, ``"suspected"`` (one test clearly points to a factor 57.3 and the other does
        not contradict it), ``"ambiguous"`` (tests disagree or fall between the bands) or
        ``"not_enough_motion"`` (neither test applies: e.g. standing still) or ``"dead"`` (the
        gyroscope reads one constant value while the accelerometer shows walking).

    Raises
    ------
    ValueError
        Wrong shapes or a non-positive rate (API misuse).
    """
    cfg = cfg or GyroUnitsConfig()
    acc = np.asarray(acc_m_s2, dtype=np.float64)
    gyr = np.asarray(gyr_rad_s, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[1] != 3:
        raise ValueError(f"acc_m_s2 must have shape (N, 3), got {acc.shape}")
    if gyr.shape != acc.shape:
        raise ValueError(f"gyr_rad_s must have shape {acc.shape}, got {gyr.shape}")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be a finite number > 0, got {rate_hz}")
    ok = np.ones(len(acc), np.bool_) if valid is None else np.asarray(valid, dtype=np.bool_)
    if ok.shape != (len(acc),):
        raise ValueError(f"valid must have shape ({len(acc)},), got {ok.shape}")
    if not (_all_finite(acc) and _all_finite(gyr)):
        # filters need finite input; those rows are excluded anyway
        finite = np.asarray(np.isfinite(acc).all(axis=1) & np.isfinite(gyr).all(axis=1))
        ok = ok & finite
        acc = np.where(finite[:, None], acc, 0.0)
        gyr = np.where(finite[:, None], gyr, 0.0)
    # both tests look below 4 Hz: block means down to ~analysis_rate_hz make them cheap
    q = max(1, int(rate_hz // cfg.analysis_rate_hz))
    if q > 1:
        from imuhip.ingest._units_kernels import block_all, block_means

        acc = block_means(np.ascontiguousarray(acc), q)
        gyr = block_means(np.ascontiguousarray(gyr), q)
        ok = block_all(np.ascontiguousarray(ok), q)
        rate_hz = rate_hz / q

    gain, corr, travel = _tilt_test(acc, gyr, ok, rate_hz, cfg)
    n_dyn, p95 = _walk_test(acc, gyr, ok, rate_hz, cfg)
    verdicts: list[tuple[str, _Verdict]] = []
    parts: list[str] = []
    if gain is not None and corr is not None and travel >= cfg.min_tilt_travel_rad:
        if corr >= cfg.min_tilt_correlation:
            verdicts.append(("tilt", _classify_gain(gain, cfg)))
            parts.append(f"tilt gain {gain:.3g}, correlation {corr:.2f}")
        else:
            parts.append(f"tilt test not applicable: correlation {corr:.2f}")
    if p95 is not None and n_dyn >= cfg.min_dynamic_windows:
        verdicts.append(("walking range", _classify_walk(p95, cfg)))
        parts.append(f"95th percentile {p95:.3g} rad/s in {n_dyn} walking-like windows")

    def result(status: Status, factor: float | None, message: str) -> GyroUnitsResult:
        return GyroUnitsResult(status, factor, message, gain, corr, travel, n_dyn, p95)

    detail = "; ".join(parts)
    if not verdicts:
        return result("not_enough_motion", None, "not enough motion to check the gyroscope unit")
    kinds = {v[0] for _, v in verdicts}
    factors = {v[1] for _, v in verdicts if v[1] is not None}
    if kinds == {"ok"}:
        return result("ok", None, f"gyroscope unit plausible ({detail})")
    if "suspected" in kinds and "ok" not in kinds and len(factors) == 1:
        fs = factors.pop()
        g_ok = gyr[ok]
        if fs > 1 and len(g_ok) > 1 and not np.ptp(g_ok, axis=0).any():
            # not a unit mix-up: a gyroscope that never changes while the sensor moves is dead,
            # disconnected or not streaming (a 57.3x-too-small one still shows noise and motion)
            return result(
                "dead",
                None,
                f"gyroscope reads a constant value while the sensor moves: dead, disconnected "
                f"or not streaming? ({detail})",
            )
        return result("suspected", fs, f"gyroscope {_mistake(fs)} ({detail})")
    if "ok" in kinds and "suspected" not in kinds:
        # one test plausible, the other between bands: nothing points clearly elsewhere
        return result("ok", None, f"gyroscope unit plausible, one test between bands ({detail})")
    f = factors.pop() if len(factors) == 1 else None
    hint = f": {_mistake(f)}" if f is not None else ""
    return result("ambiguous", f, f"gyroscope unit uncertain{hint} ({detail})")


STUCK_REFUSED: Final = ("pelvis", "thigh_l", "thigh_r")
"""Sensors the analysis needs: stuck, they refuse the recording; others get a warning."""
_STUCK_HEAD_ROWS: Final = 1024
""":func:`_stuck` looks at all valid rows only when its first this many are all equal."""


def _stuck(
    acc: npt.NDArray[np.float64], gyr: npt.NDArray[np.float64], valid: npt.ArrayLike, rate_hz: float
) -> str | None:
    """Why a sensor's output is frozen (acc and gyro never change over >= 2 s), else None.

    A working IMU's noise moves every channel by at least one count within a second or two.
    """
    ok = np.asarray(valid, bool)
    if ok.sum() < 2 * rate_hz:
        return None
    # the range over the valid rows is at least the range over any of them: a working sensor's
    # noise shows within its first valid seconds, so it is answered without copying every row
    head = np.flatnonzero(ok)[:_STUCK_HEAD_ROWS]
    if np.ptp(acc[head], axis=0).max() > 1e-9 or np.ptp(gyr[head], axis=0).max() > 1e-9:
        return None
    a, g = acc[ok], gyr[ok]
    if np.ptp(a, axis=0).max() > 1e-9 or np.ptp(g, axis=0).max() > 1e-9:
        return None
    return (
        f"accelerometer and gyroscope read the same value in all {int(ok.sum())} samples "
        f"({ok.sum() / rate_hz:.1f} s; acc {np.round(a[0], 3).tolist()} m/s^2, gyr "
        f"{np.round(g[0], 3).tolist()} rad/s): frozen output, check the sensor and its "
        "connection (a calibration on it cannot succeed)"
    )


def check_session_gyro_units(
    session: AlignedSession, cfg: GyroUnitsConfig | None = None
) -> dict[str, Any]:
    """Run :func:`check_gyro_units` on every sensor of an aligned session.

    Returns
    -------
    dict
        JSON-ready ``{"sensors": {placement: result dict}, "warnings": [str, ...]}``; a warning
        per ambiguous sensor (also logged).

    Raises
    ------
    GyroUnitsError
        If any sensor's gyroscope is clearly off by a factor of 57.3, naming the sensor(s) and
        the suspected mistake, or reads a constant value while the sensor moves (``"dead"``),
        or a sensor the analysis needs (:data:`STUCK_REFUSED`) is stuck (accelerometer and
        gyroscope frozen); other stuck sensors give a warning.
    """
    out: dict[str, Any] = {}
    warnings: list[str] = []
    clear: list[str] = []
    dead: list[str] = []

    def check(s: AlignedSensor) -> tuple[str | None, GyroUnitsResult]:
        stuck = _stuck(s.acc_m_s2, s.gyr_rad_s, s.valid, session.rate_hz)
        return stuck, check_gyro_units(s.acc_m_s2, s.gyr_rad_s, session.rate_hz, s.valid, cfg)

    sensors = list(session.sensors.values())  # independent: in threads on a long session
    checked = map_sensors(check, sensors, len(session.t_s))
    for p, (stuck, r) in zip(session.sensors, checked, strict=True):  # in the session's order
        if stuck is not None:
            if p in STUCK_REFUSED:  # calibration would fail without saying which sensor
                raise GyroUnitsError(f"sensor {p} is stuck: {stuck}")
            warnings.append(f"{p}: stuck: {stuck}")
            log.warning("%s: stuck: %s", p, stuck)
        out[p] = r.to_dict()
        if r.status == "suspected":
            clear.append(f"{p}: {r.message}")
        elif r.status == "dead":
            dead.append(f"{p}: {r.message}")
        elif r.status == "ambiguous":
            warnings.append(f"{p}: {r.message}")
            log.warning("%s: %s", p, r.message)
    if dead:
        raise GyroUnitsError("gyroscope not working: " + "; ".join(dead))
    if clear:
        raise GyroUnitsError("wrong gyroscope unit: " + "; ".join(clear))
    return {"sensors": out, "warnings": warnings}


def input_quality(session: AlignedSession, meta: SessionMeta) -> dict[str, Any]:
    """Quality entries about the input, for the report: gyroscope units and the import record.

    Returns ``{"gyro_units": check_session_gyro_units(session), "import": ...}`` (``"import"``
    only for imported recordings: ``meta.extra["import"]``, with its notes and counts of
    missing samples). Raises :class:`GyroUnitsError` like :func:`check_session_gyro_units`.
    """
    q: dict[str, Any] = {"gyro_units": check_session_gyro_units(session)}
    imported = meta.extra.get("import") if isinstance(meta.extra, dict) else None
    if imported:
        q["import"] = import_record_for_report(imported)
    return q


def import_record_for_report(imported: dict[str, Any]) -> dict[str, Any]:
    """``meta.extra["import"]`` for the report, source files named without their folders.

    Folders often carry a patient's name (``.../Anna_Meier/pelvis.csv``) while the report is
    shared; the recording's subject is a pseudonym, so the report names only the files. Returns a
    copy (``imported`` is not changed).
    """
    out = dict(imported)
    files = imported.get("files")
    if not isinstance(files, dict):
        return out
    short = {str(v): Path(str(v)).name for v in files.values()}
    out["files"] = {k: short[str(v)] for k, v in files.items()}
    notes = imported.get("notes")
    if isinstance(notes, list):
        longest_first = sorted(short, key=len, reverse=True)

        def scrub(n: Any) -> Any:
            if not isinstance(n, str):
                return n
            for full in longest_first:
                n = n.replace(full, short[full])
            return n

        out["notes"] = [scrub(n) for n in notes]
    return out

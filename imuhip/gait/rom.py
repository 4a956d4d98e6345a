"""Clinical hip rotation range-of-motion test (seated 90/90) measured with the thigh sensors.

Definition (``docs/report_schema.md``, "ROM test")
--------------------------------------------------
Seated, hip and knee flexed 90°, the examiner (or the subject) turns the foot outward (internal
rotation, IR) and inward (external rotation, ER) with the shank as the lever; the femur rotates
about its own long axis. The thigh sensor measures that rotation directly: the ROM angle is the
**twist of the thigh about its long axis relative to the neutral pose** (swing–twist
decomposition of ``conj(q_neutral) ⊗ q(t)`` in the sensor frame, Dobrowolski 2015,
doi:10.48550/arXiv.1506.05481), + = internal rotation on both sides (left mirrored, as in
:mod:`imuhip.conventions`). With the femur horizontal the rotation axis is horizontal, so the
angle is observable from gravity alone (no heading drift, no magnetometer needed).

The long axis is the principal axis of the thigh angular velocity during the test (the movement
is a rotation about it); its direction (proximal) comes from the segment calibration when given,
else from the nominal mounting of a lateral thigh sensor (sensor x along the thigh, pointing
proximally). Neutral is the first still window; each repetition's maximal IR and ER are the
prominent extremes of the twist angle.

Norms: passive IR 30–45° (Roach & Miles 1991, doi:10.1093/ptj/71.9.656; AAOS); a side-to-side
difference above 10° is flagged (Ellison et al. 1990, doi:10.1093/ptj/70.9.537, found asymmetric
hip rotation in low back pain; 10° is above the ≈5° goniometric measurement error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from imuhip.conventions import quat_conj, quat_mul, quat_rotate
from imuhip.dsp import find_peaks, moving_average
from imuhip.errors import InsufficientDataError
from imuhip.gait.norms import ROM_NORMS, Flag
from imuhip.types import SessionEvent

__all__ = [
    "RomConfig",
    "RomPhaseWindow",
    "RomSide",
    "check_seated_rom",
    "rom_flags",
    "rom_phases_from_events",
    "rom_side",
    "twist_angle_rad",
]

FloatArray = npt.NDArray[np.float64]

# nominal lateral-thigh mounting: sensor x points proximally along the femur
NOMINAL_LONG_AXIS_SENSOR = np.array([1.0, 0.0, 0.0])


@dataclass(frozen=True, slots=True)
class RomConfig:
    """Thresholds of the ROM test.

    ``still_gyr_rad_s`` / ``min_still_s``: neutral window detection; ``min_peak_deg``: smallest
    rotation that counts as a repetition; ``repetitions``: how many (the largest) are kept;
    ``ir_min_deg``, ``side_diff_max_deg``: flag thresholds (see module docstring).

    Is it a seated ROM test at all (:func:`check_seated_rom`)? ``max_thigh_elevation_deg``: the
    thigh long axis at neutral must be within this angle of horizontal (seated 90/90: ≈0°,
    standing: ≈90°); ``min_long_axis_share`` / ``max_gait_periodicity``: motion whose angular
    velocity is mostly *not* about the long axis (share of the squared rate below the minimum)
    and is periodic at a stride period of 0.6–2 s (normalised autocorrelation peak above the
    maximum) is walking, not a ROM test.
    """

    still_gyr_rad_s: float = 0.15
    min_still_s: float = 1.0
    min_peak_deg: float = 8.0
    repetitions: int = 3
    ir_min_deg: float = ROM_NORMS["hip_ir_rom_deg"].low
    side_diff_max_deg: float = ROM_NORMS["hip_rom_side_difference_deg"].high
    max_thigh_elevation_deg: float = 45.0
    min_long_axis_share: float = 0.5
    max_gait_periodicity: float = 0.6


@dataclass(frozen=True, slots=True)
class RomSide:
    """Result of one side: maximal IR and ER from neutral per repetition, degrees."""

    side: str
    ir_deg: tuple[float, ...]
    er_deg: tuple[float, ...]
    neutral_s: tuple[float, float]
    axis_sensor: tuple[float, float, float]
    notes: tuple[str, ...] = field(default=())
    # session seconds of each repetition's extreme (same order as ir_deg / er_deg)
    ir_t_s: tuple[float, ...] = field(default=())
    er_t_s: tuple[float, ...] = field(default=())
    # the measured angle over the test (session s; deg from neutral, + = IR) for the report
    trace_t_s: FloatArray | None = field(default=None, repr=False, compare=False)
    trace_deg: FloatArray | None = field(default=None, repr=False, compare=False)

    @property
    def ir_mean_deg(self) -> float:
        """Mean maximal IR over repetitions (``nan`` without any)."""
        return float(np.mean(self.ir_deg)) if self.ir_deg else float("nan")

    @property
    def ir_sd_deg(self) -> float:
        """SD (ddof=1) of maximal IR over repetitions."""
        return float(np.std(self.ir_deg, ddof=1)) if len(self.ir_deg) > 1 else float("nan")

    @property
    def er_mean_deg(self) -> float:
        """Mean maximal ER over repetitions."""
        return float(np.mean(self.er_deg)) if self.er_deg else float("nan")

    @property
    def er_sd_deg(self) -> float:
        """SD (ddof=1) of maximal ER over repetitions."""
        return float(np.std(self.er_deg, ddof=1)) if len(self.er_deg) > 1 else float("nan")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready mapping."""
        return {
            "side": self.side,
            "ir_deg": list(self.ir_deg),
            "er_deg": list(self.er_deg),
            "ir_mean_deg": self.ir_mean_deg,
            "ir_sd_deg": self.ir_sd_deg,
            "er_mean_deg": self.er_mean_deg,
            "er_sd_deg": self.er_sd_deg,
            "ir_t_s": list(self.ir_t_s),
            "er_t_s": list(self.er_t_s),
            "neutral_s": list(self.neutral_s),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class RomPhaseWindow:
    """One marked phase of the test for one side: ``kind`` neutral, ir or er; session seconds."""

    kind: str
    repetition: int
    start_s: float
    stop_s: float


def rom_phases_from_events(events: Sequence[SessionEvent], side: str) -> list[RomPhaseWindow]:
    """The marked phases of ``side`` in time order (``calibration_start`` events whose ``data``
    has ``movement`` ``rom_neutral``/``rom_ir``/``rom_er``, ``side``, ``start_s``, ``stop_s``
    in session seconds and optionally ``repetition``), ``[]`` without markers."""
    out = []
    for ev in events:
        d = ev.data
        mv = d.get("movement")
        if ev.kind != "calibration_start" or not isinstance(mv, str) or not mv.startswith("rom_"):
            continue
        if d.get("side") != side or mv[4:] not in ("neutral", "ir", "er"):
            continue
        try:
            a, b = float(d["start_s"]), float(d["stop_s"])
        except (KeyError, TypeError, ValueError):
            continue
        if b > a:
            out.append(RomPhaseWindow(mv[4:], int(d.get("repetition", 0)), a, b))
    return sorted(out, key=lambda w: w.start_s)


def _stillest(gyr: FloatArray, i0: int, i1: int, rate_hz: float, cfg: RomConfig) -> tuple[int, int]:
    """The stillest ``min_still_s`` sub-window of ``[i0, i1)`` (whole window if shorter)."""
    n = max(1, round(cfg.min_still_s * rate_hz))
    if i1 - i0 <= n:
        return i0, i1
    mag = np.linalg.norm(gyr[i0:i1], axis=1)
    c = np.concatenate([[0.0], np.cumsum(mag)])
    k = int(np.argmin(c[n:] - c[:-n]))
    return i0 + k, i0 + k + n


def twist_angle_rad(q_ref_sensor: FloatArray, axis_sensor: FloatArray) -> FloatArray:
    """Twist angle about ``axis_sensor`` of relative rotations ``q_ref_sensor``, rad, ``(N,)``.

    Swing–twist decomposition: the twist part of ``q = [w, v]`` about unit axis ``a`` is
    ``[w, (v·a) a]`` normalised; its angle is ``2 atan2(v·a, w)`` wrapped to (−π, π].
    """
    a = np.asarray(axis_sensor, dtype=np.float64)
    a = a / np.linalg.norm(a)
    q = np.asarray(q_ref_sensor, dtype=np.float64)
    ang = 2.0 * np.arctan2(q[:, 1:] @ a, q[:, 0])
    return np.asarray(np.angle(np.exp(1j * ang)), dtype=np.float64)


def _still_window(gyr: FloatArray, rate_hz: float, cfg: RomConfig) -> tuple[int, int]:
    n = max(1, round(cfg.min_still_s * rate_hz))
    mag = moving_average(np.linalg.norm(gyr, axis=1), max(3, n // 4))
    still = mag < cfg.still_gyr_rad_s
    run = 0
    for i, s in enumerate(still):
        run = run + 1 if s else 0
        if run >= n:
            return i + 1 - n, i + 1
    raise InsufficientDataError(
        f"no still neutral pose of {cfg.min_still_s:g} s found (gyro below "
        f"{cfg.still_gyr_rad_s:g} rad/s): hold the leg in neutral before the first rotation"
    )


def _gait_periodicity(x: FloatArray, rate_hz: float) -> float:
    """Largest normalised autocorrelation of ``x`` at lags 0.6–2.0 s (stride periods), 0..1."""
    x = np.asarray(x, dtype=np.float64) - float(np.mean(x)) if len(x) else np.zeros(0)
    lo, hi = int(0.6 * rate_hz), int(2.0 * rate_hz)
    if len(x) < 2 * hi or not np.any(x):
        return 0.0
    nfft = 1 << int(np.ceil(np.log2(2 * len(x))))
    f = np.fft.rfft(x, nfft)
    ac = np.fft.irfft(f * np.conj(f), nfft)[: len(x)]
    ac = ac / ac[0] * len(x) / (len(x) - np.arange(len(x)))  # unbiased: no taper with the lag
    return float(np.clip(np.max(ac[lo:hi]), 0.0, 1.0))


def check_seated_rom(
    q_neutral: FloatArray,
    long_axis_sensor: FloatArray,
    gyr_moving_rad_s: FloatArray,
    rate_hz: float,
    cfg: RomConfig | None = None,
) -> None:
    """Refuse data that are not a seated 90/90 ROM test (``InsufficientDataError`` naming why).

    Parameters
    ----------
    q_neutral : (4,) float64
        Thigh sensor orientation at neutral, world ENU, scalar-first.
    long_axis_sensor : (3,) float64
        Expected proximal femur axis in the sensor frame (segment calibration or nominal).
    gyr_moving_rad_s : (K, 3) float64
        Thigh gyroscope samples (sensor frame) of the test movements, in time order.
    rate_hz : float
    cfg : RomConfig, optional

    Notes
    -----
    Seated with hips at 90° the femur is horizontal, which gravity shows directly (the fused
    inclination needs no heading); standing or walking it is near vertical. In a ROM test the
    femur turns about its own long axis, so that axis carries most of the angular velocity; in
    gait the thigh swings in flexion (perpendicular to it) with a stride period of ≈1 s
    (Perry & Burnfield 2010, *Gait Analysis*, 2nd ed., ISBN 978-1-55642-766-4).
    """
    cfg = cfg or RomConfig()
    a = np.asarray(long_axis_sensor, dtype=np.float64)
    a = a / np.linalg.norm(a)
    a_world = quat_rotate(np.asarray(q_neutral, dtype=np.float64), a)
    elev = float(np.degrees(np.arcsin(min(1.0, abs(float(a_world[2]))))))
    if elev > cfg.max_thigh_elevation_deg:
        raise InsufficientDataError(
            f"the thigh is not seated (thigh long axis {elev:.0f}° from horizontal at neutral; "
            f"seated 90/90 needs it within {cfg.max_thigh_elevation_deg:g}°)"
        )
    g = np.asarray(gyr_moving_rad_s, dtype=np.float64)
    g = g[np.all(np.isfinite(g), axis=1)]
    total = float(np.sum(g * g))
    if len(g) < 10 or total <= 0.0:
        return
    share = float(np.sum((g @ a) ** 2)) / total
    if share >= cfg.min_long_axis_share:
        return
    _, v = np.linalg.eigh(g.T @ g)
    period = _gait_periodicity(g @ v[:, -1], rate_hz)
    if period > cfg.max_gait_periodicity:
        raise InsufficientDataError(
            f"motion looks like walking (periodic at a stride period, autocorrelation "
            f"{period:.2f}; rotation about the thigh long axis is only {100 * share:.0f}% of "
            "the thigh angular velocity)"
        )


def rom_side(
    t_s: FloatArray,
    q_world_sensor: FloatArray,
    gyr_rad_s: FloatArray,
    side: str,
    *,
    long_axis_sensor: FloatArray | None = None,
    cfg: RomConfig | None = None,
    phases: Sequence[RomPhaseWindow] | None = None,
) -> RomSide:
    """Maximal IR and ER from neutral of one thigh over a seated 90/90 ROM test.

    Parameters
    ----------
    t_s : (M,) float64
    q_world_sensor : (M, 4) float64
        Thigh sensor orientation (world ENU, scalar-first).
    gyr_rad_s : (M, 3) float64
        Thigh gyroscope, sensor frame (for the still window and the rotation axis).
    side : {"left", "right"}
    long_axis_sensor : (3,) float64, optional
        Proximal femur axis in the sensor frame (segment Y from a segment calibration); default
        the nominal mounting (sensor x).
    cfg : RomConfig, optional
    phases : sequence of RomPhaseWindow, optional
        Marked phases of this side (:func:`rom_phases_from_events`). With them, neutral is the
        stillest ``min_still_s`` of the first marked neutral phase and each marked IR (ER) phase
        gives one repetition: the maximum (minimum) of the angle from the phase start − 0.5 s to
        the start of the next marked IR/ER phase (the examiner may lag the prompt); without
        them, phases are detected automatically (first still window, prominent peaks).

    Returns
    -------
    RomSide
        Repetitions sorted in time; at most ``cfg.repetitions`` of each (the largest).

    Raises
    ------
    InsufficientDataError
        No still neutral, or the data are not a seated ROM test (:func:`check_seated_rom`:
        thigh not near horizontal, or walking-like motion).
    """
    cfg = cfg or RomConfig()
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    t_s = np.asarray(t_s, dtype=np.float64)
    q = np.asarray(q_world_sensor, dtype=np.float64)
    g = np.asarray(gyr_rad_s, dtype=np.float64)
    if q.shape != (len(t_s), 4) or g.shape != (len(t_s), 3):
        raise ValueError(
            f"q_world_sensor must be ({len(t_s)}, 4) and gyr_rad_s ({len(t_s)}, 3), "
            f"got {q.shape} and {g.shape}"
        )
    rate_hz = 1.0 / float(np.median(np.diff(t_s)))
    notes: list[str] = []
    phases = list(phases or [])
    neutral = [w for w in phases if w.kind == "neutral"]
    moves = [w for w in phases if w.kind in ("ir", "er")]
    if neutral and moves:
        a, b = np.searchsorted(t_s, [neutral[0].start_s, neutral[0].stop_s])
        i0, i1 = _stillest(g, int(a), int(b), rate_hz, cfg)
        if i1 - i0 < 2:
            raise InsufficientDataError(
                f"the marked {side} neutral phase has no samples (sensor data missing there)"
            )
    else:
        phases, moves = [], []
        i0, i1 = _still_window(g, rate_hz, cfg)
    prior = NOMINAL_LONG_AXIS_SENSOR if long_axis_sensor is None else np.asarray(long_axis_sensor)
    if long_axis_sensor is None:
        notes.append("long-axis direction from the nominal mounting (sensor x proximal)")
    moving = np.linalg.norm(g, axis=1) > cfg.still_gyr_rad_s
    if moves:  # only this side's marked movements (the other leg's test is excluded)
        inside = np.zeros(len(t_s), dtype=bool)
        for w in moves:
            inside[int(np.searchsorted(t_s, w.start_s)) : int(np.searchsorted(t_s, w.stop_s))] = 1
        moving &= inside
    else:
        moving[:i1] = False
    if moving.sum() >= 10:
        _, v = np.linalg.eigh(g[moving].T @ g[moving])
        axis = v[:, -1]
        if np.dot(axis, prior) < 0:
            axis = -axis
        if abs(np.dot(axis, prior / np.linalg.norm(prior))) < 0.7:
            notes.append(
                "rotation axis differs from the expected thigh long axis by more than 45°: "
                "check the sensor placement"
            )
    else:
        axis = prior / np.linalg.norm(prior)
    # neutral: mean orientation of the still window (sign-aligned average, normalised)
    qn = q[i0:i1] * np.sign(q[i0:i1] @ q[i0])[:, None]
    q_neutral = qn.mean(axis=0)
    q_neutral /= np.linalg.norm(q_neutral)
    check_seated_rom(q_neutral, prior, g[moving], rate_hz, cfg)
    q_rel = quat_mul(quat_conj(q_neutral), q)
    # twist about the long axis expressed in the neutral sensor frame
    theta = twist_angle_rad(q_rel, axis)
    sign = 1.0 if side == "right" else -1.0  # right IR = + about proximal Y; left mirrored
    rot_deg = np.degrees(sign * theta)
    reps: dict[str, tuple[float, ...]] = {}
    if moves:
        found: dict[str, list[float]] = {"ir": [], "er": []}
        at: dict[str, list[float]] = {"ir": [], "er": []}
        for j, w in enumerate(moves):
            end = moves[j + 1].start_s if j + 1 < len(moves) else w.stop_s + 3.0
            a, b = np.searchsorted(t_s, [w.start_s - 0.5, end])
            s = 1.0 if w.kind == "ir" else -1.0
            seg = s * rot_deg[int(a) : int(b)]
            if len(seg) == 0 or np.nanmax(seg) < cfg.min_peak_deg:
                notes.append(
                    f"marked {w.kind.upper()} repetition {w.repetition} at {w.start_s:.1f} s: "
                    f"no rotation of at least {cfg.min_peak_deg:g}° found"
                )
                continue
            found[w.kind].append(float(np.nanmax(seg)))
            at[w.kind].append(float(t_s[int(a) + int(np.nanargmax(seg))]))
        n_marked = {k: sum(w.kind == k for w in moves) for k in ("ir", "er")}
        return RomSide(
            side,
            tuple(found["ir"]),
            tuple(found["er"]),
            (float(t_s[i0]), float(t_s[i1 - 1])),
            (float(axis[0]), float(axis[1]), float(axis[2])),
            (
                *notes,
                f"phases from markers ({n_marked['ir']} IR, {n_marked['er']} ER repetitions)",
            ),
            tuple(at["ir"]),
            tuple(at["er"]),
            t_s,
            rot_deg,
        )
    dist = max(1, int(1.0 * rate_hz))
    peak_t: dict[str, tuple[float, ...]] = {}
    for name, s in (("ir", 1.0), ("er", -1.0)):
        pk, props = find_peaks(
            s * rot_deg, height=cfg.min_peak_deg, distance=dist, prominence=cfg.min_peak_deg
        )
        order = np.sort(np.argsort(props["peak_heights"])[::-1][: cfg.repetitions])
        reps[name] = tuple(float(s * rot_deg[pk[j]]) for j in order)
        peak_t[name] = tuple(float(t_s[pk[j]]) for j in order)
    if len(reps["ir"]) < cfg.repetitions or len(reps["er"]) < cfg.repetitions:
        notes.append(
            f"found {len(reps['ir'])} IR and {len(reps['er'])} ER repetitions "
            f"(expected {cfg.repetitions})"
        )
    return RomSide(
        side,
        reps["ir"],
        reps["er"],
        (float(t_s[i0]), float(t_s[i1 - 1])),
        (float(axis[0]), float(axis[1]), float(axis[2])),
        tuple(notes),
        peak_t["ir"],
        peak_t["er"],
        t_s,
        rot_deg,
    )


def rom_flags(results: dict[str, RomSide], cfg: RomConfig | None = None) -> list[Flag]:
    """Flags: mean IR below ``cfg.ir_min_deg``; side-to-side IR or ER difference above the limit."""
    cfg = cfg or RomConfig()
    ir_norm = ROM_NORMS["hip_ir_rom_deg"]
    diff_norm = ROM_NORMS["hip_rom_side_difference_deg"]
    flags: list[Flag] = []
    for side, r in results.items():
        if np.isfinite(r.ir_mean_deg) and r.ir_mean_deg < cfg.ir_min_deg:
            flags.append(
                Flag(
                    "hip_ir_rom_below_norm",
                    side,
                    "hip_ir_rom_deg",
                    r.ir_mean_deg,
                    f"{ir_norm.low:g}–{ir_norm.high:g}° passive IR",
                    ir_norm.source,
                    ir_norm.caveat,
                    f"{side} maximal IR {r.ir_mean_deg:.1f}° is below {cfg.ir_min_deg:g}°",
                )
            )
    if "left" in results and "right" in results:
        for what in ("ir", "er"):
            a = getattr(results["left"], f"{what}_mean_deg")
            b = getattr(results["right"], f"{what}_mean_deg")
            if np.isfinite(a) and np.isfinite(b) and abs(a - b) > cfg.side_diff_max_deg:
                low = "left" if a < b else "right"
                flags.append(
                    Flag(
                        f"hip_{what}_rom_side_difference",
                        low,
                        "hip_rom_side_difference_deg",
                        abs(a - b),
                        f"≤ {cfg.side_diff_max_deg:g}°",
                        diff_norm.source,
                        diff_norm.caveat,
                        f"maximal {what.upper()} differs by {abs(a - b):.1f}° between sides "
                        f"(smaller on the {low} side)",
                    )
                )
    return flags

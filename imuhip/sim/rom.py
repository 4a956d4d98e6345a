"""Simulated seated 90/90 hip rotation ROM test with ground truth (scenario ``rom-seated``).

Posture: sitting on a plinth, pelvis upright facing ``heading_deg`` (CCW from east), hips flexed
``hip_flexion_deg`` (90°), knees flexed ``knee_flexion_deg`` (90°), shanks hanging. The examiner
uses the shank as a lever: internal rotation (IR) moves the foot laterally, external rotation (ER)
medially; the femur rotates about its own (horizontal) long axis.

Kinematics (ISB, :mod:`imuhip.conventions`): ``q_world_thigh = q_world_pelvis ⊗ qz(flex) ⊗
qx(±add) ⊗ qy(±rot)`` (Z-X'-Y'' Cardan, left side mirrored), ``q_world_shank = q_world_thigh ⊗
qz(−knee)``. During a rotation the hip also flexes slightly (``flexion_coupling_deg`` per 40° of
rotation) and adducts (``adduction_coupling``), as a real leg does, so the thigh's twist about its
long axis is not exactly the Cardan IR: the truth is the Cardan IR (:func:`imuhip.sim.truth.
hip_angles`), what a marker-based lab would report.

Protocol, per side (left first): neutral hold, then ``repetitions`` times: move to maximal IR
(``move_s``, smooth), hold (``hold_s``, with a small physiological tremor), back to neutral, rest
(``rest_s``), the same for ER. The neutral pose of a side is not anatomical zero: it has a
seeded offset (``neutral_offset_deg`` SD), and ROM is measured from it. Each repetition reaches
the side's maximal IR/ER times ``1 + rep_cv * N(0, 1)``.

Truth (``NAME.truth.json``): per side and repetition the true maximal IR and ER from neutral
(max of the Cardan IR in the movement window minus the mean IR of the side's first neutral hold),
their mean and SD, and the phase schedule (``phases``: side, repetition, kind neutral/ir/er,
start/stop in session seconds). Calibration-marker events (``calibration_start`` /
``calibration_end`` with ``movement`` ``rom_neutral``, ``rom_ir``, ``rom_er``, ``side``,
``repetition``) are written unless ``markers=False``. Sensors, MEMS errors, misplacement, clocks
and the BLE link are those of the walking simulator (``base``, a :class:`SimParams`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip import __version__
from imuhip.conventions import from_rotation, quat_mul, quat_rotate
from imuhip.ingest import protocol
from imuhip.sim.kinematics import (
    DEG,
    HJC_IN_PELVIS_M,
    KNEE_IN_THIGH_M,
    SENSOR_POINT_M,
    qx,
    qy,
    qz,
    smoothstep7,
)
from imuhip.sim.link import SEND_DELAY_S, DeviceClock, deliver
from imuhip.sim.params import SimParams
from imuhip.sim.sensors import SensorErrors, apply_errors, ideal_imu, mountings, to_counts
from imuhip.sim.session import (
    SimSamples,
    _device_info,
    _host_delivery,
    _jsonable,
    _link_events,
    _save_npz,
    _sim_sensor_meta,
)
from imuhip.sim.truth import hip_angles
from imuhip.sim.writer import write_imrec
from imuhip.types import RawPacket, SensorMeta, SessionEvent, SessionMeta

__all__ = [
    "RomPhase",
    "RomSimParams",
    "RomSimResult",
    "rom_schedule",
    "simulate_rom_session",
    "write_rom_recording",
]

FloatArray = npt.NDArray[np.float64]
SIDES = ("left", "right")


def _default_base() -> SimParams:
    return SimParams(sensors=("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r"))


@dataclass(frozen=True, slots=True)
class RomSimParams:
    """A simulated seated 90/90 ROM test. Angles degrees, times seconds, pairs ``(left, right)``.

    ``base`` supplies the seed, sensors, rate, noise, misplacement, clocks and link (its walking
    fields are unused).
    """

    base: SimParams = field(default_factory=_default_base)
    ir_deg: tuple[float, float] = (38.0, 38.0)
    er_deg: tuple[float, float] = (40.0, 40.0)
    repetitions: int = 3
    rep_cv: float = 0.04
    markers: bool = True
    start_still_s: float = 2.0
    neutral_s: float = 3.0
    move_s: float = 1.5
    hold_s: float = 2.0
    rest_s: float = 1.5
    between_sides_s: float = 2.0
    end_still_s: float = 2.0
    hip_flexion_deg: float = 90.0
    knee_flexion_deg: float = 90.0
    neutral_offset_deg: float = 3.0
    flexion_coupling_deg: float = 2.0
    adduction_coupling: float = 0.05
    tremor_deg: float = 0.3
    heading_deg: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.base, SimParams):
            raise TypeError(f"base must be a SimParams, got {type(self.base).__name__}")
        for name in ("ir_deg", "er_deg"):
            v = getattr(self, name)
            if not (isinstance(v, tuple) and len(v) == 2 and all(0 < x < 90 for x in v)):
                raise ValueError(f"{name} must be a (left, right) pair in (0, 90) degrees, got {v}")
        if self.repetitions < 1:
            raise ValueError(f"repetitions must be >= 1, got {self.repetitions}")
        for name in ("neutral_s", "move_s", "hold_s", "rest_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.rep_cv < 0.3:
            raise ValueError(f"rep_cv must be in [0, 0.3), got {self.rep_cv}")

    @property
    def duration_s(self) -> float:
        """Length of the whole test, simulation seconds."""
        return rom_schedule(self)[-1].stop_s + self.end_still_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RomPhase:
    """One phase of the protocol (simulation seconds; ``kind`` neutral, ir or er).

    ``repetition`` is 1-based for ir/er; the side's first neutral hold is repetition 0, the rest
    after repetition k's IR or ER is k.
    """

    side: str
    repetition: int
    kind: str
    start_s: float
    stop_s: float

    @property
    def movement(self) -> str:
        """Marker name: ``rom_neutral``, ``rom_ir`` or ``rom_er``."""
        return f"rom_{self.kind}"


def rom_schedule(p: RomSimParams) -> list[RomPhase]:
    """The protocol's phases in time order (the guided live test uses the same schedule)."""
    out: list[RomPhase] = []
    t = p.start_still_s
    for i, side in enumerate(SIDES):
        if i:
            t += p.between_sides_s
        out.append(RomPhase(side, 0, "neutral", t, t + p.neutral_s))
        t += p.neutral_s
        for k in range(1, p.repetitions + 1):
            for kind in ("ir", "er"):
                d = 2 * p.move_s + p.hold_s
                out.append(RomPhase(side, k, kind, t, t + d))
                t += d
                out.append(RomPhase(side, k, "neutral", t, t + p.rest_s))
                t += p.rest_s
    return out


class RomBody:
    """Seated subject performing the ROM protocol; the interface :func:`ideal_imu` needs."""

    def __init__(self, p: RomSimParams, rng: np.random.Generator) -> None:
        self.p = p
        self.phases = rom_schedule(p)
        self.neutral_rad = {s: rng.normal(0.0, p.neutral_offset_deg) * DEG for s in SIDES}
        self.targets_rad: dict[tuple[str, int, str], float] = {}
        for ph in self.phases:
            if ph.kind == "neutral":
                continue
            base = p.ir_deg if ph.kind == "ir" else p.er_deg
            amp = base[SIDES.index(ph.side)] * (1.0 + p.rep_cv * rng.normal())
            self.targets_rad[(ph.side, ph.repetition, ph.kind)] = amp * DEG
        self.tremor_phase = rng.uniform(0, 2 * np.pi, 2)
        h = p.heading_deg * DEG
        # ISB pelvis: X anterior (heading), Y up, Z right
        fwd = np.array([np.cos(h), np.sin(h), 0.0])
        up = np.array([0.0, 0.0, 1.0])
        from scipy.spatial.transform import Rotation

        m = np.column_stack([fwd, up, np.cross(fwd, up)])
        self.q_pelvis0 = from_rotation(Rotation.from_matrix(m))
        self.hip_world = np.array([0.0, 0.0, 0.5])  # pelvis origin above the floor

    def rotation_rad(self, t: FloatArray, side: str) -> FloatArray:
        """Hip IR (+) of a side relative to its neutral pose, rad, ``(N,)``."""
        p = self.p
        out = np.zeros_like(t)
        for ph in self.phases:
            if ph.side != side or ph.kind == "neutral":
                continue
            sgn = 1.0 if ph.kind == "ir" else -1.0
            amp = self.targets_rad[(side, ph.repetition, ph.kind)]
            up = smoothstep7(np.clip((t - ph.start_s) / p.move_s, 0.0, 1.0))
            down = smoothstep7(np.clip((ph.stop_s - t) / p.move_s, 0.0, 1.0))
            env = np.minimum(up, down)
            # tremor inside the hold, faded in/out over 0.3 s (never beyond the target)
            w = np.clip((t - ph.start_s - p.move_s) / 0.3, 0.0, 1.0) * np.clip(
                (ph.stop_s - p.move_s - t) / 0.3, 0.0, 1.0
            )
            k = SIDES.index(side)
            trem = p.tremor_deg * DEG * (np.sin(2 * np.pi * 6.0 * t + self.tremor_phase[k]) - 1.0)
            out += sgn * (amp * env + w * trem)
        return out

    def state(
        self,
        t: npt.ArrayLike,
        segments: tuple[str, ...] | None = None,  # noqa: ARG002
    ) -> _RomState:
        """Segment orientations and sensor sites at simulation times ``t``."""
        t = np.asarray(t, dtype=np.float64)
        p = self.p
        n = len(t)
        qp = np.tile(self.q_pelvis0, (n, 1))
        q: dict[str, FloatArray] = {"pelvis": qp, "lumbar": qp}
        for side in SIDES:
            sgn = 1.0 if side == "right" else -1.0
            rot = self.rotation_rad(t, side)
            flex = p.hip_flexion_deg * DEG + p.flexion_coupling_deg * DEG * np.abs(rot) / (40 * DEG)
            add = p.adduction_coupling * rot
            hip_rot = self.neutral_rad[side] + rot
            qt = quat_mul(qp, quat_mul(qz(flex), quat_mul(qx(sgn * add), qy(sgn * hip_rot))))
            q[f"thigh_{side[0]}"] = qt
            q[f"shank_{side[0]}"] = quat_mul(qt, qz(np.full(n, -p.knee_flexion_deg * DEG)))
        return _RomState(t, q, self.hip_world)

    def path_acc(self, t: FloatArray, h: float = 1e-3) -> FloatArray:  # noqa: ARG002
        """No progression: the subject sits still."""
        return np.zeros((len(t), 3))


@dataclass(frozen=True)
class _RomState:
    t: FloatArray
    q_world: dict[str, FloatArray]
    origin: FloatArray

    def point(self, placement: str) -> FloatArray:
        r = np.asarray(SENSOR_POINT_M[placement])
        o = np.broadcast_to(self.origin, (len(self.t), 3))
        if placement in ("pelvis", "lumbar"):
            return o + quat_rotate(self.q_world[placement], r)
        side = "right" if placement.endswith("_r") else "left"
        hjc = o + quat_rotate(self.q_world["pelvis"], np.asarray(HJC_IN_PELVIS_M[side]))
        thigh = self.q_world[f"thigh_{side[0]}"]
        if placement.startswith("thigh"):
            return hjc + quat_rotate(thigh, r)
        knee = hjc + quat_rotate(thigh, np.asarray(KNEE_IN_THIGH_M))
        return knee + quat_rotate(self.q_world[placement], r)


@dataclass(frozen=True)
class RomSimResult:
    """A simulated ROM test: like :class:`imuhip.sim.SimResult`, with ROM truth.

    ``truth`` is the JSON-ready truth document, ``arrays`` the truth time series (session s).
    ``phases`` are in session seconds.
    """

    params: RomSimParams
    meta: SessionMeta
    packets: dict[str, list[tuple[float, bytes]]]
    delivered: list[RawPacket]
    events: list[SessionEvent]
    phases: list[RomPhase]
    truth: dict[str, Any]
    arrays: dict[str, FloatArray]
    samples: dict[str, SimSamples]
    device_info: dict[str, protocol.DeviceInfo]
    elapsed_s: float


def simulate_rom_session(params: RomSimParams) -> RomSimResult:
    """Simulate one seated ROM test deterministically from ``params`` (and ``params.base.seed``)."""
    if not isinstance(params, RomSimParams):
        raise TypeError(f"params must be a RomSimParams, got {type(params).__name__}")
    wall0 = time.perf_counter()
    rp = params
    p = rp.base
    duration = rp.duration_s
    seeds = np.random.SeedSequence([p.seed, 90]).spawn(4 + len(p.sensors))
    body = RomBody(rp, np.random.default_rng(seeds[0]))
    mounts = mountings(p, np.random.default_rng(seeds[1]))
    rng_link = np.random.default_rng(seeds[2])
    rng_misc = np.random.default_rng(seeds[3])
    per_packet = protocol.samples_per_packet(p.att_mtu, p.rate_hz, p.has_mag)
    if per_packet == 0:
        raise ValueError(f"att_mtu={p.att_mtu} cannot carry one sample per notification")
    acc_lsb = protocol.acc_lsb_m_s2(p.acc_range_g)
    gyr_lsb = protocol.gyr_lsb_rad_s(p.gyr_range_dps)
    us_per_sample = round(1e6 / p.rate_hz)
    metas: list[SensorMeta] = []
    sent: dict[str, tuple[FloatArray, list[bytes]]] = {}
    outcomes = {}
    raw: dict[str, tuple[Any, ...]] = {}
    for i, pl in enumerate(p.sensors):
        rng = np.random.default_rng(seeds[4 + i])
        clock = DeviceClock.draw(p, rng)
        err = SensorErrors.draw(p, rng)
        n = clock.n_samples(duration, p.rate_hz, per_packet)
        t_true = clock.sample_times(n, p.rate_hz)
        ideal = ideal_imu(body, p, pl, t_true, mounts[pl], None)  # type: ignore[arg-type]
        acc, gyr, mag = apply_errors(ideal, err, p, rng)
        counts, sat = to_counts(acc, gyr, mag if p.has_mag else None, acc_lsb, gyr_lsb)
        n_pk = n // per_packet
        payloads = [
            protocol.encode_packet(
                clock.seq0 + j,
                clock.t_dev_start_us + j * per_packet * us_per_sample,
                counts[j * per_packet : (j + 1) * per_packet],
                saturated=bool(sat[j * per_packet : (j + 1) * per_packet].any()),
            )
            for j in range(n_pk)
        ]
        send = t_true[per_packet - 1 :: per_packet][:n_pk] + SEND_DELAY_S
        sent[pl] = (send, payloads)
        outcomes[pl] = deliver(send, pl, p, rng_link)
        raw[pl] = (t_true, acc, gyr, mag, ideal)
        metas.append(_sim_sensor_meta(p, pl, i, acc_lsb, gyr_lsb, scenario=1))
    host = _host_delivery(p.sensors, sent, outcomes, rng_misc)
    zero, host_ns, packets, delivered = host.zero, host.ns, host.packets, host.delivered

    phases = [
        RomPhase(ph.side, ph.repetition, ph.kind, ph.start_s - zero, ph.stop_s - zero)
        for ph in body.phases
    ]
    events: list[SessionEvent] = []
    if rp.markers:
        for ph, sim_ph in zip(phases, body.phases, strict=True):
            data = {
                "movement": ph.movement,
                "side": ph.side,
                "repetition": ph.repetition,
                "start_s": ph.start_s,
                "stop_s": ph.stop_s,
            }
            events.append(SessionEvent(host_ns(sim_ph.start_s), "calibration_start", None, data))
            events.append(SessionEvent(host_ns(sim_ph.stop_s), "calibration_end", None, dict(data)))
    events += _link_events(outcomes, host_ns)
    events.sort(key=lambda e: e.host_rx_ns)
    meta = SessionMeta(
        session_id=f"sim-rom-{p.seed}",
        start_wall_time="2024-01-01T09:00:00+00:00",
        subject=p.subject,
        sensors=tuple(metas),
        software=f"imuhip {__version__} simulator",
        notes="simulated seated 90/90 ROM test (imuhip.sim.rom); truth in the .truth sidecar",
        extra={"simulated": True, "seed": p.seed, "scenario": "rom-seated"},
    )
    truth, arrays = _rom_truth(rp, body, mounts, zero)
    samples = {
        pl: SimSamples(
            t - zero, acc, gyr, mag, ideal.acc_m_s2, ideal.gyr_rad_s, ideal.mag_ut,
            ideal.q_world_sensor,
        )
        for pl, (t, acc, gyr, mag, ideal) in raw.items()
    }  # fmt: skip
    info = {m.placement: _device_info(m, per_packet, m.serial) for m in metas}
    return RomSimResult(
        rp, meta, packets, delivered, events, phases, truth, arrays, samples, info,
        time.perf_counter() - wall0,
    )  # fmt: skip


def _rom_truth(
    rp: RomSimParams, body: RomBody, mounts: dict[str, FloatArray], zero: float
) -> tuple[dict[str, Any], dict[str, FloatArray]]:
    p = rp.base
    t_sim = np.arange(0.0, rp.duration_s, 1.0 / p.rate_hz)
    st = body.state(t_sim)
    hip = {s: hip_angles(st.q_world["pelvis"], st.q_world[f"thigh_{s[0]}"], s) / DEG for s in SIDES}
    per_side: dict[str, Any] = {}
    for side in SIDES:
        ir = hip[side][:, 2]
        ph0 = next(ph for ph in body.phases if ph.side == side and ph.kind == "neutral")
        neutral = float(np.mean(ir[(t_sim >= ph0.start_s) & (t_sim < ph0.stop_s)]))
        reps: dict[str, list[float]] = {"ir": [], "er": []}
        for ph in body.phases:
            if ph.side != side or ph.kind == "neutral":
                continue
            w = ir[(t_sim >= ph.start_s) & (t_sim < ph.stop_s)] - neutral
            reps[ph.kind].append(float(w.max() if ph.kind == "ir" else -w.min()))
        per_side[side] = {
            "neutral_ir_deg": neutral,
            "ir_deg": reps["ir"],
            "er_deg": reps["er"],
            "ir_mean_deg": float(np.mean(reps["ir"])),
            "ir_sd_deg": float(np.std(reps["ir"], ddof=1)) if len(reps["ir"]) > 1 else None,
            "er_mean_deg": float(np.mean(reps["er"])),
            "er_sd_deg": float(np.std(reps["er"], ddof=1)) if len(reps["er"]) > 1 else None,
        }
    doc = {
        "format": "imuhip-sim-truth",
        "version": 1,
        "scenario": "rom-seated",
        "params": rp.to_dict(),
        "info": {
            "session_zero_sim_s": zero,
            "q_segment_sensor": {pl: mounts[pl].tolist() for pl in p.sensors},
        },
        "phases": [
            {
                "side": ph.side,
                "repetition": ph.repetition,
                "kind": ph.kind,
                "start_s": ph.start_s - zero,
                "stop_s": ph.stop_s - zero,
            }
            for ph in body.phases
        ],
        "rom": per_side,
    }
    arrays: dict[str, FloatArray] = {"t_s": t_sim - zero}
    for seg in ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r"):
        arrays[f"q_world_{seg}"] = st.q_world[seg]
    for s in SIDES:
        arrays[f"hip_{s}_deg"] = hip[s]
    for pl in p.sensors:
        arrays[f"q_segment_sensor_{pl}"] = mounts[pl]
    return _jsonable(doc), arrays


def write_rom_recording(result: RomSimResult, path: str | Path) -> dict[str, Path]:
    """Write ``NAME.imrec``, ``NAME.truth.json`` and ``NAME.truth.npz`` (overwriting them)."""
    path, stem = write_imrec(path, result.meta, result.delivered, result.events)
    json_path = path.with_name(stem + ".truth.json")
    json_path.write_text(json.dumps(result.truth, indent=1) + "\n")
    npz_path = path.with_name(stem + ".truth.npz")
    arrays = {k: np.asarray(v, dtype=np.float64 if k == "t_s" else np.float32) for k, v in
              result.arrays.items()}  # fmt: skip
    _save_npz(npz_path, arrays)
    return {"imrec": path, "truth_json": json_path, "truth_npz": npz_path}

"""Frozen dataclasses handed between stages. Shapes are checked once, at construction.

Array shapes use ``N`` for samples of one sensor and ``M`` for the session grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "AlignedSensor",
    "AlignedSession",
    "ClockModel",
    "DecodeStats",
    "Gap",
    "ImuSamples",
    "JointAngles",
    "OrientationSession",
    "RawPacket",
    "SegmentCalibration",
    "SensorMeta",
    "SessionEvent",
    "SessionMeta",
    "check_shape",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def check_shape(name: str, arr: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``arr.shape`` matches (``None`` = any)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
    ok = arr.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, arr.shape, strict=False)
    )
    if not ok:
        want_s = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want_s}, got {arr.shape}")


@dataclass(frozen=True, slots=True)
class RawPacket:
    """One notification exactly as received: nothing decoded, nothing lost.

    Parameters
    ----------
    sensor : str
        The sensor's key in the session, which is its placement (``"pelvis"``, ``"thigh_l"``...).
    host_rx_ns : int
        ``time.monotonic_ns()`` (live) or the recorded value (replay) at notification.
    payload : bytes
        The characteristic value, verbatim.
    """

    sensor: str
    host_rx_ns: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SensorMeta:
    """What the session knows about one sensor (from its info characteristic and the user).

    Scale factors convert raw int16 counts to SI: ``acc_m_s2 = raw * acc_lsb_m_s2``.
    """

    placement: str
    rate_hz: float
    acc_lsb_m_s2: float
    gyr_lsb_rad_s: float
    mag_lsb_ut: float
    has_mag: bool
    address: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    protocol: str = "imuhip"
    protocol_version: int = 1
    acc_range_g: float = 16.0
    gyr_range_dps: float = 2000.0
    calibration: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not (0 < self.rate_hz <= 10_000):
            raise ValueError(f"rate_hz must be in (0, 10000], got {self.rate_hz}")
        for name in ("acc_lsb_m_s2", "gyr_lsb_rad_s", "mag_lsb_ut"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v}")


@dataclass(frozen=True, slots=True)
class SessionMeta:
    """Recording header: who (pseudonym only), when, which sensors."""

    session_id: str
    start_wall_time: str  # ISO 8601, UTC
    subject: str  # a pseudonym, never a name
    sensors: tuple[SensorMeta, ...]
    software: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def sensor(self, placement: str) -> SensorMeta:
        """The sensor at ``placement``; ``KeyError`` naming the known ones if absent."""
        for s in self.sensors:
            if s.placement == placement:
                return s
        known = ", ".join(s.placement for s in self.sensors)
        raise KeyError(f"no sensor at placement {placement!r} (session has: {known})")


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A non-packet record: connect, disconnect, calibration marker, annotation, ...

    ``kind`` is a short string; ``data`` is JSON-serialisable.
    """

    host_rx_ns: int
    kind: str
    sensor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing samples of one sensor, half-open in that sensor's sample index."""

    start_idx: int
    stop_idx: int

    @property
    def n_samples(self) -> int:
        """Number of missing samples."""
        return self.stop_idx - self.start_idx


@dataclass(frozen=True, slots=True)
class DecodeStats:
    """Packet accounting of one sensor after decoding and de-duplication."""

    packets_received: int
    packets_decoded: int
    samples_decoded: int
    protocol_errors: dict[str, int]
    duplicates: int
    reordered: int
    lost_packets: int
    lost_samples: int
    gaps: tuple[Gap, ...]
    # Added for decode (additive, defaults keep older constructors valid):
    overlapping_samples: int = 0  # samples whose sample_idx was already covered (first kept)
    clock_resyncs: int = 0  # packets flagged CLOCK_RESYNC after the first (device clock stepped)
    clock_steps: int = 0  # unflagged device-clock steps between contiguous packets (re-joined)
    late_packets: int = 0  # live path only: arrived after a later packet was already emitted
    error_log: tuple[str, ...] = ()  # first ~20 protocol errors: packet index, host time, message

    @property
    def loss_fraction(self) -> float:
        """Lost samples over expected samples (0 when nothing was expected)."""
        expected = self.samples_decoded + self.lost_samples
        return self.lost_samples / expected if expected else 0.0


@dataclass(frozen=True, slots=True)
class ImuSamples:
    """Decoded samples of one sensor, device clock, sensor frame, in sample order.

    Parameters
    ----------
    placement : str
    sample_idx : (N,) int64
        Unwrapped device sample index counted from the first sample of the session (gaps skip).
    t_dev_s : (N,) float64
        Device timestamp of each sample, seconds, unwrapped, from the device's own clock.
    host_rx_ns : (N,) int64
        Host receive time of the notification that carried each sample.
    acc_m_s2, gyr_rad_s : (N, 3) float64, sensor frame
    mag_ut : (N, 3) float64 or None
    saturated : (N,) bool
        The packet flagged saturation.
    stats : DecodeStats
    """

    placement: str
    rate_hz: float
    sample_idx: IntArray
    t_dev_s: FloatArray
    host_rx_ns: IntArray
    acc_m_s2: FloatArray
    gyr_rad_s: FloatArray
    mag_ut: FloatArray | None
    saturated: BoolArray
    stats: DecodeStats

    def __post_init__(self) -> None:
        n = len(self.sample_idx)
        check_shape("sample_idx", self.sample_idx, (n,))
        check_shape("t_dev_s", self.t_dev_s, (n,))
        check_shape("host_rx_ns", self.host_rx_ns, (n,))
        check_shape("acc_m_s2", self.acc_m_s2, (n, 3))
        check_shape("gyr_rad_s", self.gyr_rad_s, (n, 3))
        if self.mag_ut is not None:
            check_shape("mag_ut", self.mag_ut, (n, 3))
        check_shape("saturated", self.saturated, (n,))

    def __len__(self) -> int:
        return len(self.sample_idx)


@dataclass(frozen=True, slots=True)
class ClockModel:
    """``t_session_s = offset_s + (1 + drift_ppm * 1e-6) * t_dev_s`` for one sensor."""

    offset_s: float
    drift_ppm: float
    residual_jitter_s: float  # robust SD of host-rx minus model, after removing BLE latency
    n_anchors: int = 0

    def to_session(self, t_dev_s: npt.ArrayLike) -> FloatArray:
        """Map device seconds to session seconds."""
        return self.offset_s + (1.0 + self.drift_ppm * 1e-6) * np.asarray(t_dev_s, np.float64)


@dataclass(frozen=True, slots=True)
class AlignedSensor:
    """One sensor on the session grid (uniform, ``rate_hz``), gaps filled and masked.

    Filled samples (``valid == False``) hold interpolated values so fixed-rate filters can run;
    never report a number computed only from them.
    """

    placement: str
    acc_m_s2: FloatArray  # (M, 3) sensor frame
    gyr_rad_s: FloatArray  # (M, 3) sensor frame
    mag_ut: FloatArray | None  # (M, 3) sensor frame
    valid: BoolArray  # (M,)
    clock: ClockModel
    stats: DecodeStats

    def __post_init__(self) -> None:
        m = len(self.valid)
        check_shape("valid", self.valid, (m,))
        check_shape("acc_m_s2", self.acc_m_s2, (m, 3))
        check_shape("gyr_rad_s", self.gyr_rad_s, (m, 3))
        if self.mag_ut is not None:
            check_shape("mag_ut", self.mag_ut, (m, 3))


@dataclass(frozen=True, slots=True)
class AlignedSession:
    """All sensors on one uniform session grid ``t_s = t0_s + arange(M) / rate_hz``."""

    t_s: FloatArray  # (M,)
    rate_hz: float
    sensors: dict[str, AlignedSensor]

    def __post_init__(self) -> None:
        m = len(self.t_s)
        for k, s in self.sensors.items():
            if len(s.valid) != m:
                raise ValueError(f"sensor {k!r} has {len(s.valid)} samples, session grid has {m}")


@dataclass(frozen=True, slots=True)
class OrientationSession:
    """Sensor orientations on the session grid: the hand-off from fusion (or a vendor import).

    ``q_world_sensor[p]`` is ``(M, 4)`` scalar-first, world ENU. ``gyr_rad_s[p]`` is ``None``
    for orientation-only imports (e.g. Xsens exports without gyroscope). ``source`` says where
    the orientations came from (``"vqf_offline"``, ``"vqf_online"``, ``"madgwick"``,
    ``"vendor:xsens"``). ``diagnostics[p]`` holds per-sample filter diagnostics (rest,
    mag_disturbed, ...), each ``(M,)``.
    """

    t_s: FloatArray  # (M,)
    rate_hz: float
    q_world_sensor: dict[str, FloatArray]
    acc_m_s2: dict[str, FloatArray]
    gyr_rad_s: dict[str, FloatArray | None]
    valid: dict[str, BoolArray]
    source: str
    diagnostics: dict[str, dict[str, npt.NDArray[Any]]] = field(default_factory=dict)
    mag_ut: dict[str, FloatArray | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = len(self.t_s)
        for k, q in self.q_world_sensor.items():
            check_shape(f"q_world_sensor[{k!r}]", q, (m, 4))
            check_shape(f"acc_m_s2[{k!r}]", self.acc_m_s2[k], (m, 3))
            check_shape(f"valid[{k!r}]", self.valid[k], (m,))
            g = self.gyr_rad_s.get(k)
            if g is not None:
                check_shape(f"gyr_rad_s[{k!r}]", g, (m, 3))


@dataclass(frozen=True, slots=True)
class SegmentCalibration:
    """Sensor-to-segment rotations: ``q_world_segment = q_world_sensor ⊗ q_sensor_segment[p]``.

    ``method`` per placement: ``"static+walking"``, ``"static+functional"``, ``"seated"``,
    ``"assumed"``...; ``quality`` per placement: numbers a report can show (e.g.
    ``still_rms_rad_s``, ``axis_ambiguity``); ``warnings`` are human-readable reasons for doubt;
    ``dropped`` names the optional sensors (or one thigh) that could not be calibrated and why:
    they are left out of ``q_sensor_segment`` and the analysis goes on without them.
    """

    q_sensor_segment: dict[str, FloatArray]  # each (4,)
    method: dict[str, str]
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    dropped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JointAngles:
    """Joint angles on the session grid, radians, ISB conventions (see :mod:`imuhip.conventions`).

    ``hip_rad[side]`` columns: flexion, adduction, internal rotation (left mirrored).
    ``pelvis_rad`` columns: rotation, obliquity, tilt (relative to walking direction).
    ``lumbar_rad`` columns: flexion, lateral bending, axial rotation (lumbar relative to pelvis).
    ``transverse_confidence`` in [0, 1] per sample: how well the pelvis–thigh relative heading is
    known (1 = clean magnetometer or fresh calibration), with reasons in ``notes``.
    """

    t_s: FloatArray  # (M,)
    hip_rad: dict[str, FloatArray]  # "left"/"right" -> (M, 3)
    pelvis_rad: FloatArray | None  # (M, 3)
    lumbar_rad: FloatArray | None  # (M, 3)
    valid: BoolArray  # (M,)
    transverse_confidence: FloatArray | None = None  # (M,)
    notes: tuple[str, ...] = ()
    # per hip side: pelvis, that thigh (and lumbar) valid; absent = ``valid`` for that side
    side_valid: dict[str, BoolArray] = field(default_factory=dict)
    # (M,) walking direction the pelvis angles are measured against, rad, unwrapped (world
    # heading, counter-clockwise); None where not computed
    walking_heading_rad: FloatArray | None = None

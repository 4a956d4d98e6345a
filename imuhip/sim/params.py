"""Simulator parameters: one frozen dataclass, every knob with a sensible default.

Defaults describe a typical adult walking on a level walkway (speed 1.3 m/s, cadence 110
steps/min, hip rotation excursion 10°, pelvic rotation range 10°; Schwartz et al. 2008,
doi:10.1016/j.jbiomech.2008.03.015; Baker 2001, doi:10.1016/S0966-6362(01)00105-3) wearing
sensors with MEMS-grade errors, streaming over a good BLE link. Angles are degrees only here, at
the user edge (``_deg`` names); the simulator converts to radians once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from imuhip.conventions import Placement
from imuhip.ingest.protocol import ACC_RANGES_G, GYR_RANGES_DPS, RATES_HZ
from imuhip.sim.realism import Realism

__all__ = ["Disconnect", "MagDisturbance", "SimParams"]


@dataclass(frozen=True, slots=True)
class Disconnect:
    """A window with no BLE link for one sensor (``sensor=None``: every sensor).

    Times are simulation seconds (0 = start of the simulated motion). The device keeps sampling
    and counting packets; everything it sends inside ``[start_s, start_s + duration_s)`` is lost.
    """

    start_s: float
    duration_s: float
    sensor: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise ValueError(f"Disconnect.start_s must be >= 0, got {self.start_s}")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"Disconnect.duration_s must be > 0, got {self.duration_s}")
        if self.sensor is not None and self.sensor not in Placement.__members__.values():
            raise ValueError(f"Disconnect.sensor must be a placement or None, got {self.sensor!r}")


@dataclass(frozen=True, slots=True)
class MagDisturbance:
    """Extra magnetic field (world frame, µT) during ``[start_s, stop_s)`` with 0.5 s smooth edges.

    Models walking past steel or electrical equipment indoors; affects every sensor.
    """

    start_s: float
    stop_s: float
    field_world_ut: tuple[float, float, float] = (15.0, 0.0, -10.0)

    def __post_init__(self) -> None:
        if not (self.stop_s > self.start_s >= 0):
            raise ValueError(
                f"MagDisturbance needs 0 <= start_s < stop_s, got {self.start_s}, {self.stop_s}"
            )


def _pair(name: str, v: Any) -> None:
    if not (isinstance(v, tuple) and len(v) == 2):
        raise ValueError(f"{name} must be a (left, right) tuple, got {v!r}")


@dataclass(frozen=True, slots=True)
class SimParams:
    """Everything that defines a simulated session; equal params give identical output.

    Per-side tuples are ``(left, right)``. Times are seconds, rates Hz, angles degrees.

    Timeline: stand still ``stand_start_s``; optional functional hip movements (per side hip
    flexion/extension swings, then hip rotation in place, each ``functional_move_s``, marked by
    calibration events) and 2 s standing; walk (ramping up and down over ``ramp_s``) with an
    optional 180° left turn (``turn``) halfway; stand still ``stand_end_s``.

    Compensation: with an IR limit, the hip IR curve is softly capped (peak < limit); the IR
    deficit ``d(t)`` (uncapped − capped IR) is given back by the pelvis (+ rotation for the right
    side, − for the left, the direction that keeps the thigh's rotation relative to the ground)
    and by the lumbar spine (axial rotation, same sign), scaled by ``compensation_gain``.
    """

    seed: int = 0
    duration_s: float = 60.0
    rate_hz: int = 200
    sensors: tuple[str, ...] = ("pelvis", "thigh_l", "thigh_r")
    has_mag: bool = True
    acc_range_g: int = 16
    gyr_range_dps: int = 2000
    subject: str = "SIM01"
    # --- timeline
    stand_start_s: float = 4.0
    stand_end_s: float = 3.0
    ramp_s: float = 1.5
    functional_calibration: bool = False
    functional_move_s: float = 5.0
    turn: bool = False
    turn_duration_s: float = 2.5
    # --- gait
    speed_m_s: float = 1.3
    cadence_steps_min: float = 110.0
    heading_deg: float = 0.0  # walking direction, counter-clockwise from east (ENU x)
    random_heading: bool = False
    stride_time_cv: float = 0.02
    amplitude_cv: float = 0.05
    hip_flexion_range_deg: float = 42.0
    hip_adduction_range_deg: float = 14.0
    hip_ir_excursion_deg: tuple[float, float] = (10.0, 10.0)
    hip_ir_offset_deg: tuple[float, float] = (2.0, 2.0)
    hip_ir_limit_deg: tuple[float | None, float | None] = (None, None)
    asymmetry: float = 0.0  # right hip amplitudes x (1 + a/2), left x (1 - a/2)
    knee_flexion_range_deg: float = 57.0
    pelvis_rotation_range_deg: float = 10.0
    pelvis_obliquity_range_deg: float = 8.0
    pelvis_tilt_range_deg: float = 3.5
    # anterior pelvic tilt (ASIS-PSIS) in quiet standing: population mean 13 +- 5 deg (Preece et al.
    # 2008, doi:10.1179/106698108790818459), the analysis's default assumption too
    pelvis_tilt_mean_deg: float = 13.0
    standing_thigh_inclination_deg: float = 0.0  # femur forward of vertical in quiet standing
    lumbar_rotation_range_deg: float = 8.0
    lumbar_lateral_bending_range_deg: float = 7.0
    lumbar_flexion_range_deg: float = 3.0
    compensation_gain: float = 0.0
    # heel strike: peak axial acceleration of the shank at initial contact, g (walking is at the
    # low end, ~1.5-3 g, running 5-10 g: Lafortune 1991, J Biomech 24(10):877-886, tibial
    # accelerometry; Mercer et al. 2003, shock attenuation tibia -> head), drawn per stride
    # with this coefficient of variation
    heel_strike_peak_g: float = 2.0
    heel_strike_cv: float = 0.2
    # --- sensors
    misplacement_deg: float = 5.0
    soft_tissue_deg: float = 0.0
    noise: bool = True
    gyr_noise_rad_s: float = 0.005  # RMS at 200 Hz (white; scales with sqrt(rate))
    gyr_bias_rad_s: float = 0.01
    gyr_bias_walk_rad_s: float = 2e-4  # random-walk bias drift, per sqrt(s)
    acc_noise_m_s2: float = 0.02  # RMS at 200 Hz
    acc_bias_m_s2: float = 0.05
    scale_error: float = 0.005  # SD of per-axis scale factor error (acc, gyr)
    mag_noise_ut: float = 0.3
    mag_bias_ut: float = 1.0
    mag_field_ut: float = 50.0
    mag_dip_deg: float = 60.0
    mag_disturbances: tuple[MagDisturbance, ...] = ()
    # --- clocks and BLE link
    clock_drift_ppm_max: float = 40.0
    att_mtu: int = 247
    conn_interval_s: float = 0.015
    packets_per_event: int = 4
    retransmit_prob: float = 0.01
    loss_prob: float = 0.0
    burst_start_prob: float = 0.0  # Gilbert-Elliott good -> bad per packet
    burst_mean_packets: float = 8.0
    disconnects: tuple[Disconnect, ...] = field(default=())
    #: the host's TIME_SYNC exchanges as ``imuhip live`` records them (``time_sync`` events:
    #: imuhip.sim.link.time_sync_exchanges); off: a recording without them (older recordings,
    #: drivers without TIME_SYNC), the shipped demos
    time_sync: bool = False
    # --- realistic simulator (imuhip.sim.realism); None = the clean simulator
    realism: Realism | None = None

    def __post_init__(self) -> None:
        if self.rate_hz not in RATES_HZ:
            raise ValueError(f"rate_hz must be one of {RATES_HZ}, got {self.rate_hz}")
        if self.acc_range_g not in ACC_RANGES_G:
            raise ValueError(f"acc_range_g must be one of {ACC_RANGES_G}, got {self.acc_range_g}")
        if self.gyr_range_dps not in GYR_RANGES_DPS:
            raise ValueError(
                f"gyr_range_dps must be one of {GYR_RANGES_DPS}, got {self.gyr_range_dps}"
            )
        known = [p.value for p in Placement]
        if not self.sensors:
            raise ValueError("sensors must name at least one placement")
        for s in self.sensors:
            if s not in known:
                raise ValueError(f"unknown sensor placement {s!r} (known: {', '.join(known)})")
        if len(set(self.sensors)) != len(self.sensors):
            raise ValueError(f"sensors lists a placement twice: {self.sensors}")
        for name in ("hip_ir_excursion_deg", "hip_ir_offset_deg", "hip_ir_limit_deg"):
            _pair(name, getattr(self, name))
        for name in ("speed_m_s", "cadence_steps_min", "ramp_s", "turn_duration_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v}")
        for name in ("stand_start_s", "stand_end_s", "misplacement_deg", "soft_tissue_deg"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be >= 0, got {v}")
        if not 0 <= self.loss_prob < 1:
            raise ValueError(f"loss_prob must be in [0, 1), got {self.loss_prob}")
        if not 0 <= self.burst_start_prob < 1:
            raise ValueError(f"burst_start_prob must be in [0, 1), got {self.burst_start_prob}")
        if not self.burst_mean_packets >= 1:
            raise ValueError(f"burst_mean_packets must be >= 1, got {self.burst_mean_packets}")
        if not 0.0075 <= self.conn_interval_s <= 4.0:
            raise ValueError(
                f"conn_interval_s must be a BLE interval in [0.0075, 4], got {self.conn_interval_s}"
            )
        if not abs(self.asymmetry) < 2:
            raise ValueError(f"asymmetry must be in (-2, 2), got {self.asymmetry}")
        for name in ("heel_strike_peak_g", "heel_strike_cv"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be >= 0, got {v}")
        if self.compensation_gain < 0:
            raise ValueError(f"compensation_gain must be >= 0, got {self.compensation_gain}")
        if self.realism is not None and not isinstance(self.realism, Realism):
            raise TypeError(f"realism must be a Realism or None, got {type(self.realism).__name__}")
        walk = self.walking_s
        if walk < 2 * self.ramp_s + (self.turn_duration_s + 2 * self.ramp_s if self.turn else 0):
            raise ValueError(
                f"duration_s={self.duration_s} leaves {walk:.1f} s of walking after standing "
                "and calibration; too short for ramps" + (" and the turn" if self.turn else "")
            )

    @property
    def functional_s(self) -> float:
        """Seconds spent on functional calibration movements (4 moves, gaps, 2 s standing)."""
        return 4 * (self.functional_move_s + 1.0) + 2.0 if self.functional_calibration else 0.0

    @property
    def walking_s(self) -> float:
        """Seconds from walk onset to standing still again (including the ramps)."""
        return self.duration_s - self.stand_start_s - self.stand_end_s - self.functional_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field (``realism`` only when set, so the clean
        simulator's truth files stay byte-identical)."""
        d = asdict(self)
        if self.realism is None:
            d.pop("realism")
        return d

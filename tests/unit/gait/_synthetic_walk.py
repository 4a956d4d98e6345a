"""A long synthetic walk for the gait tests (test helper only).

Thigh angular velocities, hip/pelvis/lumbar angles and a pelvis heading of 240 s of walking with
varying cadence, standing pauses, turns of ~35°, lost samples, NaN angles and noise; events and
strides come from the thigh rule, so the strides carry every exclusion reason.
"""

from __future__ import annotations

import numpy as np

from imuhip.gait.events import EventConfig, SideEvents, Stride, detect_gait_events, segment_strides
from imuhip.types import JointAngles

RATE = 100.0

Walk = tuple[
    np.ndarray,  # t_s (M,)
    dict[str, np.ndarray],  # thigh mediolateral angular velocity per side (M,)
    JointAngles,
    np.ndarray,  # valid (M,)
    np.ndarray,  # pelvis heading (M,), rad
    EventConfig,
    dict[str, SideEvents],
    list[Stride],  # both sides, sorted by IC
]


def walk_signals(seed: int, dur_s: float = 240.0):
    """``t, w, angles, valid, heading`` of one synthetic walk."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur_s * RATE)) / RATE
    period = 1.05 + 0.08 * np.sin(2 * np.pi * t / 37.0) + 0.02 * rng.standard_normal(len(t))
    phase = 2 * np.pi * np.cumsum(1.0 / period) / RATE
    walking = np.ones(len(t), bool)
    for a in rng.uniform(0, dur_s - 10, 4):  # standing pauses
        walking[int(a * RATE) : int((a + rng.uniform(2, 5)) * RATE)] = False
    amp = np.where(walking, 1.0, 0.05)
    w = {
        side: amp * (3.0 * np.maximum(np.sin(phase + off), -0.3) - 0.4)
        + 0.15 * rng.standard_normal(len(t))
        for side, off in (("left", 0.0), ("right", np.pi))
    }
    hip = {
        side: np.column_stack(
            [
                0.4 * np.sin(phase + off),
                0.05 * np.cos(phase + off),
                (0.09 + 0.02 * k) * np.sin(phase + off + 0.7) + 0.01 * rng.standard_normal(len(t)),
            ]
        )
        for k, (side, off) in enumerate((("left", 0.0), ("right", np.pi)))
    }
    pel = np.column_stack(
        [0.08 * np.sin(phase + 0.3), 0.05 * np.sin(2 * phase), 0.03 * np.cos(2 * phase)]
    ) + 0.005 * rng.standard_normal((len(t), 3))
    lum = 0.04 * np.column_stack([np.sin(phase), np.cos(phase), np.sin(phase + 1.0)])
    hip["right"][4000:4003, 2] = np.nan  # NaN angles inside a stride
    valid = np.ones(len(t), bool)
    for a in rng.integers(0, len(t) - 100, 12):
        valid[a : a + int(rng.integers(5, 60))] = False
    heading = np.cumsum(np.where(rng.uniform(size=len(t)) < 0.002, 1.0, 0.0)) * 0.6
    heading = np.convolve(heading, np.ones(150) / 150, mode="same")  # turns of ~35 deg
    angles = JointAngles(t, hip, pel, lum, valid)
    return t, w, angles, valid, heading


def synthetic_walk(seed: int) -> Walk:
    """:func:`walk_signals` with the thigh rule's events and both sides' strides."""
    t, w, angles, valid, heading = walk_signals(seed)
    cfg = EventConfig()
    strides: list[Stride] = []
    events = {}
    for side in ("left", "right"):
        events[side] = detect_gait_events(t, w[side], side=side, segment="thigh", cfg=cfg)
        strides += segment_strides(events[side], t, valid, heading, cfg)
    strides.sort(key=lambda s: (s.ic_s, s.side))
    return t, w, angles, valid, heading, cfg, events, strides

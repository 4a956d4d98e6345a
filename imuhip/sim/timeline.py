"""When things happen in a simulated session: the :class:`Timeline` and gait phase crossings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from imuhip.sim.curves import FloatArray
from imuhip.sim.params import SimParams

__all__ = ["PHASE0", "TOE_OFF_PHASE", "PhaseModel", "Timeline", "phase_crossings"]

TOE_OFF_PHASE: Final = 0.6  # fraction of the gait cycle at toe-off
PHASE0: Final = 0.35  # right-side phase while standing before the walk


class PhaseModel(Protocol):
    """What :func:`phase_crossings` needs of a body (:class:`~imuhip.sim.kinematics.Body`)."""

    def phase(self, t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(phi, dphi/dt, a)``: gait phase in right-side cycles, its rate, activation."""
        ...


@dataclass(frozen=True, slots=True)
class Timeline:
    """When things happen, simulation seconds (0 = start of the simulated motion)."""

    duration_s: float
    walk_on_s: float
    walk_off_s: float
    ramp_s: float
    turn: tuple[float, float] | None
    functional: tuple[tuple[str, str, float, float], ...]  # (movement, side, start, stop)

    @classmethod
    def from_params(cls, p: SimParams) -> Timeline:
        """The timeline implied by the params' durations and switches."""
        moves: list[tuple[str, str, float, float]] = []
        t = p.stand_start_s
        if p.functional_calibration:
            for side in ("right", "left"):
                for move in ("hip_flexion", "hip_rotation"):
                    moves.append((move, side, t, t + p.functional_move_s))
                    t += p.functional_move_s + 1.0
            t += 2.0
        on = t
        off = p.duration_s - p.stand_end_s
        turn = None
        if p.turn:
            mid = 0.5 * (on + off)
            turn = (mid - 0.5 * p.turn_duration_s, mid + 0.5 * p.turn_duration_s)
        return cls(p.duration_s, on, off, p.ramp_s, turn, tuple(moves))

    @property
    def steady(self) -> tuple[float, float]:
        """Window of full-activation walking ``[walk_on + ramp, walk_off - ramp]``."""
        return self.walk_on_s + self.ramp_s, self.walk_off_s - self.ramp_s


def phase_crossings(
    body: PhaseModel, target: float, grid: tuple[FloatArray, FloatArray, FloatArray]
) -> FloatArray:
    """Times where the gait phase passes ``target`` (mod 1) while walking, simulation s.

    ``grid`` is ``(t, phi, a)`` on a dense grid; crossings are refined by Newton steps.
    """
    tg, phi, a = grid
    k = np.floor(phi - target)
    idx = np.nonzero((np.diff(k) > 0) & (a[1:] > 0.05))[0]
    goal = k[idx + 1] + target
    t = tg[idx] + (goal - phi[idx]) / (phi[idx + 1] - phi[idx]) * (tg[idx + 1] - tg[idx])
    for _ in range(3):  # Newton on the analytic phase
        ph, dph, _ = body.phase(t)
        t = t - np.where(dph > 0, (ph - goal) / np.where(dph > 0, dph, 1.0), 0.0)
    return np.asarray(t, dtype=np.float64)

"""Walking simulator with ground truth: analytic gait kinematics, IMU model, BLE link model.

``simulate_session(SimParams(...))`` returns a :class:`SimResult` (packets before and after the
link, session events, ground truth); :func:`write_simulated_recording` writes ``NAME.imrec`` plus
``NAME.truth.json`` and ``NAME.truth.npz``. See ``docs/architecture.md`` for the metric names.
"""

from imuhip.sim.params import Disconnect, MagDisturbance, SimParams
from imuhip.sim.session import SimResult, SimSamples, simulate_session, write_simulated_recording
from imuhip.sim.truth import Truth, hip_angles, lumbar_angles, pelvis_angles

__all__ = [
    "Disconnect",
    "MagDisturbance",
    "SimParams",
    "SimResult",
    "SimSamples",
    "Truth",
    "hip_angles",
    "lumbar_angles",
    "pelvis_angles",
    "simulate_session",
    "write_simulated_recording",
]

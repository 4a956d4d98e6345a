"""What :func:`~imuhip.sim.session.simulate_session` returns: :class:`SimResult`, samples.

Times are session seconds (see :mod:`imuhip.sim.session`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.ingest import protocol
from imuhip.sim.params import SimParams
from imuhip.sim.truth import Truth
from imuhip.types import RawPacket, SessionEvent, SessionMeta

__all__ = ["SimResult", "SimSamples"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SimSamples:
    """One sensor's samples before quantisation (session seconds, sensor frame).

    ``acc_m_s2``/``gyr_rad_s``/``mag_ut`` are what the sensor measured (errors included, before
    int16 rounding and clipping); ``*_true`` are the error-free values; ``q_world_sensor`` the
    true orientation at each sample.
    """

    t_s: FloatArray
    acc_m_s2: FloatArray
    gyr_rad_s: FloatArray
    mag_ut: FloatArray
    acc_true_m_s2: FloatArray
    gyr_true_rad_s: FloatArray
    mag_true_ut: FloatArray
    q_world_sensor: FloatArray


@dataclass(frozen=True)
class SimResult:
    """A simulated session.

    Attributes
    ----------
    params : SimParams
    meta : SessionMeta
        Recording header (sensor scale factors, ranges, pseudonym subject).
    packets : dict
        Per sensor, every packet the device sent, in send order, as ``(send time in session
        seconds, payload)``: before any link effect.
    delivered : list of RawPacket
        The packets that reached the host, ordered by ``host_rx_ns``.
    events : list of SessionEvent
        Calibration markers and disconnect/reconnect records, ordered by ``host_rx_ns``.
    truth : Truth
    samples : dict
        Per sensor :class:`SimSamples`.
    device_info : dict
        Per sensor the :class:`imuhip.ingest.protocol.DeviceInfo` a virtual sensor would serve.
    elapsed_s : float
        Wall time the simulation took.
    """

    params: SimParams
    meta: SessionMeta
    packets: dict[str, list[tuple[float, bytes]]]
    delivered: list[RawPacket]
    events: list[SessionEvent]
    truth: Truth
    samples: dict[str, SimSamples]
    device_info: dict[str, protocol.DeviceInfo]
    elapsed_s: float

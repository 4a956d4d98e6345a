"""What the host sees of a simulated session: sensor metadata, delivery order, link events.

Shared by :mod:`imuhip.sim.session` (walking) and :mod:`imuhip.sim.rom` (the ROM test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.ingest import protocol
from imuhip.sim.link import LinkOutcome
from imuhip.sim.params import SimParams
from imuhip.types import RawPacket, SensorMeta, SessionEvent

FloatArray = npt.NDArray[np.float64]


def _device_info(meta: SensorMeta, per_packet: int, serial: str) -> protocol.DeviceInfo:
    return protocol.DeviceInfo(
        protocol_version=protocol.PROTOCOL_VERSION,
        has_mag=meta.has_mag,
        rate_hz=int(meta.rate_hz),
        acc_range_g=int(meta.acc_range_g),
        gyr_range_dps=int(meta.gyr_range_dps),
        acc_lsb_m_s2=meta.acc_lsb_m_s2,
        gyr_lsb_rad_s=meta.gyr_lsb_rad_s,
        mag_lsb_ut=meta.mag_lsb_ut,
        samples_per_packet=per_packet,
        streaming=True,
        model=meta.model,
        serial=serial,
        firmware=meta.firmware,
    )


def _sim_sensor_meta(
    p: SimParams, placement: str, i: int, acc_lsb: float, gyr_lsb: float, *, scenario: int
) -> SensorMeta:
    """The metadata a simulated sensor reports; ``scenario`` tags its address (0 walk, 1 ROM)."""
    return SensorMeta(
        placement=placement,
        rate_hz=float(p.rate_hz),
        acc_lsb_m_s2=acc_lsb,
        gyr_lsb_rad_s=gyr_lsb,
        mag_lsb_ut=protocol.MAG_LSB_UT,
        has_mag=p.has_mag,
        address=f"SI:M0:{p.seed % 256:02X}:00:{scenario:02X}:{i:02X}",
        model="imuhip-sim",
        serial=f"SIM{p.seed:04d}{i:02d}"[-16:],
        firmware="sim-1",
        acc_range_g=float(p.acc_range_g),
        gyr_range_dps=float(p.gyr_range_dps),
    )


@dataclass(frozen=True)
class _HostDelivery:
    """What the host sees of the link: session zero, host clock, sent and delivered packets."""

    zero: float  # simulation seconds of the first delivered packet = session time 0
    epoch_ns: int  # host monotonic clock at session time 0
    packets: dict[str, list[tuple[float, bytes]]]  # per sensor: (session send time, payload)
    delivered: list[RawPacket]  # in host receive order

    def ns(self, t_sim: float) -> int:
        """Host monotonic ns of simulation time ``t_sim``."""
        return self.epoch_ns + round((t_sim - self.zero) * 1e9)


def _host_delivery(
    sensors: Sequence[str],
    sent: dict[str, tuple[FloatArray, list[bytes]]],
    outcomes: dict[str, LinkOutcome],
    rng: np.random.Generator,
) -> _HostDelivery:
    """Session clock zero at the first delivered packet, a random host epoch, delivery order."""
    all_rx = np.concatenate([o.rx_s[~o.lost] for o in outcomes.values()])
    if len(all_rx) == 0:
        raise ValueError("the link model delivered no packet at all (loss too high?)")
    zero = float(np.min(all_rx))
    host = _HostDelivery(zero, int(rng.integers(10**11, 10**13)), {}, [])
    order_rx: list[tuple[int, int, RawPacket]] = []
    for order, pl in enumerate(sensors):
        send, payloads = sent[pl]
        host.packets[pl] = [(float(s - zero), pay) for s, pay in zip(send, payloads, strict=True)]
        o = outcomes[pl]
        for j in np.nonzero(~o.lost)[0].tolist():
            rx_ns = host.ns(float(o.rx_s[j]))
            order_rx.append((rx_ns, order, RawPacket(pl, rx_ns, payloads[j])))
    order_rx.sort(key=lambda x: (x[0], x[1]))
    host.delivered.extend(x[2] for x in order_rx)
    return host


def _link_events(
    outcomes: dict[str, LinkOutcome], host_ns: Callable[[float], int]
) -> list[SessionEvent]:
    """disconnect/reconnect events of every simulated outage."""
    events: list[SessionEvent] = []
    for pl, o in outcomes.items():
        for a, b in o.disconnects:
            seen = a + min(0.25, 0.5 * (b - a))  # the host notices after a supervision timeout
            events.append(SessionEvent(host_ns(seen), "disconnect", pl, {"reason": "simulated"}))
            events.append(SessionEvent(host_ns(b), "reconnect", pl, {}))
    return events


def _sync_events(
    syncs: dict[str, list[tuple[float, int, float]]], host_ns: Callable[[float], int]
) -> list[SessionEvent]:
    """``time_sync`` events of the exchanges :func:`imuhip.sim.link.time_sync_exchanges` made."""
    events: list[SessionEvent] = []
    for pl, items in syncs.items():
        for k, (send, dev_us, recv) in enumerate(items):
            data = {
                "token": (k + 1) & 0xFF,
                "t_send_ns": host_ns(send),
                "t_recv_ns": host_ns(recv),
                "t_dev_us": dev_us,
            }
            events.append(SessionEvent(host_ns(recv), "time_sync", pl, data))
    return events

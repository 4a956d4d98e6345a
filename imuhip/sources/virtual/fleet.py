"""A set of virtual sensors and the bumble hub bleak talks to, on one :class:`LocalLink`.

``async with VirtualFleet.create(...) as fleet:`` powers everything on; inside, bleak's
``BleakScanner``/``BleakClient`` with ``backend=BumbleScanner``/``BumbleClient`` reach the sensors
(the fleet activates its hub with :func:`~imuhip.sources.bumble_backend.use_hub`).

Motion comes from the walking simulator (:func:`imuhip.sim.simulate_session`) when it is
available, else from :class:`~imuhip.sources.virtual.sensor.SyntheticSource`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip.ingest import protocol
from imuhip.sources.bumble_backend import BumbleHub, make_device, use_hub
from imuhip.sources.virtual.clock import VirtualClock
from imuhip.sources.virtual.sensor import Faults, SampleSource, SyntheticSource, VirtualSensor

__all__ = ["RecordedSource", "VirtualFleet", "default_faults", "sim_sources"]

log = logging.getLogger(__name__)


@dataclass
class RecordedSource:
    """Raw counts taken from encoded packets (e.g. the simulator's), looped when exhausted."""

    raw: npt.NDArray[np.int16]  # (N, 6|9)
    has_mag: bool

    @classmethod
    def from_payloads(cls, payloads: Iterable[bytes]) -> RecordedSource:
        """Concatenate the samples of valid packets, in order."""
        rows = []
        has_mag = False
        for p in payloads:
            h = protocol.parse_header(p)
            ch = protocol.channels(h.has_mag)
            has_mag = h.has_mag
            rows.append(
                np.frombuffer(p, "<i2", count=h.n * ch, offset=protocol.HEADER_LEN).reshape(h.n, ch)
            )
        if not rows:
            raise ValueError("no packets to take samples from")
        return cls(np.concatenate(rows).astype(np.int16), has_mag)

    def counts(self, start_idx: int, n: int) -> npt.NDArray[np.int16]:
        """Samples ``start_idx`` .. ``start_idx + n`` (wrapping around the end)."""
        idx = (start_idx + np.arange(n)) % len(self.raw)
        return self.raw[idx]


def sim_sources(
    placements: Iterable[str], *, rate_hz: int, duration_s: float, has_mag: bool, seed: int = 0
) -> dict[str, SampleSource] | None:
    """Sample sources from the walking simulator, or ``None`` if it is not available."""
    try:
        from imuhip.sim import SimParams, simulate_session  # type: ignore[attr-defined]
    except ImportError:
        return None
    placements = tuple(placements)
    try:
        params = SimParams(
            duration_s=float(duration_s),
            rate_hz=rate_hz,
            sensors=placements,
            has_mag=has_mag,
            seed=seed,
            acc_range_g=16,  # the virtual sensor rescales from these ranges
            gyr_range_dps=2000,
        )
        result = simulate_session(params)
    except (TypeError, ValueError) as err:
        log.warning("walking simulator unusable (%s); using a synthetic signal", err)
        return None
    out: dict[str, SampleSource] = {}
    for p in placements:
        pk = result.packets.get(p)
        if not pk:
            return None
        out[p] = RecordedSource.from_payloads(payload for _t, payload in pk)
    return out


def default_faults(placements: Iterable[str], duration_s: float) -> dict[str, Faults]:
    """The ``--faults`` demo: per sensor 2 disconnects, 1 % loss, bursts, some garbage.

    The disconnects fall after the simulated walker's initial quiet standing (plus 1 s), so the
    static calibration pose of the analysis stays intact; a session too short for that gets
    loss, bursts and garbage only.
    """
    try:
        from imuhip.sim import SimParams  # type: ignore[attr-defined]

        t_lo = float(SimParams().stand_start_s) + 1.0
    except (ImportError, AttributeError, TypeError):
        t_lo = 5.0
    span = duration_s - t_lo
    out = {}
    scale = min(1.0, span / 15.0)  # short demos: shorter outages, never overlapping
    for i, p in enumerate(placements):
        a = t_lo + span * (0.2 + 0.05 * i)
        b = t_lo + span * (0.6 + 0.05 * i)
        disconnects = ((a, 1.0 * scale), (b, 1.5 * scale)) if span >= 3.0 else ()
        out[p] = Faults(
            disconnects=disconnects,
            loss_prob=0.01,
            burst_interval_s=0.03,
            garbage_every=97,
            seed=i + 1,
        )
    return out


class VirtualFleet:
    """Virtual sensors keyed by placement, plus the hub; use as an async context manager."""

    def __init__(
        self,
        hub: BumbleHub,
        sensors: Mapping[str, VirtualSensor],
        clock: VirtualClock | None = None,
    ) -> None:
        self.hub = hub
        self.sensors = dict(sensors)
        first = next(iter(self.sensors.values()), None)
        self.clock = clock or (first.clock if first is not None else VirtualClock(None))
        self._ctx: contextlib.AbstractContextManager[Any] | None = None
        self._first_rx_ns: int | None = None  # stamp of the first notification received

    def packet_ns(self, placement: str, data: bytes) -> int:
        """Virtual receive stamp (ns) of notification ``data`` of ``placement``: its send time,
        and never before the first notification the host received.

        A host stamps on arrival, so no packet is stamped before the first one received, which
        is where a live session's clock starts (:class:`imuhip.live.processor.LiveProcessor`)
        and where the offline analysis starts it (:func:`imuhip.ingest.align.session_t0_ns`,
        the smallest stamp). On a busy machine the event loop can deliver a sensor's first
        notification before an earlier-sent one of another sensor: send times alone would then
        put the offline session's zero before the live one, by up to a connection interval.
        """
        t = self.sensors[placement].sent_at_ns(data)
        if self._first_rx_ns is None:
            self._first_rx_ns = t
        return max(t, self._first_rx_ns)

    def host_hooks(self) -> dict[str, Any]:
        """The keyword arguments that put :func:`imuhip.live.session.run_live` on this fleet's time.

        Stamps, session length and clock drift in virtual time, and back-pressure from the host
        to the clock: whatever the CPU load, the session records what it would on a fast machine.
        """
        return {
            "clock_ns": self.clock.host_ns,
            "packet_clock_ns": self.packet_ns,
            "on_end": self.clock.end_session,
            "on_consumed": self.clock.consumed,
        }

    @property
    def addresses(self) -> dict[str, str]:
        """Placement -> address of each virtual sensor."""
        return {p: str(s.device.public_address).split("/")[0] for p, s in self.sensors.items()}

    @classmethod
    def create(
        cls,
        placements: Iterable[str] = ("pelvis", "thigh_l", "thigh_r"),
        *,
        rate_hz: int = 200,
        has_mag: bool = False,
        duration_s: float = 60.0,
        faults: Mapping[str, Faults] | None = None,
        speed: float | None = 20.0,
        use_simulator: bool = True,
        sources: Mapping[str, SampleSource] | None = None,
        hub_mtu: int = 247,
    ) -> VirtualFleet:
        """Build (not yet power on) one virtual sensor per placement.

        Addresses are ``F0:00:00:00:00:0k``; names ``imuhip-<placement>``; device clocks get
        different offsets and drifts (-40..+40 ppm).
        """
        placements = tuple(placements)
        hub = BumbleHub(att_mtu=hub_mtu)
        clock = VirtualClock(speed)
        if sources is None and use_simulator:
            sources = sim_sources(
                placements, rate_hz=rate_hz, duration_s=min(duration_s, 60.0), has_mag=has_mag
            )
        sensors = {}
        for i, p in enumerate(placements):
            address = f"F0:00:00:00:00:{i + 1:02X}"
            src = (sources or {}).get(p) or SyntheticSource(
                rate_hz=rate_hz, has_mag=has_mag, phase=0.7 * i
            )
            sensors[p] = VirtualSensor(
                make_device(hub.link, address, f"imuhip-{p}"),
                name=f"imuhip-{p}",
                source=src,
                serial=f"VS{i + 1:04d}",
                battery_pct=90 - 7 * i,
                faults=(faults or {}).get(p),
                clock_offset_s=10.0 + 3.1 * i,
                clock_drift_ppm=-40.0 + 80.0 * i / max(1, len(placements) - 1),
                speed=speed,
                clock=clock,
            )
        hub.on_write = clock.write_sent  # the radio stamps each write with the host's clock
        return cls(hub, sensors, clock)

    async def __aenter__(self) -> VirtualFleet:
        await self.hub.power_on()
        for s in self.sensors.values():
            await s.start()
        self._ctx = use_hub(self.hub)
        self._ctx.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for s in self.sensors.values():
            await s.close()
        self.clock.release("session end")
        if self._ctx is not None:
            self._ctx.__exit__(exc_type, exc, tb)
            self._ctx = None

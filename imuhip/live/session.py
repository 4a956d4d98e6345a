"""Live session supervisor: BLE source -> recorder -> decode -> clock -> fusion -> hip angles.

The order is fixed: every packet is written to the recording *before* anything decodes it. The
processing side (:class:`~imuhip.live.processor.LiveProcessor`) is synchronous and deterministic:
fed the same packets and events in the same order (live, or from the recording with
:func:`~imuhip.live.processor.replay_metrics`) it produces the same loss accounting and clock
models. :func:`run_live` is the async side: it connects the sensors, records, feeds the processor
and reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imuhip import __version__
from imuhip.errors import SensorConnectionError
from imuhip.live.latency import LatencyHistogram
from imuhip.live.processor import LiveProcessor, SensorLiveState, replay_metrics, warm_up
from imuhip.live.processor import _feed as _feed
from imuhip.types import RawPacket, SessionEvent, SessionMeta

__all__ = [
    "LatencyHistogram",
    "LiveConfig",
    "LiveProcessor",
    "LiveResult",
    "SensorLiveState",
    "replay_metrics",
    "run_live",
]


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """Session-level settings.

    Parameters
    ----------
    duration_s : float or None
        Session length in session seconds (``None``: until stopped).
    time_scale : float
        Session seconds per wall second (1 for real sensors; virtual sensors may run faster).
    subject : str
        Pseudonym stored in the recording.
    tick_s : float
        Wall period of status callbacks.
    fusion : bool
        Run the online filter and hip angles (the recorder and loss accounting always run).
    """

    duration_s: float | None = None
    time_scale: float = 1.0
    subject: str = "anon"
    tick_s: float = 0.25
    fusion: bool = True

    def __post_init__(self) -> None:
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")


@dataclass
class LiveResult:
    """What a live session produced."""

    path: Path
    meta: SessionMeta | None
    metrics: dict[str, Any]
    links: dict[str, dict[str, Any]]
    failed: dict[str, str]
    duration_s: float
    latency_ms: dict[str, float] | None
    packets_recorded: int
    events_recorded: int
    strides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per side ``valid``, ``total``, ``mean_excursion_deg`` as counted live (from the end of
    the calibration period on; :mod:`imuhip.live.strides`)."""


@dataclass
class LiveSnapshot:
    """What a status display needs, taken on the event loop between batches."""

    elapsed_s: float
    links: Mapping[str, Any]
    processor: LiveProcessor | None
    failed: Mapping[str, str]
    remaining_s: float | None = None  # session seconds left (None: no duration given)


async def run_live(
    targets: Mapping[str, Any],
    out_path: str | Path,
    cfg: LiveConfig | None = None,
    stream_cfg: Any | None = None,
    *,
    client_backend: Any | None = None,
    scanner_backend: Any | None = None,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[LiveSnapshot], None] | None = None,
    overwrite: bool = False,
    driver: Any | None = None,
    clock_ns: Callable[[], int] | None = None,
    packet_clock_ns: Callable[[str, bytes], int] | None = None,
    on_end: Callable[[], None] | None = None,
    on_consumed: Callable[[int], None] | None = None,
) -> LiveResult:
    """Run one live session to completion and close its recording.

    Parameters
    ----------
    targets : mapping placement -> address or BLEDevice
    out_path : path of the ``.imrec`` to write
    cfg : LiveConfig
    stream_cfg : imuhip.sources.ble.StreamConfig
    client_backend, scanner_backend : bleak backend classes (``None``: the platform's)
    stop : asyncio.Event, optional
        Set it (e.g. from a SIGINT handler) to end the session cleanly.
    on_tick : callable, optional
        Called every ``cfg.tick_s`` wall seconds with a :class:`LiveSnapshot`.
    driver : SensorDriver, optional
        Passed to :class:`~imuhip.sources.ble.BleSession` (e.g.
        ``imuhip.sources.movesense.driver.AutoDriver()`` for a session mixing imuhip sensors and
        Movesense).
    clock_ns : callable, optional
        Host clock in ns. Default ``time.monotonic_ns`` (scaled by ``cfg.time_scale``). A
        simulator passes its virtual clock (:meth:`imuhip.sources.virtual.VirtualClock.host_ns`):
        packets
        are then stamped in virtual session time, ``cfg.time_scale`` is ignored (the recording
        says ``time_scale`` 1, ``host_clock`` ``"virtual"``) and ``cfg.duration_s`` counts virtual
        seconds, so the session, its clock-drift fit and its loss accounting do not depend on
        how fast the machine runs the simulation.
    packet_clock_ns : callable, optional
        Per-sensor receive stamp of data notifications (with ``clock_ns``; see
        :class:`~imuhip.sources.ble.BleSession`).
    on_end : callable, optional
        Called once when the session's time is up (or it is stopped), before the links are
        closed (a simulator stops its virtual time:
        :meth:`imuhip.sources.virtual.VirtualClock.end_session`).
    on_consumed : callable, optional
        Called after each handled batch with the host stamp (ns) up to which everything received
        has been recorded and processed (a simulator slows its virtual time down to the host's
        pace: :meth:`imuhip.sources.virtual.VirtualClock.consumed`). Pass all four simulator hooks
        with
        ``**fleet.host_hooks()``.

    Raises
    ------
    SensorConnectionError
        When no sensor at all could be connected and started (nothing is recorded then).
    """
    from imuhip.ingest.recording import RecordingWriter
    from imuhip.sources.ble import BleSession, StreamConfig

    cfg = cfg or LiveConfig()
    stream_cfg = stream_cfg or StreamConfig()
    stop = stop or asyncio.Event()
    out = Path(out_path)
    ble = BleSession(
        targets,
        stream_cfg,
        client_backend=client_backend,
        scanner_backend=scanner_backend,
        driver=driver,
        clock_ns=clock_ns,
        packet_clock_ns=packet_clock_ns,
    )
    virtual = clock_ns is not None
    scale = 1.0 if virtual else cfg.time_scale

    def session_now_s() -> float:
        # session seconds on the host clock the packets are stamped with
        return clock_ns() * 1e-9 if clock_ns is not None else time.monotonic() * scale

    if cfg.fusion:
        # load the compiled kernels now, not on the first packet: that took 1.5-9 s during
        # which the event loop recorded nothing (scripts/kill9_live.py)
        warm_up(has_mag=False)
    try:
        await ble.connect_all()
        if cfg.fusion and any(m.has_mag for m in ble.meta.values()):
            warm_up(has_mag=True)
        await ble.start_all()
    except BaseException:
        await ble.close()
        raise
    live = [p for p in targets if p in ble.meta and p not in ble.failed]
    if not live:
        await ble.close()
        raise SensorConnectionError(
            "no sensor could be connected and started: "
            + "; ".join(f"{k}: {v}" for k, v in ble.failed.items())
        )
    meta = SessionMeta(
        session_id=uuid.uuid4().hex[:12],
        start_wall_time=datetime.now(UTC).isoformat(timespec="seconds"),
        subject=cfg.subject,
        sensors=tuple(ble.meta[p] for p in live),
        software=f"imuhip {__version__}",
        extra={
            "source": "live",
            "rate_hz": stream_cfg.rate_hz,
            "not_connected": dict(ble.failed),
            "time_scale": scale,
            "host_clock": "virtual" if virtual else "monotonic",
        },
    )
    writer = RecordingWriter(out, meta, overwrite=overwrite)
    proc = LiveProcessor(meta, fusion=cfg.fusion)
    n_packets = 0
    n_events = 0
    recorded = set(live)
    last_ns = 0

    def handle(batch: list[Any]) -> None:
        nonlocal n_packets, n_events, last_ns
        for it in batch:
            last_ns = max(last_ns, it.host_rx_ns)
            if isinstance(it, RawPacket):
                if it.sensor not in recorded:
                    continue  # late packets of a sensor refused at START (not in the recording)
                writer.write_packet(it)  # recorded before anything decodes it
                n_packets += 1
                proc.push(it.sensor, [it])  # per packet, exactly as replay_metrics does
                for ev in proc.take_events():  # the live segment calibration, once
                    writer.write_event(ev)
                    n_events += 1
            else:
                writer.write_event(it)
                n_events += 1
                proc.on_event(it)

    t_start = session_now_s()
    deadline = None if cfg.duration_s is None else t_start + cfg.duration_s
    sup = asyncio.create_task(ble.supervise(stop))
    next_tick = time.monotonic()
    q = ble.queue
    try:
        while not stop.is_set():
            if on_consumed is not None:
                # idle: everything stamped so far is handled; busy: up to the last handled item
                on_consumed(ble.clock_ns() if q.empty() else last_ns)
            now = session_now_s()
            if deadline is not None and now >= deadline:
                break
            if on_tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + cfg.tick_s
                left = None if deadline is None else deadline - now
                on_tick(LiveSnapshot(now - t_start, ble.links, proc, ble.failed, left))
            if sup.done():
                break
            if q.empty():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        batch = [await q.get()]
                        while not q.empty() and len(batch) < 1024:
                            batch.append(q.get_nowait())
                        handle(batch)
                continue
            batch = []
            while not q.empty() and len(batch) < 1024:
                batch.append(q.get_nowait())
            handle(batch)
            await asyncio.sleep(0)
    finally:
        t_end = session_now_s()  # the session ends here; closing the links is not part of it
        if on_end is not None:
            on_end()
        stop.set()
        sup.cancel()  # a reconnect in progress must not delay the end of the session
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await sup
        await ble.close()
        rest = []
        while not q.empty():
            rest.append(q.get_nowait())
        handle(rest)
        # drops since the last supervision tick: marked now, straight to the file (the queue
        # they would go through is what overflowed)
        handle(ble.take_drops())
        metrics = proc.metrics()
        links = {
            p: {
                "state": ln.state,
                "battery_pct": ln.battery_pct,
                "att_mtu": ln.att_mtu,
                "notifications": ln.notifications,
                "queue_drops": ln.queue_drops,
                "oversized": ln.oversized,
                "disconnects": ln.disconnects,
                "reconnects": ln.reconnects,
                "error": ln.error,
            }
            for p, ln in ble.links.items()
        }
        now_ns = ble.clock_ns()
        for p in live:
            writer.write_event(
                SessionEvent(now_ns, "loss_accounting", p, {**metrics[p], **links[p]})
            )
        duration = t_end - t_start
        writer.close(
            stop_data={
                "reason": "duration" if deadline and t_end >= deadline else "stopped",
                "failed": dict(ble.failed),
            }
        )
        # after the recording is closed: the hip angles still waiting for the next heading
        # anchor, and the last strides
        proc.finish()
    return LiveResult(
        path=out,
        meta=meta,
        metrics=metrics,
        links=links,
        failed=dict(ble.failed),
        duration_s=duration,
        latency_ms=proc.latency_percentiles_ms(),
        packets_recorded=n_packets,
        events_recorded=n_events + len(live) + 1,
        strides=_stride_summary(proc),
    )


def _stride_summary(proc: LiveProcessor) -> dict[str, dict[str, Any]]:
    if proc.strides is None:
        return {}
    return {
        side: {
            "valid": s.valid,
            "total": s.total,
            "mean_excursion_deg": s.mean_excursion_deg,
        }
        for side, s in proc.strides.sides.items()
    }

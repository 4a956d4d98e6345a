"""Guided live seated 90/90 ROM test: prompts, recording through the live path, phase markers.

``imuhip rom-test --live --sensor thigh_l=ADDR --sensor thigh_r=ADDR [--sensor pelvis=ADDR]
--out SESSION`` records with :func:`imuhip.live.session.run_live` while a guide walks the clinician
through the protocol of :func:`imuhip.sim.rom.rom_schedule` (per side: neutral, then three times
maximal IR → neutral → maximal ER → neutral). Each phase becomes a ``calibration_start`` /
``calibration_end`` marker pair (``movement`` ``rom_neutral``/``rom_ir``/``rom_er``, ``side``,
``repetition``, ``start_s``/``stop_s`` in session seconds), which :mod:`imuhip.gait.rom` uses to
find
neutral and the repetitions.

Pacing: with real sensors and a terminal, each phase ends when the clinician presses Enter
(the position is reached and held); otherwise (``--simulate``, or no terminal) phases advance
on the schedule's timer. With ``--simulate`` the virtual sensors (:class:`imuhip.sources.virtual.
VirtualFleet`) stream the simulated ROM test (:mod:`imuhip.sim.rom`), so the timer is the
simulator's schedule and the result can be compared with its truth.

:func:`run_live` has no hook to inject events into the recording it writes, so the session is
recorded to ``OUT.live.imrec`` and then rewritten to ``OUT`` with the markers merged in host-time
order (every packet and event verbatim); the temporary file is removed only after that. A test
that is interrupted (Ctrl-C) or fails keeps ``OUT.live.imrec``: nothing recorded is deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imuhip.errors import ImuhipError, OptionError
from imuhip.interrupts import interrupt_event, noted_interrupts
from imuhip.sim.rom import RomPhase, RomSimParams, rom_schedule
from imuhip.types import SessionEvent

__all__ = ["PROMPTS", "GuideResult", "merge_markers", "phase_prompt", "run_guided_rom_test"]

log = logging.getLogger(__name__)

PROMPTS = {
    "neutral": "hold the leg in NEUTRAL (shank vertical), keep still",
    "ir": "rotate maximally INTERNAL (foot moves outward) and hold, then back to neutral",
    "er": "rotate maximally EXTERNAL (foot moves inward) and hold, then back to neutral",
}


def phase_prompt(ph: RomPhase, repetitions: int) -> str:
    """The line shown to the clinician when ``ph`` begins."""
    if ph.repetition == 0:
        return f"Side {ph.side.upper()}, start: {PROMPTS[ph.kind]}"
    what = "back in NEUTRAL, keep still" if ph.kind == "neutral" else PROMPTS[ph.kind]
    return f"Side {ph.side.upper()}, repetition {ph.repetition}/{repetitions}: {what}"


@dataclass
class GuideResult:
    """Host-clock marks of the phases: ``(phase, start_ns, stop_ns)``."""

    marks: list[tuple[RomPhase, int, int]]


def merge_markers(
    raw_path: Path,
    out_path: Path,
    marks: Sequence[tuple[RomPhase, int, int]],
    *,
    overwrite: bool = False,
) -> int:
    """Rewrite ``raw_path`` to ``out_path`` with one marker pair per phase; returns their count.

    ``start_s``/``stop_s`` are session seconds: host ns minus the recording's first packet
    receive time (the session clock zero of :func:`imuhip.ingest.align.session_t0_ns`).
    """
    from imuhip.ingest.recording import RecordingWriter, read_recording

    rec = read_recording(raw_path)
    if not rec.packets:
        raise ImuhipError(f"the live recording {raw_path} holds no sensor data")
    t0 = min(p.host_rx_ns for p in rec.packets)
    events = [e for e in rec.events if e.kind != "stop"]
    stop = next((e for e in rec.events if e.kind == "stop"), None)
    for ph, a, b in marks:
        data = {
            "movement": ph.movement,
            "side": ph.side,
            "repetition": ph.repetition,
            "start_s": (a - t0) * 1e-9,
            "stop_s": (b - t0) * 1e-9,
            "source": "rom-test --live",
        }
        events.append(SessionEvent(a, "calibration_start", None, data))
        events.append(SessionEvent(b, "calibration_end", None, dict(data)))
    frames: list[tuple[int, int, Any]] = [(p.host_rx_ns, 1, p) for p in rec.packets]
    frames += [(e.host_rx_ns, 0, e) for e in events]
    frames.sort(key=lambda f: (f[0], f[1]))
    w = RecordingWriter(out_path, rec.meta, overwrite=overwrite)
    try:
        for _, kind, fr in frames:
            if kind:
                w.write_packet(fr)
            else:
                w.write_event(fr)
    finally:
        w.close(stop_data=dict(stop.data) if stop is not None else None)
    return 2 * len(marks)


async def _until(clock_ns: Callable[[], int], target_ns: int) -> None:
    """Poll a host clock (possibly virtual, running faster than the wall) until ``target_ns``."""
    while clock_ns() < target_ns:  # noqa: ASYNC110 - a clock, not an event, is awaited
        await asyncio.sleep(0.01)


async def _guide(
    schedule: Sequence[RomPhase],
    clock_ns: Callable[[], int],
    started: asyncio.Event,
    say: Callable[[str], None],
    *,
    wait_enter: bool,
    repetitions: int,
    t0_ns: int | None = None,
) -> GuideResult:
    """Announce each phase and stamp it; timer pacing or Enter per phase.

    ``t0_ns``: the host-clock time of the schedule's zero (default: when data first flows).
    """
    await started.wait()
    t0 = clock_ns() if t0_ns is None else t0_ns
    marks: list[tuple[RomPhase, int, int]] = []
    loop = asyncio.get_running_loop()
    prev_stop: int | None = None
    for ph in schedule:
        if wait_enter:
            say(phase_prompt(ph, repetitions) + "  [Enter when done]")
            a = prev_stop if prev_stop is not None else clock_ns()
            await loop.run_in_executor(None, sys.stdin.readline)
            b = clock_ns()
        else:
            a_target = t0 + round(ph.start_s * 1e9)
            b_target = t0 + round(ph.stop_s * 1e9)
            await _until(clock_ns, a_target)
            say(phase_prompt(ph, repetitions) + f"  ({ph.stop_s - ph.start_s:.1f} s)")
            await _until(clock_ns, b_target)
            a, b = a_target, b_target
        marks.append((ph, a, b))
        prev_stop = b
    say("Test complete: relax.")
    return GuideResult(marks)


def _targets(args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in args.sensor:
        placement, sep, address = str(item).partition("=")
        if not sep or not placement or not address:
            raise OptionError(f"--sensor expects PLACEMENT=ADDRESS, got {item!r}")
        out[placement.strip()] = address.strip()
    return out


def _pair(text: str, name: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in str(text).split(","))
    except ValueError as err:
        raise OptionError(f"{name} expects L,R degrees, got {text!r}") from err
    return a, b


def run_guided_rom_test(args: argparse.Namespace) -> Path:
    """Run the guided test from the ``rom-test --live`` options; returns the recording path."""
    if args.out is None:
        raise ImuhipError("--live needs --out SESSION.imrec (the recording to write)")
    out = Path(args.out)
    if out.suffix != ".imrec":
        out = out.with_name(out.name + ".imrec")
    if out.exists() and not args.overwrite:
        raise ImuhipError(f"{out} exists (use --overwrite to replace it)")
    if not out.parent.exists():
        raise FileNotFoundError(2, "no such directory", str(out.parent))
    targets = _targets(args)
    if not args.simulate:
        missing = [p for p in ("thigh_l", "thigh_r") if p not in targets]
        if missing:
            raise ImuhipError(
                "the ROM test needs both thigh sensors: add "
                + " ".join(f"--sensor {p}=ADDRESS" for p in missing)
                + " (or use --simulate)"
            )
    try:
        params = RomSimParams(
            ir_deg=_pair(args.rom_ir_deg, "--rom-ir-deg"),
            er_deg=_pair(args.rom_er_deg, "--rom-er-deg"),
        )
    except ValueError as err:
        raise ImuhipError(str(err)) from err
    interactive = sys.stdin.isatty() and not args.simulate
    raw = out.with_name(out.name[: -len(".imrec")] + ".live.imrec")
    if raw.exists() and not args.overwrite:
        raise ImuhipError(
            f"{raw} exists (the recording of an interrupted test): move it away, "
            "or use --overwrite to replace it"
        )
    try:
        # Ctrl-C from here on stops the session cleanly and keeps its recording, never inside an
        # import or the loop's set-up
        with noted_interrupts() as noted:
            marks = asyncio.run(_session(args, targets, params, raw, interactive, noted))
    except BaseException:
        # interrupted or failed: what was recorded stays (a readable recording without markers)
        if raw.exists():
            log.warning("the test did not finish; the recording so far is kept in %s", raw)
        raise
    n = merge_markers(raw, out, marks.marks, overwrite=args.overwrite)
    raw.unlink()  # only once its packets and events are all in OUT
    log.info("wrote %s with %d phase markers", out, n)
    return out


def _say_factory() -> Callable[[str], None]:
    try:
        from rich.console import Console

        console = Console(stderr=True, highlight=False, soft_wrap=True)

        def say(msg: str) -> None:
            console.print(f"[bold cyan]▶[/] {msg}")

        return say
    except ImportError:  # pragma: no cover - rich is a dependency

        def plain(msg: str) -> None:
            sys.stderr.write(f"> {msg}\n")

        return plain


async def _session(
    args: argparse.Namespace,
    targets: dict[str, str],
    params: RomSimParams,
    raw: Path,
    interactive: bool,
    noted: threading.Event,
) -> GuideResult:
    interrupted = interrupt_event(noted)
    from imuhip.live.session import LiveConfig, run_live
    from imuhip.sources.ble import StreamConfig

    schedule = rom_schedule(params)
    total_s = schedule[-1].stop_s + params.end_still_s
    say = _say_factory()
    say(
        "Seated 90/90 hip rotation test: sit with hips and knees at 90°, thigh sensors on the "
        "lateral mid-thigh. Follow the prompts."
    )
    started = asyncio.Event()
    stop = asyncio.Event()

    def on_tick(_snap: Any) -> None:
        started.set()

    rate = params.base.rate_hz
    stream_cfg = StreamConfig(rate_hz=rate)
    cfg = LiveConfig(duration_s=None, subject=getattr(args, "subject", None) or "ROM01")
    kw: dict[str, Any] = {"stop": stop, "on_tick": on_tick, "overwrite": True}
    if not args.simulate:
        clock_ns = time.monotonic_ns  # BleSession's default host clock
        guide = asyncio.create_task(
            _guide(schedule, clock_ns, started, say, wait_enter=interactive,
                   repetitions=params.repetitions)
        )  # fmt: skip
        live = asyncio.create_task(run_live(targets, raw, cfg, stream_cfg, **kw))
        return await _finish(guide, live, stop, interrupted)

    import logging as _logging

    from imuhip.sim import SimParams
    from imuhip.sim.rom import simulate_rom_session
    from imuhip.sources.bumble_backend import BumbleClient, BumbleScanner
    from imuhip.sources.virtual import RecordedSource, VirtualFleet

    _logging.getLogger("bumble").setLevel(_logging.CRITICAL)
    placements = tuple(targets) or ("pelvis", "thigh_l", "thigh_r")
    base = SimParams(
        sensors=placements, rate_hz=rate, has_mag=False, seed=args.seed, acc_range_g=16,
        gyr_range_dps=2000,
    )  # fmt: skip
    sim = simulate_rom_session(RomSimParams(base=base, ir_deg=params.ir_deg, er_deg=params.er_deg))
    sources = {p: RecordedSource.from_payloads(pl for _t, pl in sim.packets[p]) for p in placements}
    speed = args.speed if args.speed is not None else (1.0 if sys.stdin.isatty() else 20.0)
    fleet = VirtualFleet.create(
        placements, rate_hz=rate, has_mag=False, duration_s=total_s + 5, speed=speed,
        sources=sources,
    )  # fmt: skip
    async with fleet:
        kw.update(client_backend=BumbleClient, scanner_backend=BumbleScanner)
        kw.update(fleet.host_hooks())
        # the data's own clock: the virtual sensors play the simulated test from fleet time 0,
        # so the schedule starts there, however long connecting took
        guide = asyncio.create_task(
            _guide(schedule, fleet.clock.host_ns, started, say, wait_enter=False,
                   repetitions=params.repetitions, t0_ns=0)
        )  # fmt: skip
        live = asyncio.create_task(run_live(fleet.addresses, raw, cfg, stream_cfg, **kw))
        res = await _finish(
            guide, live, stop, interrupted, tail_s=params.end_still_s, clock=fleet.clock
        )
    truth = sim.truth["rom"]
    say(
        "simulated truth: "
        + "; ".join(
            f"{s} IR {truth[s]['ir_mean_deg']:.1f}°, ER {truth[s]['er_mean_deg']:.1f}°"
            for s in ("left", "right")
        )
    )
    return res


async def _finish(
    guide: asyncio.Task[GuideResult],
    live: asyncio.Task[Any],
    stop: asyncio.Event,
    interrupted: asyncio.Event,
    *,
    tail_s: float = 1.0,
    clock: Any | None = None,
) -> GuideResult:
    """Wait for the guide; then record ``tail_s`` more and stop the session.

    Ctrl-C (``interrupted``) stops the session as its end would (the recording is closed with
    everything received), then raises KeyboardInterrupt: the caller keeps the recording."""
    waiter = asyncio.ensure_future(interrupted.wait())
    done, _ = await asyncio.wait({guide, live, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        guide.cancel()
        stop.set()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(live, timeout=_STOP_TIMEOUT_S)
        raise KeyboardInterrupt
    waiter.cancel()
    if live in done and guide not in done:
        guide.cancel()
        live.result()  # raises the session's error
        raise ImuhipError("the live session ended before the test was complete")
    res = guide.result()
    if clock is not None:
        await clock.sleep_until(clock.now_s() + tail_s)
    else:
        await asyncio.sleep(tail_s)
    stop.set()
    await live
    return res


_STOP_TIMEOUT_S = 15.0  # a session stopped by Ctrl-C has this long to close its recording

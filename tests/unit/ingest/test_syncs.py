"""TIME_SYNC anchors as Cristian lower bounds (imuhip.ingest.align.syncs), known answers.

The synthetic link: a device clock ``host = OFFSET + (1 + DRIFT) * t_dev``; data packets every
50 ms reach the host at the next 30-ms connection event plus 4 ms (three wait levels 10 ms apart,
the ceiling the data give), TIME_SYNC requests leave at random times and reach the device after
4 ms plus a uniform wait within one connection interval (the floors).
"""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.ingest.align import fit_clock, session_clocks
from imuhip.ingest.align.syncs import (
    CEILING_TOLERANCE_S,
    MIN_SYNCS,
    SyncAnchors,
    SyncFloor,
    every_sensor_has_floor,
    fit_floor,
    sync_anchors,
    unwrap_device_us,
)
from imuhip.types import ClockModel, DecodeStats, ImuSamples, SessionEvent

OFFSET = -12.3456
DRIFT = 40e-6
LAT = 0.004
CI = 0.030


def truth(t_dev: np.ndarray) -> np.ndarray:
    return OFFSET + (1.0 + DRIFT) * t_dev


def _data(duration_s: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """Packet device times and their host receive times (session s)."""
    t_dev = 20.0 + np.arange(0.05, duration_s, 0.05)
    host = np.ceil((truth(t_dev) + LAT) / CI) * CI
    return t_dev, host


def _floors(n: int, duration_s: float = 120.0, seed: int = 0) -> SyncAnchors:
    rng = np.random.default_rng(seed)
    t_send = np.sort(rng.uniform(truth(np.array([20.5]))[0], truth(np.array([duration_s]))[0], n))
    arrive = t_send + LAT + rng.uniform(0.0, CI, n)
    t_dev = (arrive - OFFSET) / (1.0 + DRIFT)
    order = np.argsort(t_dev)  # as sync_anchors holds them
    return SyncAnchors(t_dev[order], (t_send - t_dev)[order])


def _ceiling() -> ClockModel:
    t_dev, host = _data()
    return fit_clock(t_dev, host)


def test_the_floor_line_is_the_device_clock_within_a_fraction_of_a_millisecond() -> None:
    model = fit_floor(_floors(240), _ceiling())
    assert model is not None
    t = np.linspace(20.0, 120.0, 50)
    # the floors lie LAT + wait below the truth: the tightest of 240 within ~0.3 ms of LAT
    err = model.to_session(t) - (truth(t) - LAT)
    assert np.abs(err).max() < 0.5e-3, np.abs(err).max()
    assert model.drift_ppm == pytest.approx(DRIFT * 1e6, abs=5.0)
    # the ceiling of these commensurate packets is flat over 100 s: its drift is not seen yet
    assert abs(_ceiling().drift_ppm) < 5.0


def test_too_few_replies_give_no_floor_clock() -> None:
    assert fit_floor(_floors(MIN_SYNCS - 1), _ceiling()) is None
    assert fit_floor(_floors(MIN_SYNCS), _ceiling()) is not None


def test_a_reply_above_the_data_ceiling_is_dropped() -> None:
    good = _floors(120)
    bad = SyncAnchors(
        np.append(good.t_dev_s, 70.0),
        np.append(good.floor_s, truth(np.array([70.0]))[0] - 70.0 + 0.050),  # 50 ms too late
    )
    a, b = fit_floor(good, _ceiling()), fit_floor(bad, _ceiling())
    assert a is not None and b is not None
    assert b.offset_s == a.offset_s and b.drift_ppm == a.drift_ppm
    assert CEILING_TOLERANCE_S < 0.050


def test_unwrap_across_the_u32_microsecond_wrap() -> None:
    wrap = 2**32 * 1e-6  # 4294.967296 s
    ref = np.array([wrap - 0.010, 100.0, wrap + 5.0])
    raw = np.array([3_000, 100_250_000, 5_100_000])  # 3 ms after the wrap, +0.25 s, +0.1 s
    got = unwrap_device_us(raw, ref)
    np.testing.assert_allclose(got, [wrap + 0.003, 100.25, wrap + 5.1], atol=1e-9)


def _samples(t_dev: np.ndarray, host_s: np.ndarray, t0_ns: int) -> ImuSamples:
    n = len(t_dev)
    z = np.zeros((n, 3))
    return ImuSamples(
        placement="thigh_l",
        rate_hz=20.0,
        sample_idx=np.arange(n, dtype=np.int64),
        t_dev_s=t_dev,
        host_rx_ns=(t0_ns + np.round(host_s * 1e9)).astype(np.int64),
        acc_m_s2=z,
        gyr_rad_s=z,
        mag_ut=None,
        saturated=np.zeros(n, bool),
        stats=DecodeStats(n, n, n, {}, 0, 0, 0, 0, ()),
    )


def _sync_events(sensor: str, anchors: SyncAnchors, t0_ns: int) -> list[SessionEvent]:
    out = []
    for td, f in zip(anchors.t_dev_s, anchors.floor_s, strict=True):
        send = t0_ns + round((td + f) * 1e9)
        out.append(
            SessionEvent(
                send + 60_000_000,
                "time_sync",
                sensor,
                {
                    "token": 1,
                    "t_send_ns": send,
                    "t_recv_ns": send + 60_000_000,
                    "t_dev_us": round(td * 1e6) % 2**32,
                },
            )
        )
    return out


def test_sync_events_become_floor_points_from_the_first_sample_on() -> None:
    t0 = 5_000_000_000
    t_dev, host = _data()
    s = _samples(t_dev, host - host.min(), t0)
    floors = _floors(60)
    early = SyncAnchors(np.array([10.0]), np.array([-30.0]))  # sent before the first sample
    events = _sync_events("thigh_l", early, t0 - round(host.min() * 1e9)) + _sync_events(
        "thigh_l", floors, t0 - round(host.min() * 1e9)
    )
    got = sync_anchors(events, {"thigh_l": s}, t0)["thigh_l"]
    assert len(got) == 60
    np.testing.assert_allclose(got.t_dev_s, floors.t_dev_s, atol=1e-6)
    np.testing.assert_allclose(got.floor_s, floors.floor_s - host.min(), atol=2e-6)


def test_floors_for_every_sensor_or_for_none() -> None:
    t0 = 0
    t_dev, host = _data()
    a = _samples(t_dev, host, t0)
    b = _samples(t_dev, host + 0.0002, t0)
    events = _sync_events("a", _floors(120, seed=1), t0)
    only_a = session_clocks({"a": a, "b": b}, t0, events)
    ceil_a = fit_clock(t_dev, host)
    # b has none: both keep the packets' clock
    assert only_a["a"].offset_s == pytest.approx(ceil_a.offset_s, abs=1e-9)
    both = session_clocks(
        {"a": a, "b": b}, t0, events + _sync_events("b", _floors(120, seed=2), t0)
    )
    assert every_sensor_has_floor(
        {"a": fit_floor(_floors(40), ceil_a), "b": fit_floor(_floors(40), ceil_a)}, ["a", "b"]
    )
    t = np.array([60.0])
    assert abs(float(both["a"].to_session(t)[0] - (truth(t)[0] - LAT))) < 1.5e-3
    assert abs(float(ceil_a.to_session(t)[0] - (truth(t)[0] - LAT))) > 3e-3  # the ceiling's wait


def test_the_live_floor_follows_the_offline_one_and_holds_bounded_memory() -> None:
    floors = _floors(240)
    ceiling = _ceiling()
    offline = fit_floor(floors, ceiling)
    assert offline is not None
    live = SyncFloor(max_points=64)
    worst = 0.0
    for k, (td, f) in enumerate(zip(floors.t_dev_s, floors.floor_s, strict=True)):
        live.add(td, f)
        m = live.model(td, ceiling)
        if k + 1 < MIN_SYNCS:
            assert m is None
            continue
        assert m is not None
        if k >= 40:  # ~15 s of replies
            worst = max(worst, abs(float(m.to_session([td])[0] - offline.to_session([td])[0])))
    assert len(live) == 64  # the ring keeps the newest points only
    # a reply above the packets' clock at its own time cannot be: refused, counted
    t_bad = float(floors.t_dev_s[-1])
    bad_floor = float(ceiling.to_session([t_bad])[0]) - t_bad + 0.050
    assert not live.add(t_bad, bad_floor, ceiling) and live.refused == 1
    assert live.add(t_bad, bad_floor - 0.060, ceiling)
    assert worst < 2.0e-3, worst
    live.reset()
    assert len(live) == 0 and live.model(100.0, ceiling) is None


def test_the_live_floor_takes_a_crystals_drift_from_the_packets_only() -> None:
    """Before the floors span 60 s the live floor carries its level with the packets' drift,
    unless that drift is no crystal's (a short-span fit after a reconnect: hundreds of ppm)."""
    floors = _floors(60, duration_s=40.0)
    live = SyncFloor()
    for td, f in zip(floors.t_dev_s, floors.floor_s, strict=True):
        live.add(td, f)
    t_now = float(floors.t_dev_s[-1]) + 10.0
    for ppm, used in ((40.0, 40.0), (-60.0, -60.0), (500.0, 0.0)):
        ceiling = ClockModel(offset_s=OFFSET + 0.02, drift_ppm=ppm, residual_jitter_s=0.0)
        m = live.model(t_now, ceiling)
        assert m is not None and m.drift_ppm == pytest.approx(used), ppm

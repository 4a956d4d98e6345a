"""Replay harness: byte-identical packets, pacing, and chunked decode == batch decode."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest.decode import StreamDecoder, decode_session
from imuhip.ingest.protocol import encode_packet
from imuhip.ingest.recording import Recording, RecordingWriter, read_recording
from imuhip.sources.replay import replay_packets
from imuhip.types import RawPacket
from tests.unit.ingest.test_recording import make_meta

PLACEMENTS = ("pelvis", "thigh_l", "thigh_r")


def synth_recording(path: Path, n_packets: int = 120, seed: int = 0) -> list[RawPacket]:
    """3 sensors, 100 Hz, 5 samples/packet, BLE-like bursty arrival, with loss, damage, dups."""
    rng = np.random.default_rng(seed)
    meta = make_meta(PLACEMENTS)
    meta = dataclasses.replace(
        meta, sensors=tuple(dataclasses.replace(s, rate_hz=100.0) for s in meta.sensors)
    )
    packets = []
    for k in range(n_packets):
        for j, p in enumerate(PLACEMENTS):
            samples = rng.integers(-20000, 20000, size=(5, 6))
            payload = encode_packet(k, 2_000_000 + k * 50_000 + j * 7, samples)
            # arrival: burst per 30 ms connection interval + jitter
            t_ns = 5_000_000_000 + ((k * 50 + 30) // 30) * 30_000_000 + j * 250_000
            t_ns += int(rng.integers(0, 4_000_000))
            if p == "pelvis" and k == 40:
                continue  # lost
            if p == "thigh_l" and k == 60:
                payload = payload[:20] + bytes([payload[20] ^ 0x55]) + payload[21:]  # bad CRC
            packets.append(RawPacket(p, t_ns, payload))
            if p == "thigh_r" and k == 70:
                packets.append(RawPacket(p, t_ns + 10_000, payload))  # duplicate
    packets.sort(key=lambda q: q.host_rx_ns)
    with RecordingWriter(path, meta) as w:
        for q in packets:
            w.write_packet(q)
    return packets


@pytest.fixture
def rec(tmp_path: Path) -> tuple[Recording, list[RawPacket]]:
    path = tmp_path / "r.imrec"
    packets = synth_recording(path)
    return read_recording(path), packets


def test_unpaced_replay_is_byte_identical_and_in_order(rec) -> None:
    r, packets = rec
    out = list(replay_packets(r))
    assert out == packets
    assert [p.payload for p in out] == [p.payload for p in packets]
    assert [p.host_rx_ns for p in out] == [p.host_rx_ns for p in packets]


@pytest.mark.parametrize("speed", [0, -1.0, math.nan, math.inf])
def test_bad_speed_is_a_value_error(rec, speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        list(replay_packets(rec[0], realtime=True, speed=speed))
    with pytest.raises(ValueError, match="speed"):
        list(replay_packets(rec[0], speed=speed))


def test_speed_of_wrong_type(rec) -> None:
    with pytest.raises(TypeError, match="speed"):
        list(replay_packets(rec[0], speed="2"))  # type: ignore[arg-type]


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.t += dt


@pytest.mark.parametrize("speed", [1.0, 2.5, 0.5])
def test_realtime_releases_each_packet_at_its_recorded_time(rec, speed: float) -> None:
    r, packets = rec
    fc = FakeClock()
    released = []
    for p in replay_packets(r, realtime=True, speed=speed, sleep=fc.sleep, clock=fc.clock):
        released.append(fc.t)
        assert p is r.packets[len(released) - 1]
    ns0 = packets[0].host_rx_ns
    want = 100.0 + np.array([(p.host_rx_ns - ns0) * 1e-9 / speed for p in packets])
    np.testing.assert_allclose(released, want, atol=1e-9)
    assert all(s > 0 for s in fc.sleeps)


def test_slow_consumer_shifts_schedule_instead_of_bursting(rec) -> None:
    r, _ = rec
    fc = FakeClock()
    it = replay_packets(r, realtime=True, sleep=fc.sleep, clock=fc.clock)
    next(it)
    fc.t += 2.0  # the consumer stalls for 2 s
    t_before = fc.t
    second = next(it)
    third = next(it)
    # the late packet goes out at once, the following keeps its recorded spacing after it
    gap = (third.host_rx_ns - second.host_rx_ns) * 1e-9
    assert fc.t == pytest.approx(t_before + gap, abs=1e-9)


def test_realtime_with_the_real_clock(tmp_path: Path) -> None:
    path = tmp_path / "r.imrec"
    synth_recording(path, n_packets=10)  # ~0.5 s of recorded time
    r = read_recording(path)
    span = (r.packets[-1].host_rx_ns - r.packets[0].host_rx_ns) * 1e-9
    t = time.monotonic()
    n = sum(1 for _ in replay_packets(r, realtime=True, speed=2.0))
    elapsed = time.monotonic() - t
    assert n == len(r.packets)
    assert span / 2 - 0.005 <= elapsed < span / 2 + 0.25


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_chunked_stream_decode_equals_batch_decode(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "r.imrec"
    synth_recording(path, seed=seed)
    r = read_recording(path)
    batch = decode_session(r.packets, r.meta)
    assert batch["pelvis"].stats.lost_packets == 1
    assert batch["thigh_l"].stats.protocol_errors == {"crc": 1}
    assert batch["thigh_r"].stats.duplicates == 1

    rng = np.random.default_rng(seed)
    decoders = {s.placement: StreamDecoder(s) for s in r.meta.sensors}
    parts: dict[str, list] = {k: [] for k in decoders}
    stream = list(replay_packets(r))
    i = 0
    while i < len(stream):  # arbitrary chunk sizes, 1..40 packets across all sensors
        n = int(rng.integers(1, 41))
        chunk = stream[i : i + n]
        i += n
        for k, dec in decoders.items():
            mine = [p for p in chunk if p.sensor == k]
            parts[k].append(dec.push(mine))
    for k, dec in decoders.items():
        ref = batch[k]
        for name in ("sample_idx", "t_dev_s", "host_rx_ns", "acc_m_s2", "gyr_rad_s", "saturated"):
            got = np.concatenate([getattr(p, name) for p in parts[k]])
            assert np.array_equal(got, getattr(ref, name)), (k, name)
        assert dec.stats == ref.stats, k

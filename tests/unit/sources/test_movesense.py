"""Movesense GSP: IMU9 decoding, part-2 reassembly, wrap-around, loss, duplicates, garbage."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from imuhip.errors import ProtocolError
from imuhip.ingest.decode import DECODERS, decode_session
from imuhip.sources.movesense import (
    MovesenseStreamDecoder,
    decode_movesense_packets,
    gsp,
    movesense_meta,
)
from imuhip.types import RawPacket, SessionMeta

RATE = 104
N = 8


# --- an encoder written from the spec, independent of imuhip.sources.movesense.gsp
# -----------------------
def imu9_value(ts_ms: int, rows: list[tuple[float, ...]]) -> bytes:
    """u32 timestamp, then acc xyz * n, gyro xyz * n, magn xyz * n (float32 LE)."""
    out = struct.pack("<I", ts_ms % 2**32)
    for block in range(3):
        for r in rows:
            out += struct.pack("<3f", *r[3 * block : 3 * block + 3])
    return out


def notifications(ref: int, value: bytes, max_len: int = 155) -> list[bytes]:
    msg = bytes([2, ref]) + value
    if len(msg) <= max_len:
        return [msg]
    return [msg[:max_len], bytes([3, ref]) + msg[max_len:]]


def rows_for(first: int, n: int = N) -> list[tuple[float, ...]]:
    """Sample j: acc (j, -j, 9.75), gyro (10 j, 0, -90) deg/s, magn (20, -j, 40) uT; exact in f4."""
    return [
        (float(j), float(-j), 9.75, 10.0 * j, 0.0, -90.0, 20.0, float(-j), 40.0)
        for j in range(first, first + n)
    ]


def stream(ts0: int, n_msgs: int, *, ref: int = 99, max_len: int = 155, skip=()) -> list[RawPacket]:
    out = []
    host = 1_000_000_000
    for m in range(n_msgs):
        ts = ts0 + round(m * N * 1000 / RATE)
        for part in notifications(ref, imu9_value(ts, rows_for(m * N)), max_len):
            host += 1_000_000
            if m not in skip:
                out.append(RawPacket("pelvis", host, part))
    return out


META = movesense_meta("pelvis", RATE)


def test_registered_in_decoders() -> None:
    assert DECODERS["movesense"] is decode_movesense_packets


def test_known_answer_single_message_in_two_notifications() -> None:
    value = imu9_value(5000, rows_for(0))
    assert len(value) == 4 + 36 * N  # 292 bytes: does not fit one notification of 155
    parts = notifications(7, value)
    assert [p[0] for p in parts] == [2, 3]
    s = decode_movesense_packets(
        [RawPacket("pelvis", 10 + i, p) for i, p in enumerate(parts)], META
    )
    assert len(s) == N
    np.testing.assert_array_equal(s.sample_idx, np.arange(N))
    np.testing.assert_allclose(s.acc_m_s2[3], [3.0, -3.0, 9.75])
    np.testing.assert_allclose(s.gyr_rad_s[3], [30.0 * math.pi / 180, 0.0, -math.pi / 2])
    np.testing.assert_allclose(s.mag_ut[5], [20.0, -5.0, 40.0])
    # sample k at timestamp + k * 1000 / rate ms
    np.testing.assert_allclose(s.t_dev_s, 5.0 + np.arange(N) / RATE)
    assert np.all(s.host_rx_ns == 10)  # the DATA (part 1) receive time
    assert s.stats.packets_received == 2 and s.stats.packets_decoded == 1
    assert s.stats.protocol_errors == {}


def test_unsplit_messages_at_large_mtu() -> None:
    pk = stream(0, 5, max_len=300)  # ATT MTU >= 297: one notification per message
    assert [len(p.payload) for p in pk] == [294] * 5
    s = decode_movesense_packets(pk, META)
    np.testing.assert_array_equal(s.sample_idx, np.arange(5 * N))
    np.testing.assert_allclose(s.acc_m_s2[:, 0], np.arange(5 * N))


def test_gsp_encoder_matches_spec_encoder() -> None:
    rows = np.array(rows_for(0))
    mine = gsp.encode_imu9(123, rows[:, 0:3], rows[:, 3:6], rows[:, 6:9])
    assert mine == imu9_value(123, rows_for(0))
    assert gsp.split_notifications(99, mine, 155) == notifications(99, mine, 155)
    m = gsp.parse_imu9(mine)
    assert m.timestamp_ms == 123 and m.n == N
    np.testing.assert_array_equal(m.gyr_dps, rows[:, 3:6])


def test_commands_bytes() -> None:
    assert gsp.cmd_hello(1) == b"\x00\x01"
    assert gsp.cmd_subscribe(99, "/Meas/IMU9/104") == b"\x01\x63/Meas/IMU9/104"
    assert gsp.cmd_unsubscribe(99) == b"\x02\x63"
    assert gsp.imu9_path(208) == "/Meas/IMU9/208"
    with pytest.raises(ValueError, match="IMU9 rate"):
        gsp.imu9_path(100)
    with pytest.raises(ValueError, match="reference"):
        gsp.cmd_hello(0)
    assert gsp.nearest_imu9_rate(200) == 208 and gsp.nearest_imu9_rate(100) == 104
    # status: little endian per the GSP doc, big endian as the sample firmware writes 507
    assert gsp.parse_command_result(b"\x01\x63\xc8\x00")[1] == 200
    assert gsp.parse_command_result(b"\x01\x63\x01\xfb")[1] == 507
    assert gsp.parse_command_result(b"\x01\x05Hello")[1] is None
    with pytest.raises(ProtocolError):
        gsp.parse_command_result(b"\x02\x05")


def test_timestamp_wraparound() -> None:
    ts0 = 2**32 - 200  # wraps after ~2.6 messages
    pk = stream(ts0, 6)
    s = decode_movesense_packets(pk, META)
    np.testing.assert_array_equal(s.sample_idx, np.arange(6 * N))
    assert np.all(np.diff(s.t_dev_s) > 0)
    np.testing.assert_allclose(s.t_dev_s[-1] - s.t_dev_s[0], (6 * N - 1) / RATE, atol=2e-3)
    assert s.stats.gaps == ()


def test_lost_message_is_a_gap() -> None:
    s = decode_movesense_packets(stream(1000, 10, skip={4, 5}), META)
    assert s.stats.gaps[0].start_idx == 4 * N and s.stats.gaps[0].stop_idx == 6 * N
    assert s.stats.lost_samples == 2 * N and s.stats.lost_packets == 2
    kept = np.r_[0 : 4 * N, 6 * N : 10 * N]
    np.testing.assert_array_equal(s.sample_idx, kept)
    np.testing.assert_allclose(s.acc_m_s2[:, 0], kept)  # values follow their index


def test_lost_part2_is_incomplete_not_wrong_numbers() -> None:
    pk = stream(1000, 6)
    del pk[2 * 2 + 1]  # DATA_PART2 of message 2
    s = decode_movesense_packets(pk, META)
    assert s.stats.protocol_errors == {"incomplete": 1}
    assert s.stats.lost_samples == N
    np.testing.assert_allclose(s.acc_m_s2[:, 0], s.sample_idx)


def test_lost_part1_is_orphan() -> None:
    pk = stream(1000, 6)
    del pk[2 * 3]
    s = decode_movesense_packets(pk, META)
    assert s.stats.protocol_errors == {"orphan": 1}
    assert s.stats.lost_samples == N


def test_duplicates_and_out_of_order() -> None:
    pk = stream(0, 8)
    msgs = [pk[i : i + 2] for i in range(0, len(pk), 2)]
    order = [0, 1, 3, 2, 4, 4, 5, 7, 6, 1]  # swap, duplicate, late duplicate
    arrived = [p for i in order for p in msgs[i]]
    s = decode_movesense_packets(arrived, META)
    np.testing.assert_array_equal(s.sample_idx, np.arange(8 * N))
    np.testing.assert_allclose(s.acc_m_s2[:, 0], np.arange(8 * N))
    assert s.stats.duplicates == 2
    assert s.stats.reordered == 2
    assert s.stats.gaps == ()


def test_garbage_counted_never_raises() -> None:
    rng = np.random.default_rng(3)
    pk = stream(0, 6)
    junk = [
        b"",
        b"\x07",
        b"\x09\x63abc",  # unknown response code
        b"\x01\x63\xc8\x00",  # a command result in the data path
        bytes([2, 99]) + b"\x00" * 17,  # DATA of impossible length
        bytes([2, 99]) + struct.pack("<I", 5) + struct.pack("<f", float("nan")) * 72,
    ]
    mixed = []
    for i in range(0, len(pk), 2):
        mixed += pk[i : i + 2]
        mixed.append(RawPacket("pelvis", pk[i].host_rx_ns + 1, junk[(i // 2) % len(junk)]))
    mixed.append(RawPacket("pelvis", 1, rng.integers(0, 256, 40, dtype=np.uint8).tobytes()))
    s = decode_movesense_packets(mixed, META)
    np.testing.assert_array_equal(s.sample_idx, np.arange(6 * N))
    errs = s.stats.protocol_errors
    assert sum(errs.values()) == len(mixed) - len(pk)
    assert errs["short"] == 2 and errs["not_data"] == 1 and errs["value"] == 1
    assert len(s.stats.error_log) == len(mixed) - len(pk)


def test_count_mismatch_rejected() -> None:
    pk = stream(0, 5, max_len=300)
    short = bytes([2, 99]) + imu9_value(round(5 * N * 1000 / RATE), rows_for(5 * N, 4))
    s = decode_movesense_packets([*pk, RawPacket("pelvis", 2, short)], META)
    assert s.stats.protocol_errors == {"count": 1}
    assert len(s) == 5 * N


def test_chunked_equals_batch() -> None:
    pk = stream(2**32 - 500, 40, skip={7, 20, 21})
    batch = decode_movesense_packets(pk, META)
    dec = MovesenseStreamDecoder(META)
    parts = [dec.push(pk[i : i + 5]) for i in range(0, len(pk), 5)] + [dec.flush()]
    np.testing.assert_array_equal(np.concatenate([p.sample_idx for p in parts]), batch.sample_idx)
    np.testing.assert_array_equal(np.vstack([p.gyr_rad_s for p in parts]), batch.gyr_rad_s)
    np.testing.assert_array_equal(np.concatenate([p.t_dev_s for p in parts]), batch.t_dev_s)
    assert dec.stats == batch.stats


def test_real_rate_off_nominal_still_counts_messages() -> None:
    """A sensor running 4 % fast (timestamps from the same clock) loses no sample to rounding."""
    out = []
    for m in range(300):
        ts = round(m * N * 1000 / (RATE * 1.04))
        if m == 200:  # a 1.5 s dropout
            continue
        if 200 < m < 200 + round(1.5 * RATE * 1.04 / N):
            continue
        for part in notifications(99, imu9_value(ts, rows_for(m * N))):
            out.append(RawPacket("pelvis", m, part))
    s = decode_movesense_packets(out, META)
    np.testing.assert_array_equal(s.acc_m_s2[:, 0], s.sample_idx)  # index == true sample number
    assert s.stats.overlapping_samples == 0


def test_decode_session_dispatches_mixed_protocols() -> None:
    meta = SessionMeta("s", "2024-01-01T00:00:00+00:00", "anon", (META,))
    out = decode_session(stream(0, 3), meta)
    assert len(out["pelvis"]) == 3 * N


def test_meta_rejects_bad_rate_and_protocol() -> None:
    with pytest.raises(ValueError, match="IMU9 rate"):
        movesense_meta("pelvis", 100)
    from imuhip.types import SensorMeta

    other = SensorMeta("pelvis", 200.0, 1.0, 1.0, 1.0, True)
    with pytest.raises(ValueError, match="not movesense"):
        MovesenseStreamDecoder(other)


def test_sim_source_resamples_to_the_movesense_rate() -> None:
    from types import SimpleNamespace

    from imuhip.sources.movesense.virtual import SimImu9Source, SyntheticImu9

    t = np.arange(0, 2.0, 1 / 200)
    lin = np.column_stack([t, 2 * t, -t])
    sim = SimpleNamespace(t_s=t, acc_m_s2=lin, gyr_rad_s=lin * 0.1, mag_ut=lin + 5)
    src = SimImu9Source.from_sim(sim, 104)
    acc, gyr, mag = src.values(10, 8)
    tt = (10 + np.arange(8)) / 104
    np.testing.assert_allclose(acc[:, 1], 2 * tt, atol=1e-12)  # linear signal: exact
    np.testing.assert_allclose(gyr[:, 0], np.degrees(0.1 * tt), atol=1e-12)  # rad/s -> deg/s
    np.testing.assert_allclose(mag[:, 2], 5 - tt, atol=1e-12)
    a, g, m = SyntheticImu9(104).values(0, 3)
    assert a.shape == g.shape == m.shape == (3, 3)
    np.testing.assert_allclose(a[:, 2], 9.80665)

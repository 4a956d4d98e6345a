"""imuhip.ingest.decode: known answers from packets synthesised with protocol.encode_packet."""

from __future__ import annotations

import binascii
import dataclasses
import logging

import numpy as np
import pytest

from imuhip.errors import ProtocolError
from imuhip.ingest import protocol
from imuhip.ingest.decode import (
    DECODERS,
    MAX_ERROR_LOG,
    StreamDecoder,
    crc16_many,
    decode_packet,
    decode_sensor_packets,
    decode_session,
)
from imuhip.types import RawPacket, SessionMeta
from tests.unit.synth_packets import ACC_LSB, GYR_LSB, MAG_LSB, make_meta, make_stream


def _session(*metas) -> SessionMeta:
    return SessionMeta("s1", "2026-01-01T00:00:00Z", "P01", tuple(metas))


def test_in_order_stream_known_values() -> None:
    st = make_stream(n_packets=50, n=10)
    s = decode_sensor_packets(st.packets, make_meta())
    assert len(s) == 500
    np.testing.assert_array_equal(s.sample_idx, np.arange(500))
    np.testing.assert_allclose(s.t_dev_s, st.t_dev_us * 1e-6, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(s.acc_m_s2, st.raw[:, 0:3] * ACC_LSB)
    np.testing.assert_array_equal(s.gyr_rad_s, st.raw[:, 3:6] * GYR_LSB)
    assert s.mag_ut is None
    np.testing.assert_array_equal(s.host_rx_ns, np.repeat(st.host_rx_ns, 10))
    assert not s.saturated.any()
    st_ = s.stats
    assert (st_.packets_received, st_.packets_decoded, st_.samples_decoded) == (50, 50, 500)
    assert st_.protocol_errors == {} and st_.gaps == () and st_.lost_packets == 0
    assert st_.duplicates == st_.reordered == st_.lost_samples == 0
    # the gyro x channel is the known sine (counts): check SI against the formula itself
    t = st.t_dev_us * 1e-6
    np.testing.assert_allclose(
        s.gyr_rad_s[:, 0], np.rint(8000 * np.sin(2 * np.pi * 1.3 * t)) * 2000 * np.pi / 180 / 32768
    )


def test_nine_channels() -> None:
    st = make_stream(n_packets=5, n=12, has_mag=True)
    s = decode_sensor_packets(st.packets, make_meta(has_mag=True))
    assert s.mag_ut is not None
    np.testing.assert_array_equal(s.mag_ut, st.raw[:, 6:9] * MAG_LSB)
    np.testing.assert_allclose(s.mag_ut[0], [20.0, -15.0, 40.0])


def test_lost_packets_become_gaps() -> None:
    st = make_stream(n_packets=20, n=10, lose=(3, 4, 10))
    s = decode_sensor_packets(st.packets, make_meta())
    assert s.stats.gaps == (
        dataclasses.replace(s.stats.gaps[0], start_idx=30, stop_idx=50),
        dataclasses.replace(s.stats.gaps[0], start_idx=100, stop_idx=110),
    )
    assert s.stats.lost_packets == 3 and s.stats.lost_samples == 30
    assert len(s) == 170
    assert s.stats.loss_fraction == pytest.approx(30 / 200)
    keep = np.repeat(~st.lost, 10)
    np.testing.assert_array_equal(s.gyr_rad_s, st.raw[keep, 3:6] * GYR_LSB)
    np.testing.assert_allclose(s.t_dev_s, st.t_dev_us[keep] * 1e-6, atol=1e-9)


def test_duplicates_dropped_first_received_kept() -> None:
    st = make_stream(n_packets=10)
    pk = list(st.packets)
    late_copy = RawPacket(pk[4].sensor, pk[4].host_rx_ns + 999_000_000, pk[4].payload)
    pk.insert(7, late_copy)
    pk.append(RawPacket(pk[0].sensor, pk[0].host_rx_ns + 5, pk[0].payload))
    s = decode_sensor_packets(pk, make_meta())
    ref = decode_sensor_packets(st.packets, make_meta())
    assert s.stats.duplicates == 2 and s.stats.packets_decoded == 10
    np.testing.assert_array_equal(s.host_rx_ns, ref.host_rx_ns)  # first received copy kept
    np.testing.assert_array_equal(s.gyr_rad_s, ref.gyr_rad_s)


def test_reordered_packets_sorted() -> None:
    st = make_stream(n_packets=12)
    pk = list(st.packets)
    pk[2], pk[3] = pk[3], pk[2]
    pk[8], pk[9], pk[10] = pk[10], pk[8], pk[9]
    s = decode_sensor_packets(pk, make_meta())
    ref = decode_sensor_packets(st.packets, make_meta())
    assert s.stats.reordered == 3
    np.testing.assert_array_equal(s.sample_idx, ref.sample_idx)
    np.testing.assert_array_equal(s.acc_m_s2, ref.acc_m_s2)
    np.testing.assert_array_equal(s.host_rx_ns, ref.host_rx_ns)


def test_seq_wraparound() -> None:
    st = make_stream(n_packets=20, seq0=65530, lose=(8,))
    s = decode_sensor_packets(st.packets, make_meta())
    assert s.stats.lost_packets == 1
    assert [(g.start_idx, g.stop_idx) for g in s.stats.gaps] == [(80, 90)]
    np.testing.assert_array_equal(s.sample_idx, np.flatnonzero(np.repeat(~st.lost, 10)))


def test_seq_wraparound_with_reordering_across_the_wrap() -> None:
    st = make_stream(n_packets=10, seq0=65533)
    pk = list(st.packets)
    pk[2], pk[3] = pk[3], pk[2]  # seq 0 arrives before 65535
    s = decode_sensor_packets(pk, make_meta())
    assert s.stats.reordered == 1 and s.stats.lost_packets == 0
    np.testing.assert_array_equal(s.sample_idx, np.arange(100))


def test_timestamp_wraparound() -> None:
    st = make_stream(n_packets=20, t0_us=2**32 - 47_000)
    s = decode_sensor_packets(st.packets, make_meta())
    np.testing.assert_allclose(np.diff(s.t_dev_s), 0.005, atol=1e-9)
    np.testing.assert_allclose(s.t_dev_s, st.t_dev_us * 1e-6, atol=1e-9)  # unwrapped past 2**32
    assert s.t_dev_s[-1] > 2**32 * 1e-6
    np.testing.assert_array_equal(s.sample_idx, np.arange(200))


def _resync_packets(lose_before: bool) -> tuple[list[RawPacket], np.ndarray]:
    """20 packets; from packet 10 on the device clock restarts at 0 with CLOCK_RESYNC once."""
    st = make_stream(n_packets=20, lose=(9,) if lose_before else ())
    out = []
    for p in st.packets:
        h = protocol.parse_header(p.payload)
        k = h.seq - 0  # packet number
        if k < 10:
            out.append(p)
            continue
        raw = st.raw[k * 10 : (k + 1) * 10]
        t_new = int(st.t_dev_us[k * 10] - st.t_dev_us[100])
        pay = protocol.encode_packet(h.seq, t_new, raw, clock_resync=(k == 10))
        out.append(RawPacket(p.sensor, p.host_rx_ns, pay))
    return out, st.t_dev_us


def test_clock_resync_rejoined_from_counter() -> None:
    pk, t_true = _resync_packets(lose_before=False)
    s = decode_sensor_packets(pk, make_meta())
    assert s.stats.clock_resyncs == 1
    np.testing.assert_array_equal(s.sample_idx, np.arange(200))
    np.testing.assert_allclose(s.t_dev_s, t_true * 1e-6, atol=1e-9)


def test_clock_resync_after_loss_uses_host_times() -> None:
    pk, t_true = _resync_packets(lose_before=True)
    s = decode_sensor_packets(pk, make_meta())
    assert s.stats.clock_resyncs == 1 and s.stats.lost_packets == 1
    # one lost packet of 10 samples: the estimated gap is within one connection interval (7.5 ms)
    (gap,) = s.stats.gaps
    assert gap.start_idx == 90 and abs(gap.stop_idx - 100) <= 2
    np.testing.assert_allclose(s.t_dev_s[-1], t_true[-1] * 1e-6, atol=0.0101)


def test_overlapping_samples_first_kept() -> None:
    st = make_stream(n_packets=4)
    # an extra packet (next seq) that repeats the timestamps of packet 3 with other values
    extra = protocol.encode_packet(4, int(st.t_dev_us[30]), np.full((10, 6), 7))
    pk = [*st.packets, RawPacket("pelvis", st.packets[-1].host_rx_ns + 10, extra)]
    s = decode_sensor_packets(pk, make_meta())
    assert s.stats.overlapping_samples == 10
    np.testing.assert_array_equal(s.acc_m_s2, st.raw[:, 0:3] * ACC_LSB)


def test_malformed_packets_counted_never_raised() -> None:
    st = make_stream(n_packets=30)
    pk = list(st.packets)
    good = pk[5].payload
    bad = [
        good[:-1],  # length
        good[:4],  # short
        bytes([2]) + good[1:],  # version
        good[:-1] + bytes([good[-1] ^ 1]),  # crc
        b"",  # short
    ]
    mixed = []
    for i, p in enumerate(pk):
        mixed.append(p)
        if i < len(bad):
            mixed.append(RawPacket("pelvis", 123_000 + i, bad[i]))
    s = decode_sensor_packets(mixed, make_meta())
    assert s.stats.protocol_errors == {"crc": 1, "length": 1, "short": 2, "version": 1}
    assert s.stats.packets_received == 35 and s.stats.packets_decoded == 30
    assert len(s) == 300 and s.stats.gaps == ()
    assert len(s.stats.error_log) == 5
    assert "packet 1 (host_rx_ns=123000" in s.stats.error_log[0]
    assert "does not match" in s.stats.error_log[0]
    assert "integrity check failed" in s.stats.error_log[3]


def test_error_log_is_bounded() -> None:
    junk = [RawPacket("pelvis", i, bytes([1, 0, 0])) for i in range(100)]
    s = decode_sensor_packets(junk, make_meta())
    assert s.stats.protocol_errors == {"short": 100}
    assert len(s.stats.error_log) == MAX_ERROR_LOG
    assert len(s) == 0 and s.mag_ut is None


def test_mag_flag_mismatch_is_a_flags_error() -> None:
    st = make_stream(n_packets=3, has_mag=True)
    s = decode_sensor_packets(st.packets, make_meta(has_mag=False))
    assert s.stats.protocol_errors == {"flags": 3}
    assert "MAG flag" in s.stats.error_log[0]
    with pytest.raises(ProtocolError) as exc:
        decode_packet(st.packets[0].payload, make_meta(has_mag=False))
    assert exc.value.reason == "flags"


def test_saturation_per_sample() -> None:
    raw = np.zeros((10, 6), np.int64)
    raw[3, 4] = 32767
    raw[7, 0] = -32768
    a = protocol.encode_packet(0, 0, raw)
    b = protocol.encode_packet(1, 50_000, np.zeros((10, 6), np.int64), saturated=True)
    s = decode_sensor_packets([RawPacket("pelvis", 1, a), RawPacket("pelvis", 2, b)], make_meta())
    want = np.zeros(20, bool)
    want[[3, 7]] = True
    want[10:] = True
    np.testing.assert_array_equal(s.saturated, want)


def test_empty_and_unknown_sensor_and_dispatch(caplog: pytest.LogCaptureFixture) -> None:
    st = make_stream(n_packets=5, sensor="pelvis")
    stray = make_stream(n_packets=2, sensor="wrist").packets
    meta = _session(make_meta("pelvis"), make_meta("thigh_l"))
    with caplog.at_level(logging.WARNING, logger="imuhip.ingest.decode"):
        out = decode_session([*st.packets, *stray], meta)
    assert "'wrist' (2)" in caplog.text
    assert set(out) == {"pelvis", "thigh_l"}
    assert len(out["pelvis"]) == 50
    assert len(out["thigh_l"]) == 0 and out["thigh_l"].stats.packets_received == 0
    assert DECODERS["imuhip"] is decode_sensor_packets
    odd = dataclasses.replace(make_meta("pelvis"), protocol="nonesuch")
    with pytest.raises(ProtocolError, match="nonesuch"):
        decode_session(st.packets, _session(odd))


def test_chunked_equals_batch() -> None:
    st = make_stream(n_packets=60, seq0=65500, t0_us=2**32 - 1_000_000, lose=(5, 6, 33))
    pk, _ = st.packets, None
    bad = RawPacket("pelvis", 7, b"\x01\x02")
    pk = [*pk[:20], bad, *pk[20:]]
    batch = decode_sensor_packets(pk, make_meta())
    dec = StreamDecoder(make_meta())
    chunks, i = [], 0
    for size in [1, 3, 0, 7, 2, 15, 1, 100]:
        chunks.append(dec.push(pk[i : i + size]))
        i += size
    assert i >= len(pk)
    for name in ("sample_idx", "t_dev_s", "host_rx_ns", "acc_m_s2", "gyr_rad_s", "saturated"):
        np.testing.assert_array_equal(
            np.concatenate([getattr(c, name) for c in chunks]), getattr(batch, name), name
        )
    assert dec.stats == batch.stats
    assert batch.stats.lost_packets == 3 and len(batch.stats.gaps) == 2


def test_stream_late_packet_dropped_and_counted() -> None:
    st = make_stream(n_packets=10)
    dec = StreamDecoder(make_meta())
    dec.push(st.packets[:5])
    dec.push(st.packets[6:])
    out = dec.push([st.packets[5], st.packets[7]])  # one late, one duplicate
    assert len(out) == 0
    assert dec.stats.late_packets == 1 and dec.stats.duplicates == 1
    assert dec.stats.lost_packets == 1


def test_crc16_many_matches_binascii() -> None:
    rng = np.random.default_rng(1)
    for length in (1, 2, 9, 130, 131):
        a = rng.integers(0, 256, (50, length), dtype=np.uint8)
        want = [binascii.crc_hqx(bytes(r), 0xFFFF) for r in a]
        np.testing.assert_array_equal(crc16_many(a), want)


def test_decode_packet_accepts_bytearray() -> None:
    st = make_stream(n_packets=1)
    d = decode_packet(bytearray(st.packets[0].payload), make_meta())
    np.testing.assert_array_equal(d.gyr_rad_s, st.raw[:, 3:6] * GYR_LSB)


def test_counter_restart_after_sensor_reboot() -> None:
    """The sensor reboots: counter and clock restart at 0, first packet flagged CLOCK_RESYNC."""
    st = make_stream(n_packets=30)
    pk = []
    for p in st.packets:
        h = protocol.parse_header(p.payload)
        if h.seq < 10:
            pk.append(p)
        elif h.seq >= 20:  # packets 10..19 never sent: 0.5 s reboot
            k = h.seq - 20
            raw = st.raw[h.seq * 10 : (h.seq + 1) * 10]
            pay = protocol.encode_packet(k, k * 50_000, raw, clock_resync=(k == 0))
            pk.append(RawPacket(p.sensor, p.host_rx_ns, pay))
    pk.append(pk[10])  # a duplicate of the resync packet is a duplicate, not another restart
    s = decode_sensor_packets(pk, make_meta())
    assert s.stats.clock_resyncs == 1 and s.stats.duplicates == 1
    assert s.stats.packets_decoded == 20 and len(s) == 200
    (gap,) = s.stats.gaps
    assert gap.start_idx == 100 and abs(gap.stop_idx - 200) <= 2  # from host times (CI 7.5 ms)
    np.testing.assert_array_equal(s.gyr_rad_s[100:], st.raw[200:, 3:6] * GYR_LSB)

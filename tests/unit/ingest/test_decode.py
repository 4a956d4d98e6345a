"""imuhip.ingest.decode: known answers from packets synthesised with protocol.encode_packet.

Damaged streams (lost, duplicated, swapped, corrupted packets; counter and clock wrapping) are
checked against the truth of the synthesiser, packet by packet; mixed packet lengths against the
sample numbers they carry; the packed, chunked and per-session entry points against each other.
"""

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
    PackedPayloads,
    StreamDecoder,
    crc16_many,
    decode_packet,
    decode_sensor_arrays,
    decode_sensor_packets,
    decode_session,
    empty_samples,
)
from imuhip.ingest.decode.payloads import _PACK_CHUNK, _pack_by_code
from imuhip.types import Gap, ImuSamples, RawPacket, SensorMeta, SessionMeta
from tests.unit.synth_packets import ACC_LSB, GYR_LSB, MAG_LSB, Stream, make_meta, make_stream

from .test_recording import make_meta as make_session_meta

PERIOD_US = 5000  # 200 Hz


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
    # an extra packet (seq 5: packet 4 missing on the counter, so the counter cannot place it)
    # that repeats the timestamps of packet 3 with other values
    extra = protocol.encode_packet(5, int(st.t_dev_us[30]), np.full((10, 6), 7))
    pk = [*st.packets, RawPacket("pelvis", st.packets[-1].host_rx_ns + 10, extra)]
    s = decode_sensor_packets(pk, make_meta())
    assert s.stats.overlapping_samples == 10
    assert s.stats.lost_packets == 1 and s.stats.clock_steps == 0
    np.testing.assert_array_equal(s.acc_m_s2, st.raw[:, 0:3] * ACC_LSB)


def test_clock_step_under_a_contiguous_counter_is_rejoined_on_the_counter() -> None:
    """The next seq with the timestamps of packet 3: the counter says it follows packet 3."""
    st = make_stream(n_packets=4)
    extra = protocol.encode_packet(4, int(st.t_dev_us[30]), np.full((10, 6), 7))
    pk = [*st.packets, RawPacket("pelvis", st.packets[-1].host_rx_ns + 10, extra)]
    s = decode_sensor_packets(pk, make_meta())
    assert s.stats.clock_steps == 1 and s.stats.overlapping_samples == 0
    np.testing.assert_array_equal(s.sample_idx, np.arange(50))
    np.testing.assert_array_equal(s.acc_m_s2[:40], st.raw[:, 0:3] * ACC_LSB)
    np.testing.assert_array_equal(s.acc_m_s2[40:], np.full((10, 3), 7 * ACC_LSB))
    # 200 Hz: samples 40..49 at 5 ms spacing right after sample 39
    np.testing.assert_allclose(np.diff(s.t_dev_s), 0.005, atol=1e-9)


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


def assert_samples_equal(a: ImuSamples, b: ImuSamples) -> None:
    for f in dataclasses.fields(ImuSamples):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x is not None and y is not None, f.name
            assert x.dtype == y.dtype, f.name
            assert x.shape == y.shape, f.name
            np.testing.assert_array_equal(x, y, err_msg=f.name)  # bit-identical
        else:
            assert x == y, f.name


# ---------------------------------------------------------------------------------------------
# damaged streams: exactly the intact packets, first received copy, whichever way they come in
# ---------------------------------------------------------------------------------------------
def _mutate(
    packets: list[RawPacket], rng: np.random.Generator, *, dup: float, swap: float, corrupt: float
) -> list[RawPacket]:
    out: list[RawPacket] = []
    for p in packets:
        if rng.uniform() < corrupt:
            b = bytearray(p.payload)
            b[int(rng.integers(0, len(b)))] ^= 0x11
            p = dataclasses.replace(p, payload=bytes(b))
        out.append(p)
        if rng.uniform() < dup:
            out.append(dataclasses.replace(p, host_rx_ns=p.host_rx_ns + 3))
    for _ in range(int(swap * len(out))):
        i = int(rng.integers(0, len(out) - 1))
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _damaged_streams() -> list[tuple[str, list[RawPacket], SensorMeta, Stream]]:
    """Counter and device clock wrapping, 25 of 400 packets lost; then also duplicated,
    swapped and corrupted packets (with and without magnetometer)."""
    out = []
    for seed, has_mag in ((0, False), (1, True)):
        rng = np.random.default_rng(seed)
        s = make_stream(
            n_packets=400,
            n=8,
            has_mag=has_mag,
            seq0=65_300,
            t0_us=2**32 - 700_000,
            lose=rng.choice(400, 25, replace=False),
            seed=seed,
        )
        meta = make_meta(has_mag=has_mag)
        out.append((f"wrap-loss-{seed}", s.packets, meta, s))
        pk = _mutate(s.packets, rng, dup=0.05, swap=0.05, corrupt=0.02)
        out.append((f"dup-swap-corrupt-{seed}", pk, meta, s))
    return out


def _other_streams() -> list[tuple[str, list[RawPacket], SensorMeta]]:
    """Saturation, device times stepping back (overlap), clock resyncs and a counter restart."""
    out = []
    s = make_stream(n_packets=50, n=5, seed=3)
    pk = list(s.packets)
    raw = np.zeros((5, 6), np.int64)
    raw[2, 4] = 32767
    raw[3, 0] = -32768
    pk[10] = dataclasses.replace(
        pk[10], payload=protocol.encode_packet(10, 1_000_000 + 10 * 25_000, raw)
    )
    pk[20] = dataclasses.replace(
        pk[20],
        payload=protocol.encode_packet(20, 1_000_000 + 20 * 25_000, raw * 0, saturated=True),
    )
    out.append(("saturation", pk, make_meta()))
    s = make_stream(n_packets=200, n=6, seed=5, lose=(50, 51))
    pk = []
    for p in s.packets:
        h = protocol.parse_header(p.payload)
        back = PERIOD_US * (3 if h.seq % 17 == 5 else 7 if h.seq % 29 == 3 else 0)
        body = np.frombuffer(p.payload[9:-2], "<i2").reshape(h.n, 6)
        pk.append(
            dataclasses.replace(p, payload=protocol.encode_packet(h.seq, h.t_first_us - back, body))
        )
    out.append(("overlap", pk, make_meta()))
    s = make_stream(n_packets=120, n=10, seed=4, lose=(60,))
    pk = []
    for p in s.packets:
        h = protocol.parse_header(p.payload)
        body = np.frombuffer(p.payload[9:-2], "<i2").reshape(h.n, 6)
        shift, seq, resync = 0, h.seq, h.seq in (30, 61, 90)
        if h.seq >= 30:
            shift += 777_777
        if h.seq >= 61:
            shift += 1_234_567
        if h.seq >= 90:
            shift += 55_555
            seq = h.seq - 90  # the counter restarted
        pay = protocol.encode_packet(seq, h.t_first_us + shift, body, clock_resync=resync)
        pk.append(dataclasses.replace(p, payload=pay))
    out.append(("resync-restart", pk, make_meta()))
    return out


DAMAGED = _damaged_streams()
STREAMS = [(name, pk, meta) for name, pk, meta, _ in DAMAGED] + _other_streams()


@pytest.mark.parametrize("case", range(len(DAMAGED)), ids=[c[0] for c in DAMAGED])
def test_damaged_stream_keeps_exactly_the_intact_first_received_packets(case: int) -> None:
    _, packets, meta, st = DAMAGED[case]
    n = st.n
    # the truth, packet by packet: parse_header accepts it, and it is one the sensor sent
    first_host: dict[int, int] = {}
    n_valid = n_bad = 0
    for p in packets:
        try:
            h = protocol.parse_header(p.payload)
        except ProtocolError:
            n_bad += 1
            continue
        k = (h.seq - 65_300) % protocol.SEQ_MODULUS  # generated packet number
        assert p.payload == protocol.encode_packet(
            h.seq, int(st.t_dev_us[k * n]) % 2**32, st.raw[k * n : (k + 1) * n]
        )
        n_valid += 1
        first_host.setdefault(k, p.host_rx_ns)
    kept = np.array(sorted(first_host))
    rows = (kept[:, None] * n + np.arange(n)).ravel()
    s = decode_sensor_packets(packets, meta)
    np.testing.assert_array_equal(s.sample_idx, rows - kept[0] * n)
    np.testing.assert_array_equal(s.acc_m_s2, st.raw[rows, 0:3] * ACC_LSB)
    np.testing.assert_array_equal(s.gyr_rad_s, st.raw[rows, 3:6] * GYR_LSB)
    if meta.has_mag:
        assert s.mag_ut is not None
        np.testing.assert_array_equal(s.mag_ut, st.raw[rows, 6:9] * MAG_LSB)
    np.testing.assert_allclose(s.t_dev_s, st.t_dev_us[rows] * 1e-6, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(s.host_rx_ns, np.repeat([first_host[k] for k in kept], n))
    assert not s.saturated.any()
    lost = np.setdiff1d(np.arange(kept[0], kept[-1] + 1), kept)
    assert s.stats.packets_received == len(packets)
    assert s.stats.packets_decoded == len(kept) and s.stats.samples_decoded == len(rows)
    assert sum(s.stats.protocol_errors.values()) == n_bad
    assert s.stats.duplicates == n_valid - len(kept)
    assert s.stats.lost_packets == len(lost) and s.stats.lost_samples == n * len(lost)
    from_gaps = np.concatenate([np.arange(g.start_idx, g.stop_idx) for g in s.stats.gaps])
    np.testing.assert_array_equal(
        from_gaps, (lost[:, None] * n + np.arange(n)).ravel() - kept[0] * n
    )


@pytest.mark.parametrize("case", range(len(STREAMS)), ids=[c[0] for c in STREAMS])
def test_packed_payloads_decode_exactly_like_raw_packets(case: int) -> None:
    _, packets, meta = STREAMS[case]
    want = decode_sensor_packets(packets, meta)
    packed = PackedPayloads.from_payloads([p.payload for p in packets])
    got = decode_sensor_arrays(packed, [p.host_rx_ns for p in packets], meta)
    assert_samples_equal(got, want)


# ---------------------------------------------------------------------------------------------
# mixed packet lengths: exact samples and exact loss
# ---------------------------------------------------------------------------------------------
def mixed_stream(
    counts: list[int],
    lost: set[int] = frozenset(),  # type: ignore[assignment]
    *,
    resync_at: set[int] = frozenset(),  # type: ignore[assignment]
    seq0: int = 65_530,
    t0_us: int = 2**32 - 60_000,
    jitter_ns: int = 0,
) -> tuple[list[RawPacket], np.ndarray, np.ndarray]:
    """Packets of ``counts[i]`` samples each; sample ``j`` (over all packets) carries ``j`` in
    its first channel. Returns the received packets, the sample numbers that were received, and
    the raw counts of every sample. Host time = device time of the packet's last sample + 3 ms
    (+ up to ``jitter_ns``); a resync moves the device time base by an odd amount."""
    rng = np.random.default_rng(len(counts))
    total = sum(counts)
    raw = rng.integers(-2000, 2000, (total, 6))
    raw[:, 0] = np.arange(total)
    packets, got = [], []
    j = 0
    shift = 0
    for i, k in enumerate(counts):
        if i in resync_at:
            shift += 987_654_321
        t_first = t0_us + j * PERIOD_US
        host = 5 * 10**9 + (j + k - 1) * PERIOD_US * 1000 + 3_000_000
        host += int(rng.integers(0, jitter_ns + 1))
        if i not in lost:
            pay = protocol.encode_packet(
                seq0 + i, t_first + shift, raw[j : j + k], clock_resync=i in resync_at
            )
            packets.append(RawPacket("pelvis", host, pay))
            got.extend(range(j, j + k))
        j += k
    return packets, np.array(got), raw


def _check_exact(s: ImuSamples, got: np.ndarray, raw: np.ndarray, counts, lost) -> None:
    assert s.stats.lost_samples == sum(counts[i] for i in lost)
    assert s.stats.lost_packets == len(lost)
    np.testing.assert_array_equal(s.sample_idx, got)  # first sample received is index 0
    np.testing.assert_array_equal(np.rint(s.acc_m_s2 / make_meta().acc_lsb_m_s2), raw[got, :3])
    np.testing.assert_array_equal(np.rint(s.gyr_rad_s / make_meta().gyr_lsb_rad_s), raw[got, 3:])
    # the gaps are exactly the missing sample numbers
    missing = np.setdiff1d(np.arange(got[0], got[-1] + 1), got)
    from_gaps = np.concatenate([np.arange(g.start_idx, g.stop_idx) for g in s.stats.gaps] or [[]])
    np.testing.assert_array_equal(from_gaps, missing)
    assert s.stats.overlapping_samples == 0


MIXED = [
    ([10] * 6 + [5] * 6, set()),  # firmware switches from 10- to 5-sample packets
    ([10] * 6 + [5] * 6, {5}),  # ... the last long packet lost
    ([10] * 6 + [5] * 6, {6}),  # ... the first short packet lost
    ([10] * 6 + [5] * 6, {4, 5, 6, 7}),  # ... across the switch
    ([10] * 8 + [3], set()),  # a short last packet
    ([10] * 8 + [3], {7}),
    ([5] * 5 + [10] * 5 + [1, 32, 7] + [10] * 3, {3, 10, 12}),  # anything goes
]


@pytest.mark.parametrize(("counts", "lost"), MIXED)
def test_mixed_packet_lengths_decode_exactly(counts, lost) -> None:
    packets, got, raw = mixed_stream(counts, lost)
    meta = make_meta()
    _check_exact(decode_sensor_packets(packets, meta), got, raw, counts, lost)
    # pushed one packet at a time (live) and as arrays: the same
    sd = StreamDecoder(meta)
    parts = [sd.push([p]) for p in packets]
    np.testing.assert_array_equal(np.concatenate([q.sample_idx for q in parts]), got)
    assert sd.stats.lost_samples == sum(counts[i] for i in lost)
    assert sd.stats.gaps == decode_sensor_packets(packets, meta).stats.gaps
    # reordered and duplicated in one push: still exact
    shuffled = list(packets)
    shuffled[2], shuffled[3] = shuffled[3], shuffled[2]
    shuffled.insert(5, shuffled[4])
    s = decode_sensor_packets(shuffled, meta)
    _check_exact(s, got, raw, counts, lost)
    assert s.stats.duplicates == 1


@pytest.mark.parametrize("lost", [set(), {5}, {6}, {5, 6}])
@pytest.mark.parametrize("jitter_ns", [0, 2_000_000])
def test_mixed_lengths_across_clock_resync(lost, jitter_ns) -> None:
    """A resync right after the length switch: re-joined from the counter when contiguous,
    from the host times after a loss (host jitter below half a sample keeps it exact)."""
    counts = [10] * 6 + [5] * 6
    packets, got, raw = mixed_stream(counts, lost, resync_at={7}, jitter_ns=jitter_ns)
    s = decode_sensor_packets(packets, make_meta())
    _check_exact(s, got, raw, counts, lost)
    assert s.stats.clock_resyncs == 1


def test_resync_after_loss_gap_at_least_the_lost_packets() -> None:
    """Host times that claim less time than the lost packets held: the counter still proves one
    sample per lost packet (here exactly what was lost: 1-sample packets)."""
    counts = [1] * 10
    packets, got, _ = mixed_stream(counts, {4, 5, 6}, resync_at={7})
    # the resync packet arrives as early as the one before it: the host times say "no gap"
    packets[4] = dataclasses.replace(packets[4], host_rx_ns=packets[3].host_rx_ns)
    s = decode_sensor_packets(packets, make_meta())
    assert s.stats.lost_packets == 3
    assert s.stats.lost_samples == 3
    np.testing.assert_array_equal(s.sample_idx, got)


def test_gaps_are_gap_objects() -> None:
    packets, _, _ = mixed_stream([10] * 4, {1})
    s = decode_sensor_packets(packets, make_meta())
    assert s.stats.gaps == (Gap(10, 20),)


# ---------------------------------------------------------------------------------------------
# decode_session over RawPacket lists
# ---------------------------------------------------------------------------------------------
def test_decode_session_groups_like_per_sensor_decoding(caplog) -> None:
    streams = {
        name: make_stream(n_packets=80, n=6, sensor=name, seed=i, lose=(7, 30)).packets
        for i, name in enumerate(("pelvis", "thigh_l", "thigh_r"))
    }
    meta = make_session_meta(tuple(streams))
    arrival = sorted((p for v in streams.values() for p in v), key=lambda p: p.host_rx_ns)
    arrival.insert(17, RawPacket("lumbar", 1, b"\x01" * 30))  # a sensor not in the session
    arrival.insert(40, RawPacket("lumbar", 2, b"\x01" * 30))
    with caplog.at_level(logging.WARNING, logger="imuhip.ingest.decode"):
        got = decode_session(iter(arrival), meta)  # any iterable
    assert "'lumbar' (2)" in caplog.text
    assert list(got) == [s.placement for s in meta.sensors]
    for s in meta.sensors:
        mine = [p for p in arrival if p.sensor == s.placement]
        assert_samples_equal(got[s.placement], decode_sensor_packets(mine, s))


def test_decode_session_other_protocols_get_their_packets(monkeypatch) -> None:
    seen: dict[str, list[RawPacket]] = {}

    def fake(packets, meta):
        seen[meta.placement] = list(packets)
        return empty_samples(meta)

    monkeypatch.setitem(DECODERS, "fake", fake)
    base = make_session_meta(("pelvis", "thigh_l"))
    other = dataclasses.replace(base.sensors[1], protocol="fake")
    meta = dataclasses.replace(base, sensors=(base.sensors[0], other))
    a = make_stream(n_packets=20, n=4, sensor="pelvis").packets
    b = [RawPacket("thigh_l", i, bytes([i])) for i in range(7)]
    mixed = [x for pair in zip(a, b + [None] * len(a), strict=False) for x in pair if x]
    got = decode_session(mixed, meta)
    assert seen["thigh_l"] == b
    assert_samples_equal(got["pelvis"], decode_sensor_packets(a, base.sensors[0]))


def test_pack_by_code_keeps_each_codes_payloads_together_in_order() -> None:
    rng = np.random.default_rng(5)
    payloads = [
        bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8))
        for _ in range(_PACK_CHUNK * 2 + 17)
    ]
    codes = rng.integers(0, 3, len(payloads)).astype(np.int64)
    buf, start, length = _pack_by_code(payloads, codes, 3)
    assert not buf.flags.writeable
    for c in range(3):
        idx = np.flatnonzero(codes == c)
        assert buf[start[idx[0]] : start[idx[-1]] + length[idx[-1]]].tobytes() == b"".join(
            payloads[i] for i in idx
        )

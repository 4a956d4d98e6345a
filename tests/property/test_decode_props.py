"""Property tests: decode(encode(x)) == x, mutated packets only ever give ProtocolError or counts,
alignment independent of packet arrival order, chunked decoding equals batch."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from imuhip.errors import ProtocolError
from imuhip.ingest import protocol
from imuhip.ingest.align import align_session
from imuhip.ingest.decode import StreamDecoder, decode_packet, decode_sensor_packets
from imuhip.types import RawPacket
from tests.unit.synth_packets import ACC_LSB, GYR_LSB, MAG_LSB, make_meta, make_stream

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def packets(draw: st.DrawFn) -> tuple[int, int, np.ndarray, bool, bool]:
    ch = draw(st.sampled_from([6, 9]))
    n = draw(st.integers(1, protocol.MAX_SAMPLES))
    raw = draw(hnp.arrays(np.int16, (n, ch)))
    seq = draw(st.integers(0, 2**16 - 1))
    t_us = draw(st.integers(0, 2**32 - 1))
    return seq, t_us, raw, draw(st.booleans()), draw(st.booleans())


@FAST
@given(packets())
def test_decode_encode_roundtrip(p: tuple[int, int, np.ndarray, bool, bool]) -> None:
    seq, t_us, raw, sat, resync = p
    payload = protocol.encode_packet(seq, t_us, raw, saturated=sat, clock_resync=resync)
    meta = make_meta(has_mag=raw.shape[1] == 9)
    d = decode_packet(payload, meta)
    assert (d.header.seq, d.header.t_first_us, d.header.n) == (seq, t_us, len(raw))
    assert (d.saturated, d.clock_resync) == (sat, resync)
    np.testing.assert_array_equal(d.raw, raw)
    np.testing.assert_array_equal(d.acc_m_s2, raw[:, 0:3].astype(float) * ACC_LSB)
    np.testing.assert_array_equal(d.gyr_rad_s, raw[:, 3:6].astype(float) * GYR_LSB)
    if raw.shape[1] == 9:
        np.testing.assert_array_equal(d.mag_ut, raw[:, 6:9].astype(float) * MAG_LSB)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    seq, t_us, raw, sat, resync = draw(packets())
    b = bytearray(protocol.encode_packet(seq, t_us, raw, saturated=sat, clock_resync=resync))
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "random", "header"]))
    if kind == "flip":
        for pos in draw(st.lists(st.integers(0, len(b) * 8 - 1), min_size=1, max_size=8)):
            b[pos // 8] ^= 1 << (pos % 8)
    elif kind == "truncate":
        b = b[: draw(st.integers(0, len(b) - 1))]
    elif kind == "extend":
        b += draw(st.binary(min_size=1, max_size=40))
    elif kind == "random":
        b = bytearray(draw(st.binary(max_size=700)))
    else:
        b[draw(st.integers(0, 8))] = draw(st.integers(0, 255))
    return bytes(b)


@FAST
@given(mutated(), st.booleans())
def test_mutated_packet_only_protocol_error(payload: bytes, has_mag: bool) -> None:
    try:
        d = decode_packet(payload, make_meta(has_mag=has_mag))
    except ProtocolError as err:
        assert err.reason in {"short", "version", "flags", "count", "length", "crc"}
    else:
        assert d.acc_m_s2.shape == (d.header.n, 3)


@SLOWER
@given(st.lists(mutated(), min_size=1, max_size=30), st.booleans(), st.integers(0, 2**31))
def test_decode_sensor_packets_never_raises(
    payloads: list[bytes], has_mag: bool, seed: int
) -> None:
    good = make_stream(n_packets=10, has_mag=has_mag).packets
    rng = np.random.default_rng(seed)
    pk = [RawPacket("pelvis", int(rng.integers(0, 2**40)), p) for p in payloads] + good
    order = rng.permutation(len(pk))
    s = decode_sensor_packets([pk[i] for i in order], make_meta(has_mag=has_mag))
    st_ = s.stats
    assert st_.packets_received == len(pk)
    accounted = st_.packets_decoded + sum(st_.protocol_errors.values()) + st_.duplicates
    assert accounted + st_.late_packets == len(pk)
    assert len(s) == st_.samples_decoded
    assert np.all(np.diff(s.sample_idx) > 0)
    assert np.isfinite(s.acc_m_s2).all()


@SLOWER
@given(
    st.sets(st.integers(1, 38), max_size=8),
    st.permutations(list(range(40))),
    st.integers(0, 65535),
)
def test_alignment_independent_of_arrival_order(lose: set[int], perm: list[int], seq0: int) -> None:
    a = make_stream(n_packets=40, seq0=seq0, lose=tuple(sorted(lose)), sensor="pelvis", seed=1)
    b = make_stream(
        n_packets=40,
        offset_s=2.5 - (2**32 - 300_000) * 1e-6,
        t0_us=2**32 - 300_000,
        sensor="thigh_r",
        seed=2,
    )
    meta_a, meta_b = make_meta("pelvis"), make_meta("thigh_r")

    def run(pa: list[RawPacket], pb: list[RawPacket]):
        return align_session(
            {
                "pelvis": decode_sensor_packets(pa, meta_a),
                "thigh_r": decode_sensor_packets(pb, meta_b),
            }
        )

    ref = run(a.packets, b.packets)
    shuffled_a = [a.packets[i] for i in perm if i < len(a.packets)]
    shuffled_b = [b.packets[i] for i in reversed(perm)]
    got = run(shuffled_a, shuffled_b)
    np.testing.assert_array_equal(got.t_s, ref.t_s)
    for k in ("pelvis", "thigh_r"):
        np.testing.assert_array_equal(got.sensors[k].gyr_rad_s, ref.sensors[k].gyr_rad_s)
        np.testing.assert_array_equal(got.sensors[k].acc_m_s2, ref.sensors[k].acc_m_s2)
        np.testing.assert_array_equal(got.sensors[k].valid, ref.sensors[k].valid)
        assert got.sensors[k].clock == ref.sensors[k].clock


@SLOWER
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=20), st.sets(st.integers(0, 59), max_size=10)
)
def test_chunked_decode_equals_batch(sizes: list[int], lose: set[int]) -> None:
    pk = make_stream(n_packets=60, seq0=65520, t0_us=2**32 - 100_000, lose=tuple(lose)).packets
    batch = decode_sensor_packets(pk, make_meta())
    dec = StreamDecoder(make_meta())
    chunks, i = [], 0
    sizes = [*sizes, 1]  # guarantees progress when every drawn size is 0
    while i < len(pk):
        for size in sizes:
            chunks.append(dec.push(pk[i : i + size]))
            i += size
    assert dec.stats == batch.stats
    for name in ("sample_idx", "t_dev_s", "host_rx_ns", "gyr_rad_s", "saturated"):
        np.testing.assert_array_equal(
            np.concatenate([getattr(c, name) for c in chunks]), getattr(batch, name)
        )

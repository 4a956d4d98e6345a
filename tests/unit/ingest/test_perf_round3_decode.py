"""Round 3 of the speed-ups, reading and decoding: the compiled kernels give what the code they
replaced gave, and packets of mixed lengths are decoded (and their losses counted) exactly.

References kept here: ``_decode_round2_ref`` is the decoder as it was before this round (numpy,
per length group), ``_regular_run_ref`` the reader's per-frame CRC-32 run check; the kernels are
also checked against ``zlib.crc32``, ``binascii.crc_hqx``, ``protocol.parse_header`` and the numpy
expressions of the old sample unpacking.
"""

from __future__ import annotations

import binascii
import dataclasses
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from imuhip.errors import ProtocolError
from imuhip.ingest import _decode_kernels as kd
from imuhip.ingest import decode as dec
from imuhip.ingest import protocol
from imuhip.ingest.recording import (
    _NO_STOP,
    FRAME_HEADER_LEN,
    FRAME_OVERHEAD,
    Recording,
    RecordingWriter,
    _packet_arrays,
    _parse_no_gc,
    _read_header,
    read_packet_arrays,
    read_recording,
)
from imuhip.types import Gap, ImuSamples, RawPacket, SessionEvent
from tests.unit.ingest import _decode_round2_ref as ref
from tests.unit.synth_packets import make_meta, make_stream

from .test_recording import make_meta as make_session_meta

RATE = 200.0
PERIOD_US = 5000


def _assert_samples_equal(a: ImuSamples, b: ImuSamples) -> None:
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
# CRC kernels
# ---------------------------------------------------------------------------------------------
def test_crc_kernels_equal_zlib_and_binascii() -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, 50_000, dtype=np.uint8)
    start = rng.integers(0, 49_000, 800).astype(np.int64)
    length = rng.integers(0, 700, 800).astype(np.int64)
    length = np.minimum(length, len(data) - start)
    length[:20] = np.arange(20)  # every tail length of the 8-byte steps, and empty
    raw = data.tobytes()
    c32 = kd.crc32_ranges(data, start, length, kd.CRC32_TABLES)
    c16 = kd.crc16_rows(data, start, length, kd.CRC16_TABLES)
    for i in range(len(start)):
        chunk = raw[start[i] : start[i] + length[i]]
        assert int(c32[i]) == zlib.crc32(chunk)
        assert int(c16[i]) == binascii.crc_hqx(chunk, 0xFFFF)
    check = np.frombuffer(b"123456789", np.uint8)
    one = np.zeros(1, np.int64)
    assert int(kd.crc16_rows(check, one, one + 9, kd.CRC16_TABLES)[0]) == 0x29B1  # SPEC §2.2


# ---------------------------------------------------------------------------------------------
# packet validation
# ---------------------------------------------------------------------------------------------
_REASON = {"short": 1, "version": 2, "flags": 3, "count": 4, "length": 5, "crc": 6}


def _reason_ref(payload: bytes, has_mag: bool) -> int:
    """The reason code ``parse_header`` (and the MAG flag check) gives one packet."""
    try:
        h = protocol.parse_header(payload)
    except ProtocolError as err:
        return _REASON[err.reason]
    return 0 if h.has_mag == has_mag else 7


def _mixed_bag(rng: np.random.Generator, has_mag: bool) -> list[bytes]:
    ch = 9 if has_mag else 6
    out: list[bytes] = []
    for k in range(300):
        n = int(rng.integers(1, 33))
        p = bytearray(protocol.encode_packet(k, k * 50_000, rng.integers(-999, 999, (n, ch))))
        kind = int(rng.integers(0, 10))
        if kind == 1:
            p[0] = 2  # version
        elif kind == 2:
            p[1] |= 0x10  # reserved flag
        elif kind == 3:
            p[8] = 0 if rng.uniform() < 0.5 else 40  # count
        elif kind == 4:
            p = p[:-3] + p[-2:]  # length
        elif kind == 5:
            p[int(rng.integers(0, len(p)))] ^= 0x5A  # a flipped byte: usually CRC
        elif kind == 6:
            p = p[: int(rng.integers(0, 11))]  # short
        elif kind == 7:
            p = bytearray(protocol.encode_packet(k, 0, rng.integers(-9, 9, (n, 15 - ch))))  # MAG
        out.append(bytes(p))
    return out


@pytest.mark.parametrize("has_mag", [False, True])
def test_validate_kernel_equals_parse_header(has_mag: bool) -> None:
    payloads = _mixed_bag(np.random.default_rng(int(has_mag)), has_mag)
    data, v, reasons = dec._validate(payloads, has_mag)
    want = np.array([_reason_ref(p, has_mag) for p in payloads])
    np.testing.assert_array_equal(reasons, want)
    assert set(want.tolist()) == set(range(8))  # every reason was exercised
    ok = np.flatnonzero(want == 0)
    np.testing.assert_array_equal(v.pkt, ok)
    heads = [protocol.parse_header(payloads[i]) for i in ok]
    np.testing.assert_array_equal(v.seq, [h.seq for h in heads])
    np.testing.assert_array_equal(v.t_us, [h.t_first_us for h in heads])
    np.testing.assert_array_equal(v.flags, [h.flags for h in heads])
    np.testing.assert_array_equal(v.n, [h.n for h in heads])
    for i, a in zip(ok.tolist(), v.start.tolist(), strict=True):
        assert data[a : a + len(payloads[i])].tobytes() == payloads[i]
    # the packed form validates the same
    _, v2, r2 = dec._validate(dec.PackedPayloads.from_payloads(payloads), has_mag)
    np.testing.assert_array_equal(r2, reasons)
    np.testing.assert_array_equal(v2.seq, v.seq)


# ---------------------------------------------------------------------------------------------
# sample unpacking: the kernel against the old numpy expressions
# ---------------------------------------------------------------------------------------------
def _emit_ref(data, off, n, idx0, t_u, host, sat_pkt, ch, rate, lsb, last):
    """The round-2 numpy code: per-sample repeat, unique (first kept), drop <= last, scale."""
    rows = np.concatenate(
        [
            np.frombuffer(data[o : o + 2 * ch * k].tobytes(), "<i2").reshape(k, ch)
            for o, k in zip(off.tolist(), n.tolist(), strict=True)
        ]
    )
    k_in = np.concatenate([np.arange(k) for k in n.tolist()])
    sample_idx = np.repeat(idx0, n) + k_in
    sel = np.arange(len(sample_idx))
    if len(sample_idx) >= 2 and not bool(np.all(np.diff(sample_idx) > 0)):
        sample_idx, sel = np.unique(sample_idx, return_index=True)
    if last is not None:
        fresh = np.flatnonzero(sample_idx > last)
        sel, sample_idx = sel[fresh], sample_idx[fresh]
    t_dev = (np.repeat(t_u * 1e-6, n) + k_in / rate)[sel]
    raw = rows[sel]
    sat = np.repeat(sat_pkt, n)[sel] | ((raw.view(np.uint16) - np.uint16(0x7FFF)) <= 1).any(1)
    chain = sample_idx if last is None else np.concatenate([[last], sample_idx])
    jumps = np.flatnonzero(np.diff(chain) > 1)
    gaps = [(int(chain[j]) + 1, int(chain[j + 1])) for j in jumps]
    return {
        "sample_idx": sample_idx,
        "t_dev_s": t_dev,
        "host_rx_ns": np.repeat(host, n)[sel],
        "acc": np.multiply(raw[:, 0:3], lsb[0], dtype=np.float64),
        "gyr": np.multiply(raw[:, 3:6], lsb[1], dtype=np.float64),
        "mag": np.multiply(raw[:, 6:9], lsb[2], dtype=np.float64),
        "sat": sat,
        "gaps": gaps,
    }


@pytest.mark.parametrize("case", range(8))
def test_emit_kernel_equals_numpy_reference(case: int) -> None:
    rng = np.random.default_rng(case)
    ch = 9 if case % 2 else 6
    p = 60
    n = rng.integers(1, 33, p).astype(np.int64)
    # packets in counter order; sometimes overlapping (retransmitted/resynced), sometimes gaps
    step = n + rng.choice([0, 0, 0, 3, -2], p) * (case >= 4)
    idx0 = np.concatenate([[0], np.cumsum(step[:-1])]).astype(np.int64)
    last = None if case % 4 < 2 else int(idx0[5] + 1)
    off_pad = rng.integers(0, 5, p)
    sizes = 2 * ch * n + off_pad
    off = (np.cumsum(sizes) - sizes + off_pad).astype(np.int64)
    data = rng.integers(0, 256, int(sizes.sum()), dtype=np.uint8)
    data[off[3] : off[3] + 2] = [0xFF, 0x7F]  # +32767
    data[off[7] + 4 : off[7] + 6] = [0x00, 0x80]  # -32768
    data.flags.writeable = False
    t_u = idx0 * PERIOD_US + 123
    host = 10**9 + idx0 * 7
    sat_pkt = rng.uniform(size=p) < 0.1
    lsb = (0.001, 0.002, 0.1)
    want = _emit_ref(data, off, n, idx0, t_u, host, sat_pkt, ch, RATE, lsb, last)

    strictly = bool(np.all(idx0[1:] >= idx0[:-1] + n[:-1]))
    e = np.zeros(0, np.int64)
    if strictly:
        sel_pkt, sel_k, use_sel = e, e, False
    else:
        pkt_of = np.repeat(np.arange(p), n)
        k_in = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        uniq, sel = np.unique(idx0[pkt_of] + k_in, return_index=True)
        if last is not None:
            sel = sel[uniq > last]
        sel_pkt, sel_k, use_sel = pkt_of[sel], k_in[sel], True
    m = len(want["sample_idx"])
    outs = [np.empty(m, np.int64), np.empty(m), np.empty(m, np.int64)]
    outs += [np.empty((m, 3)), np.empty((m, 3)), np.empty((m if ch == 9 else 0, 3))]
    outs += [np.empty(m, np.bool_), np.empty(p + 1, np.int64), np.empty(p + 1, np.int64)]
    got_m, n_gaps = kd.emit_samples(
        data,
        off,
        n,
        idx0,
        t_u,
        host,
        sat_pkt,
        ch,
        RATE,
        *lsb,
        0 if last is None else last,
        last is not None,
        sel_pkt,
        sel_k,
        use_sel,
        *outs,
    )
    assert got_m == m
    for name, arr in zip(("sample_idx", "t_dev_s", "host_rx_ns", "acc", "gyr"), outs, strict=False):
        np.testing.assert_array_equal(arr, want[name], err_msg=name)
    if ch == 9:
        np.testing.assert_array_equal(outs[5], want["mag"])
    np.testing.assert_array_equal(outs[6], want["sat"])
    assert want["sat"].any()
    assert (
        list(zip(outs[7][:n_gaps].tolist(), outs[8][:n_gaps].tolist(), strict=True)) == want["gaps"]
    )


# ---------------------------------------------------------------------------------------------
# the decoder against the round-2 decoder (single packet length per stream)
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


def _streams() -> list[tuple[str, list[RawPacket], object]]:
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
        out.append((f"wrap-loss-{seed}", s.packets, meta))
        pk = _mutate(s.packets, rng, dup=0.05, swap=0.05, corrupt=0.02)
        out.append((f"dup-swap-corrupt-{seed}", pk, meta))
    # saturation: flagged packets and counts at the int16 limits
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
    # time stamps that step back: packets overlap, the first (lowest counter) sample is kept
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
    # clock resync, contiguous and after a loss, and a counter restart (reboot)
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


STREAMS = _streams()


@pytest.mark.parametrize("case", range(len(STREAMS)), ids=[c[0] for c in STREAMS])
def test_decoder_equals_round2_decoder(case: int) -> None:
    _, packets, meta = STREAMS[case]
    want = ref.decode_sensor_packets(packets, meta)
    got = dec.decode_sensor_packets(packets, meta)
    _assert_samples_equal(got, want)
    # the packed path too
    packed = dec.PackedPayloads.from_payloads([p.payload for p in packets])
    got2 = dec.decode_sensor_arrays(packed, [p.host_rx_ns for p in packets], meta)
    _assert_samples_equal(got2, want)


@pytest.mark.parametrize("case", range(len(STREAMS)), ids=[c[0] for c in STREAMS])
def test_stream_decoder_chunks_equal_round2(case: int) -> None:
    _, packets, meta = STREAMS[case]
    rng = np.random.default_rng(case)
    cuts = np.sort(rng.choice(np.arange(1, len(packets)), 12, replace=False)).tolist()
    old, new = ref.StreamDecoder(meta), dec.StreamDecoder(meta)
    for a, b in zip([0, *cuts], [*cuts, len(packets)], strict=True):
        _assert_samples_equal(new.push(packets[a:b]), old.push(packets[a:b]))
    assert new.stats == old.stats


# ---------------------------------------------------------------------------------------------
# mixed packet lengths: exact samples and exact loss
# ---------------------------------------------------------------------------------------------
def _mixed_stream(
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
    packets, got, raw = _mixed_stream(counts, lost)
    meta = make_meta()
    _check_exact(dec.decode_sensor_packets(packets, meta), got, raw, counts, lost)
    # pushed one packet at a time (live) and as arrays: the same
    sd = dec.StreamDecoder(meta)
    parts = [sd.push([p]) for p in packets]
    np.testing.assert_array_equal(np.concatenate([q.sample_idx for q in parts]), got)
    assert sd.stats.lost_samples == sum(counts[i] for i in lost)
    assert sd.stats.gaps == dec.decode_sensor_packets(packets, meta).stats.gaps
    # reordered and duplicated in one push: still exact
    shuffled = list(packets)
    shuffled[2], shuffled[3] = shuffled[3], shuffled[2]
    shuffled.insert(5, shuffled[4])
    s = dec.decode_sensor_packets(shuffled, meta)
    _check_exact(s, got, raw, counts, lost)
    assert s.stats.duplicates == 1


@pytest.mark.parametrize("lost", [set(), {5}, {6}, {5, 6}])
@pytest.mark.parametrize("jitter_ns", [0, 2_000_000])
def test_mixed_lengths_across_clock_resync(lost, jitter_ns) -> None:
    """A resync right after the length switch: re-joined from the counter when contiguous,
    from the host times after a loss (host jitter below half a sample keeps it exact)."""
    counts = [10] * 6 + [5] * 6
    packets, got, raw = _mixed_stream(counts, lost, resync_at={7}, jitter_ns=jitter_ns)
    s = dec.decode_sensor_packets(packets, make_meta())
    _check_exact(s, got, raw, counts, lost)
    assert s.stats.clock_resyncs == 1


def test_resync_after_loss_gap_at_least_the_lost_packets() -> None:
    """Host times that claim less time than the lost packets held: the counter still proves one
    sample per lost packet (here exactly what was lost: 1-sample packets)."""
    counts = [1] * 10
    packets, got, _ = _mixed_stream(counts, {4, 5, 6}, resync_at={7})
    # the resync packet arrives as early as the one before it: the host times say "no gap"
    packets[4] = dataclasses.replace(packets[4], host_rx_ns=packets[3].host_rx_ns)
    s = dec.decode_sensor_packets(packets, make_meta())
    assert s.stats.lost_packets == 3
    assert s.stats.lost_samples == 3
    np.testing.assert_array_equal(s.sample_idx, got)


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
        got = dec.decode_session(iter(arrival), meta)  # any iterable
    assert "'lumbar' (2)" in caplog.text
    assert list(got) == [s.placement for s in meta.sensors]
    for s in meta.sensors:
        mine = [p for p in arrival if p.sensor == s.placement]
        _assert_samples_equal(got[s.placement], ref.decode_sensor_packets(mine, s))


def test_decode_session_other_protocols_get_their_packets(monkeypatch) -> None:
    seen: dict[str, list[RawPacket]] = {}

    def fake(packets, meta):
        seen[meta.placement] = list(packets)
        return dec.empty_samples(meta)

    monkeypatch.setitem(dec.DECODERS, "fake", fake)
    base = make_session_meta(("pelvis", "thigh_l"))
    other = dataclasses.replace(base.sensors[1], protocol="fake")
    meta = dataclasses.replace(base, sensors=(base.sensors[0], other))
    a = make_stream(n_packets=20, n=4, sensor="pelvis").packets
    b = [RawPacket("thigh_l", i, bytes([i])) for i in range(7)]
    mixed = [x for pair in zip(a, b + [None] * len(a), strict=False) for x in pair if x]
    got = dec.decode_session(mixed, meta)
    assert seen["thigh_l"] == b
    _assert_samples_equal(got["pelvis"], ref.decode_sensor_packets(a, base.sensors[0]))


def test_pack_by_code_keeps_each_codes_payloads_together_in_order() -> None:
    rng = np.random.default_rng(5)
    payloads = [
        bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8))
        for _ in range(dec._PACK_CHUNK * 2 + 17)
    ]
    codes = rng.integers(0, 3, len(payloads)).astype(np.int64)
    buf, start, length = dec._pack_by_code(payloads, codes, 3)
    assert not buf.flags.writeable
    for c in range(3):
        idx = np.flatnonzero(codes == c)
        assert buf[start[idx[0]] : start[idx[-1]] + length[idx[-1]]].tobytes() == b"".join(
            payloads[i] for i in idx
        )


# ---------------------------------------------------------------------------------------------
# reader
# ---------------------------------------------------------------------------------------------
def _regular_run_ref(body: bytes, pos: int, n: int, n_sensors: int) -> list[int]:
    """Round-2 reader: starts of the consecutive intact packet frames of payload length ``n``."""
    out = []
    size = n + FRAME_OVERHEAD
    while pos + size <= len(body):
        sync, kind, idx, _, ln = struct.unpack_from("<2sBBqI", body, pos)
        stop = pos + FRAME_HEADER_LEN + n
        ok = sync == b"\xa5\x5a" and kind == 1 and idx < n_sensors and ln == n
        if not ok or struct.unpack_from("<I", body, stop)[0] != zlib.crc32(body[pos:stop]):
            break
        out.append(pos)
        pos += size
    return out


def _write_recording(path: Path, packets, events=()) -> Path:
    meta = make_session_meta(("pelvis", "thigh_l", "thigh_r"))
    with RecordingWriter(path, meta) as w:
        for ev in events:
            w.write_event(ev)
        for p in packets:
            w.write_packet(p)
    return path


def _session_packets(counts_of) -> list[RawPacket]:
    out = []
    for i, name in enumerate(("pelvis", "thigh_l", "thigh_r")):
        pk, _, _ = _mixed_stream(counts_of(i))
        out += [dataclasses.replace(p, sensor=name, host_rx_ns=p.host_rx_ns + i) for p in pk]
    return sorted(out, key=lambda p: p.host_rx_ns)


def test_scan_kernel_equals_round2_runs(tmp_path: Path) -> None:
    path = _write_recording(tmp_path / "r.imrec", _session_packets(lambda i: [4] * 50))
    with path.open("rb") as f:
        _, hdr = _read_header(f, path)
        f.seek(0)
        whole = f.read()
    data = np.frombuffer(whole, np.uint8)
    first_packet = hdr
    while whole[first_packet + 2] != 1:  # skip the event frames
        first_packet += FRAME_OVERHEAD + struct.unpack_from("<I", whole, first_packet + 12)[0]
    n = struct.unpack_from("<I", whole, first_packet + 12)[0]
    want = _regular_run_ref(whole, first_packet, n, 3)
    outs = [np.empty(len(want) + 10, np.int64) for _ in range(4)]
    k, stop = kd.scan_packet_frames(data, first_packet, 3, 1 << 24, kd.CRC32_TABLES, *outs)
    assert stop == want[-1] + n + FRAME_OVERHEAD
    assert outs[0][:k].tolist() == want
    assert outs[3][:k].tolist() == [n] * k
    # a damaged CRC ends the run exactly where the old reader ended it
    bad = bytearray(whole)
    bad[want[37] + 20] ^= 1
    bad_data = np.frombuffer(bytes(bad), np.uint8)
    k2, stop2 = kd.scan_packet_frames(bad_data, first_packet, 3, 1 << 24, kd.CRC32_TABLES, *outs)
    assert k2 == len(_regular_run_ref(bytes(bad), first_packet, n, 3)) == 37
    assert stop2 == want[37]


def _read_recording_ref(path: Path) -> Recording:
    """Round-2 ``read_recording``: the general frame-by-frame parser over the whole body."""
    with path.open("rb") as f:
        meta, hdr_len = _read_header(f, path)
        body = f.read()
    parsed = _parse_no_gc(body, 0, hdr_len, 0, tuple(s.placement for s in meta.sensors), True)
    packets = [it for it in parsed.items if type(it) is RawPacket]
    events = [it for it in parsed.items if type(it) is SessionEvent]
    complete = any(e.kind == "stop" for e in events)
    if not complete:
        parsed.warnings.append(_NO_STOP)
    return Recording(
        meta,
        packets,
        events,
        parsed.warnings,
        complete,
        hdr_len + parsed.valid,
        hdr_len + len(body),
    )


def _assert_reader_equal(path: Path) -> None:
    rec = read_recording(path)
    assert rec == _read_recording_ref(path)
    arr = read_packet_arrays(path)
    assert (arr.events, arr.warnings, arr.complete) == (rec.events, rec.warnings, rec.complete)
    assert (arr.valid_bytes, arr.size_bytes) == (rec.valid_bytes, rec.size_bytes)
    for s in rec.meta.sensors:
        mine = rec.packets_of(s.placement)
        pp = arr.payloads[s.placement]
        assert [pp[i] for i in range(len(pp))] == [p.payload for p in mine]
        np.testing.assert_array_equal(arr.host_rx_ns[s.placement], [p.host_rx_ns for p in mine])
        if len(pp) > 1:  # one sensor's payloads lie together, in order
            np.testing.assert_array_equal(pp.start[1:], pp.start[:-1] + pp.length[:-1])
    got = dec.decode_session_arrays(arr.payloads, arr.host_rx_ns, arr.meta)
    want = dec.decode_session(rec.packets, rec.meta)
    for k in want:
        _assert_samples_equal(got[k], want[k])


def test_reader_mixed_lengths_events_and_growth(tmp_path: Path) -> None:
    # the first packet frame is long, the rest short: the preallocated frame table must grow
    packets = _session_packets(lambda i: [32] + [1] * 300 + [7] * 20)
    events = [SessionEvent(1, "connect", "pelvis", {}), SessionEvent(2, "annotation", None, {})]
    _assert_reader_equal(_write_recording(tmp_path / "g.imrec", packets, events))


def test_reader_damage_after_mixed_lengths(tmp_path: Path) -> None:
    path = _write_recording(tmp_path / "d.imrec", _session_packets(lambda i: [4] * 30 + [9] * 30))
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # a damaged frame in the middle
    path.write_bytes(bytes(blob[:-7]))  # and a truncated end
    _assert_reader_equal(path)
    assert any("damaged" in w for w in read_packet_arrays(path).warnings)


def test_reader_without_mmap_equals_mmap(tmp_path: Path) -> None:
    path = _write_recording(tmp_path / "m.imrec", _session_packets(lambda i: [5] * 40))
    with path.open("rb") as f:
        meta, hdr = _read_header(f, path)
    a = _packet_arrays(path, meta, hdr, path.read_bytes())
    b = read_packet_arrays(path)
    assert a.events == b.events and a.valid_bytes == b.valid_bytes
    for k in b.payloads:
        assert list(a.payloads[k]) == list(b.payloads[k])
        np.testing.assert_array_equal(a.host_rx_ns[k], b.host_rx_ns[k])


def test_gaps_are_gap_objects() -> None:
    packets, _, _ = _mixed_stream([10] * 4, {1})
    s = dec.decode_sensor_packets(packets, make_meta())
    assert s.stats.gaps == (Gap(10, 20),)


def _frame(kind: int, sensor: int, ns: int, payload: bytes) -> bytes:
    head = struct.pack("<2sBBqI", b"\xa5\x5a", kind, sensor, ns, len(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(head))


@pytest.mark.parametrize(
    "insert",
    [
        _frame(1, 9, 5, b"\x01" * 20),  # a sensor index not in the session
        _frame(7, 0, 5, b"xyz"),  # an unknown frame type
        _frame(2, 0xFF, 5, b"{not json"),  # an unreadable event
        b"\x00garbage\xa5\x5a\x01",  # bytes between frames
        _frame(1, 0, 5, b"")[:-1] + b"\x00",  # a packet frame with a bad CRC
    ],
)
@pytest.mark.parametrize("cut", [0, 5, 30])
def test_reader_odd_frames_and_truncation_equal_round2(tmp_path: Path, insert, cut) -> None:
    path = _write_recording(tmp_path / "o.imrec", _session_packets(lambda i: [3] * 40 + [6] * 9))
    blob = path.read_bytes()
    with path.open("rb") as f:
        _, pos = _read_header(f, path)
    while pos < len(blob) // 2:  # the first frame boundary past the middle
        pos += FRAME_OVERHEAD + struct.unpack_from("<I", blob, pos + 12)[0]
    out = blob[:pos] + insert + blob[pos:]
    path.write_bytes(out[: len(out) - cut] if cut else out)
    _assert_reader_equal(path)

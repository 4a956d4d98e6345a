"""The compiled decode kernels (``imuhip.ingest._decode_kernels``) against independent references.

CRC-32 and CRC-16 against ``zlib.crc32`` and ``binascii.crc_hqx`` (and the SPEC check value);
packet validation against :func:`imuhip.ingest.protocol.parse_header`, packet by packet; sample
unpacking against plain numpy (repeat, unique, scale).
"""

from __future__ import annotations

import binascii
import zlib

import numpy as np
import pytest

from imuhip.errors import ProtocolError
from imuhip.ingest import _decode_kernels as kd
from imuhip.ingest import protocol
from imuhip.ingest.decode import PackedPayloads
from imuhip.ingest.decode.validate import _validate

RATE = 200.0
PERIOD_US = 5000


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
    data, v, reasons = _validate(payloads, has_mag)
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
    _, v2, r2 = _validate(PackedPayloads.from_payloads(payloads), has_mag)
    np.testing.assert_array_equal(r2, reasons)
    np.testing.assert_array_equal(v2.seq, v.seq)


# ---------------------------------------------------------------------------------------------
# sample unpacking: the kernel against plain numpy
# ---------------------------------------------------------------------------------------------
def _emit_ref(data, off, n, idx0, t_u, host, sat_pkt, ch, rate, lsb, last):
    """Plain numpy: per-sample repeat, unique (first kept), drop <= last, scale, gaps."""
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

"""Generate ``vectors/packets.json``: test vectors of the imuhip protocol v1 (see SPEC.md).

Run ``python firmware_protocol/make_vectors.py`` from the repository root. Deterministic.

Independence: the packet bytes are built here with ``struct`` and ``binascii`` straight from the
SPEC table (and cross-checked against ``imuhip.ingest.protocol.encode_packet``); the expected SI values
come from the SPEC's scale-factor formulas (``raw * range * 9.80665 / 32768`` etc.), not from the
decoder; the ``samples_per_packet`` table is written out by hand from SPEC §4.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
G = 9.80665


def acc_lsb(range_g: int) -> float:
    return range_g * G / 32768.0


def gyr_lsb(range_dps: int) -> float:
    return range_dps * math.pi / 180.0 / 32768.0


MAG_LSB = 0.1


def crc(data: bytes) -> int:
    c = 0xFFFF
    for b in data:
        c ^= b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


def pack(seq: int, t_us: int, flags: int, raw: list[list[int]], version: int = 1) -> bytes:
    body = struct.pack("<BBHIB", version, flags, seq, t_us, len(raw))
    body += b"".join(struct.pack("<" + "h" * len(r), *r) for r in raw)
    return body + struct.pack("<H", crc(body))


def valid_vector(
    name: str,
    *,
    seq: int,
    t_first_us: int,
    raw: list[list[int]],
    saturated: bool = False,
    clock_resync: bool = False,
    rate_hz: int = 200,
    acc_range_g: int = 16,
    gyr_range_dps: int = 2000,
) -> dict[str, object]:
    ch = len(raw[0])
    flags = (1 if ch == 9 else 0) | (2 if saturated else 0) | (4 if clock_resync else 0)
    data = pack(seq, t_first_us, flags, raw)
    a, g = acc_lsb(acc_range_g), gyr_lsb(gyr_range_dps)
    return {
        "name": name,
        "seq": seq,
        "t_first_us": t_first_us,
        "flags": flags,
        "saturated": saturated,
        "clock_resync": clock_resync,
        "channels": ch,
        "n": len(raw),
        "raw": raw,
        "meta": {
            "rate_hz": rate_hz,
            "acc_range_g": acc_range_g,
            "gyr_range_dps": gyr_range_dps,
            "acc_lsb_m_s2": a,
            "gyr_lsb_rad_s": g,
            "mag_lsb_ut": MAG_LSB,
            "has_mag": ch == 9,
        },
        "hex": data.hex(),
        "expected": {
            "acc_m_s2": [[r[i] * a for i in range(3)] for r in raw],
            "gyr_rad_s": [[r[i] * g for i in range(3, 6)] for r in raw],
            "mag_ut": [[r[i] * MAG_LSB for i in range(6, 9)] for r in raw] if ch == 9 else None,
            "t_dev_us": [t_first_us + k * 1e6 / rate_hz for k in range(len(raw))],
        },
    }


def main() -> int:
    rng = np.random.default_rng(20240601)

    def rnd(n: int, ch: int, lo: int = -32768, hi: int = 32767) -> list[list[int]]:
        return rng.integers(lo, hi + 1, (n, ch)).tolist()

    t = np.arange(10) / 200.0
    sine = [
        [
            round(100 * math.cos(2 * math.pi * x)),
            -30,
            2048,
            round(8000 * math.sin(2 * math.pi * 1.3 * x)),
            500,
            -500,
        ]
        for x in t
    ]
    lo, hi = -32768, 32767
    vectors = [
        valid_vector("6ch_n1_zero", seq=0, t_first_us=0, raw=[[0] * 6]),
        valid_vector("6ch_n10_200hz_sine", seq=1234, t_first_us=5_000_000, raw=sine),
        valid_vector(
            "6ch_n19_max_mtu247_400hz",
            seq=42,
            t_first_us=123_456_789,
            raw=rnd(19, 6, -2000, 2000),
            rate_hz=400,
            acc_range_g=2,
            gyr_range_dps=250,
        ),
        valid_vector("6ch_n32_max_samples", seq=7, t_first_us=1, raw=rnd(32, 6)),
        valid_vector(
            "9ch_n1", seq=100, t_first_us=2_500, raw=[[1, -1, 2048, 5, -5, 0, 300, -200, 450]]
        ),
        valid_vector(
            "9ch_n12_max_mtu247_100hz",
            seq=65000,
            t_first_us=999_999,
            raw=rnd(12, 9, -4000, 4000),
            rate_hz=100,
            acc_range_g=4,
            gyr_range_dps=500,
        ),
        valid_vector(
            "9ch_n32_extremes_saturated",
            seq=3,
            t_first_us=77,
            raw=[[lo if (i + k) % 2 else hi for i in range(9)] for k in range(32)],
            saturated=True,
        ),
        valid_vector("6ch_seq_65535", seq=65535, t_first_us=10_000, raw=rnd(10, 6, -100, 100)),
        valid_vector("6ch_seq_0_after_wrap", seq=0, t_first_us=60_000, raw=rnd(10, 6, -100, 100)),
        valid_vector(
            "6ch_time_near_2p32", seq=500, t_first_us=2**32 - 20_000, raw=rnd(10, 6, -100, 100)
        ),
        valid_vector("6ch_time_max", seq=501, t_first_us=2**32 - 1, raw=rnd(1, 6)),
        valid_vector(
            "6ch_clock_resync", seq=9, t_first_us=0, raw=rnd(5, 6, -100, 100), clock_resync=True
        ),
        valid_vector(
            "9ch_saturated_and_resync",
            seq=11,
            t_first_us=4_000_000,
            raw=rnd(2, 9),
            saturated=True,
            clock_resync=True,
            rate_hz=50,
            acc_range_g=8,
            gyr_range_dps=1000,
        ),
        valid_vector("6ch_all_min", seq=12, t_first_us=13, raw=[[lo] * 6] * 3, saturated=True),
        valid_vector("6ch_all_max", seq=13, t_first_us=14, raw=[[hi] * 6] * 3, saturated=True),
        valid_vector(
            "6ch_n2_50hz", seq=300, t_first_us=40_000, raw=rnd(2, 6, -500, 500), rate_hz=50
        ),
    ]

    good = bytes.fromhex(str(vectors[1]["hex"]))
    flipped = bytearray(good)
    flipped[20] ^= 0x10
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    invalid = [
        {"name": "bad_crc_last_byte", "hex": bytes(bad_crc).hex(), "reason": "crc"},
        {"name": "bit_flip_in_sample", "hex": bytes(flipped).hex(), "reason": "crc"},
        {"name": "short_5_bytes", "hex": good[:5].hex(), "reason": "short"},
        {"name": "empty", "hex": "", "reason": "short"},
        {
            "name": "unknown_version_2",
            "hex": pack(1, 0, 0, [[0] * 6], version=2).hex(),
            "reason": "version",
        },
        {"name": "reserved_flag_bit", "hex": pack(1, 0, 0x08, [[0] * 6]).hex(), "reason": "flags"},
        {"name": "count_zero", "hex": pack(1, 0, 0, []).hex(), "reason": "count"},
        {
            "name": "count_33",
            "hex": (lambda b: b + struct.pack("<H", crc(b)))(
                struct.pack("<BBHIB", 1, 0, 1, 0, 33) + bytes(2 * 6 * 33)
            ).hex(),
            "reason": "count",
        },
        {"name": "length_one_extra_byte", "hex": (good + b"\x00").hex(), "reason": "length"},
        {"name": "truncated_one_byte", "hex": good[:-1].hex(), "reason": "length"},
        {
            "name": "mag_flag_but_6ch_length",
            "hex": pack(1, 0, 0x01, [[0] * 6]).hex(),
            "reason": "length",
        },
    ]

    info = [
        {
            "fields": {
                "protocol_version": 1,
                "has_mag": has_mag,
                "rate_hz": rate,
                "acc_range_g": ag,
                "gyr_range_dps": gd,
                "samples_per_packet": spp,
                "streaming": streaming,
                "model": model,
                "serial": serial,
                "firmware": fw,
            },
            "hex": struct.pack(
                "<BBHHHfffBB16s16s10s",
                1,
                0x03 | (0x04 if has_mag else 0),
                rate,
                ag,
                gd,
                acc_lsb(ag),
                gyr_lsb(gd),
                MAG_LSB,
                spp,
                1 if streaming else 0,
                model.encode(),
                serial.encode(),
                fw.encode(),
            ).hex(),
        }
        for has_mag, rate, ag, gd, spp, streaming, model, serial, fw in [
            (True, 200, 16, 2000, 10, False, "IMUHIP-1", "SN0001", "1.0.0"),
            (False, 400, 2, 250, 19, True, "IMUHIP-LITE-6AX", "ABCDEFGHIJKLMNOP", "10.20.300"),
            (False, 50, 8, 1000, 2, False, "X", "1", "0"),
        ]
    ]

    # SPEC §4, by hand: fit = min(32, (MTU - 14) // (2 * ch)); budget = max(1, rate // 20)
    spp = [
        {"att_mtu": m, "rate_hz": r, "has_mag": mag, "n": n}
        for m, r, mag, n in [
            (23, 200, False, 0),
            (23, 50, True, 0),
            (25, 200, False, 0),
            (26, 200, False, 1),
            (185, 50, False, 2),
            (185, 100, False, 5),
            (185, 200, False, 10),
            (185, 400, False, 14),
            (185, 200, True, 9),
            (185, 400, True, 9),
            (247, 200, False, 10),
            (247, 400, False, 19),
            (247, 400, True, 12),
            (247, 100, True, 5),
            (517, 400, False, 20),
            (517, 400, True, 20),
        ]
    ]

    time_sync = [
        {
            "status": 0,
            "token": 7,
            "t_dev_us": 123456,
            "hex": "8500" + "07" + struct.pack("<I", 123456).hex(),
        },
        {"status": 0, "token": 255, "t_dev_us": 2**32 - 1, "hex": "8500ffffffffff"},
        {"status": 3, "token": 1, "t_dev_us": 0, "hex": "85030100000000"},
    ]

    # cross-check against the package encoder when it is importable
    try:
        from imuhip.ingest import protocol
    except ImportError:  # pragma: no cover
        protocol = None
    if protocol is not None:
        for v in vectors:
            got = protocol.encode_packet(
                int(v["seq"]),  # type: ignore[call-overload]
                int(v["t_first_us"]),  # type: ignore[call-overload]
                np.array(v["raw"]),
                saturated=bool(v["saturated"]),
                clock_resync=bool(v["clock_resync"]),
            )
            if got.hex() != v["hex"]:
                sys.stderr.write(f"imuhip.ingest.protocol disagrees with SPEC bytes on {v['name']}\n")
                return 1

    out = {
        "protocol_version": 1,
        "crc_check": {"ascii": "123456789", "crc": "29b1"},
        "packets": vectors,
        "invalid": invalid,
        "info": info,
        "samples_per_packet": spp,
        "time_sync_responses": time_sync,
    }
    if crc(b"123456789") != 0x29B1:
        sys.stderr.write("CRC implementation does not give the check value\n")
        return 1
    path = HERE / "vectors" / "packets.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    sys.stdout.write(f"wrote {path} ({len(vectors)} valid, {len(invalid)} invalid)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

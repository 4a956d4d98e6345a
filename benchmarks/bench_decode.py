"""Decode throughput: 200 Hz 6-channel packets of 10 samples (python benchmarks/bench_decode.py).

Prints samples/s of ``decode_sensor_packets`` (best and median of repeats) and the per-packet cost
of the two CRC strategies (vectorised 16-bit table across packets vs per-packet ``crc_hqx``).
"""

from __future__ import annotations

import binascii
import sys
import time

import numpy as np

from imuhip.ingest import protocol
from imuhip.ingest.decode import crc16_many, decode_sensor_packets
from imuhip.types import RawPacket, SensorMeta


def main(n_packets: int = 100_000, repeats: int = 7) -> int:
    rng = np.random.default_rng(0)
    meta = SensorMeta(
        "pelvis", 200.0, protocol.acc_lsb_m_s2(16), protocol.gyr_lsb_rad_s(2000), 0.1, False
    )
    raws = rng.integers(-3000, 3000, (n_packets, 10, 6))
    packets = [
        RawPacket("pelvis", 10**9 + i * 50_000_000, protocol.encode_packet(i, i * 50_000, raws[i]))
        for i in range(n_packets)
    ]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        s = decode_sensor_packets(packets, meta)
        times.append(time.perf_counter() - t)
    n = len(s)
    ts = np.array(times)
    sys.stdout.write(
        f"decode_sensor_packets: {n} samples, best {n / ts.min() / 1e6:.1f} M samples/s, "
        f"median {n / np.median(ts) / 1e6:.1f} M samples/s\n"
    )
    payloads = [p.payload for p in packets]
    a = np.frombuffer(b"".join(payloads), np.uint8).reshape(n_packets, -1)
    t_vec, t_hqx = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        crc16_many(a[:, :-2])
        t_vec.append(time.perf_counter() - t)
        t = time.perf_counter()
        [binascii.crc_hqx(p[:-2], 0xFFFF) for p in payloads]
        t_hqx.append(time.perf_counter() - t)
    sys.stdout.write(
        f"CRC per packet: vectorised table {min(t_vec) / n_packets * 1e9:.0f} ns, "
        f"binascii.crc_hqx list comprehension {min(t_hqx) / n_packets * 1e9:.0f} ns\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Device-clock steps under a contiguous packet counter (imuhip.ingest.decode.device_time).

Known answers: a stream synthesised with a clean device clock is decoded; then the same packets
with ``t_first_us`` stepped from one packet on (the counter running on) must decode to exactly
the same samples, times and values, with the step counted. A sensor that really paused (device
and host clocks both jump, counter contiguous: the native importer's way of writing missing
samples) must keep its gap.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from imuhip.ingest import protocol
from imuhip.ingest.decode import StreamDecoder, decode_sensor_packets
from imuhip.types import ImuSamples, RawPacket
from tests.unit.synth_packets import Stream, make_meta, make_stream

_FIELDS = ("sample_idx", "t_dev_s", "host_rx_ns", "acc_m_s2", "gyr_rad_s", "saturated")


def _stepped(packets: list[RawPacket], from_pkt: int, dt_us: int, dhost_ns: int = 0) -> list:
    """``packets`` with ``t_first_us`` (and host time) moved by ``dt_us`` from ``from_pkt`` on."""
    out = []
    for i, p in enumerate(packets):
        if i >= from_pkt:
            v, f, seq, t, n = struct.unpack_from("<BBHIB", p.payload)
            body = struct.pack("<BBHIB", v, f, seq, (t + dt_us) % (1 << 32), n) + p.payload[9:-2]
            p = RawPacket(
                p.sensor, p.host_rx_ns + dhost_ns, body + struct.pack("<H", protocol.crc16(body))
            )
        out.append(p)
    return out


def _equal(a: ImuSamples, b: ImuSamples) -> None:
    for name in _FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), name)


def _stream(miss_prob: float = 0.2) -> Stream:
    # 200 Hz, 10 samples per packet, BLE connection interval 7.5 ms with missed events, 30 ppm
    return make_stream(n_packets=120, drift_ppm=30.0, miss_prob=miss_prob, seed=4)


@pytest.mark.parametrize(
    "step_us",
    [
        -2_000_000,  # the case: 2 s back (400 samples at 200 Hz would overlap)
        -15_000,  # 3 sample periods back
        1_000_000,  # 1 s forward (a gap of 200 samples that were never lost)
        100_000,  # 20 sample periods forward
    ],
)
def test_step_is_rejoined_on_the_counter_exactly(step_us: int) -> None:
    st = _stream()
    meta = make_meta()
    clean = decode_sensor_packets(st.packets, meta)
    assert clean.stats.clock_steps == 0 and len(clean) == 1200
    pk = _stepped(st.packets, 60, step_us)
    got = decode_sensor_packets(pk, meta)
    _equal(got, clean)
    assert got.stats.clock_steps == 1
    assert got.stats.overlapping_samples == 0 and got.stats.gaps == ()
    assert got.stats.lost_packets == 0 and got.stats.protocol_errors == {}
    # the live path, chunk by chunk (the step packet alone, split from its followers, ...)
    for sizes in ([1], [59, 1, 1, 1, 100], [7], [61, 100]):
        dec, chunks, i, k = StreamDecoder(meta), [], 0, 0
        while i < len(pk):
            n = sizes[min(k, len(sizes) - 1)]
            chunks.append(dec.push(pk[i : i + n]))
            i, k = i + n, k + 1
        for name in _FIELDS:
            np.testing.assert_array_equal(
                np.concatenate([getattr(c, name) for c in chunks]), getattr(clean, name), name
            )
        assert dec.stats.clock_steps == 1, sizes


def test_two_steps_back_and_forth() -> None:
    st = _stream()
    clean = decode_sensor_packets(st.packets, make_meta())
    pk = _stepped(_stepped(st.packets, 30, -500_000), 90, 1_250_000)
    got = decode_sensor_packets(pk, make_meta())
    _equal(got, clean)
    assert got.stats.clock_steps == 2


def test_forward_jump_the_host_clock_saw_is_a_gap() -> None:
    """Device and host clocks both jump 0.5 s (100 samples) with the counter contiguous."""
    st = _stream(miss_prob=0.0)
    pk = _stepped(st.packets, 60, 500_000, dhost_ns=500_000_000)
    got = decode_sensor_packets(pk, make_meta())
    assert got.stats.clock_steps == 0 and got.stats.lost_packets == 0
    assert [(g.start_idx, g.stop_idx) for g in got.stats.gaps] == [(600, 700)]
    np.testing.assert_array_equal(got.sample_idx, np.r_[0:600, 700:1300])


def test_flagged_resync_is_not_also_a_clock_step() -> None:
    st = _stream()
    pk = _stepped(st.packets, 60, -2_000_000)
    v, f, seq, t, n = struct.unpack_from("<BBHIB", pk[60].payload)
    body = (
        struct.pack("<BBHIB", v, f | protocol.FLAG_CLOCK_RESYNC, seq, t, n) + pk[60].payload[9:-2]
    )
    pk[60] = RawPacket(
        pk[60].sensor, pk[60].host_rx_ns, body + struct.pack("<H", protocol.crc16(body))
    )
    got = decode_sensor_packets(pk, make_meta())
    _equal(got, decode_sensor_packets(st.packets, make_meta()))
    assert got.stats.clock_resyncs == 1 and got.stats.clock_steps == 0

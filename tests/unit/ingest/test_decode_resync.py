"""One CRC-valid but wrong packet must not derail the live decoder (issue 14 item 5)."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.ingest import protocol
from imuhip.ingest.decode import StreamDecoder, decode_sensor_packets
from imuhip.types import ImuSamples, RawPacket
from tests.unit.synth_packets import make_meta, make_stream

N_PACKETS, N, MID = 2000, 10, 1000  # 20,000 samples, the bad packet in the middle
FIELDS = ("sample_idx", "t_dev_s", "host_rx_ns", "acc_m_s2", "gyr_rad_s", "saturated")


def _with_bad_packet(kind: str) -> list[RawPacket]:
    st = make_stream(n_packets=N_PACKETS, n=N)
    pk = list(st.packets)
    raw = st.raw[MID * N : (MID + 1) * N]
    t = int(st.t_dev_us[MID * N])
    if kind == "time":
        pay = protocol.encode_packet(MID, t + 600_000_000, raw)  # device time +600 s
    else:
        pay = protocol.encode_packet(MID + 5000, t, raw)  # counter +5000
    pk[MID] = RawPacket(pk[MID].sensor, pk[MID].host_rx_ns, pay)
    return pk


def _stream(pk: list[RawPacket], size: int) -> tuple[StreamDecoder, list[ImuSamples]]:
    dec = StreamDecoder(make_meta())
    return dec, [dec.push(pk[i : i + size]) for i in range(0, len(pk), size)]


@pytest.mark.parametrize("kind", ["time", "seq"])
def test_one_wrong_packet_is_an_outlier_live_and_batch(kind: str) -> None:
    pk = _with_bad_packet(kind)
    batch = decode_sensor_packets(pk, make_meta())
    assert len(batch) == 19_990  # every sample but the bad packet's 10
    assert batch.stats.protocol_errors == {"outlier": 1}
    assert batch.stats.lost_samples == N and batch.stats.lost_packets == 1
    np.testing.assert_array_equal(
        batch.sample_idx, np.r_[0 : MID * N, (MID + 1) * N : N_PACKETS * N]
    )
    for size in (1, 3, 64):
        dec, chunks = _stream(pk, size)
        assert sum(len(c) for c in chunks) == 19_990
        for name in FIELDS:
            np.testing.assert_array_equal(
                np.concatenate([getattr(c, name) for c in chunks]), getattr(batch, name), name
            )
        assert dec.stats == batch.stats


@pytest.mark.parametrize("kind", ["time", "seq"])
def test_a_real_jump_is_accepted_after_a_few_packets(kind: str) -> None:
    st = make_stream(n_packets=200, n=N)
    pk = list(st.packets)
    for p in range(100, 200):  # every packet from 100 on lives on the jumped counter / clock
        seq, t = p, int(st.t_dev_us[p * N])
        if kind == "time":
            t += 600_000_000
        else:
            seq += 5000
        pay = protocol.encode_packet(seq, t, st.raw[p * N : (p + 1) * N])
        pk[p] = RawPacket(pk[p].sensor, pk[p].host_rx_ns, pay)
    batch = decode_sensor_packets(pk, make_meta())
    assert len(batch) == 2000 and batch.stats.protocol_errors == {}
    dec, chunks = _stream(pk, 1)
    assert sum(len(c) for c in chunks) == 2000
    assert len(chunks[100]) == len(chunks[101]) == 0  # held until confirmed ...
    assert len(chunks[102]) == 3 * N  # ... by the third packet on the new counter / clock
    for name in FIELDS:
        np.testing.assert_array_equal(
            np.concatenate([getattr(c, name) for c in chunks]), getattr(batch, name), name
        )
    assert dec.stats == batch.stats


def test_two_consecutive_wrong_packets_are_both_outliers() -> None:
    st = make_stream(n_packets=100, n=N)
    pk = list(st.packets)
    for p in (40, 41):
        pay = protocol.encode_packet(p + 5000, int(st.t_dev_us[p * N]), st.raw[p * N : (p + 1) * N])
        pk[p] = RawPacket(pk[p].sensor, pk[p].host_rx_ns, pay)
    batch = decode_sensor_packets(pk, make_meta())
    assert batch.stats.protocol_errors == {"outlier": 2} and len(batch) == 980
    dec, chunks = _stream(pk, 1)
    assert sum(len(c) for c in chunks) == 980 and dec.stats == batch.stats


def test_a_jump_in_the_last_packet_of_a_batch_is_counted_not_lost() -> None:
    st = make_stream(n_packets=50, n=N)
    pk = list(st.packets)
    last = len(pk) - 1
    raw = st.raw[last * N : (last + 1) * N]
    pay = protocol.encode_packet(last, int(st.t_dev_us[last * N]) + 600_000_000, raw)
    pk[last] = RawPacket(pk[last].sensor, pk[last].host_rx_ns, pay)
    batch = decode_sensor_packets(pk, make_meta())
    assert len(batch) == last * N  # nothing after it could confirm the jump
    assert batch.stats.protocol_errors == {"unconfirmed_jump": 1}

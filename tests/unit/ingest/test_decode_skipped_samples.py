"""A device that skips samples with its counter contiguous (or an imported file with rows
missing, which the importer writes exactly so): the jump is time that passed, not an outlier."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.ingest import protocol
from imuhip.ingest.decode import StreamDecoder, decode_sensor_packets
from imuhip.types import RawPacket
from tests.unit.synth_packets import make_meta, make_stream

RATE_HZ, AT = 100.0, 50


def _skipping(skip: int, n: int) -> list[RawPacket]:
    """100 packets of ``n`` samples; from packet AT on, device and host time ``skip`` samples on."""
    st = make_stream(n_packets=100, rate_hz=RATE_HZ, n=n)
    pk = list(st.packets)
    shift_us = round(skip * 1e6 / RATE_HZ)
    for p in range(AT, len(pk)):
        pay = protocol.encode_packet(
            p, int(st.t_dev_us[p * n]) + shift_us, st.raw[p * n : (p + 1) * n]
        )
        pk[p] = RawPacket(pk[p].sensor, pk[p].host_rx_ns + shift_us * 1000, pay)
    return pk


@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("skip", [30, 60, 300])
def test_skipped_samples_are_a_gap_of_exactly_that_many(skip: int, n: int) -> None:
    # before: 30 skipped samples (0.3 s, beyond the 0.25 s jump slack but within what one lost
    # packet could carry) made the packet after the jump look consistent with the one before
    # it, and the first packet after the jump was dropped as an "outlier"
    pk = _skipping(skip, n)
    meta = make_meta(rate_hz=RATE_HZ)
    batch = decode_sensor_packets(pk, meta)
    assert batch.stats.protocol_errors == {}
    assert batch.stats.lost_samples == skip and batch.stats.lost_packets == 0
    np.testing.assert_array_equal(
        batch.sample_idx - batch.sample_idx[0],
        np.r_[0 : AT * n, AT * n + skip : 100 * n + skip],
    )
    for size in (1, 3, 64):  # live (chunked) decoding gives the same samples
        dec = StreamDecoder(meta)
        chunks = [dec.push(pk[i : i + size]) for i in range(0, len(pk), size)]
        np.testing.assert_array_equal(
            np.concatenate([c.sample_idx for c in chunks]), batch.sample_idx
        )
        assert dec.stats == batch.stats

"""StreamDecoder: constant memory per packet; duplicates told from late packets 8192 back."""

from __future__ import annotations

import tracemalloc

import pytest

from imuhip.ingest.decode import stream_decoder_for
from tests.unit.synth_packets import make_meta, make_stream


@pytest.mark.slow
def test_live_decoder_memory_does_not_grow_per_packet() -> None:
    s = make_stream(n_packets=10_000, sensor="pelvis")
    d = stream_decoder_for(make_meta("pelvis"))
    for p in s.packets[:1000]:
        d.push([p])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for p in s.packets[1000:3000]:
            d.push([p])
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # 2000 packets between the two: keeping anything per packet (>= 8 B) exceeds 10 kB
    assert after - before < 10_000, (before, after)
    for p in s.packets[3000:]:
        d.push([p])
    # a copy of a packet 5000 back is a duplicate, one 9000 back is beyond the window (late)
    d.push([s.packets[5000]])
    assert d.stats.duplicates == 1 and d.stats.late_packets == 0
    d.push([s.packets[999]])
    assert d.stats.duplicates == 1 and d.stats.late_packets == 1

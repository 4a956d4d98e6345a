"""A recording survives ``kill -9`` of the writing process, losing at most the last second."""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from imuhip.ingest.recording import read_recording

PLACEMENTS = ("pelvis", "thigh_l", "thigh_r", "lumbar")

CHILD = r"""
import sys, time
import numpy as np
from imuhip.ingest.protocol import MAG_LSB_UT, acc_lsb_m_s2, encode_packet, gyr_lsb_rad_s
from imuhip.ingest.recording import RecordingWriter
from imuhip.types import RawPacket, SensorMeta, SessionMeta

placements = ("pelvis", "thigh_l", "thigh_r", "lumbar")
sensors = tuple(
    SensorMeta(placement=p, rate_hz=200.0, acc_lsb_m_s2=acc_lsb_m_s2(16),
               gyr_lsb_rad_s=gyr_lsb_rad_s(2000), mag_lsb_ut=MAG_LSB_UT, has_mag=False)
    for p in placements
)
meta = SessionMeta("kill-test", "2024-05-01T09:30:00+00:00", "K01", sensors)
w = RecordingWriter(sys.argv[1], meta)
sample = np.arange(6).reshape(1, 6)
sys.stdout.write("ready\n")
sys.stdout.flush()
t0 = time.monotonic()
k = 0
while True:  # 4 sensors x 200 packets/s, paced in real time, until killed
    for p in placements:
        w.write_packet(RawPacket(p, time.monotonic_ns(), encode_packet(k, k * 5000, sample)))
    k += 1
    delay = t0 + k * 0.005 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
"""


def test_kill_9_loses_at_most_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "killed.imrec"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "ready\n", child.stderr.read() if child.stderr else line
        delay_s = random.uniform(1.5, 3.0)
        time.sleep(delay_s)
        kill_ns = time.monotonic_ns()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    rec = read_recording(path)
    assert not rec.complete
    assert rec.packets, "nothing was recorded"
    last_ns = max(p.host_rx_ns for p in rec.packets)
    lost_s = (kill_ns - last_ns) / 1e9
    assert 0 <= lost_s < 1.0, f"killed after {delay_s:.2f} s; last packet {lost_s:.3f} s before"
    # what was written is gapless: per sensor, packet counters 0, 1, 2, ... with no hole
    for p in PLACEMENTS:
        seqs = [struct.unpack_from("<H", q.payload, 2)[0] for q in rec.packets if q.sensor == p]
        assert seqs == list(range(len(seqs))), p
    # the only damage possible is a frame cut at the very end
    assert all("truncated" in w or "no stop event" in w for w in rec.warnings), rec.warnings

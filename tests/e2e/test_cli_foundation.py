"""End to end: ``python -m imuhip info/replay/export`` on a synthetic recording with known answers.

The recording: pelvis and thigh_l at 100 Hz, 5 samples per packet, 200 packets each (10 s).
Pelvis packet 50 is lost; thigh_l packet 100 has a flipped byte (CRC error) and packet 150 arrives
twice. Raw counts encode the sample index (acc_x = idx, gyr_z = -idx), and each notification
arrives exactly 8 ms (pelvis) / 9 ms (thigh_l) after its last sample, so the session clock is
known: t_s = idx / 100 - 0.040 (pelvis), idx / 100 - 0.039 (thigh_l).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imuhip.cli import main
from imuhip.ingest.protocol import acc_lsb_m_s2, encode_packet, gyr_lsb_rad_s
from imuhip.ingest.recording import RecordingWriter
from imuhip.types import RawPacket, SessionEvent
from tests.unit.ingest.test_recording import make_meta

RATE = 100.0
N_PACKETS = 200
SPP = 5
T0_NS = 7_000_000_000
LATENCY_NS = {"pelvis": 8_000_000, "thigh_l": 9_000_000}
ACC_LSB = acc_lsb_m_s2(16)
GYR_LSB = gyr_lsb_rad_s(2000)


def _write(path: Path) -> None:
    meta = make_meta(("pelvis", "thigh_l"))
    meta = dataclasses.replace(
        meta, sensors=tuple(dataclasses.replace(s, rate_hz=RATE) for s in meta.sensors)
    )
    with RecordingWriter(path, meta) as w:
        w.write_event(SessionEvent(T0_NS, "connect", "pelvis", {"mtu": 247}))
        w.write_event(SessionEvent(T0_NS, "connect", "thigh_l", {"mtu": 247}))
        for k in range(N_PACKETS):
            for p in ("pelvis", "thigh_l"):
                idx = np.arange(k * SPP, (k + 1) * SPP)
                samples = np.zeros((SPP, 6), dtype=np.int64)
                samples[:, 0] = idx
                samples[:, 5] = -idx
                payload = encode_packet(k, 1_000_000 + k * SPP * 10_000, samples)
                host = T0_NS + round((k * SPP + SPP - 1) * 1e9 / RATE) + LATENCY_NS[p]
                if p == "pelvis" and k == 50:
                    continue
                if p == "thigh_l" and k == 100:
                    payload = payload[:30] + bytes([payload[30] ^ 0xFF]) + payload[31:]
                w.write_packet(RawPacket(p, host, payload))
                if p == "thigh_l" and k == 150:
                    w.write_packet(RawPacket(p, host + 2_000_000, payload))
            if k == 100:
                w.write_event(SessionEvent(host, "annotation", None, {"text": "turn"}))


@pytest.fixture(scope="module")
def rec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "walk.imrec"
    _write(path)
    return path


def imuhip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imuhip", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_user_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    err = r.stderr.strip()
    for n in needles:
        assert n in err, err


# ---------------------------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------------------------


def test_info_json_known_answers(rec_path: Path) -> None:
    r = imuhip("info", str(rec_path), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["session_id"] == "sess-0001"
    assert info["subject"] == "S07"
    assert info["start_wall_time"] == "2024-05-01T09:30:00.123456+00:00"
    assert info["complete"] is True
    assert info["warnings"] == []
    assert info["packets"] == 2 * N_PACKETS - 1 + 1  # one lost, one duplicate
    assert info["events"] == {"annotation": 1, "connect": 2, "stop": 1}
    assert info["annotations"] == ["turn"]
    pelvis, thigh = info["sensors"]
    assert pelvis["placement"] == "pelvis" and thigh["placement"] == "thigh_l"
    assert pelvis["serial"] == "SN0000" and pelvis["firmware"] == "1.2.3"
    assert pelvis["protocol"] == "imuhip v1"
    for s in (pelvis, thigh):
        assert s["samples"] == 995
        assert s["nominal_rate_hz"] == 100.0
        assert s["duration_s"] == pytest.approx(10.0)
        assert s["achieved_rate_hz"] == pytest.approx(99.5)
        assert s["packets_lost"] == 1
        assert s["packets_lost_pct"] == pytest.approx(0.5)
        assert s["samples_lost"] == 5
        assert s["gaps"] == 1
        assert s["longest_gap_samples"] == 5
        assert s["longest_gap_s"] == pytest.approx(0.05)
    assert pelvis["packets_received"] == 199
    assert pelvis["duplicates"] == 0 and pelvis["protocol_errors"] == {}
    assert thigh["packets_received"] == 201
    assert thigh["duplicates"] == 1
    assert thigh["protocol_errors"] == {"crc": 1}


def test_info_human_table(rec_path: Path) -> None:
    r = imuhip("info", str(rec_path))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "subject   S07" in out
    assert "complete" in out
    rows = [re.split(r"\s{2,}", ln.strip()) for ln in out.splitlines()]
    lines = {r[0]: r[1:] for r in rows if len(r) == 3}
    assert lines["packets lost"] == ["1", "1"]
    assert lines["packets lost [%]"] == ["0.5", "0.5"]
    assert lines["achieved rate [Hz]"] == ["99.5", "99.5"]
    assert lines["samples"] == ["995", "995"]
    assert lines["duplicates"] == ["0", "1"]
    assert lines["crc"] == ["0", "1"]
    assert "crc" in out
    assert "annotation 1" in out


def test_info_reports_truncation(rec_path: Path, tmp_path: Path) -> None:
    data = rec_path.read_bytes()
    cut = tmp_path / "cut.imrec"
    cut.write_bytes(data[: len(data) - 300])
    r = imuhip("info", str(cut), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["complete"] is False
    assert any("truncated at byte offset" in w for w in info["warnings"])
    assert info["valid_bytes"] < info["size_bytes"] == len(data) - 300


# ---------------------------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------------------------


def test_replay_counts_and_verify(rec_path: Path) -> None:
    r = imuhip("replay", str(rec_path), "--verify", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verify"] == "identical"
    # session grid: pelvis t_s -0.040 .. 9.950, thigh_l -0.039 .. 9.951 -> k = -4 .. 995
    assert out["align"]["status"] == "ok"
    assert out["align"]["grid_samples"] == 1000
    assert out["align"]["t_start_s"] == pytest.approx(-0.04)
    assert out["packets"] == 400
    pelvis, thigh = out["sensors"]
    assert (pelvis["samples"], pelvis["packets_lost"], pelvis["protocol_errors_total"]) == (
        995,
        1,
        0,
    )
    assert (thigh["samples"], thigh["duplicates"], thigh["protocol_errors_total"]) == (995, 1, 1)


def test_replay_realtime_paced(rec_path: Path) -> None:
    r = imuhip("replay", str(rec_path), "--realtime", "--speed", "40")
    assert r.returncode == 0, r.stderr
    assert "realtime x40" in r.stdout
    wall = float(r.stdout.split(" in ")[1].split(" s")[0])
    assert 9.95 / 40 - 0.01 <= wall < 9.95 / 40 + 1.0


def test_replay_bad_speed_is_a_clean_error(rec_path: Path) -> None:
    assert_user_error(imuhip("replay", str(rec_path), "--realtime", "--speed", "-2"), "--speed")
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(rec_path), "--realtime", "--speed", "fast"])
    assert exc.value.code == 2


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------


def _check_table(df: pd.DataFrame, placement: str) -> None:
    assert list(df["sample_idx"]) == list(range(1000))
    lost = set(range(250, 255)) if placement == "pelvis" else set(range(500, 505))
    valid = df["valid"].to_numpy(bool)
    assert set(np.flatnonzero(~valid)) == lost
    idx = df["sample_idx"].to_numpy()[valid]
    np.testing.assert_allclose(df["acc_x_m_s2"].to_numpy()[valid], idx * ACC_LSB, rtol=0, atol=0)
    np.testing.assert_allclose(df["gyr_z_rad_s"].to_numpy()[valid], -idx * GYR_LSB, rtol=0, atol=0)
    assert np.all(df["acc_y_m_s2"].to_numpy()[valid] == 0)
    assert df.loc[~valid, "acc_x_m_s2"].isna().all()
    assert "mag_x_ut" not in df.columns
    lat = {"pelvis": 0.040, "thigh_l": 0.039}[placement]
    np.testing.assert_allclose(df["t_s"], df["sample_idx"] / 100 - lat, atol=1e-9)


def test_export_csv_and_parquet(rec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    r = imuhip("export", str(rec_path), "--format", "csv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["time_basis"] == "session_clock"
    assert meta["session"]["subject"] == "S07"
    assert meta["sensors"][1]["decode_stats"]["protocol_errors"] == {"crc": 1}
    assert meta["clock_models"]["pelvis"]["drift_ppm"] == pytest.approx(0.0, abs=1e-6)
    assert [e["kind"] for e in meta["events"]] == ["connect", "connect", "annotation", "stop"]
    tables = {}
    for p in ("pelvis", "thigh_l"):
        df = pd.read_csv(out / f"walk_{p}.csv")
        _check_table(df, p)
        tables[p] = df
    out_pq = tmp_path / "pq"
    r = imuhip("export", str(rec_path), "--format", "parquet", "--out", str(out_pq))
    assert r.returncode == 0, r.stderr
    for p in ("pelvis", "thigh_l"):
        df = pd.read_parquet(out_pq / f"walk_{p}.parquet")
        _check_table(df, p)
        assert df["host_rx_ns"].dtype == "Int64"
        # csv keeps full precision: both files hold the same numbers
        np.testing.assert_array_equal(df["t_s"].to_numpy(), tables[p]["t_s"].to_numpy())


def test_export_refuses_to_overwrite_without_force(rec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["export", str(rec_path), "--format", "csv", "--out", str(out)]) == 0
    before = (out / "walk_pelvis.csv").stat().st_mtime_ns
    r = imuhip("export", str(rec_path), "--format", "csv", "--out", str(out))
    assert_user_error(r, "refusing to overwrite", "--force")
    assert len(r.stderr.strip().splitlines()) == 1
    assert (out / "walk_pelvis.csv").stat().st_mtime_ns == before
    assert main(["export", str(rec_path), "--format", "csv", "--out", str(out), "--force"]) == 0


def test_export_device_clock_fallback(rec_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "dev"
    assert (
        main(["export", str(rec_path), "--format", "csv", "--out", str(out), "--device-clock"]) == 0
    )
    meta = json.loads((out / "meta.json").read_text())
    assert meta["time_basis"] == "device_clock"
    df = pd.read_csv(out / "walk_thigh_l.csv")
    # first thigh packet arrived 1 ms after the first pelvis packet (= session time 0)
    np.testing.assert_allclose(df["t_s"], df["sample_idx"] / 100 + 0.001, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# user errors: one line, non-zero, no traceback
# ---------------------------------------------------------------------------------------------


def test_user_errors_end_to_end(rec_path: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.imrec"
    r = imuhip("info", str(missing))
    assert_user_error(r, "no such file", str(missing))
    assert len(r.stderr.strip().splitlines()) == 1
    assert "did you mean" not in r.stderr
    # `import ... -o walk` writes walk.imrec: `analyze walk` names the file that is there
    (tmp_path / "walk.imrec").write_bytes(rec_path.read_bytes())
    r = imuhip("analyze", str(tmp_path / "walk"), "--out", str(tmp_path / "o"))
    assert_user_error(r, f"no such file: {tmp_path / 'walk'} (did you mean {tmp_path}/walk.imrec?)")

    text = tmp_path / "notes.imrec"
    text.write_text("this is not a recording\n")
    r = imuhip("replay", str(text))
    assert_user_error(r, "not an imuhip recording")
    assert len(r.stderr.strip().splitlines()) == 1

    data = bytearray(rec_path.read_bytes())
    data[40] ^= 0x20  # inside the metadata JSON
    n_json = int.from_bytes(data[10:14], "little")
    data[14 + n_json + 4 + 40] ^= 0x20  # ... and inside its copy (the first frame), else read
    bad = tmp_path / "badhdr.imrec"
    bad.write_bytes(bytes(data))
    r = imuhip("export", str(bad), "--format", "csv", "--out", str(tmp_path / "x"))
    assert_user_error(r, "corrupt header")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_user_errors_in_process(rec_path: Path, tmp_path: Path, capsys) -> None:
    assert main(["info", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["export", str(rec_path), "--format", "csv", "--out", str(f)]) == 1
    assert "not a directory" in capsys.readouterr().err
    assert main(["replay", str(rec_path), "--speed", "2"]) == 2  # option misuse: usage, exit 2
    assert "--realtime" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["export", str(rec_path), "--format", "xlsx", "--out", str(tmp_path / "y")])
    assert exc.value.code == 2
    assert "xlsx" in capsys.readouterr().err

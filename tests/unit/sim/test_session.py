"""Simulated sessions end to end: packets, link model, clocks, recording, truth files, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest import protocol
from imuhip.sim import Disconnect, SimParams, simulate_session, write_simulated_recording
from imuhip.sim.demos import DEMOS, write_demos
from imuhip.sim.sensors import to_counts
from imuhip.sim.session import sha256_file
from imuhip.sim.truth import HIP_METRICS, stride_metrics

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def lossy() -> object:
    return simulate_session(
        SimParams(
            seed=11,
            duration_s=30.0,
            rate_hz=100,
            sensors=("pelvis", "thigh_l", "thigh_r"),
            loss_prob=0.05,
            burst_start_prob=0.01,
            disconnects=(Disconnect(12.0, 2.0, "thigh_r"), Disconnect(20.0, 0.5)),
        )
    )


def test_packets_match_the_protocol(lossy) -> None:
    p = lossy.params
    n = protocol.samples_per_packet(p.att_mtu, p.rate_hz, p.has_mag)
    for pl, pk in lossy.packets.items():
        heads = [protocol.parse_header(b) for _, b in pk]
        assert all(h.n == n and h.has_mag for h in heads)
        seq = np.array([h.seq for h in heads])
        assert np.all(np.diff(seq) % 65536 == 1)
        t_us = np.array([h.t_first_us for h in heads], dtype=np.int64)
        assert np.all(np.diff(t_us) % (1 << 32) == n * 10_000)  # 100 Hz, device clock
        send = np.array([t for t, _ in pk])
        assert np.all(np.diff(send) > 0)
        assert lossy.device_info[pl].samples_per_packet == n


def test_delivered_is_sent_minus_truth_losses(lossy) -> None:
    info = lossy.truth.info["sensors"]
    for pl, pk in lossy.packets.items():
        lost = set(info[pl]["lost_packet_idx"])
        want = [b for j, (_, b) in enumerate(pk) if j not in lost]
        got = [d.payload for d in lossy.delivered if d.sensor == pl]
        assert got == want
        reasons = info[pl]["lost_packets_by_reason"]
        assert reasons["random"] > 0 and reasons["burst"] > 0 and reasons["disconnect"] > 0
    ns = [d.host_rx_ns for d in lossy.delivered]
    assert ns == sorted(ns)
    t0 = min(ns)
    # every packet arrives after it was sent, within a few connection intervals
    for pl, pk in lossy.packets.items():
        send = {b: t for t, b in pk}
        lat = np.array(
            [(d.host_rx_ns - t0) / 1e9 - send[d.payload] for d in lossy.delivered if d.sensor == pl]
        )
        assert lat.min() > 0 and lat.max() < 0.2
    kinds = [(e.kind, e.sensor) for e in lossy.events]
    assert kinds.count(("disconnect", "thigh_r")) == 2  # its own window and the all-sensor one
    assert kinds.count(("reconnect", "pelvis")) == 1
    assert ("calibration_start", None) in kinds


def test_decode_agrees_with_truth_losses_and_clock(lossy, tmp_path) -> None:
    decode = pytest.importorskip("imuhip.ingest.decode")
    recording = pytest.importorskip("imuhip.ingest.recording")
    paths = write_simulated_recording(lossy, tmp_path / "lossy")
    rec = recording.read_recording(paths["imrec"])
    assert rec.complete
    assert [(p.sensor, p.host_rx_ns, p.payload) for p in rec.packets] == [
        (p.sensor, p.host_rx_ns, p.payload) for p in lossy.delivered
    ]
    assert [e.kind for e in rec.events if e.kind != "stop"] == [e.kind for e in lossy.events]
    samples = decode.decode_session(rec.packets, rec.meta)
    info = lossy.truth.info["sensors"]
    for pl, s in samples.items():
        truth_lost = info[pl]["lost_sample_ranges"]
        first = truth_lost[0][1] if truth_lost and truth_lost[0][0] == 0 else 0
        gaps = [[g.start_idx + first, g.stop_idx + first] for g in s.stats.gaps]
        assert gaps == [r for r in truth_lost if r[0] != 0]
        # device clock: truth model maps decoded device time onto true sample times
        c = info[pl]["clock"]
        t_sess = c["offset_s"] + (1 + c["session_per_device_ppm"] * 1e-6) * s.t_dev_s
        sim = lossy.samples[pl]
        idx = s.sample_idx + first
        np.testing.assert_allclose(t_sess, sim.t_s[idx], atol=2e-6)
        # counts decode back to the measured values within one LSB
        np.testing.assert_allclose(
            s.gyr_rad_s, sim.gyr_rad_s[idx], atol=rec.meta.sensor(pl).gyr_lsb_rad_s
        )
        np.testing.assert_allclose(
            s.acc_m_s2, sim.acc_m_s2[idx], atol=rec.meta.sensor(pl).acc_lsb_m_s2
        )


def test_truth_files_and_metric_definitions(lossy, tmp_path) -> None:
    paths = write_simulated_recording(lossy, tmp_path / "x.imrec")
    doc = json.loads(paths["truth_json"].read_text())
    arr = np.load(paths["truth_npz"])
    for k in (
        "t_s",
        "q_world_pelvis",
        "q_world_thigh_l",
        "hip_left_deg",
        "pelvis_deg",
        "lumbar_deg",
        "q_segment_sensor_pelvis",
        "q_world_sensor_thigh_r",
    ):
        assert k in arr.files
    strides = doc["strides"]
    assert {s["excluded_reason"] for s in strides} == {None, "standing"}
    assert any(s["data_loss"] for s in strides)
    # recompute per-stride metrics from the float32 npz series: same numbers (definitions)
    for s in strides[::5]:
        m = stride_metrics(
            arr["t_s"],
            arr[f"hip_{s['side']}_deg"].astype(float),
            arr["pelvis_deg"].astype(float),
            None,
            s["ic_s"],
            s["next_ic_s"],
            s["to_s"],
        )
        for name in (*HIP_METRICS, "pelvis_rotation_range_deg"):
            if m[name] is not None:
                assert m[name] == pytest.approx(s[name], abs=1e-3), name
    valid = [s for s in strides if s["valid"]]
    for side in ("left", "right"):
        mean = np.mean([s["hip_rotation_excursion_deg"] for s in valid if s["side"] == side])
        assert doc["session_metrics"]["hip_rotation_excursion_deg"][side] == pytest.approx(mean)
    # stance-time sanity: toe-off ~60 % into each stride
    for s in valid:
        frac = (s["to_s"] - s["ic_s"]) / (s["next_ic_s"] - s["ic_s"])
        assert 0.55 < frac < 0.65


def test_turn_and_functional_strides_are_excluded() -> None:
    r = simulate_session(
        SimParams(duration_s=60.0, rate_hz=50, turn=True, functional_calibration=True, noise=False)
    )
    tl = r.truth.info["timeline_s"]
    reasons = {s["excluded_reason"] for s in r.truth.strides}
    assert reasons == {None, "standing", "turn"}
    for s in r.truth.strides:
        overlaps_turn = s["ic_s"] <= tl["turn"][1] and s["next_ic_s"] >= tl["turn"][0]
        if s["valid"]:
            assert not overlaps_turn
            assert tl["steady"][0] <= s["ic_s"] and s["next_ic_s"] <= tl["steady"][1]
    moves = [e.data["movement"] for e in r.events if e.kind == "calibration_start"]
    assert moves == [
        "static",
        "hip_flexion",
        "hip_rotation",
        "hip_flexion",
        "hip_rotation",
        "static",
    ]


def test_deterministic_by_seed(tmp_path) -> None:
    p = SimParams(duration_s=20.0, rate_hz=50, loss_prob=0.05)
    a = write_simulated_recording(simulate_session(p), tmp_path / "a")
    b = write_simulated_recording(simulate_session(p), tmp_path / "b")
    for k in a:
        assert sha256_file(a[k]) == sha256_file(b[k]) or k == "truth_json"
    ja = json.loads(a["truth_json"].read_text())
    jb = json.loads(b["truth_json"].read_text())
    assert ja == jb
    c = simulate_session(SimParams(duration_s=20.0, rate_hz=50, loss_prob=0.05, seed=1))
    assert c.delivered[0].payload != simulate_session(p).delivered[0].payload


def test_saturation_clips_and_flags() -> None:
    acc = np.array([[0.0, 0.0, 9.8], [200.0, 0.0, 0.0]])
    gyr = np.zeros((2, 3))
    counts, sat = to_counts(acc, gyr, None, protocol.acc_lsb_m_s2(2), protocol.gyr_lsb_rad_s(250))
    assert sat.tolist() == [False, True]
    assert counts[1, 0] == 32767


def test_bad_params_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        SimParams(rate_hz=123)
    with pytest.raises(ValueError, match="placement"):
        SimParams(sensors=("pelvis", "knee"))
    with pytest.raises(ValueError, match="duration_s"):
        SimParams(duration_s=8.0)
    with pytest.raises(ValueError, match="att_mtu"):
        simulate_session(SimParams(att_mtu=23, duration_s=12.0, rate_hz=50))


@pytest.mark.slow
def test_shipped_demos_regenerate_byte_identical(tmp_path) -> None:
    manifest = tomllib.loads((ROOT / "recordings" / "MANIFEST.toml").read_text())
    write_demos(tmp_path)
    for d in DEMOS:
        entry = manifest[d.name]
        for key, sha in (
            ("file", "sha256"),
            ("truth_json", "truth_json_sha256"),
            ("truth_npz", "truth_npz_sha256"),
        ):
            shipped = ROOT / "recordings" / entry[key]
            assert sha256_file(shipped) == entry[sha], f"shipped {shipped.name} != MANIFEST"
            assert sha256_file(tmp_path / entry[key]) == entry[sha], f"regenerated {entry[key]}"
        assert shipped.stat().st_size < 1_100_000


def test_cli_simulate(tmp_path) -> None:
    out = tmp_path / "cli"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "imuhip",
            "simulate",
            str(out),
            "--duration",
            "20",
            "--rate",
            "50",
            "--sensors",
            "pelvis,thigh_l,thigh_r,lumbar",
            "--hip-ir-limit-deg",
            "none,2",
            "--compensation",
            "0.5",
            "--loss",
            "0.02",
            "--seed",
            "4",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "simulated 20 s, 4 sensors at 50 Hz in" in r.stdout
    doc = json.loads((tmp_path / "cli.truth.json").read_text())
    assert doc["params"]["hip_ir_limit_deg"] == [None, 2.0]
    assert doc["session_metrics"]["hip_ir_peak_deg"]["right"] < 2.0
    assert (tmp_path / "cli.imrec").exists() and (tmp_path / "cli.truth.npz").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "imuhip", "simulate", str(out), "--rate", "7"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "rate_hz must be one of" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_realistic_is_the_realistic_simulator(tmp_path: Path) -> None:
    """``imuhip simulate --realistic`` writes the walker of ``realistic_params`` with the same
    options (the realistic simulator was reachable only from the validation scripts): the
    same truth arrays, its walkway (stand 4 s, walk, 180 deg turn, stand 3 s), the seven
    realistic sensors, cadence from speed (85 + 20 x 0.9 = 103), and --soft-tissue-deg /
    --thigh-placement / --sensor-grade reaching the Realism."""
    from imuhip.sim.presets import REALISTIC_SENSORS, realistic_params
    from imuhip.sim.realism import SENSOR_GRADES, Realism

    out = tmp_path / "real"
    opts = ["--speed", "0.9", "--soft-tissue-deg", "5", "--thigh-placement", "anterior"]
    opts += ["--sensor-grade", "xsens_mtx", "--hip-ir-limit-deg", "none,3", "--seed", "3"]
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "simulate", str(out), "--realistic", "--quiet", *opts],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "real.truth.json").read_text())
    p = doc["params"]
    assert tuple(p["sensors"]) == REALISTIC_SENSORS
    assert p["turn"] and p["stand_start_s"] == 4.0 and p["stand_end_s"] == 3.0
    assert p["cadence_steps_min"] == pytest.approx(103.0)
    assert p["realism"]["sta_thigh_deg"] == 5.0 and p["realism"]["thigh_placement"] == "anterior"
    mtx = SENSOR_GRADES["xsens_mtx"]
    assert p["gyr_noise_rad_s"] == pytest.approx(mtx["gyr_noise_rad_s"], rel=1e-6)
    api = realistic_params(
        3,
        speed_m_s=0.9,
        sensor_grade="xsens_mtx",
        realism=Realism(
            axis_misalignment_deg=mtx["axis_misalignment_deg"],
            thigh_placement="anterior",
            sta_thigh_deg=5.0,
        ),
        hip_ir_limit_deg=(None, 3.0),
        cadence_steps_min=103.0,
    )
    want = simulate_session(api).truth
    got = np.load(tmp_path / "real.truth.npz")
    np.testing.assert_allclose(got["t_s"], want.t_s, atol=1e-9)
    np.testing.assert_allclose(got["hip_right_deg"], want.hip_deg["right"], atol=1e-9)
    np.testing.assert_allclose(
        got["q_world_sensor_thigh_l"], want.q_world_sensor["thigh_l"], atol=1e-9
    )
    # the soft-tissue artefact: the thigh sensor turns against its bone beyond its mounting
    # (truth stays the bone): several degrees RMS while walking, none standing
    from imuhip.conventions import quat_conj, quat_mul

    rel = quat_mul(quat_conj(got["q_world_thigh_l"]), got["q_world_sensor_thigh_l"])
    sta = quat_mul(quat_conj(got["q_segment_sensor_thigh_l"]), rel)
    ang = np.degrees(2.0 * np.arccos(np.clip(np.abs(sta[:, 0]), 0.0, 1.0)))
    walking = (got["t_s"] > 6.0) & (got["t_s"] < got["t_s"][-1] - 6.0)
    assert np.sqrt(np.mean(ang[walking] ** 2)) > 2.0
    assert np.max(ang[got["t_s"] < 3.0]) < 0.1

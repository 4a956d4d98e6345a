"""ROM report (rom_report.json/.html): known answers from the ROM simulator's truth and by hand."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from imuhip.gait.rom import RomSide, rom_flags, rom_side
from imuhip.report.files import write_file_set
from imuhip.report.rom import (
    RomReportConfig,
    render_rom_html,
    repeat_reasons,
    rom_asymmetry,
    rom_report_dict,
    write_rom_report,
)
from tests.unit.gait.test_rom import seated_session


def _side(side: str, ir: tuple[float, ...], er: tuple[float, ...]) -> RomSide:
    return RomSide(side, ir, er, (0.0, 1.0), (1.0, 0.0, 0.0))


# --- repeat the test: by hand --------------------------------------------------------------------


def test_consistent_complete_test_needs_no_repeat():
    res = {
        "left": _side("left", (35, 37, 36), (40, 41, 39)),
        "right": _side("right", (38, 39, 40), (41, 40, 42)),
    }
    assert repeat_reasons(res) == []


def test_missing_repetition_side_and_outlier_each_ask_for_a_repeat():
    res = {"left": _side("left", (35, 37), (40, 41, 39))}
    reasons = repeat_reasons(res, ["right: no rotation repetitions found"])
    assert reasons == [
        "left IR: 2 of 3 repetitions measured",
        "right side not measured (no rotation repetitions found)",
    ]
    res = {
        "left": _side("left", (35, 37, 50), (40, 41, 39)),
        "right": _side("right", (38, 39, 40), (41, 40, 42)),
    }
    (reason,) = repeat_reasons(res)
    # 50 against the median of 35 and 37 = 36: 14° > 10°
    assert reason.startswith("left IR repetition 3 is an outlier: 50.0° against 36.0°")
    # 10° exactly from the median is not an outlier (the limit is "more than")
    res["left"] = _side("left", (35, 37, 46), (40, 41, 39))
    assert repeat_reasons(res) == []
    assert repeat_reasons(res, cfg=RomReportConfig(outlier_deg=9.5)) != []


def test_two_repetitions_far_apart_are_one_reason():
    res = {
        "left": _side("left", (30, 45, 31), (40, 55)),
        "right": _side("right", (38, 39, 40), (41, 40, 42)),
    }
    reasons = repeat_reasons(res)
    assert "left ER: 2 of 3 repetitions measured" in reasons
    assert "left ER: the two repetitions differ by 15.0° (more than 10°)" in reasons
    # 45 vs median(30, 31) = 30.5 -> outlier; 30 vs median(45, 31) = 38 -> not
    assert sum("left IR repetition" in r for r in reasons) == 1


def test_asymmetry_welch_interval_by_hand():
    res = {
        "left": _side("left", (30, 32, 34), (40, 40, 40)),
        "right": _side("right", (40, 42, 44), (35, 36, 37)),
    }
    a = rom_asymmetry(res)["hip_ir_rom_deg"]
    # means 32 and 42; var of each mean 4/3; Welch df = (8/3)^2 / (2 * (4/3)^2 / 2) = 4;
    # t(0.975, 4) = 2.7764451; half width = 2.7764451 * sqrt(8/3)
    half = 2.7764451 * np.sqrt(8 / 3)
    assert a["right_minus_left"] == pytest.approx(10.0)
    assert (a["ci95_low"], a["ci95_high"]) == pytest.approx((10 - half, 10 + half), abs=1e-6)
    assert (a["n_left"], a["n_right"]) == (3, 3)
    assert rom_asymmetry(res)["hip_er_rom_deg"]["right_minus_left"] == pytest.approx(-4.0)
    assert rom_asymmetry({"left": res["left"]}) == {}


def test_outlier_in_a_measured_trace_is_found():
    t, q, g = seated_session("right", [35, 37, 52], [40, 41, 39])
    r = rom_side(t, q, g, "right")
    assert r.ir_deg == pytest.approx((35, 37, 52), abs=0.5)
    # the peak times are where the synthetic session puts them: rep k peaks at 2 + 4(k-1) + 1 s
    assert r.ir_t_s == pytest.approx((3.0, 7.0, 11.0), abs=0.05)
    assert r.er_t_s == pytest.approx((5.0, 9.0, 13.0), abs=0.05)
    doc = rom_report_dict(
        {"right": r, "left": rom_side(*seated_session("left", [36, 37, 38], [40, 40, 40]), "left")},
        [],
    )
    assert doc["repeat_test"] is True
    assert [x for x in doc["repeat_reasons"] if "outlier" in x] == [
        "right IR repetition 3 is an outlier: 52.0° against 36.0° (median of the others; "
        "limit ±10°)"
    ]


# --- known answers on the simulated ROM test ------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from imuhip.cli.commands.rom_test import analyze_rom_session
    from imuhip.sim.params import SimParams
    from imuhip.sim.rom import RomSimParams, simulate_rom_session, write_rom_recording

    base = SimParams(sensors=("thigh_l", "thigh_r"), rate_hz=100, seed=4)
    sim = simulate_rom_session(RomSimParams(base=base, ir_deg=(25.0, 40.0), er_deg=(42.0, 34.0)))
    path = tmp_path_factory.mktemp("rom") / "rom.imrec"
    write_rom_recording(sim, path)
    return sim.truth, analyze_rom_session(path), path


@pytest.mark.slow
def test_report_numbers_match_the_simulator_truth(simulated):
    truth, a, path = simulated
    doc = rom_report_dict(a.results, a.flags, a.errors, recording=path.name, meta=a.meta)
    assert doc["repeat_test"] is False and doc["repeat_reasons"] == []
    for side in ("left", "right"):
        s, tr = doc["sides"][side], truth["rom"][side]
        assert s["ir_deg"] == pytest.approx(tr["ir_deg"], abs=1.5)
        assert s["er_deg"] == pytest.approx(tr["er_deg"], abs=1.5)
        assert s["ir_mean_deg"] == pytest.approx(tr["ir_mean_deg"], abs=1.0)
        reps = [r for r in s["repetitions"] if r["kind"] == "ir"]
        assert [r["repetition"] for r in reps] == [1, 2, 3]
        # each repetition's extreme lies inside the simulator's phase of that repetition
        for r in s["repetitions"]:
            ph = next(
                p for p in truth["phases"]
                if (p["side"], p["kind"], p["repetition"]) == (side, r["kind"], r["repetition"])
            )  # fmt: skip
            assert ph["start_s"] - 0.5 <= r["t_s"] <= ph["stop_s"] + 0.5
        # the kept trace reaches every repetition's value (20 Hz of a 100 Hz trace)
        y = np.array(s["trace"]["rotation_deg"])
        assert y.max() == pytest.approx(max(s["ir_deg"]), abs=1.0)
        assert -y.min() == pytest.approx(max(s["er_deg"]), abs=1.0)
        assert 15 <= 1 / np.median(np.diff(s["trace"]["t_s"])) <= 25
    assert [s["ir_norm"] for s in doc["sides"].values()] == ["below", "within"]
    asym = doc["asymmetry"]["hip_ir_rom_deg"]
    true_diff = truth["rom"]["right"]["ir_mean_deg"] - truth["rom"]["left"]["ir_mean_deg"]
    assert asym["right_minus_left"] == pytest.approx(true_diff, abs=1.5)
    assert asym["ci95_low"] < true_diff < asym["ci95_high"]
    assert {(f["code"], f["side"]) for f in doc["flags"]} == {
        ("hip_ir_rom_below_norm", "left"),
        ("hip_ir_rom_side_difference", "left"),
    }
    assert doc["session"]["subject"] == a.meta.subject
    json.dumps(doc, allow_nan=False)  # strict JSON


@pytest.mark.slow
def test_html_shows_the_numbers_and_the_repeat_banner(simulated, tmp_path):
    _, a, path = simulated
    doc = rom_report_dict(a.results, a.flags, a.errors, recording=path.name, meta=a.meta)
    page = render_rom_html(doc)
    assert "Repeat the test" not in page and "All repetitions measured" in page
    left = doc["sides"]["left"]
    assert f"{left['ir_mean_deg']:.1f} ± {left['ir_sd_deg']:.1f}" in page
    assert page.count('<img src="data:image/png;base64,') == 2  # one trace per side
    one_side = {"left": a.results["left"]}
    doc = rom_report_dict(one_side, rom_flags(one_side), ["right: no still neutral pose"])
    page = render_rom_html(doc)
    assert "<b>Repeat the test.</b>" in page and "right side not measured" in page


# --- files: one set, JSON last ------------------------------------------------------------------


def test_file_set_replaces_as_a_whole_json_last(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_file_set(out, {"a.html": "old", "a.json": "{}"}, last="a.json")
    moved: list[str] = []
    real = Path.replace

    def spy(self, target):
        moved.append(Path(target).name)
        return real(self, target)

    monkeypatch.setattr(Path, "replace", spy)
    write_file_set(out, {"a.json": '{"new": 1}', "a.html": "new"}, last="a.json")
    assert moved == ["a.html", "a.json"]
    assert (out / "a.html").read_text() == "new"
    assert sorted(p.name for p in out.iterdir()) == ["a.html", "a.json"]  # no temporary left


def test_failed_render_leaves_the_previous_report(tmp_path, monkeypatch):
    import imuhip.report.rom as rom

    res = {"left": _side("left", (35, 37, 36), (40, 41, 39))}
    doc = rom_report_dict(res, [])
    paths = write_rom_report(doc, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["rom_report.html", "rom_report.json"]

    def boom(_doc):
        raise RuntimeError("disk full while rendering")

    monkeypatch.setattr(rom, "render_rom_html", boom)
    with pytest.raises(RuntimeError):
        write_rom_report(doc, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert json.loads(paths["json"].read_text())["schema"] == "imuhip.report.rom/1"


# --- calibration provenance ---------------------------------------------------------------------


def test_calibration_provenance_names_file_hash_and_date(tmp_path):
    from imuhip.orientation.sensor_calibration import (
        SensorCalibration,
        calibration_provenance,
        save_calibration,
    )
    from imuhip.types import SensorMeta, SessionMeta

    cal = SensorCalibration(
        "SN123", "2026-03-01T10:00:00+00:00", gyr_bias_rad_s=np.array([0.01, 0, 0])
    )
    path = save_calibration(cal, tmp_path)
    sensors = tuple(
        SensorMeta(p, 100.0, 0.001, 0.001, 0.1, False, serial=s)
        for p, s in (("thigh_l", "SN123"), ("thigh_r", "SN999"), ("pelvis", ""))
    )
    meta = SessionMeta("S1", "2026-03-02T09:00:00Z", "P01", sensors)
    left, right, pelvis = calibration_provenance(meta, tmp_path)
    assert left["applied"] is True and left["file"] == "SN123.json"
    assert left["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert left["date"] == "2026-03-01T10:00:00+00:00" and left["parts"] == ["gyro"]
    assert right == {
        "placement": "thigh_r",
        "serial": "SN999",
        "applied": False,
        "reason": f"no calibration file SN999.json in {tmp_path}",
    }
    assert pelvis["applied"] is False and "no serial" in pelvis["reason"]
    doc = rom_report_dict(
        {"left": _side("left", (35, 37, 36), (40, 41, 39))},
        [],
        sensor_calibration={"folder": str(tmp_path), "sensors": [left, right, pelvis]},
    )
    page = render_rom_html(doc)
    assert left["sha256"] in page and "SN123.json" in page and "not applied" in page

"""``imuhip bench --end-to-end``: the command is timed as a process, ratios come from one run.

Speed itself is never asserted; what is checked is what the numbers are made of.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imuhip.cli.bench_command import format_end_to_end, time_process


def test_time_process_counts_the_child_cpu_and_its_exit_status() -> None:
    # a child that burns at least 0.3 s of its own CPU time, then exits 3
    burn = (
        "import time, sys\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\n"
        "sys.stderr.write('done burning\\n')\n"
        "sys.exit(3)\n"
    )
    r = time_process([sys.executable, "-c", burn])
    assert r["exit"] == 3
    assert r["stderr_tail"] == "done burning"
    assert r["cpu_s"] >= 0.3
    assert r["wall_s"] >= 0.3  # one thread cannot use more CPU than wall time


def test_time_process_reports_a_missing_file_as_a_failed_run(tmp_path: Path) -> None:
    r = time_process([sys.executable, str(tmp_path / "missing.py")])
    assert r["exit"] != 0
    assert "missing.py" in r["stderr_tail"]


@pytest.fixture(scope="module")
def end_to_end(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench_e2e") / "e2e.json"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "imuhip", "bench", "--end-to-end"),
            *("--sizes", "15", "--repeats", "1", "--no-first-run"),
            *("--json", str(out), "--quiet"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.slow
def test_end_to_end_ratios_come_from_the_same_run(end_to_end: tuple[dict, str]) -> None:
    res, stdout = end_to_end
    assert res["format"] == "imuhip-bench-end-to-end"
    (s,) = res["sessions"]
    assert s["duration_s"] == 15
    assert s["samples"] == pytest.approx(4 * 200 * 15, rel=0.05)
    v, p, c, r = s["vqf_ref"], s["pipeline"], s["command"], s["ratios"]
    for part in (v, p, c):
        assert "error" not in part, part
        assert part["cpu_s"] > 0 and part["wall_s"] > 0
    assert r["command_over_vqf_cpu"] == pytest.approx(c["cpu_s"] / v["cpu_s"])
    assert r["command_over_vqf_wall"] == pytest.approx(c["wall_s"] / v["wall_s"])
    assert r["pipeline_over_vqf_cpu"] == pytest.approx(p["cpu_s"] / v["cpu_s"])
    # the command includes process start, imports and the report: it costs more than the
    # pipeline call alone in a warm process (~50x more on 15 s of data)
    assert c["cpu_s"] > p["cpu_s"]
    assert res["first_run"] is None  # --no-first-run
    assert stdout == format_end_to_end(res) + "\n"
    assert "15 s" in stdout and "analyze/vqf" in stdout


def test_format_shows_errors_and_the_first_run() -> None:
    res = {
        "sensors": 4,
        "rate_hz": 200,
        "cpu_count": 2,
        "repeats": 3,
        "bytecode_cache": True,
        "sessions": [
            {
                "duration_s": 3600.0,
                "samples": 2_880_000,
                "vqf_ref": {"cpu_s": 5.0, "wall_s": 5.5},
                "pipeline": {"cpu_s": 6.0, "wall_s": 6.6},
                "command": {"error": "exit 1: imuhip analyze: error: boom"},
                "ratios": {
                    "command_over_vqf_cpu": None,
                    "command_over_vqf_wall": None,
                    "pipeline_over_vqf_cpu": 1.2,
                    "pipeline_over_vqf_wall": 1.2,
                },
            }
        ],
        "first_run": {
            "duration_s": 50.0,
            "analyze_cold_cache": {"wall_s": 30.0, "cpu_s": 25.0},
            "warmup": {"wall_s": 28.0, "cpu_s": 24.0},
            "analyze_after_warmup": {"wall_s": 2.0, "cpu_s": 1.5},
        },
    }
    text = format_end_to_end(res)
    row = next(line for line in text.splitlines() if line.strip().startswith("1 h"))
    assert "5.50 / 5.00" in row and "6.60 / 6.00" in row and "1.20x / 1.20x" in row
    assert "error: exit 1: imuhip analyze: error: boom" in text
    assert "30.00 / 25.00" in text and "28.00 / 24.00" in text and "2.00 / 1.50" in text

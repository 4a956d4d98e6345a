"""What the user waits for (``imuhip bench --end-to-end``): the ``analyze`` command as a process.

For each session length (50 s, 10 min, 1 h, ... simulated with
:func:`~imuhip.cli.bench_recording.make_bench_recording`) three things are measured in the same
run, so their ratios hold even when the machine's speed drifts:

* ``command``: ``imuhip analyze REC --out DIR`` as a new process, exactly as a user starts it
  (the console script beside the running Python, else ``python -m imuhip``): process start,
  imports, reading, the analysis and every report file. Wall seconds from start to exit and the
  CPU seconds of the process (``os.wait4``), median of ``repeats`` runs, numba cache warm.
* ``pipeline``: :func:`imuhip.pipeline.analyze_recording` alone, in a process that has already
  imported and loaded everything (:mod:`imuhip.cli.bench_stages` ``analyze``).
* ``vqf_ref``: raw ``vqf.offlineVQF`` on the same aligned samples (the reference; Laidig & Seel
  2023, doi:10.1016/j.inffus.2022.10.014).

Each is divided by ``vqf_ref`` (CPU by CPU, wall by wall). And the first run after installing:
``analyze`` of the shortest session with an empty numba cache (``NUMBA_CACHE_DIR`` pointed at a
new temporary folder, so every kernel compiles), ``imuhip warmup`` into another empty cache (the
install step) and the first ``analyze`` after it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_end_to_end", "imuhip_command", "run_end_to_end", "time_process"]


def imuhip_command() -> list[str]:
    """How a user starts ``imuhip``: the console script of this environment if there is one."""
    script = Path(sys.executable).with_name("imuhip")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "imuhip"]


def time_process(cmd: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` to completion: wall seconds, CPU seconds (user + sys of the process and the
    children it waited for), exit status and the last line of its stderr."""
    with tempfile.TemporaryFile() as err:
        w0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - w0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode("utf-8", "replace").strip().splitlines()[-1:]
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "exit": proc.returncode,
        "stderr_tail": tail[0] if tail else "",
    }


def _median_runs(
    runs: list[dict[str, Any]],
) -> dict[str, Any]:
    bad = [r for r in runs if r["exit"] != 0]
    if bad:
        return {"error": f"exit {bad[0]['exit']}: {bad[0]['stderr_tail']}"}
    return {
        "wall_s": statistics.median(r["wall_s"] for r in runs),
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "wall_s_all": [r["wall_s"] for r in runs],
        "cpu_s_all": [r["cpu_s"] for r in runs],
    }


def _analyze_cmd(rec: str, out: Path) -> list[str]:
    return [*imuhip_command(), "analyze", rec, "--out", str(out), "--quiet"]


def _command(rec: str, repeats: int, folder: Path) -> dict[str, Any]:
    """``imuhip analyze`` end to end, warm cache: one untimed run, then ``repeats`` timed."""
    runs = []
    for i in range(repeats + 1):
        out = folder / f"report_{i}"
        r = time_process(_analyze_cmd(rec, out))
        shutil.rmtree(out, ignore_errors=True)
        if i or r["exit"] != 0:
            runs.append(r)
    res = _median_runs(runs)
    return res


def _first_run(rec: str, folder: Path) -> dict[str, Any]:
    """Empty numba cache: ``analyze`` cold; ``warmup`` then ``analyze`` (the install path)."""
    out: dict[str, Any] = {}
    cold_dir, warm_dir = folder / "numba_cold", folder / "numba_warmup"
    cold_dir.mkdir()
    warm_dir.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cold_dir))
    out["analyze_cold_cache"] = _median_runs([time_process(_analyze_cmd(rec, folder / "c"), env)])
    env = dict(os.environ, NUMBA_CACHE_DIR=str(warm_dir))
    out["warmup"] = _median_runs([time_process([*imuhip_command(), "warmup", "--quiet"], env)])
    out["analyze_after_warmup"] = _median_runs([time_process(_analyze_cmd(rec, folder / "w"), env)])
    return out


def _ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    if "error" in a or "error" in b or not b.get(key):
        return None
    return float(a[key]) / float(b[key])


def run_end_to_end(
    sizes_s: Sequence[float],
    *,
    sensors: int = 4,
    rate_hz: int = 200,
    repeats: int = 3,
    first_run: bool = True,
    cache_dir: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure ``command``, ``pipeline`` and ``vqf_ref`` per session length; JSON-ready."""
    from imuhip.cli.bench import BenchConfig, _run_child, cached_recording

    say = progress or (lambda _: None)
    sessions: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="imuhip-bench-e2e-") as tmp:
        folder = Path(cache_dir) if cache_dir else Path(tmp)
        for size in sorted(sizes_s):
            cfg = BenchConfig(
                duration_s=size, sensors=sensors, rate_hz=rate_hz, tile_s=min(300.0, size)
            )
            say(f"generating a {size:g} s session ({sensors} sensors, {rate_hz} Hz)")
            info = cached_recording(cfg, size, folder)
            rec = str(info["path"])
            say(f"{size:g} s: raw offlineVQF")
            vqf = _run_child("vqf_ref", rec, repeats, {})
            say(f"{size:g} s: the pipeline alone")
            pipe = _run_child("analyze", rec, repeats, {"samples": info["samples"]})
            say(f"{size:g} s: imuhip analyze as a process")
            with tempfile.TemporaryDirectory(prefix="imuhip-bench-out-") as out:
                cmd = _command(rec, repeats, Path(out))
            sessions.append(
                {
                    "duration_s": size,
                    "samples": info["samples"],
                    "vqf_ref": {k: vqf.get(k) for k in ("cpu_s", "wall_s", "error") if k in vqf},
                    "pipeline": {k: pipe.get(k) for k in ("cpu_s", "wall_s", "error") if k in pipe},
                    "command": cmd,
                    "ratios": {
                        "command_over_vqf_cpu": _ratio(cmd, vqf, "cpu_s"),
                        "command_over_vqf_wall": _ratio(cmd, vqf, "wall_s"),
                        "pipeline_over_vqf_cpu": _ratio(pipe, vqf, "cpu_s"),
                        "pipeline_over_vqf_wall": _ratio(pipe, vqf, "wall_s"),
                    },
                }
            )
            if first_run and first is None:
                say("first run after installing: empty numba cache")
                with tempfile.TemporaryDirectory(prefix="imuhip-bench-cold-") as cold:
                    first = _first_run(rec, Path(cold))
                first["duration_s"] = size
    return {
        "format": "imuhip-bench-end-to-end",
        "cpu_count": os.cpu_count(),
        # off (PYTHONDONTWRITEBYTECODE and no .pyc written, e.g. by `imuhip warmup`): every
        # process compiles all it imports from source
        "bytecode_cache": _bytecode_present(),
        "sensors": sensors,
        "rate_hz": rate_hz,
        "repeats": repeats,
        "sessions": sessions,
        "first_run": first,
    }


def _bytecode_present() -> bool:
    """Whether imported modules load from ``.pyc`` files: written now, or already there (Python
    reads existing ``.pyc`` whatever ``PYTHONDONTWRITEBYTECODE`` says; ``imuhip warmup`` writes
    them)."""
    import importlib.util

    import imuhip.pipeline

    if not sys.dont_write_bytecode:
        return True
    src = imuhip.pipeline.__file__
    return Path(importlib.util.cache_from_source(src)).is_file()


def _s(m: dict[str, Any] | None, key: str) -> str:
    if not m or "error" in m or m.get(key) is None:
        return "-"
    return f"{m[key]:.2f}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def format_end_to_end(res: dict[str, Any]) -> str:
    """The table ``imuhip bench --end-to-end`` prints (the README quotes it)."""
    lines = [
        f"imuhip bench --end-to-end: {res['sensors']} sensors, {res['rate_hz']} Hz, "
        f"{res['cpu_count']} cores; median of {res['repeats']}; wall s / CPU s",
        "python bytecode cache: "
        + (
            "on"
            if res.get("bytecode_cache", True)
            else "OFF (PYTHONDONTWRITEBYTECODE is set and no .pyc files exist, run `imuhip "
            "warmup`: each process compiles every module it imports from source)"
        ),
        f"{'session':>8} {'offlineVQF':>14} {'pipeline':>14} {'imuhip analyze':>16}"
        f" {'pipeline/vqf':>16} {'analyze/vqf':>18}",
    ]
    for s in res["sessions"]:
        v, p, c, r = s["vqf_ref"], s["pipeline"], s["command"], s["ratios"]
        dur = s["duration_s"]
        name = (
            f"{dur / 3600:g} h"
            if dur >= 3600
            else f"{dur / 60:g} min"
            if dur >= 600
            else f"{dur:g} s"
        )
        lines.append(
            f"{name:>8} {_s(v, 'wall_s') + ' / ' + _s(v, 'cpu_s'):>14}"
            f" {_s(p, 'wall_s') + ' / ' + _s(p, 'cpu_s'):>14}"
            f" {_s(c, 'wall_s') + ' / ' + _s(c, 'cpu_s'):>16}"
            f" {_x(r['pipeline_over_vqf_wall']) + ' / ' + _x(r['pipeline_over_vqf_cpu']):>16}"
            f" {_x(r['command_over_vqf_wall']) + ' / ' + _x(r['command_over_vqf_cpu']):>18}"
        )
        for part in (v, p, c):
            if "error" in part:
                lines.append(f"    error: {part['error']}")
    f = res.get("first_run")
    if f:
        lines.append(
            f"first run after installing ({f['duration_s']:g} s session, empty numba cache), "
            "wall s / CPU s:"
        )
        for key, label in (
            ("analyze_cold_cache", "imuhip analyze, no warmup (compiles every kernel)"),
            ("warmup", "imuhip warmup (the install step)"),
            ("analyze_after_warmup", "imuhip analyze right after imuhip warmup"),
        ):
            m = f[key]
            val = (
                f"error: {m['error']}" if "error" in m else f"{_s(m, 'wall_s')} / {_s(m, 'cpu_s')}"
            )
            lines.append(f"  {label:<52} {val}")
    return "\n".join(lines)

"""``imuhip warmup`` (the install step) leaves nothing for the first real run to compile.

In an empty numba cache (``NUMBA_CACHE_DIR`` pointed at a new folder) ``imuhip warmup`` compiles
the kernels; then ``imuhip analyze`` and ``imuhip info`` of every shipped recording (with and
without a lumbar sensor, with packet loss) must find every kernel they call in that cache: no
cache file is added or rewritten. Structural, not timed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _cache_state(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _imuhip(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=ROOT, env=env, timeout_s=600)


@pytest.mark.slow
def test_after_warmup_the_commands_compile_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    warm = _imuhip(env, "warmup")
    assert warm.returncode == 0, warm.stderr
    assert "kernels compiled and cached in" in warm.stdout
    before = _cache_state(cache)
    n_index = sum(1 for name in before if name.endswith(".nbi"))
    assert n_index >= 40, f"warmup cached only {n_index} kernels"  # ~65 today
    shipped = sorted(p.name for p in (ROOT / "recordings").glob("*.imrec"))
    assert len(shipped) >= 4
    for rec in shipped:
        path = ROOT / "recordings" / rec
        out = _imuhip(env, "analyze", str(path), "--out", str(tmp_path / rec))
        assert out.returncode == 0, out.stderr
        assert "imuhip analyze: reading recording" in out.stderr  # progress lines are on
        assert "first run" not in out.stderr  # the cold-cache notice (and compile) stay off
        info = _imuhip(env, "info", str(path))
        assert info.returncode == 0, info.stderr
    after = _cache_state(cache)
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not added and not changed, f"compiled after warmup: {added + changed}"

"""The list ``imuhip warmup`` compiles ahead, over the cores (imuhip/cli/_kernel_signatures.py).

It must hold what the commands compile: a kernel whose arguments changed would otherwise be
compiled ahead for nothing and then again, one core at a time. When this test fails, run
``python scripts/kernel_signatures.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import imuhip.cli._kernel_signatures as listed
from imuhip.cli import kernels

ROOT = Path(__file__).resolve().parents[3]


def _script_code(name: str) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("kernel_signatures", ROOT / "scripts" / name)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return str(mod.LIST)


def test_the_list_is_what_the_warm_up_run_compiles() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _script_code("kernel_signatures.py")],
        capture_output=True, text=True, cwd=ROOT, check=True, timeout=600,
    )  # fmt: skip
    used = {tuple(e) for e in json.loads(run.stdout.strip().splitlines()[-1])}
    have = {(m, n, s) for m, n, s, _ in listed.SIGNATURES}
    # with kernels already cached, a kernel called only by kernels is not loaded on its own
    # (it is inside its callers' code): the listed ones may be more than those, never fewer
    assert len(used) >= 30
    assert not used - have, f"run `python scripts/kernel_signatures.py`: {sorted(used - have)}"


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_groups_share_every_signature_out_evenly(n: int) -> None:
    gs = kernels.groups(n)
    assert len(gs) == n
    flat = [e for g in gs for e in g]
    assert sorted(flat) == sorted((m, f, s) for m, f, s, _ in listed.SIGNATURES)
    cost = {(m, f, s): t for m, f, s, t in listed.SIGNATURES}
    loads = [sum(cost[e] for e in g) for g in gs]
    modules = {m for m, _, _, _ in listed.SIGNATURES}
    module_cost = {m: sum(t for mm, _, _, t in listed.SIGNATURES if mm == m) for m in modules}
    share = sum(cost.values()) / n
    # every unit dealt out (a module within the even share, else one kernel) is at most the
    # largest such unit; longest-first greedy leaves the groups within one unit of each other
    unit = max([c for c in module_cost.values() if c <= share] + list(cost.values()))
    assert max(loads) - min(loads) <= unit + 1e-9
    for m, c in module_cost.items():  # a module within the even share is compiled in one process
        if c <= share:
            assert sum(any(e[0] == m for e in g) for g in gs) == 1, m


def test_a_stale_entry_is_skipped_not_fatal(monkeypatch) -> None:
    stale = (
        ("imuhip.numeric", "no_such_kernel", "(float64,)", 1.0),
        ("imuhip.ingest._units_kernels", "block_means", "(NotAType,)", 0.5),
    )
    monkeypatch.setattr(listed, "SIGNATURES", stale)
    assert kernels.compile_group(0, 1) == 0

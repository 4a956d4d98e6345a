"""Run the two BIDS validators on a dataset: validator 3 (PyPI ``bids-validator-deno``) and the
legacy 1.15.0 (npm, installed by ``.ci/run`` into ``.ci/node``). A test skips with the reason when
the tool is absent; CI installs both."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
LEGACY = ROOT / ".ci" / "node" / "node_modules" / "bids-validator" / "bin" / "bids-validator"


def _deno_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("bids-validator-deno")
    found = str(exe) if exe.exists() else shutil.which("bids-validator-deno")
    if found is None:
        pytest.skip("bids-validator-deno not installed (pip install -e '.[test]')")
    return [found]


def _legacy_cmd() -> list[str]:
    node = shutil.which("node")
    if node is None or not LEGACY.exists():
        pytest.skip(f"legacy bids-validator 1.15.0 not installed at {LEGACY} (bash .ci/run)")
    return [node, str(LEGACY)]


def _run_json(cmd: list[str]) -> dict[str, Any]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    start = r.stdout.find("{")
    if start < 0:
        raise AssertionError(f"{cmd[0]} printed no JSON (exit {r.returncode}): {r.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(r.stdout[start:])
    return out


def validator3_errors(root: Path) -> list[dict[str, Any]]:
    """Issues of severity ``error`` reported by BIDS validator 3."""
    out = _run_json([*_deno_cmd(), "--json", str(root)])
    return [i for i in out["issues"]["issues"] if i.get("severity") == "error"]


def legacy_errors(root: Path) -> list[dict[str, Any]]:
    """Errors reported by the legacy BIDS validator 1.15.0."""
    out = _run_json([*_legacy_cmd(), "--json", str(root)])
    errors: list[dict[str, Any]] = out["issues"]["errors"]
    return errors

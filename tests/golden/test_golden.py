"""Golden test: every shipped recording in recordings/MANIFEST.toml analysed within tolerance.

Each recording needs a ``[golden.<name>]`` table (expected session metrics and ``atol_deg``); a
missing table FAILS. Only ``pytest --update-golden`` rewrites the tables (then review the diff:
the new values are also checked against the simulator truth of the same manifest, so a golden
update cannot enshrine a result far from the truth).
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "recordings" / "MANIFEST.toml"
ATOL_DEG = 0.1
TRUTH_ATOL_DEG = 1.5  # analysis vs simulator truth (hip excursion target 1°, see docs)
HIP = ("hip_rotation_excursion_deg", "hip_flexion_range_deg")
TRUNK = (
    "pelvis_rotation_range_deg",
    "pelvis_obliquity_range_deg",
    "pelvis_tilt_range_deg",
    "lumbar_rotation_range_deg",
    "lumbar_lateral_bending_range_deg",
    "lumbar_flexion_range_deg",
)

pytestmark = pytest.mark.golden


def _manifest() -> dict[str, Any]:
    return tomllib.loads(MANIFEST.read_text(encoding="utf-8"))


def _recordings() -> list[str]:
    if not MANIFEST.exists():
        return []
    return sorted(k for k, v in _manifest().items() if isinstance(v, dict) and "file" in v)


def _observe(name: str) -> dict[str, Any]:
    from imuhip.pipeline import analyze_recording

    m = _manifest()[name]
    res = analyze_recording(MANIFEST.parent / m["file"])
    ses = res.session
    out: dict[str, Any] = {}
    for k in HIP:
        out[k] = {s: round(ses.per_side[s][k].mean, 4) for s in ("left", "right")}
    for k in TRUNK:
        if k in ses.trunk:
            out[k] = round(ses.trunk[k].mean, 4)
    out["n_valid_strides"] = {s: int(ses.n_strides[s]["valid"]) for s in ("left", "right")}
    out["compensation_index"] = {s: round(c.index, 4) for s, c in res.compensation.items()}
    out["flags"] = sorted(f"{f.code}:{f.side}" for f in res.flags)
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def _write_golden(name: str, obs: dict[str, Any]) -> None:
    """Replace (or append) only the ``[golden.<name>]`` table; everything else stays as is."""
    text = MANIFEST.read_text(encoding="utf-8")  # re-read: the file has other owners
    header = f"[golden.{name}]"
    lines = text.splitlines()
    out: list[str] = []
    skip = False
    for ln in lines:
        if ln.strip() == header:
            skip = True
            continue
        if skip and re.match(r"^\s*\[", ln):
            skip = False
        if not skip:
            out.append(ln)
    while out and not out[-1].strip():
        out.pop()
    out += [
        "",
        header,
        "# imuhip analysis output; only `pytest --update-golden` rewrites this table (review it)",
        f"atol_deg = {ATOL_DEG}",
    ]
    out += [f"{k} = {_toml_value(v)}" for k, v in obs.items()]
    MANIFEST.write_text("\n".join(out) + "\n", encoding="utf-8")


def _close(a: Any, b: Any, atol: float) -> bool:
    if isinstance(a, dict):
        return set(a) == set(b) and all(_close(a[k], b[k], atol) for k in a)
    return math.isclose(float(a), float(b), abs_tol=atol)


@pytest.mark.parametrize("name", _recordings())
def test_golden(name: str, request: pytest.FixtureRequest) -> None:
    obs = _observe(name)
    truth = _manifest()[name].get("truth", {})
    # sanity against the simulator truth, also when updating
    for k in (*HIP, *TRUNK):
        if k in truth and k in obs:
            assert _close(obs[k], truth[k], TRUTH_ATOL_DEG), (name, k, obs[k], truth[k])
    if request.config.getoption("--update-golden"):
        _write_golden(name, obs)
        return
    golden = _manifest().get("golden", {}).get(name)
    if golden is None:
        pytest.fail(
            f"recordings/MANIFEST.toml has no [golden.{name}] table: run "
            "`pytest tests/golden --update-golden` and review the diff"
        )
    atol = float(golden.get("atol_deg", ATOL_DEG))
    for k in (*HIP, *TRUNK, "compensation_index"):
        if k in golden or k in obs:
            assert k in golden and k in obs, (name, k)
            tol = 0.05 if k == "compensation_index" else atol
            assert _close(obs[k], golden[k], tol), (name, k, obs[k], golden[k])
    for s in ("left", "right"):
        assert abs(obs["n_valid_strides"][s] - golden["n_valid_strides"][s]) <= 1, (name, s)
    assert obs["flags"] == list(golden["flags"]), name


def test_manifest_lists_recordings() -> None:
    assert MANIFEST.exists(), "recordings/MANIFEST.toml missing"
    assert _recordings(), "no recordings in the manifest"

"""The demo recordings shipped in ``recordings/``, regenerated deterministically.

Run ``python -m imuhip.sim.demos [OUT_DIR]`` (default: the repository's ``recordings/``). Every
file is a pure function of the parameters below (seeded; the recording's final ``stop`` event is
stamped deterministically), so regenerating gives byte-identical files and the sha256 sums in
``recordings/MANIFEST.toml`` stay valid. Other tools may add sections (golden outputs) to the
manifest: regeneration rewrites only the ``[<name>]`` / ``[<name>.truth]`` tables it owns and
keeps every other table as it was.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imuhip.sim.params import Disconnect, SimParams
from imuhip.sim.session import sha256_file, simulate_session, write_simulated_recording

__all__ = ["DEMOS", "Demo", "manifest_entries", "write_demos"]

log = logging.getLogger(__name__)

_BASE: dict[str, Any] = {"duration_s": 50.0, "rate_hz": 100}


@dataclass(frozen=True, slots=True)
class Demo:
    """One shipped demo: file stem, description, simulator parameters."""

    name: str
    description: str
    params: SimParams


DEMOS: tuple[Demo, ...] = (
    Demo(
        "typical",
        "typical adult walker, pelvis + both thighs, 100 Hz, clean link",
        SimParams(seed=101, **_BASE),
    ),
    Demo(
        "right_ir_restricted",
        "right hip IR capped at 2 deg with lumbar/pelvic compensation (gain 0.8), lumbar sensor",
        SimParams(
            seed=102,
            sensors=("pelvis", "thigh_l", "thigh_r", "lumbar"),
            hip_ir_limit_deg=(None, 2.0),
            compensation_gain=0.8,
            **_BASE,
        ),
    ),
    Demo(
        "with_lumbar",
        "typical walker with a lumbar sensor and a 180 deg turn halfway (turn strides excluded)",
        SimParams(
            seed=103,
            sensors=("pelvis", "thigh_l", "thigh_r", "lumbar"),
            turn=True,
            **_BASE,
        ),
    ),
    Demo(
        "lossy_link",
        "typical walker over a poor BLE link: 3 % random loss, bursts, 1.5 s thigh_l disconnect",
        SimParams(
            seed=104,
            loss_prob=0.03,
            burst_start_prob=0.005,
            burst_mean_packets=6.0,
            retransmit_prob=0.05,
            conn_interval_s=0.03,
            disconnects=(Disconnect(22.0, 1.5, "thigh_l"),),
            **_BASE,
        ),
    ),
)


def _toml_value(v: Any) -> str:
    if v is None:
        return '"none"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(round(v, 4))
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def manifest_entries(name: str, description: str, paths: dict[str, Path], truth: Any) -> str:
    """The TOML tables ``[name]`` and ``[name.truth]`` of one demo."""
    sm = truth.session_metrics
    lines = [
        f"[{name}]",
        f"file = {_toml_value(paths['imrec'].name)}",
        f"sha256 = {_toml_value(sha256_file(paths['imrec']))}",
        f"description = {_toml_value(description)}",
        f"truth_json = {_toml_value(paths['truth_json'].name)}",
        f"truth_json_sha256 = {_toml_value(sha256_file(paths['truth_json']))}",
        f"truth_npz = {_toml_value(paths['truth_npz'].name)}",
        f"truth_npz_sha256 = {_toml_value(sha256_file(paths['truth_npz']))}",
        "",
        f"[{name}.truth]",
        "# true session metrics (simulator ground truth, docs/architecture.md definitions)",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in sm.items() if v is not None]
    return "\n".join(lines) + "\n"


_HEADER = """# Recordings shipped with imuhip: sha256 per file and the simulator's ground truth.
# Regenerate the demo files and their [<name>] / [<name>.truth] tables with
#     python -m imuhip.sim.demos
# Other tables (golden analysis outputs) are kept as they are on regeneration.
"""


def _split_tables(text: str) -> list[tuple[str | None, str]]:
    """``(table name or None for the preamble, text)`` chunks of a TOML file."""
    chunks: list[tuple[str | None, str]] = []
    cur: str | None = None
    buf: list[str] = []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^\[([^\[\]]+)\]\s*$", line)
        if m:
            chunks.append((cur, "".join(buf)))
            cur, buf = m.group(1).strip(), [line]
        else:
            buf.append(line)
    chunks.append((cur, "".join(buf)))
    return chunks


def write_demos(out_dir: str | Path, demos: tuple[Demo, ...] = DEMOS) -> Path:
    """Write every demo (``.imrec`` + truth) into ``out_dir`` and update ``MANIFEST.toml``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ours: dict[str, str] = {}
    for d in demos:
        res = simulate_session(d.params)
        paths = write_simulated_recording(res, out / f"{d.name}.imrec")
        ours[d.name] = manifest_entries(d.name, d.description, paths, res.truth)
        log.info("wrote %s (%.2f s)", paths["imrec"], res.elapsed_s)
    manifest = out / "MANIFEST.toml"
    kept: list[str] = []
    if manifest.exists():
        for table, chunk in _split_tables(manifest.read_text()):
            if table is None:
                continue
            root = table.split(".")[0]
            owned = table in ours or (table.endswith(".truth") and root in ours)
            if not owned:
                kept.append(chunk.rstrip("\n") + "\n")
    body = _HEADER + "\n" + "\n".join(ours[d.name] for d in demos)
    if kept:
        body += "\n" + "\n".join(kept)
    manifest.write_text(body)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m imuhip.sim.demos [OUT_DIR]``."""
    ap = argparse.ArgumentParser(prog="python -m imuhip.sim.demos", description=__doc__)
    default = Path(__file__).resolve().parents[2] / "recordings"
    ap.add_argument("out_dir", nargs="?", default=str(default))
    args = ap.parse_args(argv)
    manifest = write_demos(args.out_dir)
    sys.stdout.write(f"wrote {len(DEMOS)} demos and {manifest}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

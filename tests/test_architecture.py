"""The package layout tells the data flow: stages import only what is upstream of them.

Ranks follow ``docs/architecture.md``. Every import counts, also those inside functions and
under ``TYPE_CHECKING`` (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "imuhip"

# stage -> rank: a module may import modules of its own stage or of a lower rank
RANKS = {
    "conventions": 0,
    "types": 0,
    "errors": 0,
    "numeric": 0,
    "dsp": 0,  # butter, filtfilt, find_peaks without scipy.signal's import time
    "_dsp_kernels": 0,  # its compiled loops
    "interrupts": 0,  # Ctrl-C handling for the commands
    "ingest": 1,
    "sim": 2,  # the ground-truth simulator writes recordings (ingest)
    "sources": 3,  # BLE, replay, Movesense, virtual sensors (the virtual ones play the simulator)
    "orientation": 4,
    "gait": 5,
    "pipeline": 6,
    "report": 7,
    "interop": 7,
    "live": 8,
    "cli": 9,
}
GROUND_FLOOR = {"__init__", "__main__", "_launch"}  # the package and its two entry points


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import submodule`` depends on the submodule; other names on ``pkg``
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                for a in node.names
            ]
        else:
            continue
        for n in names:
            if not n.startswith("imuhip"):
                continue
            # the longest prefix that is a module of the package
            parts = n.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts:
                found.add(".".join(parts))
    return found


def _stage(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(f, modules) - {m} for m, f in modules.items()}


def test_every_top_level_name_has_a_rank():
    tops = {p.stem for p in PKG.glob("*.py")} | {p.parent.name for p in PKG.glob("*/__init__.py")}
    tops -= GROUND_FLOOR
    assert tops <= set(RANKS), sorted(tops - set(RANKS))


def test_imports_point_down_the_flow(graph):
    bad = []
    for mod, deps in graph.items():
        stage = _stage(mod)
        if stage is None or stage in GROUND_FLOOR:
            continue  # imuhip/__init__ re-exports the pipeline lazily; the entry points run the CLI
        for d in deps:
            dst = _stage(d)
            if dst is None or dst == stage:
                continue
            if RANKS[dst] > RANKS[stage]:
                bad.append(f"{mod} -> {d}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles(graph):
    # Tarjan's strongly connected components, on modules (a package's __init__ is its own node)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_modules_stay_readable():
    """~500 lines at most, unless the module's docstring says why it is longer."""
    long = []
    for f in PKG.rglob("*.py"):
        n = len(f.read_text().splitlines())
        if n > 500:
            doc = ast.get_docstring(ast.parse(f.read_text())) or ""
            if "Why this module is long" not in doc:
                long.append(f"{f.relative_to(PKG)}: {n} lines")
    assert not long, "\n".join(sorted(long))

"""Shared test configuration."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-hardware", action="store_true", help="run tests that need real IMUs")
    parser.addoption(
        "--update-golden", action="store_true", help="rewrite golden expectations (review the diff)"
    )
    parser.addoption(
        "--cpu-durations",
        type=int,
        default=0,
        metavar="N",
        help="list the N tests that used the most CPU (pytest's process plus the subprocesses "
        "it waited for; setup, call and teardown together): unlike --durations, robust to a "
        "busy machine",
    )


_CPU_S: dict[str, float] = {}


def _cpu_now() -> float:
    own = time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + kids.ru_utime + kids.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    if not item.config.getoption("--cpu-durations"):
        return (yield)
    c0 = _cpu_now()
    try:
        return (yield)
    finally:
        _CPU_S[item.nodeid] = _cpu_now() - c0


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    n = config.getoption("--cpu-durations")
    if not n or not _CPU_S:
        return
    terminalreporter.section(f"{n} tests using the most CPU (s, incl. waited-for subprocesses)")
    for nodeid, cpu_s in sorted(_CPU_S.items(), key=lambda kv: -kv[1])[:n]:
        terminalreporter.write_line(f"{cpu_s:8.2f}  {nodeid}")
    terminalreporter.write_line(f"{sum(_CPU_S.values()):8.2f}  total of {len(_CPU_S)} tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-hardware"):
        return
    skip = pytest.mark.skip(reason="needs real IMUs: pass --run-hardware")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data folder missing: {SHARED_DATA}")
    return SHARED_DATA

"""Start-up cost of the command line, checked structurally (which modules load), never timed.

``imuhip --help`` must build its parser without importing any command module's dependencies, and
``imuhip info`` must not load what only the analysis and the report use. The lists come from
``python -X importtime`` of a real process, so a module-level import added anywhere on the path
shows up here.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imuhip.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[3]
TYPICAL = ROOT / "recordings" / "typical.imrec"


_SHOW_MODULES = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: sys.__stderr__.write('loaded modules: ' + ' '.join(sys.modules)))\n"
    "sys.argv = ['imuhip', *sys.argv[1:]]\n"
    "runpy.run_module('imuhip', run_name='__main__')\n"
)


def _imported(*args: str) -> set[str]:
    """Modules a fresh ``python -X importtime -m imuhip ARGS`` loads.

    Both what ``-X importtime`` logs and ``sys.modules`` at exit (``importlib.import_module``,
    used for the command modules, bypasses the importtime log).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPROFILEIMPORTTIME"}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _SHOW_MODULES, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    names = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
        elif line.startswith("loaded modules: "):
            names.update(line.removeprefix("loaded modules: ").split())
    assert "imuhip.cli" in names, out.stderr[-2000:]  # the parse worked: imuhip was imported
    return names


def _loaded(names: set[str], package: str) -> list[str]:
    return sorted(n for n in names if n == package or n.startswith(package + "."))


def test_help_imports_no_heavy_dependency() -> None:
    names = _imported("--help")
    for heavy in ("scipy", "pandas", "matplotlib", "numba", "rich", "pyarrow", "vqf", "bleak"):
        assert not _loaded(names, heavy), f"`imuhip --help` imports {heavy}"
    commands = {n for n in names if n.startswith("imuhip.cli.commands.")}
    # only command modules missing from the COMMANDS table may be imported to list them
    listed = {f"imuhip.cli.commands.{module}" for module, _ in COMMANDS.values()}
    assert not (commands & listed), sorted(commands & listed)


def test_info_imports_only_the_reader_and_decoder() -> None:
    names = _imported("info", str(TYPICAL))
    for heavy in ("pandas", "matplotlib", "scipy.signal", "scipy.spatial", "scipy.stats", "rich"):
        assert not _loaded(names, heavy), f"`imuhip info` imports {heavy}"
    assert "imuhip.cli.commands.info" in names
    assert _loaded(names, "numba")  # it decodes with the compiled kernels: the list is complete
    assert "imuhip.cli.commands.analyze" not in names
    assert "imuhip.pipeline" not in names


def test_command_table_matches_the_modules() -> None:
    for name, (module, help_) in COMMANDS.items():
        mod = importlib.import_module(f"imuhip.cli.commands.{module}")
        assert name == mod.NAME
        assert help_ == mod.HELP, f"COMMANDS[{name!r}] help differs from {module}.HELP"
        assert callable(mod.run) and callable(mod.add_arguments)


def test_full_parser_has_every_command_with_its_arguments() -> None:
    parser = build_parser()  # no argv: every command fully set up
    args = parser.parse_args(["info", "x.imrec", "--json"])
    assert args.recording == "x.imrec" and args.json is True
    assert args._run.__module__ == "imuhip.cli.commands.info"
    args = parser.parse_args(["analyze", "r.imrec", "--out", "o"])
    assert args._run.__module__ == "imuhip.cli.commands.analyze"


def test_lazy_parser_still_rejects_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["info", str(TYPICAL), "--no-such-option"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name, (_, help_) in COMMANDS.items():
        assert name in out
        assert help_.split()[0] in out


_FREEZE_PROBE = (
    "import atexit, gc, sys\n"
    "def said():\n"
    "    sys.__stdout__.write(f'atexit ran, frozen {gc.get_freeze_count()}\\n')\n"
    "atexit.register(said)\n"
    "sys.argv = ['imuhip', *sys.argv[1:]]\n"
    "from imuhip._launch import main\n"
    "sys.exit(main())\n"
)


def test_a_finished_command_spares_the_shutdown_its_collections_and_still_runs_atexit(
    tmp_path: Path,
) -> None:
    """The console script freezes what is alive when the command has finished (the interpreter's
    shutdown then skips it in its collections), and the shutdown's ``atexit`` handlers, the
    command's output and its exit status are as before."""
    out = subprocess.run(
        [sys.executable, "-c", _FREEZE_PROBE, "analyze", str(TYPICAL), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "report:" in out.stdout  # the summary, flushed
    tail = out.stdout.strip().splitlines()[-1]
    assert tail.startswith("atexit ran, frozen "), out.stdout
    assert int(tail.split()[-1]) > 100_000  # numba's compiler objects among them
    assert (tmp_path / "report.json").is_file()
    # a command that fails keeps its status and message
    bad = subprocess.run(
        [sys.executable, "-c", _FREEZE_PROBE, "analyze", str(tmp_path / "no.imrec"), "--out", "o"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 1 and "no such file" in bad.stderr

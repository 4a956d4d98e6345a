"""``imuhip bench-fusion`` tells on stderr what it is doing (per trial and filter); ``--quiet`` not.

Run as a process on the smallest input it accepts: one BROAD trial, two filters, 6D only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BROAD = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "broad"
TRIAL = "02_undisturbed_slow_rotation_B"


def _bench(*extra: str) -> subprocess.CompletedProcess[str]:
    cmd = ["bench-fusion", "--trials", "02_", "--methods", "vqf_offline", "vqf_online"]
    return subprocess.run(
        [sys.executable, "-m", "imuhip", *cmd, "--dims", "6", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.skipif(not (BROAD / f"{TRIAL}.hdf5").is_file(), reason=f"BROAD data missing: {BROAD}")
def test_progress_per_trial_and_filter_on_stderr_and_quiet_silences_it() -> None:
    # no --data: the default folder is ../shared/data/broad beside the checkout
    r = _bench()
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert all(ln.startswith("imuhip bench-fusion: trial 1/1 ") for ln in lines), lines
    assert lines[0] == f"imuhip bench-fusion: trial 1/1 {TRIAL}: loading"
    assert re.fullmatch(rf".*{TRIAL}: \d+ samples at 285\.714 Hz", lines[1]), lines[1]
    done = [
        re.search(r": (\w+) 6D done \((\d)/2\), total RMSE ([\d.]+) deg$", ln) for ln in lines[2:]
    ]
    assert len(done) == 2 and all(done), lines
    assert [(m[1], m[2]) for m in done if m] == [("vqf_offline", "1"), ("vqf_online", "2")]
    # each progress line's RMSE is the one in the final table on stdout
    for m in done:
        assert m is not None
        row = next(
            ln for ln in r.stdout.splitlines() if ln.startswith(TRIAL) and ln.split()[1] == m[1]
        )
        assert row.split()[3] == m[3]

    q = _bench("--quiet")
    assert q.returncode == 0, q.stderr
    assert q.stderr == ""
    strip = [ln.rsplit(maxsplit=1)[0] for ln in r.stdout.splitlines() if TRIAL in ln]
    assert strip == [ln.rsplit(maxsplit=1)[0] for ln in q.stdout.splitlines() if TRIAL in ln]

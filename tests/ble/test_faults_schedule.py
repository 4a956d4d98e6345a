"""The --faults demo schedule, fault validation and the analysis-failure explanation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from imuhip.cli.commands.live import _gap_context
from imuhip.errors import CalibrationError
from imuhip.sim import SimParams
from imuhip.sources.virtual import Faults, default_faults

P = ("pelvis", "thigh_l", "thigh_r", "lumbar")


@pytest.mark.parametrize("duration_s", [6.0, 8.0, 10.0, 20.0, 60.0, 600.0])
def test_demo_outages_spare_the_standing_start_and_never_overlap(duration_s: float) -> None:
    stand = SimParams().stand_start_s
    for p, f in default_faults(P, duration_s).items():
        ends = 0.0
        for start_s, down_s in f.disconnects:
            assert start_s >= stand + 1.0, (p, f.disconnects)
            assert start_s > ends and start_s + down_s <= duration_s
            ends = start_s + down_s
    short = default_faults(P, 6.0)
    assert all(f.disconnects == () and f.loss_prob > 0 for f in short.values())
    assert all(len(f.disconnects) == 2 for f in default_faults(P, 20.0).values())


def test_overlapping_or_unsorted_outages_are_refused() -> None:
    with pytest.raises(ValueError, match="must not overlap"):
        Faults(disconnects=((5.0, 2.0), (6.0, 1.0)))
    with pytest.raises(ValueError, match="must not overlap"):
        Faults(disconnects=((5.0, 1.0), (2.0, 1.0)))
    Faults(disconnects=((5.0, 1.0), (6.5, 1.0)))


def test_missing_still_period_is_explained_by_the_gaps() -> None:
    res = SimpleNamespace(
        meta=SimpleNamespace(sensors=(SimpleNamespace(placement="pelvis", rate_hz=200),)),
        metrics={"pelvis": {"gaps": [[100, 10], [390, 80], [5000, 400]]}},
    )
    msg = _gap_context(res, CalibrationError("no still period of 2 s found ..."))
    # only the gap longer than 0.3 s within the first 15 s is named, in session seconds
    assert msg.endswith("in the first 15 s: pelvis 1.9-2.4 s")
    assert "0.3 s" in msg
    assert _gap_context(res, CalibrationError("something else")) == ""

"""The cohort table carries each session's date, taken from the recording header."""

from __future__ import annotations

import dataclasses

from imuhip.report.cohort import result_rows
from tests.unit.report.test_report import _orientations


def test_rows_carry_the_recording_date():
    from imuhip.pipeline import analyze_orientations

    ori, segcal, meta = _orientations(duration_s=12.0, lumbar=False)
    meta = dataclasses.replace(meta, start_wall_time="2025-11-03T14:30:00+00:00")
    rows = result_rows(analyze_orientations(ori, meta, segcal=segcal), "a.imrec", "ab12")
    assert [(r["side"], r["session_date"]) for r in rows] == [
        ("left", "2025-11-03T14:30:00+00:00"),
        ("right", "2025-11-03T14:30:00+00:00"),
    ]
    # the date sits with the identity columns, before the metrics
    assert list(rows[0])[:6] == ["file", "sha256", "session_id", "subject", "session_date", "side"]

"""Sensors imported off their placement's site: which numbers are not compared with norms."""

from __future__ import annotations

from types import SimpleNamespace

from imuhip.gait.assumptions import off_site_metrics, off_site_note, off_site_sensors
from imuhip.gait.metrics import LUMBAR_METRICS
from imuhip.gait.norms import flaggable_means
from imuhip.types import SessionMeta


def _meta(extra: dict) -> SessionMeta:
    return SessionMeta("s", "", "S01", (), extra=extra)


def test_a_chest_sensor_imported_as_lumbar_is_off_site_and_its_metrics_are_named():
    meta = _meta(
        {"import": {"body_sites": {"lumbar": "chest", "thigh_l": "thigh_l", "pelvis": ""}}}
    )
    assert off_site_sensors(meta) == {"lumbar": "chest"}  # same site or unknown: not off site
    assert off_site_metrics({"lumbar": "chest"}) == frozenset(LUMBAR_METRICS)
    assert off_site_metrics({}) == frozenset()
    assert off_site_sensors(_meta({})) == {}  # a recording: placements are where sensors sat
    assert off_site_note("lumbar", "chest") == (
        "lumbar sensor on the chest (as imported): its angles are trunk relative to pelvis, "
        "not compared with the lumbar norms nor used in the compensation index"
    )


def test_flaggable_means_leave_out_the_skipped_metrics_and_the_few_strides():
    s = {
        "lumbar_rotation_range_deg": SimpleNamespace(mean=18.9, n=7),
        "pelvis_obliquity_range_deg": SimpleNamespace(mean=5.7, n=7),
        "pelvis_rotation_range_deg": SimpleNamespace(mean=9.0, n=2),
    }
    assert flaggable_means(s) == {
        "lumbar_rotation_range_deg": 18.9,
        "pelvis_obliquity_range_deg": 5.7,
    }
    assert flaggable_means(s, skip=off_site_metrics({"lumbar": "chest"})) == {
        "pelvis_obliquity_range_deg": 5.7
    }

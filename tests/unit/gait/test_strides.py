"""Partial steps (into or out of standing) are not steady strides: known answers."""

from __future__ import annotations

import pytest

from imuhip.gait.events import Stride, mark_implausible, mark_partial_steps


def _stride(side: str, k: int, exclusion: str | None = None) -> Stride:
    return Stride(side, k, 100 * k, 100 * (k + 1), float(k), k + 1.0, k + 0.6, 0.0, exclusion)


def _rows(flex: list[float]) -> list[dict[str, float]]:
    return [{"hip_flexion_range_deg": f, "hip_rotation_excursion_deg": 10.0} for f in flex]


def test_a_step_into_standing_is_marked_and_steady_strides_are_kept():
    """Hip flexion ranges 45, 44, 46, 47 and a last step of 12 deg (real gaittoolbox stop: 12.9
    against ~40): only that one is excluded, as ``outlier``."""
    strides = [_stride("right", k) for k in range(5)]
    out = mark_partial_steps(strides, _rows([45.0, 44.0, 46.0, 47.0, 12.0]))
    assert [s.exclusion for s in out] == [None, None, None, None, "outlier"]
    assert out[:4] == strides[:4]  # the others unchanged


def test_the_threshold_is_a_fraction_of_each_sides_own_median():
    """Left median 45: 31 deg (0.69) is partial, 32 (0.71) is not; the right side's median (20,
    a slow or restricted walker) is its own: 15 deg there (0.75) stays."""
    left = [_stride("left", k) for k in range(5)]
    right = [_stride("right", k) for k in range(5, 9)]
    flex = [45.0, 45.0, 45.0, 31.0, 32.0, 20.0, 20.0, 21.0, 15.0]
    out = mark_partial_steps(left + right, _rows(flex))
    assert [s.exclusion for s in out] == [None, None, None, "outlier", None, None, None, None, None]


def test_already_excluded_strides_and_short_lists_are_left_alone():
    """Excluded strides neither count for the median nor change reason; with fewer than 3 valid
    strides on a side nothing is judged; a missing flexion range (no hip angles) is skipped."""
    strides = [_stride("left", 0), _stride("left", 1, "turning"), _stride("left", 2)]
    out = mark_partial_steps(strides, _rows([45.0, 5.0, 10.0]))
    assert [s.exclusion for s in out] == [None, "turning", None]
    strides = [_stride("left", k) for k in range(4)]
    rows = _rows([45.0, 44.0, 46.0, 10.0])
    rows[3] = {"hip_rotation_excursion_deg": 10.0}
    assert [s.exclusion for s in mark_partial_steps(strides, rows)] == [None] * 4


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="per_stride has 1 rows for 2 strides"):
        mark_partial_steps([_stride("left", 0), _stride("left", 1)], _rows([40.0]))
    with pytest.raises(ValueError, match="min_frac"):
        mark_partial_steps([], [], min_frac=1.5)


def test_an_excursion_no_hip_can_make_is_implausible_whatever_else_was_said():
    """60 deg is the limit (a hip's whole rotation arc is ~80-90 deg; walking uses 6-22): 60.5
    and a wrapped 567.9 (a thigh calibration flipped about its long axis, seen on a 3.7-s walk
    after sitting) are left out; 59.5, a normal 21 and a missing excursion (NaN: no hip angles
    there) are kept, and a stride already excluded (a turn, a gap) keeps its reason."""
    strides = [_stride("left", k) for k in range(5)] + [_stride("right", 5, "turning")]
    exc = [60.5, 567.9, 59.5, 21.0, float("nan"), 75.0]
    rows = [{"hip_rotation_excursion_deg": e} for e in exc]
    out = mark_implausible(strides, rows)
    assert [s.exclusion for s in out] == [
        "implausible",
        "implausible",
        None,
        None,
        None,
        "turning",
    ]
    assert not any(s.valid for s in out[:2])
    assert out[2:] == strides[2:]
    assert mark_implausible(strides[:1], [{}]) == strides[:1]  # no hip metrics: not judged
    with pytest.raises(ValueError, match="per_stride has 1 rows for 2 strides"):
        mark_implausible(strides[:2], rows[:1])


def test_implausible_strides_do_not_count_as_partial_steps_or_in_their_median():
    """After mark_implausible, mark_partial_steps leaves the reason alone and judges the rest."""
    strides = [_stride("right", k) for k in range(5)]
    rows = _rows([45.0, 44.0, 46.0, 47.0, 12.0])
    rows[0]["hip_rotation_excursion_deg"] = 200.0
    out = mark_partial_steps(mark_implausible(strides, rows), rows)
    assert [s.exclusion for s in out] == ["implausible", None, None, None, "outlier"]


def test_every_exclusion_reason_has_words_for_the_summary():
    from imuhip.gait.events import EXCLUSION_REASONS, EXCLUSION_WORDS

    assert set(EXCLUSION_WORDS) == set(EXCLUSION_REASONS)
    assert "implausible" in EXCLUSION_REASONS  # mark_implausible's reason is a known one


def test_a_long_stride_that_turned_is_turning_and_one_that_did_not_is_standing():
    """Contacts 1.2 s apart, then a 2.9-s gap in the contacts: with the pelvis heading turning
    187 deg in it (gaittoolbox right at 14.13-17.02 s: the inner foot pivots, a contact is
    missed) it is ``turning``, counted with the turns; with the heading still, a stop
    (``standing``). The first step out of standing stays ``standing`` even if it turned."""
    import numpy as np

    from imuhip.gait.events import SideEvents, segment_strides

    t = np.arange(0.0, 10.0, 0.01)
    ic = np.array([1.0, 2.2, 3.4, 6.3, 7.5, 8.7])
    ev = SideEvents("right", "foot_gyro", ic, ic[:-1] + 0.7, ic[:-1] + 0.8)
    valid = np.ones(len(t), dtype=bool)
    turned = np.radians(np.interp(t, [3.4, 6.3], [0.0, -187.0]))
    still = np.zeros(len(t))
    got = [s.exclusion for s in segment_strides(ev, t, valid, turned)]
    assert got == [None, None, "turning", None, None]
    assert [s.exclusion for s in segment_strides(ev, t, valid, still)] == [
        None,
        None,
        "standing",
        None,
        None,
    ]
    first = SideEvents(
        "right", "thigh_gyro", ic, ic[:-1] + 0.7, ic[:-1] + 0.8, bout_start_ic_s=ic[2:3]
    )
    assert segment_strides(first, t, valid, turned)[2].exclusion == "standing"

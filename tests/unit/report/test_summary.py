"""The report's first screen in plain words, on report dictionaries with known numbers."""

from __future__ import annotations

import copy

import pytest

from imuhip.report.summary import MIN_VALID_STRIDES, first_screen, first_screen_html, plain_note


def _ms(mean: float, n: int = 46) -> dict[str, float | int]:
    return {"mean": mean, "sd": 0.3, "median": mean, "n": n}


def _dict(left: float, right: float, diff: float, lo: float, hi: float, sig: bool) -> dict:
    """The parts of report.json the first screen reads (schema imuhip.report.writer/1)."""
    return {
        "metrics": {
            "per_side": {
                "left": {"hip_rotation_excursion_deg": _ms(left)},
                "right": {"hip_rotation_excursion_deg": _ms(right)},
            },
            "trunk": {
                "pelvis_rotation_range_deg": _ms(12.1, 92),
                "lumbar_rotation_range_deg": _ms(10.2, 92),
            },
        },
        "asymmetry": {
            "hip_rotation_excursion_deg": {
                "right_minus_left": diff,
                "ci95_low": lo,
                "ci95_high": hi,
                "significant": sig,
                "n_left": 46,
                "n_right": 46,
            }
        },
        "compensation": {
            "band": 1.96,
            "per_side": {"left": {"index": 2.04}, "right": {"index": 2.65}},
        },
        "gait": {
            "strides": {
                "left": {"total": 47, "valid": 46, "excluded": {"standing": 1}},
                "right": {"total": 46, "valid": 46, "excluded": {}},
            }
        },
        "quality": {
            "recording_complete": True,
            "recording_warnings": [],
            "dropped_sensors": {},
            "sensors": {
                "pelvis": {"loss_fraction": 0.022, "n_gaps": 3},
                "thigh_r": {"loss_fraction": 0.01, "n_gaps": 2},
            },
        },
    }


def test_right_restriction_headline_with_ci_and_compensation_on_that_side():
    fs = first_screen(_dict(9.9, 5.8, -4.1, -4.3, -3.9, True))
    assert fs.headline == (
        "Right hip rotation reduced: 5.8° vs 9.9° on the left side (−4.1°, 95 % CI −4.3 to "
        "−3.9), below the typical 6–16° on the right side."
    )
    assert fs.how_sure.startswith("Clear: the 95 % CI excludes 0")
    # both indices above the band, the finding goes to the restricted (right) hip only
    assert fs.compensation.startswith(
        "Pelvis and lumbar spine compensate for the restricted right hip"
    )
    assert "left 2.04, right 2.65" in fs.compensation
    assert fs.data_quality == (
        "Data: valid strides left 46 of 47, right 46 of 46; packet loss up to 2.2 % per "
        "sensor, 5 gaps."
    )
    assert fs.banners == []


def test_few_strides_make_a_clear_difference_uncertain():
    d = _dict(17.8, 30.1, 12.3, 7.9, 16.7, True)
    d["asymmetry"]["hip_rotation_excursion_deg"].update(n_left=4, n_right=3)
    fs = first_screen(d)
    assert fs.headline == (
        "Left hip rotation reduced: 17.8° vs 30.1° on the right side (−12.3°, 95 % CI −16.7 to "
        "−7.9), above the typical 6–16° on the left side, above the typical 6–16° on the right "
        "side."
    )
    assert fs.how_sure.startswith("Uncertain: the 95 % CI excludes 0, but from only 4 left and 3")


def test_left_restriction_reports_left_minus_right_and_flipped_ci():
    fs = first_screen(_dict(6.5, 10.0, 3.5, 3.1, 3.9, True))
    assert fs.headline.startswith(
        "Left hip rotation reduced: 6.5° vs 10.0° on the right side (−3.5°, 95 % CI −3.9 to −3.1)"
    )


@pytest.mark.parametrize(
    ("diff", "lo", "hi", "sig", "why"),
    [
        (-0.4, -1.0, 0.2, False, "the 95 % CI includes 0"),
        (-1.5, -1.8, -1.2, True, "below the 2° that is actionable"),
    ],
)
def test_no_side_restricted(diff, lo, hi, sig, why):
    d = _dict(9.9, 9.9 + diff, diff, lo, hi, sig)
    d["compensation"]["per_side"] = {"left": {"index": 0.4}, "right": {"index": 0.6}}
    fs = first_screen(d)
    assert fs.headline.startswith("No hip restricted: rotation excursion left 9.9°")
    assert why in fs.how_sure
    assert fs.compensation.startswith("No pelvis/lumbar compensation above the normal band")


def test_whole_trunk_when_both_sides_above_band_and_no_side_restricted():
    fs = first_screen(_dict(9.9, 9.7, -0.2, -0.6, 0.2, False))
    assert fs.compensation.startswith("The whole trunk turns more than both hips and no side")


def test_banners_for_damaged_recording_and_few_strides():
    d = _dict(9.9, 5.8, -4.1, -4.3, -3.9, True)
    d["quality"]["recording_complete"] = False
    d["quality"]["recording_warnings"] = ["recording truncated at byte offset 399810"]
    d["gait"]["strides"]["right"]["valid"] = MIN_VALID_STRIDES - 7
    ids = [i for i, _ in first_screen(d).banners]
    assert ids == ["banner-damaged", "banner-low-strides"]
    page = first_screen_html(d)
    assert "Damaged or partial recording: recording truncated at byte offset 399810" in page
    assert "Few valid strides (right 3; at least 10 per side recommended)" in page


def test_implausible_strides_get_a_banner_naming_the_thigh_to_check():
    d = _dict(9.9, 10.2, 0.3, -0.5, 1.1, False)
    d["gait"]["strides"]["left"]["excluded"] = {"standing": 1, "implausible": 4}
    banners = dict(first_screen(d).banners)
    assert banners["banner-placement"] == (
        "Strides left out: left: 4 stride(s) left out, hip rotation excursion above 60° (beyond "
        "any hip's range of motion): check thigh_l's strap and calibration"
    )


def test_without_a_ci_the_headline_says_why_not_that_it_includes_0():
    d = _dict(21.4, 22.3, 0.9, None, None, False)
    d["asymmetry"]["hip_rotation_excursion_deg"].update(n_left=1, n_right=1)
    s = first_screen(d)
    assert "no CI" in s.headline
    assert s.how_sure == (
        "No side difference to act on: no 95 % CI without 2 strides a side "
        "(1 left and 1 right strides)."
    )


def test_few_strides_say_why_trunk_and_compensation_are_not_judged():
    """A pelvis range from one stride is not set against the typical band (it makes no flag),
    and a compensation index missing for lack of strides says so, not "needs the pelvis" (the
    real gaittoolbox trial's first screen said both before)."""
    d = _dict(22.3, 20.4, -1.9, -5.0, 1.1, False)
    d["metrics"]["trunk"]["pelvis_rotation_range_deg"] = _ms(19.6, 1)
    d["compensation"] = {"band": 1.96, "min_strides": 5, "per_side": {}}
    s = first_screen(d)
    assert "pelvis rotation range 19.6° (1 stride: not compared with the typical range)" in (
        s.trunk
    )
    assert s.compensation == (
        "Compensation: not assessed (needs 5 valid strides a side, walked straight, with the "
        "pelvis sensor)."
    )
    d["gait"]["strides"]["left"]["valid"] = d["gait"]["strides"]["right"]["valid"] = 0
    assert first_screen(d).compensation == (
        "Compensation: not assessed (needs the pelvis sensor and valid strides)."
    )


def test_no_python_reprs_and_no_negative_zero_in_notes():
    assert plain_note("magnetic disturbance on pelvis -0.0--0.0 s") == (
        "magnetic disturbance on pelvis at 0.0 s"
    )
    assert plain_note("magnetic disturbance on thigh_r 12.0-13.5 s") == (
        "magnetic disturbance on thigh_r 12.0–13.5 s"
    )
    page = first_screen_html(_dict(9.9, 5.8, -4.1, -4.3, -3.9, True))
    assert "{'" not in page and "-0.0" not in page


def test_one_side_missing_says_no_comparison():
    d = copy.deepcopy(_dict(9.9, 5.8, -4.1, -4.3, -3.9, True))
    d["metrics"]["per_side"]["right"]["hip_rotation_excursion_deg"]["n"] = 0
    fs = first_screen(d)
    assert fs.headline == "Only the left hip could be measured: rotation excursion 9.9°."

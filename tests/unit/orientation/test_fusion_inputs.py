"""The fusion front end's fast paths give what plain numpy gives.

``check_inputs`` decides (accepts, or refuses with the same message) as the plain finiteness
checks it replaced; ``fill_invalid`` equals ``np.interp`` per channel, non-finite rows included;
the filters' in-place normalisation equals ``quat_normalize``; the written-out row norm equals
``np.linalg.norm``.
"""

from __future__ import annotations

import numpy as np
import pytest


def _check_inputs_numpy(acc, gyr, mag, valid):
    """Plain numpy finiteness checks, then the unit checks (the messages of ``check_inputs``)."""
    from imuhip.orientation.fusion._inputs import _check_units

    mask = None if valid is None else np.asarray(valid)
    for name, arr in (("acc_m_s2", acc), ("gyr_rad_s", gyr), ("mag_ut", mag)):
        if arr is None:
            continue
        bad = ~np.isfinite(arr).all(axis=1)
        if mask is not None:
            bad &= mask
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            hint = "" if mask is not None else " (pass valid=... to mark missing samples)"
            raise ValueError(
                f"{name} has {int(bad.sum())} non-finite rows, first at row {first}: "
                f"{arr[first].tolist()}{hint}"
            )
    if mask is None or mask.all():
        if len(acc) >= 10:
            _check_units(acc, gyr, mag)
    elif np.count_nonzero(mask) >= 10:
        _check_units(acc[mask], gyr[mask], None if mag is None else mag[mask])


def _outcome(f):
    try:
        f()
    except ValueError as err:
        return str(err)
    return None


def _scaled_rows(rng, n, centre, spread):
    """Rows whose norms are ``centre * exp(spread * N(0, 1))``, random directions."""
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * (centre * np.exp(spread * rng.normal(size=n)))[:, None]


@pytest.mark.parametrize("seed", range(4))
def test_check_inputs_decides_as_plain_numpy_checks(seed: int) -> None:
    from imuhip.orientation.fusion._inputs import check_inputs

    rng = np.random.default_rng(seed)
    seen: set[bool] = set()
    for _ in range(150):
        n = int(rng.integers(1, 400))
        # norms straddling every threshold: acc 3 / 200, gyr p99 40, mag 2 / 2000
        acc = _scaled_rows(rng, n, float(rng.choice([1.0, 3.0, 9.81, 200.0, 900.0])), 0.3)
        gyr = _scaled_rows(rng, n, float(rng.choice([0.5, 20.0, 40.0])), float(rng.uniform(0, 1)))
        mag = None
        if rng.uniform() < 0.6:
            mag = _scaled_rows(rng, n, float(rng.choice([0.05, 2.0, 45.0, 2000.0, 5e4])), 0.2)
        if rng.uniform() < 0.2:  # exactly on a threshold
            acc[: n // 2 + 1] *= (3.0 / np.linalg.norm(acc[: n // 2 + 1], axis=1))[:, None]
        valid = None
        if rng.uniform() < 0.6:
            valid = rng.uniform(size=n) < rng.uniform(0.3, 1.0)
            valid[0] = True
        if rng.uniform() < 0.3:  # non-finite rows, some in valid rows
            k = rng.integers(0, n, int(rng.integers(1, 4)))
            (acc if rng.uniform() < 0.5 else gyr)[k, int(rng.integers(0, 3))] = np.nan
        want = _outcome(lambda: _check_inputs_numpy(acc, gyr, mag, valid))  # noqa: B023
        got = _outcome(lambda: check_inputs(acc, gyr, mag, 200.0, valid))  # noqa: B023
        assert got == want
        seen.add(want is None)
    assert seen == {True, False}


def test_fill_invalid_with_non_finite_rows_equals_np_interp() -> None:
    from imuhip.orientation.fusion._inputs import fill_invalid

    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 200))
        x = rng.normal(size=(n, 3)) * 10.0 ** rng.integers(-3, 4)
        valid = rng.uniform(size=n) < rng.uniform(0.05, 1.0)
        valid[int(rng.integers(0, n))] = True
        x[~valid] = np.nan  # invalid rows may hold NaN
        if rng.uniform() < 0.3:  # inf among valid rows: the NaN fallbacks of np.interp
            x[rng.integers(0, n), int(rng.integers(0, 3))] = float(rng.choice([np.inf, -np.inf]))
        good = np.flatnonzero(valid)
        want = np.stack([np.interp(np.arange(n), good, x[good, k]) for k in range(3)], axis=1)
        got = fill_invalid(x, valid, "interp")
        np.testing.assert_array_equal(got, want)
        assert got is not x


def test_normalized_equals_quat_normalize_in_place() -> None:
    from imuhip.conventions import quat_normalize
    from imuhip.orientation.fusion.core import _normalized

    rng = np.random.default_rng(2)
    q = rng.normal(size=(50_000, 4)) * rng.uniform(0.5, 2.0, (50_000, 1))
    want = quat_normalize(q)
    got = _normalized(q)
    assert got is q  # the filter's fresh output is scaled in place
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="finite and non-zero"):
        _normalized(np.zeros((3, 4)))
    ro = rng.normal(size=(10, 4))
    ro.flags.writeable = False
    np.testing.assert_array_equal(_normalized(ro), quat_normalize(ro))


def test_fusion_row_norm_equals_linalg_norm() -> None:
    from imuhip.orientation.fusion._inputs import _row_norm

    rng = np.random.default_rng(9)
    for scale in (1e-100, 1e-3, 1.0, 1e5, 1e100):
        x = scale * rng.normal(size=(5000, 3))
        np.testing.assert_array_equal(_row_norm(x), np.linalg.norm(x, axis=1))

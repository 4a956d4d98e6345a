"""The quaternion helpers of ``imuhip.conventions`` equal their textbook formulas, bit for bit.

``quat_rotate`` (written out per component, in row blocks) against the two-cross-product form and
scipy; ``quat_normalize`` against ``np.linalg.norm``; ``quat_mul`` in row blocks against the
Hamilton product on whole arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.conventions import quat_mul, quat_rotate


def _quat_rotate_cross(q, v):
    """The textbook rotation ``v + 2 w (u x v) + 2 u x (u x v)``: two ``np.cross`` calls."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


_SHAPES = [((4,), (3,)), ((7, 4), (3,)), ((4,), (7, 3)), ((7, 4), (7, 3)), ((5, 1, 4), (1, 6, 3))]


@pytest.mark.parametrize(("q_shape", "v_shape"), _SHAPES)
def test_quat_rotate_componentwise_equals_cross_and_scipy(q_shape, v_shape) -> None:
    from imuhip.conventions import quat_normalize, to_rotation

    rng = np.random.default_rng(len(q_shape) * 10 + len(v_shape))
    for scale in (1e-3, 1.0, 1e3):
        q = quat_normalize(rng.normal(size=q_shape))
        v = scale * rng.normal(size=v_shape)
        got = quat_rotate(q, v)
        want = _quat_rotate_cross(q, v)
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_array_equal(got, want)  # bit-identical
        qb, vb = np.broadcast_arrays(q[..., :1], v[..., :1])
        qf = np.array(np.broadcast_to(q, (*qb.shape[:-1], 4)).reshape(-1, 4))
        vf = np.array(np.broadcast_to(v, (*vb.shape[:-1], 3)).reshape(-1, 3))
        np.testing.assert_allclose(
            got.reshape(-1, 3), to_rotation(qf).apply(vf), rtol=0, atol=1e-12 * scale
        )
    # list input and non-unit quaternions: the same formula
    np.testing.assert_array_equal(
        quat_rotate([1.0, 2.0, 0.5, -1.0], [0.3, 0.1, 2.0]),
        _quat_rotate_cross([1.0, 2.0, 0.5, -1.0], [0.3, 0.1, 2.0]),
    )


def test_quat_rotate_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="quat_rotate"):
        quat_rotate(np.ones((3, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="quat_rotate"):
        quat_rotate(np.ones((3, 4)), np.ones((3, 4)))


def _quat_normalize_norm(q):
    """Division by ``np.linalg.norm``."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(n)) or np.any(n == 0):
        raise ValueError("quaternion must be finite and non-zero")
    return q / n


@pytest.mark.parametrize("shape", [(4,), (1000, 4), (3, 5, 4), (40_000, 4)])
def test_quat_normalize_written_out_equals_linalg_norm(shape) -> None:
    from imuhip.conventions import quat_normalize

    rng = np.random.default_rng(len(shape))
    for scale in (1e-150, 1e-3, 1.0, 1e3, 1e150):
        q = scale * rng.normal(size=shape)
        np.testing.assert_array_equal(quat_normalize(q), _quat_normalize_norm(q))
    for bad in (np.zeros(shape), np.full(shape, np.nan), 1e-200 * np.ones(shape)):
        with pytest.raises(ValueError, match="finite and non-zero"):
            quat_normalize(bad)
        with pytest.raises(ValueError):
            _quat_normalize_norm(bad)


def _quat_mul_stack(p, q):
    """The Hamilton product, written out on whole arrays."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    pw, px, py, pz = np.moveaxis(p, -1, 0)
    qw, qx, qy, qz = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ],
        axis=-1,
    )


@pytest.mark.parametrize("rows", [16_383, 16_385, 50_001])
def test_quat_helpers_in_row_blocks_equal_whole_arrays(rows: int) -> None:
    from imuhip.conventions import quat_normalize

    rng = np.random.default_rng(rows)
    q = quat_normalize(rng.normal(size=(rows, 4)))
    p = rng.normal(size=(rows, 4))
    v = rng.normal(size=(rows, 3))
    for a, b in ((q, v), (q, v[7]), (q[3], v)):
        np.testing.assert_array_equal(quat_rotate(a, b), _quat_rotate_cross(a, b))
    for a, b in ((p, q), (p, q[5]), (p[2], q)):
        np.testing.assert_array_equal(quat_mul(a, b), _quat_mul_stack(a, b))
    with pytest.raises(ValueError):
        quat_mul(p, q[:-1])  # rows that do not broadcast still fail
    with pytest.raises(ValueError):
        quat_rotate(q, v[:-1])


def test_quat_from_rotmat_is_scipys_from_matrix() -> None:
    from scipy.spatial.transform import Rotation

    from imuhip.conventions import quat_from_rotmat

    rng = np.random.default_rng(3)
    mats = list(Rotation.random(500, random_state=4).as_matrix())
    # the branches: identity, 180 deg about each axis (trace -1), near-180 turns
    mats += [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0])]
    mats += [np.diag([-1.0, -1.0, 1.0])]
    mats += list(Rotation.from_rotvec(rng.normal(size=(50, 3)) * 1e-3 + [np.pi, 0, 0]).as_matrix())
    for m in mats:
        got = quat_from_rotmat(m)
        ref = Rotation.from_matrix(m).as_quat(scalar_first=True)
        assert abs(abs(float(np.dot(got, ref))) - 1.0) < 1e-12  # the same rotation, +-q
        np.testing.assert_allclose(got, ref if np.dot(got, ref) > 0 else -ref, atol=1e-12)
    with pytest.raises(ValueError, match="3, 3"):
        quat_from_rotmat(np.eye(4))

"""Walking-axis anchors per filter epoch: a thigh filter restarted after a reconnect gap comes
back with an unrelated heading; no anchor window spans the gap, the side re-converges."""

from __future__ import annotations

import dataclasses

import numpy as np

from imuhip.conventions import quat_from_axis_angle, quat_mul
from imuhip.gait.joints import joint_angles
from imuhip.orientation.fusion.session import FILTER_RESTART_KEY
from imuhip.orientation.heading import HeadingConfig
from imuhip.orientation.heading._epochs import filter_epochs, pair_epochs
from imuhip.types import OrientationSession
from tests.unit._walk_sessions import near_truth_segcal
from tests.unit._walk_synth import DEG, make_walk

RATE_HZ = 100.0


def _restarted(gap: tuple[float, float], turn_deg: float, flag: bool) -> OrientationSession:
    """thigh_r without samples in ``gap`` (s), its filter's heading turned by ``turn_deg`` from
    the end of the gap on (what a restarted 6D filter does); ``flag``: the fusion says so."""
    ori, _, _ = _walk()
    a, c = round(gap[0] * RATE_HZ), round(gap[1] * RATE_HZ)
    m = len(ori.t_s)
    q = ori.q_world_sensor["thigh_r"].copy()
    q[c:] = quat_mul(quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), turn_deg * DEG), q[c:])
    valid = ori.valid["thigh_r"].copy()
    valid[a:c] = False
    restart = np.zeros(m, bool)
    restart[c] = flag
    diag = {p: dict(d) for p, d in ori.diagnostics.items()}
    diag.setdefault("thigh_r", {})[FILTER_RESTART_KEY] = restart
    return dataclasses.replace(
        ori,
        q_world_sensor={**ori.q_world_sensor, "thigh_r": q},
        valid={**ori.valid, "thigh_r": valid},
        diagnostics=diag,
    )


_CACHE: dict[str, tuple] = {}


def _walk() -> tuple:
    if "w" not in _CACHE:
        _CACHE["w"] = make_walk(rate_hz=RATE_HZ, walk_s=40.0, seed=4, with_mag=False)
    return _CACHE["w"]


def test_epochs_and_pairs_known_answer() -> None:
    ori = _restarted((20.0, 21.5), 70.0, True)
    ep = filter_epochs(ori, "thigh_r")
    assert ep is not None and filter_epochs(ori, "pelvis") is None
    assert (ep[:2000] == 0).all() and (ep[2000:2150] == -1).all() and (ep[2150:] == 1).all()
    pair = pair_epochs(None, ep, len(ep))
    assert pair is not None
    assert len(np.unique(pair[pair >= 0])) == 2 and (pair[2000:2150] == -1).all()


def test_a_restarted_thigh_filter_is_re_anchored_not_interpolated_across_the_gap() -> None:
    _, mount, truth = _walk()
    segcal = near_truth_segcal(mount, 4)
    c = 2150  # the restart row (21.5 s)
    w = round(HeadingConfig().reanchor_window_s * RATE_HZ)
    ang = joint_angles(_restarted((20.0, 21.5), 70.0, True), segcal)
    err = np.abs(ang.hip_rad["right"][:, 2] - truth["hip_right"][:, 2]) / DEG
    # the gap and the re-convergence window are marked; the rows before and after are right
    assert not ang.valid[2000 : c + w].any()
    assert ang.valid[c + w : c + w + 100].all()
    ok = ang.valid & (ang.t_s > 5.0)
    assert err[ok].max() < 2.0, err[ok].max()
    assert np.sqrt(np.mean(err[ok] ** 2)) < 1.0
    # without the restart flag the anchors straddle the 70 deg jump: tens of degrees off
    blind = joint_angles(_restarted((20.0, 21.5), 70.0, False), segcal)
    err_b = np.abs(blind.hip_rad["right"][:, 2] - truth["hip_right"][:, 2]) / DEG
    assert err_b[blind.valid & (blind.t_s > 5.0)].max() > 20.0

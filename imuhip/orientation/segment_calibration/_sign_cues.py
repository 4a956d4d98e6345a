"""Sign cues: which way along the mediolateral axis is flexion.

The principal axis of the flexion/extension movement has no sign. The cues (module docstring of
:mod:`imuhip.orientation.segment_calibration`, step 2): for a thigh the swing skew, the
inclination (flexion goes further than extension) and, with a pelvis gyroscope, the pelvis yaw
coupling; for a shank the swing skew, its correlation with the signed thigh flexion rate and the
knee as a hinge that does not hyperextend (:func:`_knee_hinge_score`). Thighs are signed first,
so a shank's sign is read off its signed thigh.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.orientation._calib_kernels import rot_z, rot_z_const_sum
from imuhip.orientation.segment_calibration._config import (
    FloatArray,
    SegmentCalConfig,
    Window,
    _c,
)
from imuhip.orientation.segment_calibration._windows import _index, _movement_windows
from imuhip.types import OrientationSession


def _skew(x: FloatArray) -> float:
    s = float(np.std(x))
    if not s > 0:
        return 0.0
    d = x - np.mean(x)
    return float(np.mean(d * d * d) / s**3)  # d * d * d: 13x faster than d ** 3 (pow)


#: Knee-hinge sign cue: samples used at most (evenly spaced over the walking), and the
#: difference of the 5th-percentile knee flexion between the two signs that counts as clear.
_HINGE_MAX_SAMPLES = 20_000
_HINGE_SCALE_RAD = np.deg2rad(20.0)


def _inclination_sin(q: FloatArray, x_s: FloatArray) -> FloatArray:
    """Vertical (world z) component of the sensor-frame vector ``x_s`` rotated by ``q`` (N, 4).

    The third row of the rotation matrix of each quaternion times ``x_s``: the sine of the
    angle by which that axis tips above the horizontal.
    """
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return (
        2.0 * (x * z - w * y) * x_s[0]
        + 2.0 * (y * z + w * x) * x_s[1]
        + (1.0 - 2.0 * (x * x + y * y)) * x_s[2]
    )


def _knee_hinge_score(
    ori: OrientationSession,
    thigh: str,
    shank: str,
    up_s: dict[str, FloatArray],
    z_s: dict[str, FloatArray],
    rows: npt.NDArray[np.intp],
) -> float:
    """Sign cue for a shank's Z axis from the knee as a hinge that does not hyperextend.

    Both segments' vertical axes come from the same standing pose, so the sagittal inclination
    of each segment's anterior axis (``X = Y x Z``) above the horizontal is its angle from
    standing, and the knee flexion is the thigh's minus the shank's (the shank is the thigh
    rotated by minus the knee flexion about Z). Only gravity enters (no heading: 6D and 9D
    alike). With the right shank sign the knee flexion stays above about -10 deg all along
    (physiological hyperextension); with the wrong one the shank's angle enters with the
    opposite sign and the "knee" reaches minus the shank's backward inclination at toe-off
    (about -40 deg). Score: ``tanh`` of the difference of the 5th percentiles (this sign minus
    the other) over 20 deg, in (-1, 1); > 0 means the current Z is right. The thigh's Z must
    already be signed.

    The knee joint's sagittal angle from segment inclinations: Winter 2009 (Biomechanics and
    Motor Control of Human Movement, 4th ed., doi:10.1002/9780470549148), ch. 2; the hinge
    model of the knee for IMU axis identification: Seel et al. 2014 (doi:10.3390/s140406891).
    """
    if len(rows) > _HINGE_MAX_SAMPLES:
        rows = rows[:: -(-len(rows) // _HINGE_MAX_SAMPLES)]
    ok = np.asarray(ori.valid[thigh], bool)[rows] & np.asarray(ori.valid[shank], bool)[rows]
    rows = rows[ok]
    if len(rows) < 10:
        return 0.0
    alpha = {}
    for p in (thigh, shank):
        x_s = np.cross(up_s[p], z_s[p])
        s = _inclination_sin(np.asarray(ori.q_world_sensor[p], np.float64)[rows], x_s)
        alpha[p] = np.arcsin(np.clip(s, -1.0, 1.0))
    p_this, p_other = (
        float(np.percentile(alpha[thigh] - sgn * alpha[shank], 5.0)) for sgn in (1.0, -1.0)
    )
    return float(np.tanh((p_this - p_other) / _HINGE_SCALE_RAD))


def _sign_flexion_axes(
    ori: OrientationSession,
    static: Window,
    cfg: SegmentCalConfig,
    idx: npt.NDArray[np.intp],
    functional: bool,
    up_s: dict[str, FloatArray],
    z_s: dict[str, FloatArray],
    flex_rate: dict[str, FloatArray],
    quality: dict[str, dict[str, float]],
    warnings: list[str],
) -> None:
    """Flip ``z_s`` and ``flex_rate`` in place so that flexion is positive.

    Records ``sign_score`` (the absolute weighted sum of the cues) in ``quality`` and warns
    when it is below 0.3. ``functional``: the movement windows ``idx`` are dedicated swings,
    which may be symmetric, so any walking after the static window joins the cues.
    """
    n = len(ori.t_s)
    pel_gyr = ori.gyr_rad_s.get("pelvis")
    yaw_rate = None
    if pel_gyr is not None:
        yaw_rate = np.empty(n)
        rot_z(_c(ori.q_world_sensor["pelvis"]), _c(pel_gyr), yaw_rate)
    # functional swings may be symmetric: add any walking after the static window to the cues
    sign_idx = idx
    if functional:
        walk = _movement_windows(ori, static, cfg)
        sign_idx = np.union1d(idx, _index(walk, n))
    # thighs first: a shank's sign is then read off its (signed) thigh
    for p in sorted(z_s, key=lambda q: not q.startswith("thigh")):
        along = flex_rate[p][sign_idx]
        score_skew = float(np.tanh(_skew(along)))
        if p.startswith("thigh"):
            # flexion goes further than extension from standing: anterior axis tips up on average
            x_s_p = np.cross(up_s[p], z_s[p])
            x_w_z = rot_z_const_sum(_c(ori.q_world_sensor[p]), sign_idx, x_s_p) / len(sign_idx)
            score_incl = float(np.tanh(x_w_z / np.sin(np.deg2rad(5.0))))
            score = score_skew + score_incl
            cues = f"swing skew {score_skew:+.2f}, inclination {score_incl:+.2f}"
            score_yaw = 0.0
            if yaw_rate is not None:
                # pelvis turns counter-clockwise (right side forward) while the right thigh flexes
                side_sign = 1.0 if p.endswith("_r") else -1.0
                c = np.corrcoef(yaw_rate[sign_idx], along)[0, 1]
                score_yaw = float(side_sign * c) if np.isfinite(c) else 0.0
                score = score + 2.0 * score_yaw
            cues += f", pelvis yaw correlation {score_yaw:+.2f}"
        else:
            # The shank's mean walking posture is inclined backward (knee flexion exceeds the
            # thigh's inclination), so the thigh's inclination cue would point the wrong way.
            # Knee as a hinge: the shank swings forward with the thigh (hip flexion and the
            # shank's forward swing share swing phase; the knee extends in terminal swing while
            # both still rotate forward), so its flexion rate correlates positively with the
            # signed flexion rate of the thigh of the same side.
            thigh = f"thigh_{p[-1]}"
            score_knee = 0.0
            score_hinge = 0.0
            if thigh in flex_rate:
                c = np.corrcoef(flex_rate[thigh][sign_idx], along)[0, 1]
                score_knee = float(c) if np.isfinite(c) else 0.0
                score_hinge = _knee_hinge_score(ori, thigh, p, up_s, z_s, sign_idx)
            # the hinge cue is anatomical (a knee does not hyperextend by tens of degrees) and
            # decisive when it is clear; the rate cues depend on the shape of the signal
            score = score_skew + 2.0 * score_knee + 4.0 * score_hinge
            cues = (
                f"swing skew {score_skew:+.2f}, thigh correlation {score_knee:+.2f}, "
                f"knee hinge {score_hinge:+.2f}"
            )
        quality[p]["sign_score"] = abs(score)
        if score < 0:
            z_s[p] = -z_s[p]
            flex_rate[p] = -flex_rate[p]
        if abs(score) < 0.3:
            warnings.append(f"{p}: flexion sign cues weak ({cues})")

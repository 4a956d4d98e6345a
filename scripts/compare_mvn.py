"""Per-stride hip rotation: imuhip against Xsens MVN on the real gaittoolbox trial (S02).

Usage::

    .venv/bin/python scripts/compare_mvn.py [--data ../shared/data/gaittoolbox] [--keep DIR]

MVN (Xsens MVN Studio 4.4, ``xsens/S02-Trial-Walk-1.bvh``) is a commercial estimate from the
same sensors with a biomechanical model, NOT optical ground truth.

1. The BVH is parsed here (no dependency). Each joint's local rotation is
   ``R = Ry(a) Rx(b) Rz(c)`` (channels ``Yrotation Xrotation Zrotation``, intrinsic, degrees);
   the hip joint's ``R`` is the thigh relative to the pelvis, both frames equal to the BVH axes
   in the T-pose. The BVH axes are mapped to ISB from the skeleton: Y up, "right" = direction of
   the ``RightHip`` offset, "anterior" = horizontal direction of the toe offsets; rows of ``M``
   are ISB X (anterior), Y (superior), Z (right) in BVH coordinates, ``R_isb = M R M^T``, then
   Cardan Z-X'-Y'' (flexion, adduction, internal rotation); left side: adduction and rotation
   negated. Checks printed: the rotation order (stance ankles stand still in forward
   kinematics with ``Ry Rx Rz``, not with ``Rz Rx Ry``) and the anterior axis (pelvis anterior
   axis against the root's walking velocity).
2. imuhip: ``python -m imuhip import xsens`` (7 sensors), ``analyze``, ``export --format
   angles-csv`` into a temporary folder. Clock: the import puts sample k (packet counter
   ``c0 + k``, all files on the same counter) at device time k/100 s; the session clock of
   ``analyze``/``export`` is that minus a constant (read from the export, -0.04 s here), so BVH
   frame k is session time ``t_s[0] + k/100``. Cross-correlation of hip angles over the valid
   strides verifies it (best lag printed, in frames).
3. Per valid stride, MVN's excursion (max - min of hip internal rotation over the same session
   samples [IC, next IC)) against imuhip's (``strides.csv``); median |delta|, RMS; correlation
   of the two mean-removed rotation curves over each side's valid strides; MVN on the strides
   imuhip excluded; MVN's excursion also after the 6 Hz zero-phase low-pass imuhip's per-stride
   rotation metrics use (``imuhip.gait.smoothing``; the script's own filter). ``--diagnose``
   adds imuhip on the Xsens on-board (vendor) quaternions (``import --use vendor``) and, on
   the fused path through the Python API as ``imuhip analyze`` computes it, the hip rotation
   without the walking heading anchor, with one constant world-up thigh heading offset (least
   mean square rotation over the valid strides) instead of the interpolated anchor, and with
   the thigh sensor-to-segment rotation perturbed by +-10 deg about each axis (these
   diagnostic rows: plain max - min, as recorded in docs/validation.md).
4. ``--crosstalk`` (issue 13): slopes of hip rotation on flexion and adduction (imuhip, MVN);
   constant rotations of the thigh or pelvis segment frame and their effect; the constant thigh
   rotation + flexion offset that best maps imuhip's hip rotation onto MVN's; constant world-up
   thigh headings instead of the anchor; imuhip - MVN rotation by tenth of the stride; pelvis
   tilt/obliquity and segment world headings against MVN's.

Results: ``docs/validation.md`` ("Real walking: per-stride hip rotation against Xsens MVN").
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.signal import butter, filtfilt
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.*
from tests.real_data import GAITTOOLBOX_IDS as IDS

TRIAL = "S02-Trial-Walk-1"
SIDES = {"left": ("l", "Left"), "right": ("r", "Right")}
ANGLES = ("flexion", "adduction", "internal_rotation")


def out(text: str = "") -> None:
    """One line of the printed tables (stdout)."""
    sys.stdout.write(text + "\n")


# --------------------------------------------------------------------------- BVH


@dataclass
class Bvh:
    joints: list[str]
    parent: dict[str, str | None]
    offsets: dict[str, np.ndarray]  # joint -> offset; "<joint>/end" for end sites
    columns: dict[tuple[str, str], int]  # (joint, channel) -> column
    frame_time: float
    data: np.ndarray  # (frames, channels)

    def euler(self, joint: str) -> np.ndarray:
        """(frames, 3) degrees in channel order Y, X, Z."""
        return self.data[:, [self.columns[(joint, f"{a}rotation")] for a in "YXZ"]]

    def local(self, joint: str, order: str = "YXZ") -> Rotation:
        """Joint rotation (child -> parent). ``order="ZXY"`` is the wrong-order check only."""
        e = self.euler(joint)
        if order == "YXZ":
            return Rotation.from_euler("YXZ", e, degrees=True)
        return Rotation.from_euler("ZXY", e[:, ::-1], degrees=True)

    def position(self) -> np.ndarray:
        return self.data[:, [self.columns[(self.joints[0], f"{a}position")] for a in "XYZ"]]


def read_bvh(path: Path) -> Bvh:
    lines = path.read_text().splitlines()
    joints: list[str] = []
    parent: dict[str, str | None] = {}
    offsets: dict[str, np.ndarray] = {}
    columns: dict[tuple[str, str], int] = {}
    stack: list[str] = []
    current = ""
    pending: str | None = None
    i = 0
    while not lines[i].strip().startswith("MOTION"):
        tok = lines[i].split()
        i += 1
        if not tok:
            continue
        if tok[0] in ("ROOT", "JOINT"):
            pending = tok[1]
            parent[pending] = stack[-1] if stack else None
            joints.append(pending)
        elif tok[0] == "End":
            pending = f"{stack[-1]}/end"
        elif tok[0] == "{":
            assert pending is not None
            stack.append(pending)
            current, pending = pending, None
        elif tok[0] == "}":
            stack.pop()
        elif tok[0] == "OFFSET":
            offsets[current] = np.array([float(v) for v in tok[1:4]])
        elif tok[0] == "CHANNELS":
            for name in tok[2 : 2 + int(tok[1])]:
                columns[(current, name)] = len(columns)
    n_frames = int(lines[i + 1].split(":")[1])
    frame_time = float(lines[i + 2].split(":")[1])
    rows = lines[i + 3 : i + 3 + n_frames]
    data = np.array([[float(v) for v in r.split()] for r in rows])
    if data.shape != (n_frames, len(columns)):
        raise ValueError(f"{path}: motion data {data.shape}, expected ({n_frames}, {len(columns)})")
    return Bvh(joints, parent, offsets, columns, frame_time, data)


def hip_joint(bvh: Bvh, side: str) -> str:
    cap = SIDES[side][1]
    for name in (f"{cap}Hip", f"{cap}UpLeg"):
        if name in bvh.joints and bvh.parent[name] == bvh.joints[0]:
            return name
    raise KeyError(f"no {cap}Hip/{cap}UpLeg under the root")


def isb_from_bvh(bvh: Bvh) -> np.ndarray:
    """Rows = ISB X anterior, Y superior, Z right, in BVH T-pose coordinates."""
    up = np.array([0.0, 1.0, 0.0])
    right = bvh.offsets[hip_joint(bvh, "right")] - bvh.offsets[hip_joint(bvh, "left")]
    right -= right @ up * up
    right /= np.linalg.norm(right)
    # toe joints and their end sites (MVN "RightToe"; other exporters "RightToeBase")
    fwd = np.sum([v for k, v in bvh.offsets.items() if "Toe" in k], axis=0)
    fwd -= fwd @ up * up
    fwd -= fwd @ right * right
    fwd /= np.linalg.norm(fwd)
    m = np.round(np.vstack([fwd, up, right]), 6)
    if not np.isclose(np.linalg.det(m), 1.0):
        raise ValueError(f"axis mapping is not a proper rotation: {m}")
    return m


def mvn_hip_angles(bvh: Bvh, side: str, m: np.ndarray) -> np.ndarray:
    """(frames, 3) flexion, adduction, internal rotation in degrees (left mirrored)."""
    r = bvh.local(hip_joint(bvh, side)).as_matrix()
    r_isb = m @ r @ m.T
    ang = Rotation.from_matrix(r_isb).as_euler("ZXY", degrees=True)
    if side == "left":
        ang[:, 1:] *= -1.0
    return ang


def check_bvh(bvh: Bvh, m: np.ndarray, walk: np.ndarray) -> None:
    """Forward kinematics checks of the rotation order and the anterior axis."""
    root = bvh.position()
    for order in ("YXZ", "ZXY"):
        speeds = []
        for side in ("left", "right"):
            hip = hip_joint(bvh, side)
            chain = [hip]
            while True:
                kids = [j for j in bvh.joints if bvh.parent[j] == chain[-1]]
                if not kids or "Ankle" in chain[-1] or "Foot" in chain[-1]:
                    break
                chain.append(kids[0])
            rg = bvh.local(bvh.joints[0], order)
            p = root + rg.apply(bvh.offsets[hip])
            for parent_j, child in itertools.pairwise(chain):
                rg = rg * bvh.local(parent_j, order)
                p = p + rg.apply(bvh.offsets[child])
            v = np.linalg.norm(np.gradient(p, axis=0), axis=1) / bvh.frame_time
            speeds.append(np.percentile(v[walk], 10))
        label = "Ry Rx Rz" if order == "YXZ" else "Rz Rx Ry"
        out(
            f"  FK with R = {label}: 10th-percentile ankle speed in walking "
            f"L {speeds[0]:.0f} / R {speeds[1]:.0f} (BVH units/s; ~0 = foot flat in stance)"
        )
    ant = bvh.local(bvh.joints[0]).apply(m[0])
    vel = np.gradient(root, axis=0)[walk]
    h = [0, 2]
    ok = np.linalg.norm(vel[:, h], axis=1) > 0.2 * np.median(np.linalg.norm(vel[:, h], axis=1))
    a, v = ant[walk][ok][:, h], vel[ok][:, h]
    cos = np.sum(a * v, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(v, axis=1)
    out(f"  pelvis ISB-anterior axis vs root walking velocity: median cos {np.median(cos):+.3f}")


# --------------------------------------------------------------------------- imuhip


def run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")


def import_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "imuhip", "import", "xsens", "-o", str(out)]
    for p, sid in IDS.items():
        cmd += ["--sensor", f"{p}={data / 'imu' / f'{TRIAL}-000_{sid}.txt'}"]
    return [*cmd, "--rate-hz", "100", "--overwrite", *extra]


def run_imuhip(data: Path, tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rec = tmp / "gt.imrec"
    run(import_cmd(data, rec))
    run(
        [
            sys.executable,
            "-m",
            "imuhip",
            "analyze",
            str(rec),
            "--out",
            str(tmp / "an"),
            "--force",
            "--quiet",
        ]
    )
    run(
        [
            sys.executable,
            "-m",
            "imuhip",
            "export",
            str(rec),
            "--format",
            "angles-csv",
            "--out",
            str(tmp / "ang"),
            "--force",
        ]
    )
    strides = pd.read_csv(tmp / "an" / "strides.csv")
    angles = pd.read_csv(next((tmp / "ang").glob("*_angles.csv")))
    return strides, angles


def run_vendor(data: Path, tmp: Path) -> pd.DataFrame:
    """``import --use vendor`` (Xsens on-board quaternions) and ``analyze``: strides.csv."""
    run(import_cmd(data, tmp / "vendor", "--use", "vendor"))
    ori = next(tmp.glob("vendor*.imori.npz"))
    run(
        [
            sys.executable,
            "-m",
            "imuhip",
            "analyze",
            str(ori),
            "--out",
            str(tmp / "an_vendor"),
            "--force",
            "--quiet",
        ]
    )
    return pd.read_csv(tmp / "an_vendor" / "strides.csv")


def diagnose_fused(rec: Path, strides: pd.DataFrame, mvn: dict[str, np.ndarray]) -> None:
    """Hip rotation variants on the fused path (the pipeline's steps via the Python API)."""
    import dataclasses

    from imuhip.conventions import quat_from_axis_angle, quat_mul, quat_normalize
    from imuhip.gait.joints import JointsConfig, hip_angles, joint_angles
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.ingest.decode import decode_session_arrays
    from imuhip.ingest.recording import read_packet_arrays
    from imuhip.orientation.fusion import FuseConfig, fuse_session
    from imuhip.pipeline import _calibrate

    r = read_packet_arrays(rec)
    samples = decode_session_arrays(r.payloads, r.host_rx_ns, r.meta)
    ori = fuse_session(align_session(samples, AlignConfig()), FuseConfig(method="vqf"))
    seg = _calibrate(ori, ())
    t = np.asarray(ori.t_s)
    out(
        "\nDiagnosis, fused path (vqf 6D): per valid stride excursion (deg); r / RMS of the "
        "mean-removed curves against MVN over the side's valid strides"
    )
    out("| side | variant | excursions | mean | r | RMS |")
    out("|---|---|---|---|---|---|")
    ja = {
        mode: joint_angles(ori, seg, JointsConfig(heading_correction=mode))
        for mode in ("always", "never")
    }
    for side, (c, _) in SIDES.items():
        v = strides[(strides.side == side) & strides.valid.astype(bool)]
        ks = [
            np.flatnonzero((t >= x.ic_s - 1e-9) & (t < x.next_ic_s - 1e-9)) for x in v.itertuples()
        ]
        k = np.concatenate(ks)
        b = mvn[side][k, 2] - mvn[side][k, 2].mean()

        def row(name: str, ir: np.ndarray, ks=ks, k=k, b=b, side=side) -> None:
            ir = np.degrees(np.unwrap(np.radians(ir)))  # an arbitrary 6D heading may wrap
            a = ir[k] - ir[k].mean()
            exc = [float(np.ptp(ir[kk])) for kk in ks]
            out(
                f"| {side} | {name} | {' / '.join(f'{e:.1f}' for e in exc)} | "
                f"{np.mean(exc):.1f} | {np.corrcoef(a, b)[0, 1]:.3f} | "
                f"{np.sqrt(np.mean((a - b) ** 2)):.1f} |"
            )

        row("MVN", mvn[side][:, 2])
        row("pipeline (walking anchor, interpolated)", np.degrees(ja["always"].hip_rad[side][:, 2]))
        row(
            "no heading anchor (6D: arbitrary relative heading)",
            np.degrees(ja["never"].hip_rad[side][:, 2]),
        )
        th = f"thigh_{c}"
        qp = quat_mul(quat_normalize(ori.q_world_sensor["pelvis"]), seg.q_sensor_segment["pelvis"])
        qt = quat_mul(quat_normalize(ori.q_world_sensor[th]), seg.q_sensor_segment[th])

        def ir_psi(psi: float, qp=qp, qt=qt, side=side) -> np.ndarray:
            q = quat_mul(quat_from_axis_angle([0.0, 0.0, 1.0], np.radians(psi)), qt)
            return np.degrees(hip_angles(qp, q, side)[:, 2])

        # the offset with the least mean square rotation (a zero mean alone is also met by
        # rotations wrapping around +-180 deg)
        psis = np.arange(-180.0, 180.0, 0.5)
        psi = float(psis[np.argmin([np.mean(ir_psi(p)[k] ** 2) for p in psis])])
        row(f"constant world-up thigh heading offset {psi:+.1f} deg", ir_psi(psi))
        for ax, name in ((0, "X"), (1, "Y"), (2, "Z")):
            for deg in (-10.0, 10.0):
                e = np.zeros(3)
                e[ax] = 1.0
                q = dict(seg.q_sensor_segment)
                q[th] = quat_mul(q[th], quat_from_axis_angle(e, np.radians(deg)))
                j2 = joint_angles(
                    ori,
                    dataclasses.replace(seg, q_sensor_segment=q),
                    JointsConfig(heading_correction="always"),
                )
                row(
                    f"thigh calibration {deg:+.0f} deg about segment {name}",
                    np.degrees(j2.hip_rad[side][:, 2]),
                )


def _slope(y: np.ndarray, x: np.ndarray) -> float:
    """Least-squares slope of ``y`` on ``x`` (both mean-removed)."""
    a = x - x.mean()
    return float(np.dot(a, y - y.mean()) / np.dot(a, a))


def crosstalk(
    rec: Path, strides: pd.DataFrame, mvn: dict[str, np.ndarray], bvh: Bvh, m: np.ndarray
) -> None:
    """Cross-talk diagnosis (issue 13): is the left excess a frame (axis) or heading error?

    On the fused path as ``imuhip analyze`` computes it: (a) slopes of hip rotation on flexion
    and on adduction over the valid strides, imuhip and MVN; (b) one constant rotation of the
    thigh segment frame (right factor of ``q_pelvis_thigh``: a sensor-to-segment change) or of
    the pelvis frame (left factor), -20..+20 deg about each axis: rotation/flexion slope and
    median |imuhip - MVN| excursion; (c) imuhip - MVN rotation (per stride means removed) by
    tenth of the stride; (d) per-stride range of each segment's world heading (anterior axis
    about up; imuhip fused without the anchor) against MVN's (BVH root and root x hip).
    """
    from imuhip.conventions import (
        HIP_SIGN,
        Side,
        cardan_zxy,
        hip_angles_to_quat,
        quat_conj,
        quat_from_axis_angle,
        quat_from_cardan_zxy,
        quat_mul,
        quat_normalize,
        quat_rotate,
    )
    from imuhip.gait.joints import JointsConfig, hip_angles, joint_angles
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.ingest.decode import decode_session_arrays
    from imuhip.ingest.recording import read_packet_arrays
    from imuhip.orientation.fusion import FuseConfig, fuse_session
    from imuhip.orientation.segment_calibration import SegmentCalConfig, find_static_window
    from imuhip.orientation.segment_calibration._windows import _movement_windows
    from imuhip.pipeline import _calibrate

    r = read_packet_arrays(rec)
    samples = decode_session_arrays(r.payloads, r.host_rx_ns, r.meta)
    ori = fuse_session(align_session(samples, AlignConfig()), FuseConfig(method="vqf"))
    seg = _calibrate(ori, ())
    t = np.asarray(ori.t_s)
    ja = joint_angles(ori, seg, JointsConfig(heading_correction="always"))
    out(f"\nCross-talk diagnosis; calibration methods {seg.method}; warnings {list(seg.warnings)}")
    out("  " + "; ".join(f"{p} axis ratio {q['axis_ratio']:.2f}" for p, q in seg.quality.items()
                          if "axis_ratio" in q))  # fmt: skip
    v = strides[strides.valid.astype(bool)]
    kks = {
        s: [np.flatnonzero((t >= x.ic_s - 1e-9) & (t < x.next_ic_s - 1e-9))
            for x in v[v.side == s].itertuples()]
        for s in SIDES
    }  # fmt: skip
    st = find_static_window(ori, SegmentCalConfig())
    walks = _movement_windows(ori, st, SegmentCalConfig())
    out(
        f"  standing window {t[st[0]]:.2f}-{t[st[1] - 1]:.2f} s; walking windows "
        + ", ".join(f"{t[a]:.2f}-{t[b - 1]:.2f} s" for a, b in walks)
    )
    out("| side | rot/flex imuhip | rot/flex MVN | rot/add imuhip | rot/add MVN |")
    out("|---|---|---|---|---|")
    for s in SIDES:
        k = np.concatenate(kks[s])
        a, b = np.degrees(ja.hip_rad[s])[k], mvn[s][k]
        out(
            f"| {s} | {_slope(a[:, 2], a[:, 0]):+.2f} | {_slope(b[:, 2], b[:, 0]):+.2f} | "
            f"{_slope(a[:, 2], a[:, 1]):+.2f} | {_slope(b[:, 2], b[:, 1]):+.2f} |"
        )
    out("\nConstant frame rotation (deg): rotation/flexion slope, median |imuhip - MVN| excursion")
    out("| side | frame | axis | " + " | ".join(f"{d:+d}" for d in range(-20, 21, 10)) + " |")
    out("|---|---|---|" + "---|" * 5)
    for s in SIDES:
        k = np.concatenate(kks[s])
        q = hip_angles_to_quat(ja.hip_rad[s], s)
        mx = np.array([np.ptp(mvn[s][kk, 2]) for kk in kks[s]])
        for frame in ("thigh", "pelvis"):
            for ax, name in ((1, "X"), (2, "Y"), (0, "Z")):
                cells = []
                for deg in range(-20, 21, 10):
                    e = np.zeros(3)
                    e[ax] = np.radians(deg)
                    qe = quat_from_cardan_zxy(e)
                    qq = quat_mul(q, qe) if frame == "thigh" else quat_mul(qe, q)
                    a = np.degrees(cardan_zxy(qq) * HIP_SIGN[Side(s)])
                    ex = np.array([line_removed_range(a[:, 2], kk) for kk in kks[s]])
                    cells.append(
                        f"{_slope(a[k, 2], a[k, 0]):+.2f}, {np.median(np.abs(ex - mx)):.1f}"
                    )
                out(f"| {s} | {frame} | {name} | " + " | ".join(cells) + " |")
    out("\nConstant thigh rotation + flexion offset fitted to MVN's hip rotation matrices")
    for s in SIDES:
        k = np.concatenate(kks[s])
        qi = hip_angles_to_quat(ja.hip_rad[s], s)
        qm = hip_angles_to_quat(np.radians(mvn[s]), s)

        def mapped(x: np.ndarray, qi: np.ndarray = qi) -> np.ndarray:
            qf = quat_from_cardan_zxy(np.radians([x[0], 0.0, 0.0]))
            return quat_mul(quat_mul(qf, qi), quat_from_cardan_zxy(np.radians(x[1:])))

        def cost(x: np.ndarray, k: np.ndarray = k, qm: np.ndarray = qm) -> float:
            w = np.abs(np.sum(mapped(x)[k] * qm[k], axis=1))  # cos(angle / 2)
            return float(np.mean((2.0 * np.arccos(np.clip(w, 0.0, 1.0))) ** 2))

        fit = minimize(cost, np.zeros(4), method="Powell")
        a = np.degrees(cardan_zxy(mapped(fit.x)) * HIP_SIGN[Side(s)])
        ex = np.array([line_removed_range(a[:, 2], kk) for kk in kks[s]])
        mx = np.array([np.ptp(mvn[s][kk, 2]) for kk in kks[s]])
        out(
            f"  {s}: RMS angle to MVN {np.degrees(np.sqrt(cost(np.zeros(4)))):.1f} -> "
            f"{np.degrees(np.sqrt(fit.fun)):.1f} deg; flexion offset {fit.x[0] + fit.x[1]:+.1f}, "
            f"thigh X {fit.x[2]:+.1f} Y {fit.x[3]:+.1f} deg; median |d excursion| "
            f"{np.median(np.abs(ex - mx)):.1f}"
        )
    out("\nConstant thigh heading about world up (no anchor), relative to the least-squares one")
    qp = quat_mul(quat_normalize(ori.q_world_sensor["pelvis"]), seg.q_sensor_segment["pelvis"])
    for s, (c, _) in SIDES.items():
        k = np.concatenate(kks[s])
        qt = quat_mul(
            quat_normalize(ori.q_world_sensor[f"thigh_{c}"]), seg.q_sensor_segment[f"thigh_{c}"]
        )
        mx = np.array([np.ptp(mvn[s][kk, 2]) for kk in kks[s]])

        def turned(psi: float, qt: np.ndarray = qt, s: str = s) -> np.ndarray:
            qz = quat_from_axis_angle([0.0, 0.0, 1.0], np.radians(psi))
            return np.degrees(hip_angles(qp, quat_mul(qz, qt), s))

        psis = np.arange(-180.0, 180.0, 1.0)
        p0 = float(psis[np.argmin([np.mean(turned(p)[k, 2] ** 2) for p in psis])])
        cells = []
        for dp in (-20, -10, 0, 10, 20):
            a = turned(p0 + dp)
            ex = np.array([line_removed_range(a[:, 2], kk) for kk in kks[s]])
            cells.append(
                f"{dp:+d}: mean {a[k, 2].mean():+.1f}, |d| {np.median(np.abs(ex - mx)):.1f}"
            )
        out(f"  {s} (least-squares heading {p0:+.0f} deg): " + "; ".join(cells))
    out("\nimuhip - MVN hip rotation (deg, each stride's means removed), by tenth of the stride")
    for s in SIDES:
        parts = []
        for kk in kks[s]:
            a, b = np.degrees(ja.hip_rad[s][kk, 2]), mvn[s][kk, 2]
            d = (a - a.mean()) - (b - b.mean())
            parts.append([np.mean(c) for c in np.array_split(d, 10)])
        out(f"  {s}: " + " ".join(f"{x:+.1f}" for x in np.mean(parts, axis=0)))

    def heading_imu(p: str) -> np.ndarray:
        qs = quat_mul(quat_normalize(ori.q_world_sensor[p]), seg.q_sensor_segment[p])
        x = quat_rotate(qs, [1.0, 0.0, 0.0])
        return np.degrees(np.unwrap(np.arctan2(x[:, 1], x[:, 0])))

    def heading_mvn(rot: np.ndarray) -> np.ndarray:
        x = rot @ m[0]  # ISB anterior in BVH world (Y up; about +Y, X turns towards -Z)
        return np.degrees(np.unwrap(np.arctan2(-x[:, 2], x[:, 0])))

    root = bvh.local(bvh.joints[0]).as_matrix()
    heads = {"pelvis": (heading_imu("pelvis"), heading_mvn(root))}
    for s, (c, _) in SIDES.items():
        hip = bvh.local(hip_joint(bvh, s)).as_matrix()
        heads[f"thigh_{c}"] = (heading_imu(f"thigh_{c}"), heading_mvn(root @ hip))
    # pelvis tilt / obliquity: world up in the pelvis segment frame (X, Z parts), both systems
    qs = quat_mul(quat_normalize(ori.q_world_sensor["pelvis"]), seg.q_sensor_segment["pelvis"])
    u_imu = quat_rotate(quat_conj(qs), [0.0, 0.0, 1.0])
    u_mvn = np.stack([(root @ m[i])[:, 1] for i in range(3)], axis=1)
    kall = np.concatenate([*kks["left"], *kks["right"]])
    rs = [float(np.corrcoef(u_imu[kall, i], u_mvn[kall, i])[0, 1]) for i in (0, 2)]
    out(
        f"\nPelvis segment: world up along its X (tilt) r = {rs[0]:+.3f}, along its Z "
        f"(obliquity) r = {rs[1]:+.3f}, imuhip vs MVN over the valid strides"
    )
    out("\nSegment world heading, range per valid stride (deg): imuhip / MVN (r of the curves)")
    for p, (a, b) in heads.items():
        cells = [
            f"{np.ptp(a[kk]):.1f} / {np.ptp(b[kk]):.1f} ({np.corrcoef(a[kk], b[kk])[0, 1]:.3f})"
            for kk in (*kks["left"], *kks["right"])
        ]
        out(f"  {p}: " + "; ".join(cells))


def packet_counters(data: Path) -> dict[str, np.ndarray]:
    out = {}
    for p, sid in IDS.items():
        df = pd.read_csv(data / "imu" / f"{TRIAL}-000_{sid}.txt", comment="/", usecols=[0])
        out[p] = df.iloc[:, 0].to_numpy()
    return out


# --------------------------------------------------------------------------- comparison


def line_removed_range(x: np.ndarray, k: np.ndarray) -> float:
    """imuhip's excursion definition: range over the stride's frames ``k`` after removing the
    straight line from the value at IC to the value at the next IC (frame ``k[-1] + 1``)."""
    a, b = int(k[0]), min(int(k[-1]) + 1, len(x) - 1)
    slope = (x[b] - x[a]) / (b - a)
    return float(np.ptp(x[k] - slope * (k - a)))


def lowpass(x: np.ndarray, fs: float, fc: float = 6.0) -> np.ndarray:
    b, a = butter(2, fc / (fs / 2))
    return filtfilt(b, a, x)


def best_lag(a: np.ndarray, b: np.ndarray, idx: np.ndarray, max_lag: int = 20) -> tuple[int, float]:
    """Lag L (frames) maximising corr(a[idx], b[idx + L])."""
    best = (0, -2.0)
    for lag in range(-max_lag, max_lag + 1):
        j = idx + lag
        ok = (j >= 0) & (j < len(b))
        r = float(np.corrcoef(a[idx[ok]], b[j[ok]])[0, 1])
        if r > best[1]:
            best = (lag, r)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/gaittoolbox"))
    ap.add_argument(
        "--keep", type=Path, help="run imuhip into this folder (kept) instead of a temp"
    )
    ap.add_argument(
        "--crosstalk",
        action="store_true",
        help="also: rotation/flexion cross-talk, constant frame rotations, segment headings",
    )
    ap.add_argument(
        "--diagnose",
        action="store_true",
        help="also: vendor quaternions, heading-anchor and calibration variants",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        tmp = args.keep or Path(td)
        tmp.mkdir(parents=True, exist_ok=True)
        compare(args.data, tmp, args.diagnose, args.crosstalk)


def compare(data: Path, tmp: Path, diagnose: bool, xtalk: bool = False) -> None:
    """Run imuhip into ``tmp`` and print the comparison tables."""
    bvh = read_bvh(data / "xsens" / f"{TRIAL}.bvh")
    fs = 1.0 / bvh.frame_time
    m = isb_from_bvh(bvh)
    names = {0: "X", 1: "Y", 2: "Z"}
    desc = ", ".join(
        f"ISB {axis} = {'+' if m[i][np.argmax(np.abs(m[i]))] > 0 else '-'}BVH "
        f"{names[int(np.argmax(np.abs(m[i])))]}"
        for i, axis in enumerate(("X (anterior)", "Y (superior)", "Z (right)"))
    )
    out(
        f"BVH: {len(bvh.data)} frames at {fs:.0f} Hz; hips {hip_joint(bvh, 'left')}/"
        f"{hip_joint(bvh, 'right')}; axis mapping: {desc}"
    )
    mvn = {s: mvn_hip_angles(bvh, s, m) for s in SIDES}

    counters = packet_counters(data)
    c0 = {p: int(c[0]) for p, c in counters.items()}
    contiguous = all(np.all(np.diff(c) == 1) for c in counters.values())
    lengths = {len(c) for c in counters.values()}
    out(
        f"text files: first PacketCounter {sorted(set(c0.values()))}, rows {sorted(lengths)}, "
        f"contiguous {contiguous} -> sample k = counter - {min(c0.values())} at k/100 s"
    )

    strides, ang = run_imuhip(data, tmp)
    vendor = run_vendor(data, tmp) if diagnose else None

    t = ang["t_s"].to_numpy()
    t0 = float(t[0])
    if len(t) != len(bvh.data) or not np.allclose(t, t0 + np.arange(len(t)) / fs, atol=1e-6):
        raise SystemExit("imuhip's angles are not on the BVH sample grid")
    out(
        f"imuhip session clock: t_s = k/100 {t0:+.2f} s (k = text-file sample = BVH frame); "
        f"MVN frame k compared at session time k/100 {t0:+.2f} s"
    )

    def frames(a: float, b: float) -> np.ndarray:
        return np.flatnonzero((t >= a - 1e-9) & (t < b - 1e-9))

    valid = strides[strides["valid"].astype(bool)]
    walk = {
        s: np.concatenate(
            [frames(r.ic_s, r.next_ic_s) for r in valid[valid.side == s].itertuples()]
        )
        for s in SIDES
    }
    allwalk = np.unique(np.concatenate(list(walk.values())))
    out("\nChecks of the BVH reading (frames of the valid strides):")
    check_bvh(bvh, m, allwalk)
    for s in SIDES:
        x = ang[f"hip_flexion_{SIDES[s][0]}_deg"].to_numpy()
        out(
            f"  {s} MVN hip flexion over valid strides {np.min(mvn[s][walk[s], 0]):+.0f} to "
            f"{np.max(mvn[s][walk[s], 0]):+.0f} deg (imuhip {np.min(x[walk[s]]):+.0f} to "
            f"{np.max(x[walk[s]]):+.0f}); adduction {np.min(mvn[s][walk[s], 1]):+.0f} to "
            f"{np.max(mvn[s][walk[s], 1]):+.0f} deg"
        )

    out("\nClock check: best lag L (frames) of corr(imuhip[k], MVN[k + L]) over valid strides")
    for s, (c, _) in SIDES.items():
        parts = []
        for q, name in enumerate(ANGLES):
            lag, r = best_lag(ang[f"hip_{name}_{c}_deg"].to_numpy(), mvn[s][:, q], walk[s])
            r0 = float(
                np.corrcoef(ang[f"hip_{name}_{c}_deg"].to_numpy()[walk[s]], mvn[s][walk[s], q])[
                    0, 1
                ]
            )
            parts.append(f"{name} L={lag:+d} r={r:.3f} (L=0: {r0:.3f})")
        out(f"  {s}: " + "; ".join(parts))

    rows = []
    for r in strides.itertuples():
        c = SIDES[r.side][0]
        k = frames(r.ic_s, r.next_ic_s)
        ir = ang[f"hip_internal_rotation_{c}_deg"].to_numpy()
        mv = mvn[r.side][:, 2]
        ir_lp, mv_lp = lowpass(ir, fs), lowpass(mv, fs)
        rows.append(
            {
                "side": r.side,
                "ic_s": r.ic_s,
                "next_ic_s": r.next_ic_s,
                "valid": bool(r.valid),
                "exclusion": r.exclusion,
                "imuhip": r.hip_rotation_excursion_deg,
                "imuhip_recomputed": line_removed_range(ir_lp, k),
                "mvn": np.ptp(mv[k]),
                "mvn_line": line_removed_range(mv_lp, k),
                "mvn_6hz": np.ptp(mv_lp[k]),
            }
        )
    tab = pd.DataFrame(rows)
    if vendor is not None:  # the vendor path has no clock fit: its session clock starts at 0

        def vendor_exc(side: str, ic_s: float) -> float:
            hit = vendor[(vendor.side == side) & (abs(vendor.ic_s + t0 - ic_s) < 0.015)]
            return float(hit["hip_rotation_excursion_deg"].iloc[0]) if len(hit) else np.nan

        tab["vendor"] = [vendor_exc(x.side, x.ic_s) for x in tab.itertuples()]
    tab["diff"] = tab["imuhip"] - tab["mvn"]
    tab["diff_6hz"] = tab["imuhip"] - tab["mvn_6hz"]
    if not np.allclose(tab["imuhip"], tab["imuhip_recomputed"], atol=0.01):
        out("WARNING: strides.csv excursions differ from the exported angles' (6 Hz, line removed)")

    out(
        "\nPer valid stride: hip rotation excursion (deg); imuhip's definition (6 Hz low-pass, "
        "line between the contacts removed) against MVN's max - min, raw and 6 Hz"
    )
    out("| side | IC s | next IC s | imuhip | MVN | Δ | MVN 6 Hz | Δ 6 Hz |")
    out("|---|---|---|---|---|---|---|---|")
    v = tab[tab.valid]
    for r in v.itertuples():
        out(
            f"| {r.side} | {r.ic_s:.2f} | {r.next_ic_s:.2f} | {r.imuhip:.1f} | {r.mvn:.1f} | "
            f"{r.diff:+.1f} | {r.mvn_6hz:.1f} | {r.diff_6hz:+.1f} |"
        )
    out("\nSummary (valid strides)")
    out(
        "| side | n | imuhip mean | MVN mean | mean Δ | median \\|Δ\\| | RMS Δ | "
        "r (curves, mean removed) | RMS of curve difference | SD imuhip / MVN |"
    )
    out("|---|---|---|---|---|---|---|---|---|---|")
    for s in (*SIDES, "both"):
        sub = v if s == "both" else v[v.side == s]
        d = sub["diff"].to_numpy()
        if s == "both":
            corr = rms_c = sd = ""
        else:
            a = ang[f"hip_internal_rotation_{SIDES[s][0]}_deg"].to_numpy()[walk[s]]
            b = mvn[s][walk[s], 2]
            a, b = a - a.mean(), b - b.mean()
            corr = f"{np.corrcoef(a, b)[0, 1]:.3f}"
            rms_c = f"{np.sqrt(np.mean((a - b) ** 2)):.1f}"
            sd = f"{a.std():.1f} / {b.std():.1f}"
        out(
            f"| {s} | {len(sub)} | {sub.imuhip.mean():.1f} | {sub.mvn.mean():.1f} | "
            f"{d.mean():+.1f} | {np.median(np.abs(d)):.1f} | {np.sqrt(np.mean(d**2)):.1f} | "
            f"{corr} | {rms_c} | {sd} |"
        )
    out(
        "\nMVN with imuhip's definition (6 Hz, line between the contacts removed): per-side mean "
        + ", ".join(
            f"{sd} {v[v.side == sd].mvn_line.mean():.1f} (raw {v[v.side == sd].mvn.mean():.1f}; "
            f"median |imuhip - MVN line-removed| "
            f"{np.median(np.abs(v[v.side == sd].imuhip - v[v.side == sd].mvn_line)):.1f})"
            for sd in SIDES
        )
    )
    out("\nStrides imuhip excluded (information only)")
    out("| side | IC s | next IC s | exclusion | imuhip | MVN |")
    out("|---|---|---|---|---|---|")
    for r in tab[~tab.valid].itertuples():
        out(
            f"| {r.side} | {r.ic_s:.2f} | {r.next_ic_s:.2f} | {r.exclusion} | "
            f"{r.imuhip:.1f} | {r.mvn:.1f} |"
        )
    if xtalk:
        crosstalk(tmp / "gt.imrec", strides, mvn, bvh, m)
    if vendor is None:
        return
    out("\nDiagnosis: imuhip on the Xsens on-board quaternions (import --use vendor)")
    out("| side | IC s | imuhip fused | imuhip vendor-q | MVN |")
    out("|---|---|---|---|---|")
    for r in v.itertuples():
        out(f"| {r.side} | {r.ic_s:.2f} | {r.imuhip:.1f} | {r.vendor:.1f} | {r.mvn:.1f} |")
    for s in SIDES:
        sub = v[v.side == s]
        out(
            f"  {s}: mean fused {sub.imuhip.mean():.1f}, vendor-q {sub.vendor.mean():.1f}, "
            f"MVN {sub.mvn.mean():.1f}; median |vendor-q - MVN| "
            f"{np.median(np.abs(sub.vendor - sub.mvn)):.1f}"
        )
    diagnose_fused(tmp / "gt.imrec", strides, mvn)


if __name__ == "__main__":
    main()

"""OpenSim's own tools for the ``.sto`` round-trip test: a small model, the reader, Placer + IK.

The model is built here in code (no model file ships with the ``opensim`` package): the bodies
and coordinate names of the OpenSense example's Rajagopal model (``pelvis``, ``femur_*``,
``tibia_*``, ``calcn_*``, ``torso``; ``hip_flexion_r``, ``hip_adduction_r``, ``hip_rotation_r``,
``lumbar_extension``, ...) with its axes (Z flexion/extension, X adduction/bending, Y rotation,
left hip X and Y axes reversed so that + is adduction and internal rotation on both sides). The
pelvis hangs from ground by three rotations only: an orientation-only IK has nothing to fix
its translation. Segment lengths do not matter for orientation tracking.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

SENSOR_TO_OPENSIM = (-math.pi / 2, 0.0, 0.0)  # OpenSense's setting for Z-up IMU worlds


def _spatial_transform(osim: Any, rot: list[tuple[str, tuple[float, float, float]]]) -> Any:
    st = osim.SpatialTransform()
    axes = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)]
    for i, (coord, axis) in enumerate(rot):
        ta = st.updTransformAxis(i)
        ta.setCoordinateNames(osim.ArrayStr(coord, 1))
        ta.setAxis(osim.Vec3(*axis))
        ta.set_function(osim.LinearFunction())
    # unused rotation axes must still be independent of the used ones
    free = [a for a in axes if all(abs(float(np.dot(a, ax))) < 0.5 for _, ax in rot)]
    for i in range(len(rot), 3):
        ta = st.updTransformAxis(i)
        ta.setAxis(osim.Vec3(*free[i - len(rot)]))
        ta.set_function(osim.Constant(0.0))
    for i in range(3):
        ta = st.updTransformAxis(3 + i)
        ta.setAxis(osim.Vec3(*axes[i]))
        ta.set_function(osim.Constant(0.0))
    return st


def build_model(osim: Any, path: Path) -> Path:
    """Write the lower-body + torso model described in the module docstring to ``path``."""
    m = osim.Model()
    m.setName("imuhip_opensense_check")

    def body(name: str) -> Any:
        b = osim.Body(name, 5.0, osim.Vec3(0), osim.Inertia(0.05, 0.02, 0.05))
        m.addBody(b)
        return b

    def joint(name: str, parent: Any, loc: tuple[float, ...], child: Any, rot: list) -> None:
        st = _spatial_transform(osim, rot)
        zero = osim.Vec3(0)
        m.addJoint(osim.CustomJoint(name, parent, osim.Vec3(*loc), zero, child, zero, zero, st))

    x, y, z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    pelvis = body("pelvis")
    joint(
        "ground_pelvis",
        m.getGround(),
        (0.0, 1.0, 0.0),
        pelvis,
        [("pelvis_tilt", z), ("pelvis_list", x), ("pelvis_rotation", y)],
    )
    torso = body("torso")
    joint(
        "back",
        pelvis,
        (-0.1, 0.08, 0.0),
        torso,
        [("lumbar_extension", z), ("lumbar_bending", x), ("lumbar_rotation", y)],
    )
    for s, sg in (("r", 1.0), ("l", -1.0)):
        femur = body(f"femur_{s}")
        joint(
            f"hip_{s}",
            pelvis,
            (-0.07, -0.07, sg * 0.085),
            femur,
            [
                (f"hip_flexion_{s}", z),
                (f"hip_adduction_{s}", (sg, 0.0, 0.0)),
                (f"hip_rotation_{s}", (0.0, sg, 0.0)),
            ],
        )
        tibia = body(f"tibia_{s}")
        joint(f"walker_knee_{s}", femur, (0.0, -0.4, 0.0), tibia, [(f"knee_angle_{s}", z)])
        calcn = body(f"calcn_{s}")
        joint(
            f"ankle_{s}",
            tibia,
            (0.0, -0.4, 0.0),
            calcn,
            [(f"ankle_angle_{s}", z), (f"subtalar_angle_{s}", (sg, 0.0, 0.0))],
        )
    m.finalizeConnections()
    m.printToXML(str(path))
    return path


def read_xsens_with_opensim(osim: Any, folder: Path, mapping: Path, out: Path) -> Path:
    """OpenSim's ``XsensDataReader`` on a trial -> ``out`` (its quaternion table, as written by
    OpenSim's ``STOFileAdapter``).

    The reader refuses files of different lengths ("All data files in the trial do not have the
    same line length"); the OpenSense trial's files end at different counters (all start at 472),
    so they are cut to the shortest file's line count in ``out``'s folder first.
    """
    work = out.parent / "xsens_equal_length"
    work.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("*.txt"))
    texts = [f.read_text().splitlines(keepends=True) for f in files]
    n = min(len(t) for t in texts)
    for f, t in zip(files, texts, strict=True):
        (work / f.name).write_text("".join(t[:n]))
    shutil.copy(mapping, work / mapping.name)
    reader = osim.XsensDataReader(osim.XsensDataReaderSettings(str(work / mapping.name)))
    tables = reader.read(str(work) + "/")
    osim.STOFileAdapterQuaternion.write(reader.getOrientationsTable(tables), str(out))
    return out


def place_and_track(
    osim: Any, model: Path, sto: Path, out_dir: Path, t0_s: float, t1_s: float
) -> tuple[list[str], np.ndarray]:
    """IMU Placer (first row = calibration pose, pelvis_imu, heading axis z) then IMU IK.

    Returns the coordinate names and the ``(frames, 1 + coordinates)`` motion (time, degrees).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    placer = osim.IMUPlacer()
    placer.set_model_file(str(model))
    placer.set_orientation_file_for_calibration(str(sto))
    placer.set_sensor_to_opensim_rotations(osim.Vec3(*SENSOR_TO_OPENSIM))
    placer.set_base_imu_label("pelvis_imu")
    placer.set_base_heading_axis("z")
    placer.run(False)
    calibrated = out_dir / "calibrated.osim"
    placer.getCalibratedModel().printToXML(str(calibrated))
    ik = osim.IMUInverseKinematicsTool()
    ik.set_model_file(str(calibrated))
    ik.set_orientations_file(str(sto))
    ik.set_sensor_to_opensim_rotations(osim.Vec3(*SENSOR_TO_OPENSIM))
    ik.set_results_directory(str(out_dir))
    ik.set_time_range(0, t0_s)
    ik.set_time_range(1, t1_s)
    ik.run(False)
    (mot,) = out_dir.glob("ik_*.mot")
    lines = mot.read_text().splitlines()
    end = next(i for i, ln in enumerate(lines) if ln.strip() == "endheader")
    cols = lines[end + 1].split("\t")
    data = np.array([[float(v) for v in ln.split("\t")] for ln in lines[end + 2 :] if ln.strip()])
    return cols[1:], data

"""Gait events on REAL sensors: thigh and shank paths against the foot path (issue 13).

Usage::

    .venv/bin/python scripts/validate_real_events.py [--data ../shared/data]

* gaittoolbox (9 Xsens MTx, 100 Hz, raw gyro/acc): pelvis, thighs, shanks and feet are imported
  with ``imuhip import xsens`` into a temporary recording, fused (vqf, 6D) and calibrated as
  ``imuhip analyze`` does; events from the foot (Rampp et al. 2014, the reference), the shank
  (Aminian/Salarian) and the thigh (normative phases), each with the physiological constraints.
* OpenSense (Xsens, orientation only): tibias against calcaneus sensors (the calcaneus files
  are read with the interop API as ``foot_l/foot_r``); angular velocity differentiated from the
  vendor orientations.

For every path and side: initial contacts matched to a foot IC within 150 ms (% of foot ICs),
median and worst |delta| (ms), signed median (ms), and the shortest accepted stride (s).
Targets (issue 13): thigh and shank ICs within 30 ms median of the foot's, >= 95 % matched, no
stride under 0.7 s. Results: ``docs/validation.md``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from imuhip.errors import CalibrationError
from imuhip.gait.events import (
    EventConfig,
    SideEvents,
    config_for_segment,
    detect_foot_side_events,
    detect_gait_events,
    segment_angular_velocity,
)
from imuhip.types import OrientationSession, SegmentCalibration

log = logging.getLogger("validate_real_events")

MATCH_S = 0.15
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.*
from tests.real_data import GAITTOOLBOX_IDS  # noqa: E402

OPENSENSE_IDS = {
    "pelvis": "00B42279",
    "thigh_r": "00B4227C",
    "thigh_l": "00B421EE",
    "shank_r": "00B4227D",
    "shank_l": "00B421ED",
    "foot_r": "00B421EF",
    "foot_l": "00B421E6",
}


def compare(ref_s: np.ndarray, got_s: np.ndarray) -> dict[str, float]:
    """Match each reference IC to the nearest detected IC within ``MATCH_S``."""
    ref_s, got_s = np.sort(ref_s), np.sort(got_s)
    d = []
    for t in ref_s:
        if not len(got_s):
            break
        j = int(np.argmin(np.abs(got_s - t)))
        if abs(got_s[j] - t) <= MATCH_S:
            d.append(got_s[j] - t)
    dd = np.asarray(d)
    return {
        "n_ref": len(ref_s),
        "n_got": len(got_s),
        "matched_pct": 100.0 * len(dd) / len(ref_s) if len(ref_s) else float("nan"),
        "median_abs_ms": float(np.median(np.abs(dd)) * 1e3) if len(dd) else float("nan"),
        "worst_abs_ms": float(np.max(np.abs(dd)) * 1e3) if len(dd) else float("nan"),
        "median_signed_ms": float(np.median(dd) * 1e3) if len(dd) else float("nan"),
    }


def min_stride_s(ev: SideEvents) -> float:
    """Shortest same-side IC-to-IC interval (the strides ``segment_strides`` would cut)."""
    d = np.diff(np.sort(ev.ic_s))
    return float(d.min()) if len(d) else float("nan")


def leg_events(
    ori: OrientationSession, segcal: SegmentCalibration | None, seg: str, side: str
) -> SideEvents:
    """Events of one side from its ``seg`` (``"shank"``/``"thigh"``) as the pipeline gets them."""
    p = f"{seg}_{side[0]}"
    omega, kind = segment_angular_velocity(ori, segcal, p)
    cfg = EventConfig()
    if segcal is not None:
        cfg = config_for_segment(cfg, segcal, p)
    return detect_gait_events(
        ori.t_s, omega[:, 2], side=side, segment=seg, source=f"{seg}_{kind}", cfg=cfg
    )


def gaittoolbox_session(data: Path) -> tuple[OrientationSession, SegmentCalibration | None]:
    """Import with the CLI into a temporary recording, then decode, align, fuse, calibrate."""
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.ingest.decode import decode_session_arrays
    from imuhip.ingest.recording import read_packet_arrays
    from imuhip.orientation.fusion import FuseConfig, fuse_session
    from imuhip.pipeline import _calibrate

    folder = data / "gaittoolbox" / "imu"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gt"
        cmd = [sys.executable, "-m", "imuhip", "import", "xsens", "-o", str(out)]
        for p, sid in GAITTOOLBOX_IDS.items():
            cmd += ["--sensor", f"{p}={folder / f'S02-Trial-Walk-1-000_{sid}.txt'}"]
        cmd += ["--rate-hz", "100"]
        subprocess.run(cmd, check=True, capture_output=True)
        rec = read_packet_arrays(out)
        samples = decode_session_arrays(rec.payloads, rec.host_rx_ns, rec.meta)
    ori = fuse_session(align_session(samples, AlignConfig()), FuseConfig(method="vqf"))
    try:
        segcal: SegmentCalibration | None = _calibrate(ori, ())
    except CalibrationError as err:
        log.warning("segment calibration failed (%s); sensor frames used", err)
        segcal = None
    return ori, segcal


def opensense_session(data: Path) -> tuple[OrientationSession, SegmentCalibration | None]:
    """The OpenSense trial through the interop API, calcaneus sensors as feet."""
    from imuhip.interop.orientation_file import orientation_session_from_imported
    from imuhip.interop.vendor_calibration import assumed_pose_calibration
    from imuhip.interop.xsens import import_xsens_trial

    folder = data / "opensense"
    files = {p: folder / f"MT_012005D6_009-001_{sid}.txt" for p, sid in OPENSENSE_IDS.items()}
    sensors, _ = import_xsens_trial(
        list(files.values()), placements={str(f): p for p, f in files.items()}
    )
    ori = orientation_session_from_imported(sensors, source="vendor:xsens")
    return ori, assumed_pose_calibration(ori)


def run(name: str, ori: OrientationSession, segcal: SegmentCalibration | None) -> list[str]:
    """Rows of the table for one trial."""
    rows = []
    for side in ("left", "right"):
        foot = detect_foot_side_events(ori, side)
        rows.append(
            f"| {name} | {side} | foot ({foot.source}) | {len(foot.ic_s)} | reference | | | "
            f"| {min_stride_s(foot):.2f} | {foot.rejected} |"
        )
        for seg in ("shank", "thigh"):
            if f"{seg}_{side[0]}" not in ori.q_world_sensor:
                continue
            ev = leg_events(ori, segcal, seg, side)
            c = compare(foot.ic_s, ev.ic_s)
            rows.append(
                f"| {name} | {side} | {seg} ({ev.source}) | {c['n_got']} | "
                f"{c['matched_pct']:.0f} % | {c['median_abs_ms']:.0f} | {c['worst_abs_ms']:.0f} | "
                f"{c['median_signed_ms']:+.0f} | {min_stride_s(ev):.2f} | {ev.rejected} |"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table (markdown)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).parents[1] / ".." / "shared" / "data"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = [
        "| trial | side | path | ICs | matched (150 ms) | median abs ms | worst abs ms | "
        "median signed ms | shortest stride s | candidates rejected |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if (args.data / "gaittoolbox").is_dir():
        rows += run("gaittoolbox", *gaittoolbox_session(args.data))
    if (args.data / "opensense").is_dir():
        rows += run("opensense", *opensense_session(args.data))
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

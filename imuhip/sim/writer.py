"""Writing a simulated session: ``NAME.imrec`` plus its ground truth (``.truth.json``, ``.npz``).

The files are byte-reproducible: the recording's final ``stop`` frame gets a deterministic time
and the npz members fixed zip timestamps (``recordings/MANIFEST.toml`` keeps their sha256).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip.sim.result import SimResult
from imuhip.types import RawPacket, SessionEvent, SessionMeta

__all__ = ["sha256_file", "truth_json", "write_simulated_recording"]


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float):
        return round(x, 9)
    return x


def truth_json(result: SimResult) -> dict[str, Any]:
    """The ``.truth.json`` document of a result."""
    tr = result.truth
    return _jsonable(
        {
            "format": "imuhip-sim-truth",
            "version": 1,
            "session_id": result.meta.session_id,
            "params": result.params.to_dict(),
            "info": tr.info,
            "events": {
                "ic_s": {s: tr.ic_s[s].tolist() for s in ("left", "right")},
                "to_s": {s: tr.to_s[s].tolist() for s in ("left", "right")},
            },
            "session_metrics": tr.session_metrics,
            "strides": tr.strides,
        }
    )


def _stamp_stop_frame(path: Path, host_rx_ns: int) -> None:
    """Give the writer's final ``stop`` event a deterministic time (FORMAT.md frame layout).

    :meth:`RecordingWriter.close` stamps the stop event with ``time.monotonic_ns()``; a simulated
    recording must be byte-reproducible, so the last frame's i64 time is rewritten and its CRC-32
    recomputed (frame: sync u16 | type u8 | sensor u8 | i64 ns | u32 len | payload | u32 crc).
    """
    data = bytearray(path.read_bytes())
    pos = data.rfind(b"\xa5\x5a")
    while pos >= 0:
        # the sync bytes can also occur inside the last frame (its clock-dependent time or CRC):
        # only a whole frame ending the file, with a matching CRC, is the stop frame
        if pos + 20 <= len(data):
            _, kind, _, _, n = struct.unpack_from("<2sBBqI", data, pos)
            end = pos + 16 + n + 4
            if (
                kind == 2
                and end == len(data)
                and zlib.crc32(bytes(data[pos : pos + 16 + n]))
                == struct.unpack_from("<I", data, pos + 16 + n)[0]
            ):
                struct.pack_into("<q", data, pos + 4, host_rx_ns)
                crc = zlib.crc32(bytes(data[pos : pos + 16 + n]))
                struct.pack_into("<I", data, pos + 16 + n, crc)
                path.write_bytes(bytes(data))
                return
        pos = data.rfind(b"\xa5\x5a", 0, pos)
    raise RuntimeError(f"no final stop frame found in {path}")


def write_imrec(
    path: str | Path,
    meta: SessionMeta,
    delivered: Sequence[RawPacket],
    events: Sequence[SessionEvent],
    *,
    header_copy: bool = True,
) -> tuple[Path, str]:
    """Packets and events in host-receive order (events first at equal times) as ``NAME.imrec``,
    closed by a stop frame 0.1 s after the last; returns the path (``.imrec`` added) and stem."""
    from imuhip.ingest.recording import RecordingWriter

    path = Path(path)
    if path.suffix != ".imrec":
        path = path.with_name(path.name + ".imrec")
    frames: list[tuple[int, int, RawPacket | SessionEvent]] = []
    frames += [(pk.host_rx_ns, 1, pk) for pk in delivered]
    frames += [(ev.host_rx_ns, 0, ev) for ev in events]
    frames.sort(key=lambda f: (f[0], f[1]))
    with RecordingWriter(path, meta, overwrite=True, header_copy=header_copy) as w:
        for _, _, fr in frames:
            if isinstance(fr, RawPacket):
                w.write_packet(fr)
            else:
                w.write_event(fr)
    _stamp_stop_frame(path, (frames[-1][0] if frames else 0) + 100_000_000)
    return path, path.name[: -len(".imrec")]


def write_simulated_recording(
    result: SimResult, path: str | Path, *, truth_dtype: type = np.float32
) -> dict[str, Path]:
    """Write ``NAME.imrec``, ``NAME.truth.json`` and ``NAME.truth.npz`` (overwriting them).

    The recording holds exactly ``result.delivered`` and ``result.events`` (merged in host time
    order) and ends with a ``stop`` event 0.1 s after the last frame. ``truth_dtype`` is the
    float type of the npz time series (``float32`` keeps shipped files small; ``t_s``, event
    times and mountings are always float64).

    Returns
    -------
    dict
        ``{"imrec": ..., "truth_json": ..., "truth_npz": ...}`` paths.
    """
    # no header copy: the shipped demos regenerate byte for byte (recordings/MANIFEST.toml)
    path, stem = write_imrec(path, result.meta, result.delivered, result.events, header_copy=False)
    json_path = path.with_name(stem + ".truth.json")
    json_path.write_text(json.dumps(truth_json(result), indent=1, sort_keys=False) + "\n")
    npz_path = path.with_name(stem + ".truth.npz")
    _save_npz(npz_path, result.truth.arrays(truth_dtype))
    return {"imrec": path, "truth_json": json_path, "truth_npz": npz_path}


def _save_npz(path: Path, arrays: dict[str, npt.NDArray[Any]]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so equal arrays give equal bytes."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            b = io.BytesIO()
            np.lib.format.write_array(b, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, b.getvalue())
    path.write_bytes(buf.getvalue())


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

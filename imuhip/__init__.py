"""imuhip: hip rotation and lumbar compensation from wearable IMUs.

The package is laid out by stage, in the order data flows (``docs/architecture.md``):
``sources`` -> ``ingest`` -> ``orientation`` -> ``gait`` -> ``pipeline`` -> ``report``, with
``live``, ``interop``, ``sim`` and ``cli`` composing them; ``conventions``, ``types``, ``errors``
and ``numeric`` are the ground floor. The analysis entry points are re-exported here (imported
on first use, so ``import imuhip`` stays light).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the package imports nothing (the console script starts here)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

__all__ = [
    "AnalysisConfig",
    "SessionResult",
    "__version__",
    "analyze_orientations",
    "analyze_packets",
    "analyze_recording",
]

_PIPELINE = {
    "AnalysisConfig",
    "SessionResult",
    "analyze_orientations",
    "analyze_packets",
    "analyze_recording",
}


def __getattr__(name: str) -> Any:
    if name in _PIPELINE:
        from imuhip import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'imuhip' has no attribute {name!r}")

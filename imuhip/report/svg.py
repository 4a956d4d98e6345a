"""A minimal inline-SVG line chart: axes, ticks, bands, lines, markers, legend.

The report's figures are drawn straight as SVG text (no matplotlib): a figure costs a few
milliseconds whatever the session length, because callers pass summarised curves (mean ± SD,
a capped number of faint stride curves), and SVG stays sharp in print and PDF. Each chart is one
``<svg role="img">`` element with a ``<title>``, so it is accessible and its text is in the DOM.
"""

from __future__ import annotations

import html
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["Chart", "nice_ticks"]

FloatArray = npt.NDArray[np.float64]

_FONT = 'font-family="system-ui,sans-serif"'
_IDS = itertools.count()  # clip-path ids unique within a page


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]`` (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    v = first
    while v <= hi + 1e-9 * step:
        out.append(0.0 if abs(v) < 1e-12 * step else v)
        v += step
    return out


def _fmt_tick(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return s.replace("-", "−")


@dataclass
class Chart:
    """One line chart; add layers, then :meth:`svg`.

    ``xlim`` / ``ylim`` are data limits (``ylim`` ``None``: from the data with 5 % margin).
    """

    title: str
    xlabel: str
    ylabel: str
    xlim: tuple[float, float]
    ylim: tuple[float, float] | None = None
    width: int = 520
    height: int = 300
    _layers: list[tuple[str, object]] = field(default_factory=list)
    _legend: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, colour, text)
    _ys: list[float] = field(default_factory=list)

    # --- layers (data coordinates) -------------------------------------------------------------
    def hband(self, y0: float, y1: float, color: str, opacity: float, label: str = "") -> None:
        """A horizontal band between ``y0`` and ``y1``."""
        self._layers.append(("hband", (y0, y1, color, opacity)))
        self._ys += [y0, y1]
        if label:
            self._legend.append(("band", f"{color};{opacity}", label))

    def fill(
        self, x: FloatArray, lo: FloatArray, hi: FloatArray, color: str, opacity: float
    ) -> None:
        """The area between two curves (e.g. mean ± SD)."""
        self._layers.append(("fill", (x, lo, hi, color, opacity)))
        self._ys += [float(np.nanmin(lo)), float(np.nanmax(hi))]

    def lines(
        self,
        x: FloatArray,
        ys: FloatArray,
        color: str,
        width: float = 1.0,
        opacity: float = 1.0,
        label: str = "",
        dash: str = "",
    ) -> None:
        """One curve (``ys`` of shape ``(K,)``) or many (``(M, K)``) as one path element."""
        ys2 = np.atleast_2d(np.asarray(ys, dtype=np.float64))
        self._layers.append(
            ("lines", (np.asarray(x, np.float64), ys2, color, width, opacity, dash))
        )
        if ys2.size and np.isfinite(ys2).any():
            self._ys += [float(np.nanmin(ys2)), float(np.nanmax(ys2))]
        if label:
            self._legend.append(("line", color, label))

    def points(self, x: FloatArray, y: FloatArray, color: str, label: str = "") -> None:
        """Small dots."""
        self._layers.append(
            ("points", (np.asarray(x, np.float64), np.asarray(y, np.float64), color))
        )
        if len(y) and np.isfinite(y).any():
            self._ys += [float(np.nanmin(y)), float(np.nanmax(y))]
        if label:
            self._legend.append(("point", color, label))

    def vline(self, x: float, color: str, label: str = "", dash: str = "5,3") -> None:
        """A vertical marker line (e.g. toe-off)."""
        self._layers.append(("vline", (x, color, dash)))
        if label:
            self._legend.append(("vline", color, label))

    # --- rendering -----------------------------------------------------------------------------
    def svg(self) -> str:
        """The chart as one ``<svg>`` element."""
        w, h = self.width, self.height
        cid = f"clip{next(_IDS)}"
        n_leg = (len(self._legend) + 1) // 2  # legend rows, two columns, below the x label
        left, right, top, bottom = 58, 12, 26, 44 + 14 * n_leg
        h = self.height + 14 * n_leg
        pw, ph = w - left - right, h - top - bottom
        x0, x1 = self.xlim
        if self.ylim is not None:
            y0, y1 = self.ylim
        else:
            ys = [v for v in self._ys if math.isfinite(v)] or [0.0, 1.0]
            y0, y1 = min(ys), max(ys)
            pad = 0.05 * (y1 - y0) if y1 > y0 else 1.0
            y0, y1 = y0 - pad, y1 + pad
        sx = pw / (x1 - x0) if x1 > x0 else 1.0
        sy = ph / (y1 - y0) if y1 > y0 else 1.0

        def px(v: FloatArray | float) -> FloatArray:
            return np.asarray(left + (np.asarray(v) - x0) * sx, dtype=np.float64)

        def py(v: FloatArray | float) -> FloatArray:
            return np.asarray(top + ph - (np.asarray(v) - y0) * sy, dtype=np.float64)

        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
            f'viewBox="0 0 {w} {h}" width="{w}" height="{h}" {_FONT} font-size="11">',
            f"<title>{html.escape(self.title)}</title>",
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#bbb"/>',
            f'<clipPath id="{cid}"><rect x="{left}" y="{top}" width="{pw}" '
            f'height="{ph}"/></clipPath>',
        ]
        for t in nice_ticks(y0, y1, 5):
            yy = float(py(t))
            out.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>'
                f'<text x="{left - 5}" y="{yy + 4:.1f}" text-anchor="end">{_fmt_tick(t)}</text>'
            )
        for t in nice_ticks(x0, x1, 6):
            xx = float(px(t))
            out.append(
                f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" y2="{top + ph}" stroke="#eee"/>'
                f'<text x="{xx:.1f}" y="{top + ph + 15}" text-anchor="middle">'
                f"{_fmt_tick(t)}</text>"
            )
        out.append(f'<g clip-path="url(#{cid})">')
        for kind, spec in self._layers:
            out.append(self._layer(kind, spec, px, py, left, pw, top, ph))
        out.append("</g>")
        if y0 < 0 < y1:
            out.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{float(py(0)):.1f}" '
                f'y2="{float(py(0)):.1f}" stroke="#888" stroke-width="0.8"/>'
            )
        out.append(
            f'<text x="{left + pw / 2:.0f}" y="16" text-anchor="middle" font-size="13" '
            f'font-weight="600">{html.escape(self.title)}</text>'
            f'<text x="{left + pw / 2:.0f}" y="{top + ph + 32}" text-anchor="middle">'
            f"{html.escape(self.xlabel)}</text>"
            f'<text transform="translate(13,{top + ph / 2:.0f}) rotate(-90)" '
            f'text-anchor="middle">{html.escape(self.ylabel)}</text>'
        )
        out.append(self._legend_svg(left, top + ph + 46, pw / 2))
        out.append("</svg>")
        return "".join(out)

    def _layer(self, kind, spec, px, py, left, pw, top, ph) -> str:  # type: ignore[no-untyped-def]
        if kind == "hband":
            a, b, color, op = spec
            ya, yb = sorted((float(py(a)), float(py(b))))
            return (
                f'<rect x="{left}" y="{ya:.1f}" width="{pw}" height="{yb - ya:.1f}" '
                f'fill="{color}" fill-opacity="{op}"/>'
            )
        if kind == "fill":
            x, lo, hi, color, op = spec
            pts = np.concatenate(
                [np.column_stack([px(x), py(hi)]), np.column_stack([px(x), py(lo)])[::-1]]
            )
            return f'<path d="M{_pts(pts)}Z" fill="{color}" fill-opacity="{op}" stroke="none"/>'
        if kind == "lines":
            x, ys, color, width, op, dash = spec
            xs = px(x)
            d = "".join(f"M{_pts(np.column_stack([xs, py(y)]))}" for y in ys if len(y))
            da = f' stroke-dasharray="{dash}"' if dash else ""
            return (
                f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{width}" '
                f'stroke-opacity="{op}" stroke-linejoin="round"{da}/>'
            )
        if kind == "points":
            x, y, color = spec
            ok = np.isfinite(x) & np.isfinite(y)
            pts = np.column_stack([px(x[ok]), py(y[ok])])
            d = "".join(f"M{a:.1f},{b:.1f}h0" for a, b in pts)
            return (
                f'<path d="{d}" stroke="{color}" stroke-width="4" stroke-linecap="round" '
                'fill="none"/>'
            )
        x, color, dash = spec  # vline
        xx = float(px(x))
        return (
            f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" y2="{top + ph}" stroke="{color}" '
            f'stroke-width="1.5" stroke-dasharray="{dash}"/>'
        )

    def _legend_svg(self, x: float, y: float, col_w: float) -> str:
        rows = []
        for i, (kind, color, text) in enumerate(self._legend):
            xx = x + col_w * (i % 2)
            yy = y + 14 * (i // 2)
            if kind == "band":
                c, op = color.split(";")
                sym = (
                    f'<rect x="{xx + 4}" y="{yy - 5}" width="16" height="9" fill="{c}" '
                    f'fill-opacity="{op}" stroke="#bbb"/>'
                )
            elif kind == "point":
                sym = f'<circle cx="{xx + 12}" cy="{yy}" r="2.5" fill="{color}"/>'
            else:
                da = ' stroke-dasharray="5,3"' if kind == "vline" else ""
                sym = (
                    f'<line x1="{xx + 4}" x2="{xx + 20}" y1="{yy}" y2="{yy}" stroke="{color}" '
                    f'stroke-width="2"{da}/>'
                )
            rows.append(sym + f'<text x="{xx + 25}" y="{yy + 4}">{html.escape(text)}</text>')
        return f'<g font-size="10.5">{"".join(rows)}</g>' if rows else ""


def _pts(xy: FloatArray) -> str:
    """``"x,y Lx,y ..."`` with one decimal, non-finite points dropped."""
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy):
        return "0,0"
    flat = np.round(xy, 1).ravel().tolist()
    it = iter(flat)
    return "L".join(f"{a:g},{b:g}" for a, b in zip(it, it, strict=True))

"""The look shared by imuhip's HTML pages (analysis report, ROM test, comparison): page, headings,
tables and the flag / ok boxes. Each page adds its own rules after :data:`BASE_CSS`."""

from __future__ import annotations

from typing import Final

__all__ = ["BASE_CSS"]

BASE_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1100px;padding:1.5em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}
.flag{background:#fff3cd;border-left:5px solid #e0a800;padding:.5em .8em;margin:.4em 0}
.ok{background:#e8f5e9;border-left:5px solid #43a047;padding:.5em .8em}
.muted{color:#666;font-size:.9em}
"""

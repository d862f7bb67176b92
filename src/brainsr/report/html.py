"""Group tables as small self-contained HTML pages for the HTML report: Snakemake's report shows an HTML result
inline, while a TSV result can only be downloaded."""

from __future__ import annotations

import math
from html import escape

import pandas as pd

STYLE = """
body { font-family: system-ui, sans-serif; font-size: 13px; color: #1f2937; margin: 1rem; }
h1 { font-size: 1.05rem; font-weight: 600; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #e5e7eb; text-align: left; white-space: nowrap; }
td.text { white-space: normal; min-width: 18rem; }
th { position: sticky; top: 0; background: #f3f4f6; }
tbody tr:nth-child(even) { background: #f9fafb; }
p.source { color: #6b7280; }
"""
#: A column whose longest cell is longer than this wraps (the rest of the table stays on one line per row).
WRAP_CHARS = 40


def format_value(value: object) -> str:
    """A table cell as text: n/a for missing values, whole floats without '.0', other floats to 4 significant
    digits, anything else (strings such as 'mean ± SD', booleans) as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e12 else f"{value:.4g}"
    return str(value)


def table_html(frame: pd.DataFrame, title: str, source: str) -> str:
    """An HTML page holding *frame* under the heading *title*; *source* names the TSV with the full precision.
    Long text columns (claims, notes) wrap so that the columns after them stay in view."""
    cells = {c: [format_value(v) for v in frame[c].tolist()] for c in frame.columns}
    wrap = {c for c, values in cells.items() if max(map(len, values), default=0) > WRAP_CHARS}
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    opening = {c: '<td class="text">' if c in wrap else "<td>" for c in cells}
    rows = [
        "<tr>" + "".join(f"{opening[c]}{escape(cells[c][i])}</td>" for c in cells) + "</tr>" for i in range(len(frame))
    ]
    body = "\n".join(rows)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n"
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        f'<p class="source">The same numbers at full precision: <code>{escape(source)}</code></p>\n'
        "</body>\n</html>\n"
    )

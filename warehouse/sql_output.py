"""Query results as text for a terminal or a pipe: an aligned table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from datetime import date, datetime, time
from decimal import Decimal


def _text(value) -> str:
    if value is None:
        return "NULL"
    return str(value)


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _cell(value, limit: int = 60) -> str:
    text = _text(value).replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    if _width(text) > limit:
        while _width(text) > limit - 1:
            text = text[:-1]
        text += "…"
    return text


def render_table(columns: list[str], types: list[str], rows: list[tuple], max_rows: int) -> str:
    shown = rows[:max_rows]
    cells = [[_cell(v) for v in row] for row in shown]
    header = [_cell(c) for c in columns]
    widths = [
        max([_width(header[i]), _width(types[i])] + [_width(r[i]) for r in cells])
        for i in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        return (
            "| "
            + " | ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True))
            + " |"
        )

    rule = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [rule, line(header), line(types), rule, *(line(r) for r in cells), rule]
    more = f" (showing {len(shown)}; --max-rows to see more)" if len(rows) > len(shown) else ""
    out.append(f"{len(rows)} row{'s' if len(rows) != 1 else ''}{more}")
    return "\n".join(out) + "\n"


def _json_value(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def render_rows(
    columns: list[str], types: list[str], rows: list[tuple], fmt: str, max_rows: int
) -> str:
    """The rows in the asked format: table (at most max_rows), or every row as CSV/JSON."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        return buffer.getvalue()
    if fmt == "json":
        records = [{c: _json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        return json.dumps(records, ensure_ascii=False, default=str, indent=1) + "\n"
    return render_table(columns, types, rows, max_rows)

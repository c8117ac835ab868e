"""CSV that a spreadsheet opens without running anything, and that a CRM imports intact.

Free text a spreadsheet would evaluate (=, +, -, @, tab, CR at the start) gets a leading
quote. Record ids are written byte for byte: an id altered to `'-17` no longer matches its
record when the CRM imports the file, so id columns are never touched. Cells holding line
breaks (a bare CR included) are always quoted by the csv module, so no line of a cell can
start a row of its own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import IO

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Prefix a quote to text a spreadsheet would evaluate (=, +, -, @, tab, CR)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def is_id_column(name: str, id_columns: Iterable[str] = ()) -> bool:
    """Ids round-trip as they are: `*_id` columns and the source's own id field names."""
    return str(name).endswith("_id") or name in set(id_columns)


def safe_rows(frame: pd.DataFrame, id_columns: Iterable[str] = ()) -> Iterable[list]:
    """The frame's rows with free text neutralised and id columns verbatim."""
    keep = [is_id_column(c, id_columns) for c in frame.columns]
    for row in frame.itertuples(index=False):
        yield [v if verbatim else neutralise(v) for v, verbatim in zip(row, keep, strict=True)]


def _blank(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def write_safe_csv(
    frame: pd.DataFrame, handle: IO[str], id_columns: Iterable[str] = (), eol: str = "\r\n"
) -> None:
    writer = csv.writer(handle, lineterminator=eol, quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralise(c) for c in frame.columns])
    for row in safe_rows(frame, id_columns):
        writer.writerow(["" if _blank(v) else v for v in row])


def safe_csv_bytes(frame: pd.DataFrame, id_columns: Iterable[str] = ()) -> bytes:
    """UTF-8 with BOM (Excel and Chinese CRMs open it without mojibake)."""
    buffer = io.StringIO()
    write_safe_csv(frame, buffer, id_columns)
    return buffer.getvalue().encode("utf-8-sig")

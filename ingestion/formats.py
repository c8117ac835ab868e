"""Recognise an export's format and canonical table from its header.

The file name is only a hint (used to break ties); the header decides. Each format
returns a ``Detection``: which canonical table the file feeds, which source column
feeds each canonical column, and which columns are kept as ``extra``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingestion.errors import UnrecognisedFileError
from ingestion.schema import TABLES

NATIVE = "native"


@dataclass(frozen=True)
class Detection:
    format_name: str
    source_system: str
    table: str
    # canonical column -> index of the source column that feeds it
    columns: dict[str, int]
    # source column index -> original header, kept in the `extra` JSON column
    extras: dict[int, str] = field(default_factory=dict)
    # index of a per-row source_system column, when the file carries one
    source_system_column: int | None = None


def normalise_header(name: str) -> str:
    """Header text as compared: trimmed, lower case, spaces and dashes as underscores."""
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").lower())


def _name_hint(file_name: str, table: str) -> bool:
    stem = normalise_header(file_name)
    singular = table.rstrip("s")
    return table in stem or singular in stem


def detect_native(headers: list[str], file_name: str) -> Detection | None:
    """The native format: headers are the canonical column names of one raw table."""
    names = [normalise_header(h) for h in headers]
    candidates = []
    for table in TABLES.values():
        present = [c for c in table.column_names if c in names]
        if all(r in names for r in table.required):
            candidates.append((len(present), _name_hint(file_name, table.name), table.name))
    if not candidates:
        return None
    _, _, table_name = max(candidates)
    table = TABLES[table_name]
    columns: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in table.column_names and name not in columns:
            columns[name] = index
    source_col = names.index("source_system") if "source_system" in names else None
    extras = {
        i: headers[i] for i in range(len(headers)) if i not in columns.values() and i != source_col
    }
    return Detection(NATIVE, NATIVE, table_name, columns, extras, source_col)


def closest_native_table(headers: list[str]) -> tuple[str | None, list[str]]:
    """The canonical table whose columns the header covers best, and what it lacks."""
    names = {normalise_header(h) for h in headers}
    best, best_overlap = None, 0
    for table in TABLES.values():
        overlap = len(names & set(table.column_names))
        if overlap > best_overlap:
            best, best_overlap = table, overlap
    if best is None:
        return None, []
    return f"native {best.name}", [r for r in best.required if r not in names]


DETECTORS = (detect_native,)


def detect_format(headers: list[str], file_name: str) -> Detection:
    """The first format whose detector recognises the header, else a clear error."""
    for detector in DETECTORS:
        detection = detector(headers, file_name)
        if detection is not None:
            return detection
    closest, missing = closest_native_table(headers)
    raise UnrecognisedFileError(file_name, headers, closest, missing)

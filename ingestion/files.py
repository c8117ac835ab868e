"""Reading export files: which files to take, their encoding, header and dialect.

Only the first bytes are read in Python (to sniff encoding, delimiter and header);
the rows themselves are read by DuckDB. Files DuckDB cannot decode (GB18030/GBK) are
transcoded to UTF-8 in a streaming pass first.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dt_time
from pathlib import Path

from ingestion.errors import UnreadableFileError

SUPPORTED_SUFFIXES = (".csv", ".txt", ".tsv")
SNIFF_BYTES = 1 << 20
_DATE_IN_NAME = re.compile(r"(20\d{2})[-_.]?([01]\d)[-_.]?([0-3]\d)")


@dataclass(frozen=True)
class CsvLayout:
    """What DuckDB needs to read the file: a UTF-8 path, delimiter and the header names."""

    path: Path
    encoding: str
    delimiter: str
    headers: list[str]


def refused_entries(landing_dir: Path) -> list[Path]:
    """Symbolic links in the landing folder: never followed, but reported."""
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_symlink())


def landing_files(landing_dir: Path) -> list[Path]:
    """Regular files directly in the landing folder, oldest name first.

    Symlinks and sub-folders are ignored so a link cannot make the warehouse read a file
    from outside the folder the user chose; dot-files and temp files (still being copied
    by some tools) are skipped.
    """
    if not landing_dir.is_dir():
        return []
    files = []
    for path in sorted(landing_dir.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        if path.name.startswith((".", "~$")) or path.suffix.lower() in (".tmp", ".part"):
            continue
        files.append(path)
    return files


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes: the ledger's key for 'already loaded'."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_date_from_name(name: str) -> date | None:
    """A date written in the file name (商机_20250630.xlsx, deals-2025-06-30.csv), if any."""
    match = _DATE_IN_NAME.search(name)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def detect_encoding(path: Path) -> str:
    """utf-8 (BOM or not) when the whole file decodes as UTF-8, else gb18030.

    The whole file is checked incrementally: a GBK file can look like UTF-8 for its
    first megabyte of ASCII ids and only show Chinese further down.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        head = handle.read(3)
        encoding = "utf-8-sig" if head == codecs.BOM_UTF8 else "utf-8"
        try:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(head + chunk if offset == 0 else chunk)
                offset += len(chunk) + (len(head) if offset == 0 else 0)
            if offset == 0:
                decoder.decode(head)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError as exc:
            with path.open("rb") as again:
                prefix = again.read(offset + exc.start)
            valid_prefix = prefix[: len(prefix) - 4].decode("utf-8", errors="ignore")
            if not valid_prefix.lstrip("\ufeff").isascii() or encoding == "utf-8-sig":
                # UTF-8 Chinese first, then bytes that are not UTF-8: two encodings in one
                # file. Guessing would load garbled names, so the file is refused.
                raise UnreadableFileError(
                    path.name,
                    "the file mixes text encodings (UTF-8 first, then something else near "
                    f"byte {exc.start}); export it again as UTF-8 CSV or XLSX",
                ) from exc
    gb = codecs.getincrementaldecoder("gb18030")()
    with path.open("rb") as handle:
        try:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                gb.decode(chunk)
            gb.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise UnreadableFileError(
                path.name,
                f"the text is neither UTF-8 nor GB18030/GBK (bad byte at position {exc.start}); "
                "save the export as UTF-8 CSV or XLSX",
            ) from exc
    return "gb18030"


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def read_csv_layout(path: Path, work_dir: Path) -> CsvLayout:
    """Encoding, delimiter and header of a CSV; a UTF-8 copy in work_dir when needed."""
    head = path.open("rb").read(SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableFileError(
            path.name, "the file is UTF-16 text; save it as UTF-8 CSV (or XLSX) and drop it again"
        )
    if b"\x00" in head:
        raise UnreadableFileError(
            path.name, "the file contains NUL bytes: it is not a text CSV (binary or damaged)"
        )
    encoding = detect_encoding(path)
    readable = path
    if encoding == "gb18030":
        readable = Path(tempfile.mkstemp(suffix=".csv", dir=work_dir)[1])
        with (
            path.open("r", encoding="gb18030", newline="") as src,
            readable.open("w", encoding="utf-8", newline="") as dst,
        ):
            shutil.copyfileobj(src, dst, 1 << 20)
    with readable.open("r", encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    if not first.strip():
        raise UnreadableFileError(path.name, "the file is empty: expected a header row")
    delimiter = _sniff_delimiter(first)
    headers = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    return CsvLayout(readable, encoding, delimiter, _unique_headers(headers))


SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
JSON_KEY_SAMPLE_LINES = 1000


@dataclass(frozen=True)
class SourceUnit:
    """One table of rows to load: a CSV file, one sheet of a workbook, or a JSON-lines file."""

    path: Path
    display_name: str
    headers: list[str]
    readable: Path  # what DuckDB reads: a UTF-8 CSV, or the JSON-lines file itself
    delimiter: str = ","
    sheet: str | None = None
    json_lines: bool = False


def _cell_text(value) -> str:
    """A spreadsheet cell as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dt_time):
        return value.strftime("%H:%M:%S")
    return str(value)


def _unique_headers(raw: list[str]) -> list[str]:
    """Blank headers (merged header cells) get a name; repeated ones a suffix."""
    seen: dict[str, int] = {}
    headers = []
    for i, header in enumerate(raw):
        name = header.strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        headers.append(name)
    return headers


def spreadsheet_units(path: Path, work_dir: Path) -> list[SourceUnit]:
    """Each non-empty sheet as a UTF-8 CSV; its first non-empty row is the header."""
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for damaged files
        raise UnreadableFileError(path.name, f"not a readable spreadsheet ({exc})") from exc
    units = []
    for n, sheet in enumerate(workbook.sheet_names):
        rows = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        rows = [r for r in rows if any(_cell_text(v).strip() for v in r)]
        if not rows:
            continue
        headers = _unique_headers([_cell_text(v) for v in rows[0]])
        out = work_dir / f"sheet{n}.csv"
        with out.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(headers)
            for row in rows[1:]:
                cells = [_cell_text(v) for v in row]
                writer.writerow((cells + [""] * len(headers))[: len(headers)])
        display = path.name if len(workbook.sheet_names) == 1 else f"{path.name} » {sheet}"
        units.append(SourceUnit(path, display, headers, out, ",", sheet))
    if not units:
        raise UnreadableFileError(path.name, "the workbook has no rows in any sheet")
    return units


def json_lines_unit(path: Path) -> SourceUnit:
    """A JSON-lines file: its keys (from the first lines) are the headers."""
    keys: dict[str, None] = {}
    with path.open("r", encoding="utf-8-sig") as handle:
        for n, line in enumerate(handle):
            if n >= JSON_KEY_SAMPLE_LINES:
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UnreadableFileError(
                    path.name,
                    f"line {n + 1} is not valid JSON ({exc.msg}); expected one object per line",
                ) from exc
            if not isinstance(record, dict):
                raise UnreadableFileError(path.name, f"line {n + 1}: expected a JSON object")
            keys.update(dict.fromkeys(record))
    if not keys:
        raise UnreadableFileError(path.name, "the file is empty: expected one JSON object per line")
    return SourceUnit(path, path.name, list(keys), path, json_lines=True)


def source_units(path: Path, work_dir: Path) -> list[SourceUnit]:
    """The loadable tables in a landing file, by its kind (the suffix is only a first guess:
    a workbook is recognised by its bytes)."""
    suffix = path.suffix.lower()
    with path.open("rb") as handle:
        magic = handle.read(8)
    if suffix in SPREADSHEET_SUFFIXES or magic.startswith(b"PK\x03\x04") and suffix != ".csv":
        return spreadsheet_units(path, work_dir)
    if suffix in JSON_LINES_SUFFIXES:
        return [json_lines_unit(path)]
    layout = read_csv_layout(path, work_dir)
    return [SourceUnit(path, path.name, layout.headers, layout.path, layout.delimiter)]

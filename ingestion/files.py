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
import time
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dt_time
from pathlib import Path

from ingestion.errors import UnreadableFileError
from warehouse.database import connect

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


def _is_skipped_name(name: str) -> bool:
    """Dot-files and temp files (still being copied by some tools) are not exports."""
    return name.startswith((".", "~$")) or Path(name).suffix.lower() in (".tmp", ".part")


def refused_entries(landing_dir: Path) -> list[tuple[Path, str]]:
    """Landing entries that are not regular files, with why they are not read: symbolic
    links (never followed), folders, FIFOs, sockets, devices. Reported, never opened."""
    if not landing_dir.is_dir():
        return []
    refused = []
    for path in sorted(landing_dir.iterdir()):
        if _is_skipped_name(path.name):
            continue
        if path.is_symlink():
            refused.append(
                (
                    path,
                    "a symbolic link: links are not followed, copy the file itself into the "
                    "landing folder",
                )
            )
        elif path.is_dir():
            # A folder named like an export (deals.csv/) is a mistake worth a word; other
            # sub-folders are the user's own organisation and not the landing folder's.
            if path.suffix.lower() in DATA_SUFFIXES:
                refused.append((path, "set aside: not a regular file (a folder)"))
        elif not path.is_file():
            refused.append((path, "set aside: not a regular file (a pipe, socket or device)"))
    return refused


def landing_files(landing_dir: Path) -> list[Path]:
    """Regular files directly in the landing folder, oldest name first.

    Symlinks and sub-folders are ignored so a link cannot make the warehouse read a file
    from outside the folder the user chose; dot-files and temp files (still being copied
    by some tools) are skipped.
    """
    if not landing_dir.is_dir():
        return []
    return [
        path
        for path in sorted(landing_dir.iterdir())
        if not path.is_symlink() and path.is_file() and not _is_skipped_name(path.name)
    ]


class FileVanishedError(FileNotFoundError):
    """A landing file disappeared between being listed and being read."""


class FileChangedError(RuntimeError):
    """A landing file changed while it was being taken: it is still being written."""


def file_state(path: Path) -> tuple[int, int]:
    """Size and modification time (ns): a file whose state moves is still being written."""
    try:
        stat = path.stat()
    except FileNotFoundError as exc:
        raise FileVanishedError(str(path)) from exc
    return stat.st_size, stat.st_mtime_ns


def settle(
    paths: list[Path], seconds: float, now=time.time, sleep=time.sleep
) -> tuple[dict[Path, tuple[int, int]], list[Path], list[Path]]:
    """Which files have settled: unchanged in size and time for `seconds`.

    One wait at most per run (until the youngest file is `seconds` old); a file whose state
    moved meanwhile is busy (left for the next run), one that disappeared is gone.
    Returns (settled file -> state, busy, gone)."""
    first: dict[Path, tuple[int, int]] = {}
    gone: list[Path] = []
    for path in paths:
        try:
            first[path] = file_state(path)
        except FileVanishedError:
            gone.append(path)
    if first and seconds > 0:
        youngest = max(mtime for _, mtime in first.values()) / 1e9
        wait = min(seconds, max(0.0, youngest + seconds - now()))
        if wait > 0:
            sleep(wait)
    ready: dict[Path, tuple[int, int]] = {}
    busy: list[Path] = []
    for path, state in first.items():
        try:
            again = file_state(path)
        except FileVanishedError:
            gone.append(path)
            continue
        if again != state or (seconds > 0 and again[1] / 1e9 > now() - seconds + 0.001):
            busy.append(path)
        else:
            ready[path] = state
    return ready, busy, gone


def take_snapshot(path: Path, state: tuple[int, int], intake_dir: Path) -> tuple[Path, str]:
    """Copy a settled landing file into the intake folder and hash the copy: what is loaded,
    hashed and archived is this one copy, byte for byte.

    The operating system copies (shutil.copyfile: sendfile on Linux), then the copy is
    hashed: at a 900 MB export 1.2 s, where copying and hashing it a megabyte at a time
    in Python took 4-6 s.

    Raises FileChangedError when the file moved while being copied (the copy is removed,
    the file stays in landing for the next run) and FileVanishedError when it is gone."""
    intake_dir.mkdir(parents=True, exist_ok=True)
    target = intake_dir / path.name
    try:
        shutil.copyfile(path, target)
    except FileNotFoundError as exc:
        target.unlink(missing_ok=True)
        raise FileVanishedError(str(path)) from exc
    with target.open("rb") as copy:
        digest = hashlib.file_digest(copy, "sha256")
    try:
        changed = file_state(path) != state or target.stat().st_size != state[0]
    except FileVanishedError:
        changed = False  # taken whole before it went: the copy is what was there
    if changed:
        target.unlink(missing_ok=True)
        raise FileChangedError(str(path))
    return target, digest.hexdigest()


def export_date_from_name(name: str) -> date | None:
    """A date written in the file name (商机_20250630.xlsx, deals-2025-06-30.csv), if any."""
    match = _DATE_IN_NAME.search(name)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def export_date_of(name: str, as_of: date) -> date:
    """The day a file's export stands for: the date in its name, else the run's as-of day
    (what the ledger records, and what a current-state export is known by)."""
    return export_date_from_name(name) or as_of


# Bytes of multi-byte UTF-8 characters that settle a file as UTF-8 (32 or more Chinese
# characters, decoded whole): GBK text never decodes as UTF-8 for that long.
UTF8_PROOF_BYTES = 64


def detect_encoding(path: Path) -> str:
    """utf-8 (BOM or not) when the file decodes as UTF-8, else gb18030.

    The file is checked incrementally until it holds Chinese (or other non-ASCII) text that
    decodes as UTF-8 (UTF8_PROOF_BYTES of it): a GBK file can look like UTF-8 for its first
    megabyte of ASCII ids and only show Chinese further down, so an ASCII file is read to
    its end. Bytes that are not UTF-8 after that proof (two encodings in one file) are found
    by DuckDB's reader, which refuses the file (ingestion.load): decoding the rest of a
    gigabyte of Chinese activities here took 1.3 s.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    multibyte = 0
    with path.open("rb") as handle:
        head = handle.read(3)
        encoding = "utf-8-sig" if head == codecs.BOM_UTF8 else "utf-8"
        try:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                data = head + chunk if offset == 0 else chunk
                text = decoder.decode(data)
                offset += len(data)
                multibyte += len(data) - len(text)
                if multibyte >= UTF8_PROOF_BYTES:
                    return encoding
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
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
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
DATA_SUFFIXES = (*SUPPORTED_SUFFIXES, *SPREADSHEET_SUFFIXES, *JSON_LINES_SUFFIXES)
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
    # The row of the file or sheet that holds the header: rows are numbered as the
    # spreadsheet shows them (a sheet's header below a title or empty rows is not row 1).
    header_row: int = 1


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


# A workbook's sheets are XML inside a zip: a few MB on disk can expand to gigabytes. The
# reader holds about 1.5 bytes of memory per byte of sheet XML, so workbooks above this
# (uncompressed) are refused with the limit named (oppwh.yml landing.max_workbook_mb).
MAX_WORKBOOK_MB = 1024


def workbook_xml_bytes(path: Path) -> int:
    """Uncompressed size of a workbook's parts, read from the zip directory (no unpacking)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return 0  # not a zip (xls, ods or damaged): the reader says what is wrong


def spreadsheet_units(
    path: Path, work_dir: Path, max_workbook_mb: float = MAX_WORKBOOK_MB
) -> list[SourceUnit]:
    """Each non-empty sheet as a UTF-8 CSV; its first non-empty row is the header.

    Rows stream from the reader straight into the CSV (never a list of the whole sheet in
    Python), so memory stays near the reader's own; DuckDB then reads the CSV."""
    from python_calamine import CalamineWorkbook

    expanded = workbook_xml_bytes(path)
    if expanded > max_workbook_mb * (1 << 20):
        raise UnreadableFileError(
            path.name,
            f"the workbook expands to {expanded / (1 << 20):,.0f} MB, over the limit of "
            f"{max_workbook_mb:,.0f} MB (oppwh.yml landing.max_workbook_mb); export it as "
            "CSV, or raise the limit if the machine has the memory",
        )
    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for damaged files
        raise UnreadableFileError(path.name, f"not a readable spreadsheet ({exc})") from exc
    units = []
    for n, sheet in enumerate(workbook.sheet_names):
        out = work_dir / f"sheet{n}.csv"
        found = _sheet_to_csv(workbook.get_sheet_by_name(sheet).iter_rows(), out)
        if found is None:
            continue
        headers, header_row = found
        display = path.name if len(workbook.sheet_names) == 1 else f"{path.name} » {sheet}"
        units.append(SourceUnit(path, display, headers, out, ",", sheet, header_row=header_row))
    if not units:
        raise UnreadableFileError(path.name, "the workbook has no rows in any sheet")
    return units


# Rows of a single cell above a sheet's header that are taken for its title (a report's
# name and export time, 商机列表（导出时间：…）), at most this many.
MAX_TITLE_ROWS = 3


def _sheet_to_csv(rows, out: Path) -> tuple[list[str], int] | None:
    """Write a sheet to a CSV from its header; the header and its row in the sheet. None
    when the sheet is empty.

    The header is the first non-empty row, unless that row and up to MAX_TITLE_ROWS - 1
    after it hold one cell each and the next holds more: those are the sheet's title (the
    sheet was not recognised at all). A sheet whose rows all hold one cell keeps its first.
    An empty row between rows of data is written as a line of empty cells, so every row
    keeps its place and a reject names the row the spreadsheet shows (the loader leaves
    such rows out: ingestion.load.drop_empty_rows); empty rows at the end are not written."""
    headers: list[str] | None = None
    header_row = 0
    titles: list[tuple[int, list[str]]] = []  # single-cell rows that may be a title
    empty_rows = 0  # empty rows since the last row of data, written once one follows
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")

        def data_row(cells: list[str]) -> None:
            nonlocal empty_rows
            # (a one-column empty row would be written "", which reads as a value)
            writer.writerows([[""] * len(headers)] * (empty_rows if len(headers) > 1 else 0))
            empty_rows = 0
            writer.writerow((cells + [""] * len(headers))[: len(headers)])

        def header(rows_before: list[tuple[int, list[str]]]) -> None:
            """The first of `rows_before` is the header, the others rows of data."""
            nonlocal headers, header_row, empty_rows
            header_row, headers = rows_before[0][0], _unique_headers(rows_before[0][1])
            writer.writerow(headers)
            previous = header_row
            for at, cells in rows_before[1:]:
                empty_rows = at - previous - 1
                data_row(cells)
                previous = at

        for number, row in enumerate(rows, start=1):
            cells = [_cell_text(v) for v in row]
            if headers is not None:  # below the header: only whether the row is empty
                if any(c.strip() for c in cells):
                    data_row(cells)
                else:
                    empty_rows += 1
                continue
            filled = sum(1 for c in cells if c.strip())
            if not filled:
                continue
            if filled == 1 and len(titles) < MAX_TITLE_ROWS:
                titles.append((number, cells))
            elif filled > 1:  # the header; the single-cell rows above it, its title
                header([(number, cells)])
            else:  # a fourth single-cell row: no title, the first of them is the header
                header([*titles, (number, cells)])
        if headers is None and titles:  # every row held one cell: the first is the header
            header(titles)
    if headers is None:
        out.unlink(missing_ok=True)
        return None
    return headers, header_row


def json_lines_unit(path: Path) -> SourceUnit:
    """A JSON-lines file: the keys of every line are the headers, in order of first use.

    The first lines are checked in Python (an error names the line); the keys of the whole
    file come from DuckDB, so a key first seen on line 5,000 is a column too, never dropped.
    """
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
    keys.update(dict.fromkeys(_all_json_keys(path)))
    return SourceUnit(path, path.name, list(keys), path, json_lines=True)


def _all_json_keys(path: Path) -> list[str]:
    """Every top-level key of a JSON-lines file, in order of first appearance (DuckDB)."""
    import duckdb

    with connect() as con:
        try:
            rows = con.execute(
                "SELECT key FROM (SELECT unnest(json_keys(json)) AS key, "
                "row_number() OVER () AS n FROM read_json_objects(?, "
                "format = 'newline_delimited')) GROUP BY key ORDER BY min(n), key",
                [str(path)],
            ).fetchall()
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            raise UnreadableFileError(
                path.name, f"not valid JSON lines ({reason}); expected one object per line"
            ) from exc
    return [r[0] for r in rows]


def source_units(
    path: Path, work_dir: Path, max_workbook_mb: float = MAX_WORKBOOK_MB
) -> list[SourceUnit]:
    """The loadable tables in a landing file, by its kind (the suffix is only a first guess:
    a workbook is recognised by its bytes)."""
    suffix = path.suffix.lower()
    with path.open("rb") as handle:
        magic = handle.read(8)
    if suffix in SPREADSHEET_SUFFIXES or magic.startswith(b"PK\x03\x04") and suffix != ".csv":
        return spreadsheet_units(path, work_dir, max_workbook_mb)
    if suffix in JSON_LINES_SUFFIXES:
        return [json_lines_unit(path)]
    layout = read_csv_layout(path, work_dir)
    return [SourceUnit(path, path.name, layout.headers, layout.path, layout.delimiter)]

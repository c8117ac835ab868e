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
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
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
    with path.open("rb") as handle:
        head = handle.read(3)
        encoding = "utf-8-sig" if head == codecs.BOM_UTF8 else "utf-8"
        try:
            decoder.decode(head)
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            pass
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
    if b"\x00" in path.open("rb").read(SNIFF_BYTES):
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
    return CsvLayout(readable, encoding, delimiter, [h.strip() for h in headers])

"""Load landing files into DuckDB schema ``raw``: whole or nothing, ledgered, idempotent.

Per file (per sheet for workbooks): hash it; find its format from the header; skip it when
the ledger already holds that content (for current-state exports: that content on that
export date); let DuckDB read the rows as text; parse every value in SQL for each table
the format feeds; rows with an unreadable or missing required value go to ``raw.rejects``
(one row per problem, with file, row number, column, value and reason) and are loaded
into no table; the rest go to ``raw.<table>``; the ledger records the counts. All of it in
one transaction, so a crash or error mid-file leaves nothing of that file behind.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ingestion.errors import IgnoredFileError, IngestionError, UnreadableFileError
from ingestion.files import (
    MAX_WORKBOOK_MB,
    FileChangedError,
    FileVanishedError,
    SourceUnit,
    export_date_of,
    landing_files,
    refused_entries,
    settle,
    source_units,
    take_snapshot,
)
from ingestion.formats import builtin_formats, detect_format
from ingestion.formats.base import (
    Field,
    Format,
    Output,
    Params,
    ResolvedColumn,
    ResolvedOutput,
    header_index,
    normalise_header,
    ref,
    resolve_output,
)
from ingestion.schema import LINEAGE_COLUMNS, SQL_TYPES, TABLES
from ingestion.values import EXPECTED, parse_sql
from warehouse.database import connect
from warehouse.folders import content_hash
from warehouse.settings import DEFAULT_TIMEZONE

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS raw.load_ledger (
    load_id BIGINT,
    file_name VARCHAR,
    sheet VARCHAR,
    file_path VARCHAR,
    content_hash VARCHAR,
    export_date DATE,
    format_name VARCHAR,
    source_system VARCHAR,
    table_name VARCHAR,       -- the main table the file feeds
    export_kind VARCHAR,      -- full | partial | history
    status VARCHAR,           -- loaded | skipped | set_aside | failed | blocked | deferred | vanished
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    rows_ignored BIGINT,
    message VARCHAR,
    as_of DATE,
    recorded_at TIMESTAMPTZ,
    run_id VARCHAR            -- the run that saw the file (its quality report lists it)
)"""

REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS raw.rejects (
    load_id BIGINT, file_name VARCHAR, table_name VARCHAR, row_number BIGINT,
    column_name VARCHAR, value VARCHAR, reason VARCHAR, rejected_at TIMESTAMPTZ
)"""


@dataclass(frozen=True)
class LoadSettings:
    """What a load needs to know beyond the files: 'today', the time zone, the formats."""

    as_of: date
    business_tz: str = DEFAULT_TIMEZONE
    # Per source system, where its timestamps without a zone are local time.
    source_timezones: dict[str, str] = field(default_factory=dict)
    formats: tuple[Format, ...] = field(default_factory=builtin_formats)
    user_formats: tuple[Format, ...] = ()
    # Contracts run on each load before it is committed: (con, table, load_id, file name)
    # -> results with a `.blocks` flag; a blocking failure takes the file out again.
    validator: Callable | None = None
    # Called with the file name just before a file's transaction commits (crash tests).
    before_commit: Callable[[str], None] | None = None
    # A landing file is taken once its size and time have not moved for this long.
    settle_seconds: float = 0.0
    # The run loading the files (recorded in the ledger, so its report lists them).
    run_id: str | None = None
    # Workbooks expanding beyond this many MB of XML are refused (memory stays bounded).
    max_workbook_mb: float = MAX_WORKBOOK_MB
    # Where landing files are copied before being read (DATA_DIR/intake in a run; a
    # temporary folder when not set).
    intake_dir: Path | None = None


@dataclass(frozen=True)
class FileOutcome:
    file_name: str
    status: str
    table: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    message: str = ""
    format_name: str | None = None
    rows_ignored: int = 0
    checks: tuple = ()
    path: str | None = None  # the landing file (one file may hold several sheets)
    snapshot: str | None = None  # the intake copy that was read (what gets archived)
    state: tuple[int, int] | None = None  # the landing file's size and mtime when taken


def raw_table_ddl(table_name: str) -> str:
    table = TABLES[table_name]
    cols = [f"{c.name} {SQL_TYPES[c.kind]}" for c in table.columns]
    cols += [f"{name} {sql_type}" for name, sql_type in LINEAGE_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS raw.{table_name} ({', '.join(cols)})"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ``raw`` with every canonical table, the ledger and the rejects table."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for name, table in TABLES.items():
        con.execute(raw_table_ddl(name))
        # A warehouse made by an older version gains the columns added since.
        for column in table.columns:
            con.execute(
                f"ALTER TABLE raw.{name} ADD COLUMN IF NOT EXISTS {column.name} "
                f"{SQL_TYPES[column.kind]}"
            )
        for column, sql_type in LINEAGE_COLUMNS:
            con.execute(f"ALTER TABLE raw.{name} ADD COLUMN IF NOT EXISTS {column} {sql_type}")
    con.execute(LEDGER_DDL)
    con.execute("ALTER TABLE raw.load_ledger ADD COLUMN IF NOT EXISTS run_id VARCHAR")
    con.execute(REJECTS_DDL)


def used_params(sql: str, params: dict) -> dict:
    """Only the named parameters the statement mentions: DuckDB rejects unused ones."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def _execute(con, sql: str, params: dict | None = None):
    return con.execute(sql, used_params(sql, params or {}))


def outputs_for(fmt: Format) -> tuple[Output, ...]:
    """The format's outputs, plus a dated snapshot for current-state opportunity exports."""
    outputs = fmt.outputs
    if fmt.current_state and outputs and outputs[0].table == "opportunities":
        snapshot_columns = set(TABLES["opportunity_snapshots"].column_names)
        fields = {k: v for k, v in outputs[0].fields.items() if k in snapshot_columns}
        fields["snapshot_date"] = Field(sql="$export_date")
        outputs = (*outputs, Output("opportunity_snapshots", fields))
    return outputs


# The position of a row of temp table src in its file (the header is line 1), counted from
# the first row src held before its empty rows were taken out (read_into_src), so a row
# after an empty one keeps the number the spreadsheet shows.
SRC_ROW_NUMBER = "rowid - (SELECT base FROM src_base) + 2"


def raw_insert_columns(table_name: str) -> str:
    """The raw table's columns in the order every load inserts them: canonical, lineage."""
    return ", ".join(TABLES[table_name].column_names + [n for n, _ in LINEAGE_COLUMNS])


def parsed_select(
    resolved: ResolvedOutput,
    n_columns: int,
    extra: str = "CAST(NULL AS JSON)",
    source_system: str = "CAST(NULL AS VARCHAR)",
) -> str:
    """SELECT over temp table ``src``: row number, typed canonical columns, their raw text,
    and the row's lineage (extra columns as JSON, source system), all in one pass."""
    table = TABLES[resolved.table]
    row_number = f"{SRC_ROW_NUMBER} AS _row_number"
    lineage = (
        f"{extra} AS extra, {source_system} AS source_system, "
        f"{resolved.estimated_sql()} AS _estimated"
    )
    parts = [row_number]
    for column in table.columns:
        got = resolved.columns.get(column.name)
        if got is None:
            parts.append(f"CAST(NULL AS {SQL_TYPES[column.kind]}) AS {column.name}")
            parts.append(f"CAST(NULL AS VARCHAR) AS _raw_{column.name}")
        else:
            parts.append(f"{got.typed_sql} AS {column.name}")
            parts.append(f"{got.raw_sql or 'CAST(NULL AS VARCHAR)'} AS _raw_{column.name}")
    parts.append(lineage)
    where = f" WHERE coalesce(({resolved.where_sql}), false)" if resolved.where_sql else ""
    if resolved.unpivot is None:
        return f"SELECT {', '.join(parts)} FROM src{where}"
    # One row per stage column with a value (HubSpot "Date entered" columns).
    label, value = resolved.unpivot.label_column, resolved.unpivot.value_column
    selects = []
    for i, _label in resolved.unpivot_headers:
        cols = [row_number]
        for column in table.columns:
            if column.name == label:
                cols.append(f"CAST($label{i} AS VARCHAR) AS {label}")
                cols.append(f"CAST(NULL AS VARCHAR) AS _raw_{label}")
            elif column.name == value:
                cols.append(f"{parse_sql(column.kind, ref(i))} AS {value}")
                cols.append(f"{ref(i)} AS _raw_{value}")
            else:
                got = resolved.columns.get(column.name)
                typed = got.typed_sql if got else f"CAST(NULL AS {SQL_TYPES[column.kind]})"
                cols.append(f"{typed} AS {column.name}")
                cols.append(f"CAST(NULL AS VARCHAR) AS _raw_{column.name}")
        cols.append(lineage)
        selects.append(
            f"SELECT {', '.join(cols)} FROM src WHERE nullif(trim({ref(i)}), '') IS NOT NULL"
        )
    if not selects:
        empty = ", ".join(
            ["CAST(NULL AS BIGINT) AS _row_number"]
            + [
                f"CAST(NULL AS {SQL_TYPES[c.kind]}) AS {c.name}, NULL AS _raw_{c.name}"
                for c in table.columns
            ]
            + [
                "CAST(NULL AS JSON) AS extra",
                "CAST(NULL AS VARCHAR) AS source_system",
                "CAST(NULL AS VARCHAR) AS _estimated",
            ]
        )
        return f"SELECT {empty} WHERE false"
    return " UNION ALL ".join(selects)


def unpivot_params(resolved: ResolvedOutput) -> dict:
    return {f"label{i}": label for i, label in resolved.unpivot_headers}


def problems_select(resolved: ResolvedOutput, parsed: str, params: Params) -> str:
    """One row per unreadable or missing required value: row, column, value, reason."""
    table = TABLES[resolved.table]
    selects = []
    for column in table.columns:
        got = resolved.columns.get(column.name)
        shown = got.shown if got else column.name
        if column.required:
            selects.append(
                f"SELECT _row_number, {params.add(shown)}, _raw_{column.name}, "
                f"{params.add(f'missing required value for {column.name}')} "
                f"FROM {parsed} WHERE {column.name} IS NULL "
                f"AND nullif(trim(_raw_{column.name}), '') IS NULL"
            )
        kind = got.kind if got else column.kind
        if kind in EXPECTED:
            reason = f"cannot read value as {column.kind}: expected {EXPECTED[kind]}"
            selects.append(
                f"SELECT _row_number, {params.add(shown)}, _raw_{column.name}, "
                f"{params.add(reason)} FROM {parsed} WHERE {column.name} IS NULL "
                f"AND nullif(trim(_raw_{column.name}), '') IS NOT NULL"
            )
    if table.one_of:
        named = " or ".join(table.one_of)
        blank = " AND ".join(f"{name} IS NULL" for name in table.one_of)
        selects.append(
            f"SELECT _row_number, {params.add(' / '.join(table.one_of))}, NULL, "
            f"{params.add(f'needs {named}: every one of them is blank')} FROM {parsed} "
            f"WHERE {blank}"
        )
    return " UNION ALL ".join(selects) if selects else ""


def _ledger_row(
    con, load_id, unit_name, sheet, path, digest, export_date, fmt, outcome, as_of, run_id=None
):
    export_kind = None
    if fmt is not None and fmt.outputs:
        export_kind = ("full" if fmt.full_export else "partial") if fmt.current_state else "history"
    con.execute(
        "INSERT INTO raw.load_ledger (load_id, file_name, sheet, file_path, content_hash, "
        "export_date, format_name, source_system, table_name, export_kind, status, rows_read, "
        "rows_loaded, rows_rejected, rows_ignored, message, as_of, recorded_at, run_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load_id,
            unit_name,
            sheet,
            str(path),
            digest,
            export_date,
            fmt.name if fmt else None,
            fmt.source_system if fmt else None,
            outcome.table,
            export_kind,
            outcome.status,
            outcome.rows_read,
            outcome.rows_loaded,
            outcome.rows_rejected,
            outcome.rows_ignored,
            outcome.message,
            as_of,
            datetime.now(UTC),
            run_id,
        ],
    )


def _next_load_id(con) -> int:
    return con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM raw.load_ledger").fetchone()[0]


def blocked_before(con, digest: str, sheet: str | None) -> str | None:
    """The message of an earlier run that blocked this very content, if any."""
    row = con.execute(
        "SELECT message FROM raw.load_ledger WHERE content_hash = ? AND status = 'blocked' "
        "AND sheet IS NOT DISTINCT FROM ? ORDER BY load_id DESC LIMIT 1",
        [digest, sheet],
    ).fetchone()
    return row[0] if row else None


def already_loaded(con, digest: str, sheet: str | None, export_date: date | None) -> bool:
    """Same content (and sheet) already loaded; for current-state exports, on the same date."""
    row = con.execute(
        "SELECT count(*) FROM raw.load_ledger WHERE content_hash = ? AND status = 'loaded' "
        "AND sheet IS NOT DISTINCT FROM ? AND (? IS NULL OR export_date = ?)",
        [digest, sheet, export_date, export_date],
    ).fetchone()
    return row[0] > 0


def unloaded_files(warehouse: Path, files: list[Path], as_of: date) -> list[Path]:
    """The files a run on `as_of` may load: those whose content the warehouse's ledger has
    not loaded (a current-state export's, on the file's export date), blocked or set aside.

    Asked before a run loads its job, to start Great Expectations' worker (a second
    process importing GX, ~3 s of a core) only when a file may be validated: a user's own
    landing folder keeps its old exports (`--landing` copies them), and a run after a crash
    finds the files it already loaded. The same rules as `load_unit` (blocked_before,
    already_loaded), by content alone: a guess that errs towards "new" (a warehouse that
    cannot be read now, a new folder or another run writing it, makes every file new), and
    a file guessed known that loads after all is validated in the run's own process.
    """
    if not files or not warehouse.exists():
        return list(files)
    digests = {path: content_hash(path) for path in files}
    dates = [export_date_of(path.name, as_of) for path in digests]
    try:
        with connect(warehouse, read_only=True) as con:
            known = {
                row[0]
                for row in con.execute(
                    KNOWN_CONTENT_SQL, [list(digests.values()), dates]
                ).fetchall()
            }
    except duckdb.Error:
        return list(files)
    return [path for path, digest in digests.items() if digest not in known]


# The contents (of the pairs content hash, export date given) whose every sheet the ledger
# shows a run would skip: blocked or set aside before, loaded as history, or as the current
# state on that export date.
KNOWN_CONTENT_SQL = """
WITH files AS (SELECT unnest(?) AS content_hash, unnest(CAST(? AS DATE[])) AS export_date),
sheets AS (
    SELECT l.content_hash, l.sheet,
        bool_or(l.status IN ('blocked', 'set_aside') OR l.export_kind = 'history'
            OR l.export_date = f.export_date) AS skipped
    FROM raw.load_ledger AS l INNER JOIN files AS f USING (content_hash)
    WHERE l.status IN ('loaded', 'blocked', 'set_aside')
    GROUP BY ALL
)
SELECT content_hash FROM sheets GROUP BY content_hash HAVING bool_and(skipped)
"""


# The longest line (record) a CSV may hold; a longer one is rejected, not the file.
MAX_LINE_BYTES = 8 << 20
# DuckDB's parallel reader cannot pad short rows when a quoted cell holds a line break.
_QUOTED_NEWLINE_ERROR = "quoted new lines"


def _read_csv_sql(unit: SourceUnit, parallel: bool, keep_going: bool) -> tuple[str, dict]:
    """read_csv of the unit's UTF-8 text, every column as text in header order.

    parallel=False reads quoted line breaks in every style (LF, CRLF, a bare CR) even when
    short rows need padding; keep_going=True sets unreadable lines aside into DuckDB's
    reject_errors instead of failing the file."""
    names = [ref(i) for i in range(len(unit.headers))]
    options = "" if parallel else ", parallel = false"
    if keep_going:
        options += ", store_rejects = true"
    sql = (
        "CREATE TEMP TABLE src AS SELECT * FROM read_csv($path, header = true, "
        "all_varchar = true, delim = $delim, quote = '\"', escape = '\"', "
        "null_padding = true, auto_detect = false, columns = $columns, "
        f"max_line_size = {MAX_LINE_BYTES}{options})"
    )
    params = {
        "path": str(unit.readable),
        "delim": unit.delimiter,
        "columns": {n: "VARCHAR" for n in names},
    }
    return sql, params


# DuckDB's reader on bytes that are not UTF-8 (its error, and its reject_errors type).
_INVALID_UNICODE_ERROR = "Invalid unicode"
_INVALID_ENCODING_TYPE = "INVALID ENCODING"


def _refuse_mixed_encodings(unit: SourceUnit, line: int | str) -> None:
    """A file settled as UTF-8 (ingestion.files.detect_encoding) with bytes further down
    that are not: two encodings in one file. Guessing would load garbled names, and setting
    the lines aside would lose them quietly, so the whole file is refused."""
    raise UnreadableFileError(
        unit.display_name,
        f"the file mixes text encodings (UTF-8 first, then something else on line {line}); "
        "export it again as UTF-8 CSV or XLSX",
    )


def _refuse_if_not_utf8(unit: SourceUnit, error: duckdb.Error) -> None:
    """Refuse the file when DuckDB's reader failed on bytes that are not UTF-8, naming the
    line its error names."""
    message = str(error)
    if _INVALID_UNICODE_ERROR in message:
        found = re.search(r"Line: (\d+)", message)
        _refuse_mixed_encodings(unit, found[1] if found else "?")


def _read_csv_into_src(con, unit: SourceUnit) -> None:
    """Fast parallel read first; on quoted line breaks a serial one; on unreadable lines a
    serial one that keeps the readable rows and lists the others in temp table
    ``src_unreadable`` (line, text, reason) for raw.rejects. Bytes that are not UTF-8
    refuse the file (_refuse_mixed_encodings)."""
    try:
        con.execute(*_read_csv_sql(unit, parallel=True, keep_going=False))
        return
    except duckdb.Error as exc:
        con.execute("DROP TABLE IF EXISTS src")
        _refuse_if_not_utf8(unit, exc)
        if _QUOTED_NEWLINE_ERROR in str(exc):
            try:
                con.execute(*_read_csv_sql(unit, parallel=False, keep_going=False))
                return
            except duckdb.Error as again:
                con.execute("DROP TABLE IF EXISTS src")
                _refuse_if_not_utf8(unit, again)
    # reject_errors/reject_scans are the connection's: start them empty for this file.
    con.execute("DROP TABLE IF EXISTS reject_errors")
    con.execute("DROP TABLE IF EXISTS reject_scans")
    con.execute(*_read_csv_sql(unit, parallel=False, keep_going=True))
    mixed = con.execute(
        "SELECT min(line) FROM reject_errors WHERE error_type = ?", [_INVALID_ENCODING_TYPE]
    ).fetchone()[0]
    if mixed is not None:
        con.execute("DROP TABLE IF EXISTS src")
        _refuse_mixed_encodings(unit, mixed)
    con.execute(
        "CREATE TEMP TABLE src_unreadable AS SELECT line AS row_number, "
        "left(csv_line, 200) AS value, error_type, error_message FROM reject_errors "
        "ORDER BY line"
    )


def unreadable_reason(error_type: str, message: str) -> str:
    """Why a CSV line could not be read, in words an analyst can act on."""
    if error_type == "LINE SIZE OVER MAXIMUM":
        return (
            f"line longer than the limit of {MAX_LINE_BYTES:,} bytes ({message.strip()}); "
            "the rest of the file was loaded"
        )
    first = message.strip().splitlines()[0] if message.strip() else error_type
    return f"unreadable CSV line ({error_type.lower()}: {first}); the rest of the file was loaded"


def read_into_src(con, unit: SourceUnit) -> None:
    """Temp table ``src`` with the unit's rows as text, columns c0, c1, … in header order;
    lines that cannot be read at all go to temp table ``src_unreadable``."""
    names = [ref(i) for i in range(len(unit.headers))]
    con.execute("DROP TABLE IF EXISTS src")
    con.execute("DROP TABLE IF EXISTS src_unreadable")
    con.execute("DROP TABLE IF EXISTS src_base")
    try:
        if unit.json_lines:
            columns = {h: "VARCHAR" for h in unit.headers}
            picks = ", ".join(f"#{i + 1} AS {n}" for i, n in enumerate(names))
            con.execute(
                f"CREATE TEMP TABLE src AS SELECT {picks} FROM read_json($path, "
                "format = 'newline_delimited', columns = $columns)",
                {"path": str(unit.readable), "columns": columns},
            )
        else:
            _read_csv_into_src(con, unit)
    except duckdb.Error as exc:
        kind = "JSON lines" if unit.json_lines else "CSV"
        reason = str(exc).split("\n")[0]
        hint = "broken quoting, a truncated file or a row with more fields than the header"
        raise UnreadableFileError(
            unit.display_name, f"DuckDB could not read it as {kind}: {reason} ({hint})"
        ) from exc
    drop_empty_rows(con, names, unit.header_row)


def drop_empty_rows(con, names: list[str], header_row: int = 1) -> None:
    """Take the rows without a value in any cell out of src: a blank row inside a sheet,
    or the `,,,,` lines Excel leaves below a CSV's data, are neither loaded nor rejected
    (they were rejected, "missing required value"). The rows after them keep their numbers
    (src_base: SRC_ROW_NUMBER, counted from the header's row). A file without such rows
    pays nothing: DuckDB's statistics tell that no row can match."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE src_base AS "
        "SELECT coalesce(min(rowid), 0) - $above AS base FROM src",
        {"above": header_row - 1},
    )
    if names:
        con.execute(f"DELETE FROM src WHERE coalesce({', '.join(names)}) IS NULL")


def record_unreadable(con, outcome: FileOutcome, load_id: int) -> FileOutcome:
    """Lines DuckDB could not read become rows of raw.rejects (one per line, its number in
    the file and the reason) and count as read and rejected; when nothing else was
    readable the file is set aside like any file whose every row is rejected."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'src_unreadable'"
    ).fetchone()[0]
    if not exists:
        return outcome
    lines = con.execute(
        "SELECT row_number, value, error_type, error_message FROM src_unreadable"
    ).fetchall()
    if not lines:
        return outcome
    con.executemany(
        "INSERT INTO raw.rejects VALUES (?, ?, ?, ?, ?, ?, ?, now())",
        [
            [
                load_id,
                outcome.file_name,
                outcome.table,
                line,
                "(whole line)",
                value,
                unreadable_reason(kind, message),
            ]
            for line, value, kind, message in lines
        ],
    )
    n = len(lines)
    note = f"{n} unreadable line(s) rejected; see raw.rejects"
    message = "; ".join(m for m in (outcome.message, note) if m and m != "header only: no rows")
    if outcome.rows_loaded == 0:
        return replace(
            outcome,
            status="set_aside",
            rows_read=outcome.rows_read + n,
            rows_rejected=outcome.rows_rejected + n,
            message="every row was rejected; see raw.rejects for the reasons",
        )
    return replace(
        outcome,
        rows_read=outcome.rows_read + n,
        rows_rejected=outcome.rows_rejected + n,
        message=message,
    )


def load_unit(
    con, unit: SourceUnit, digest: str, settings: LoadSettings, origin: Path | None = None
) -> FileOutcome:
    """Load one file or sheet whole or not at all; record what happened in the ledger."""
    path = origin or unit.path
    export_date = export_date_of(path.name, settings.as_of)
    fmt = None

    def record(outcome: FileOutcome, load_id: int | None = None) -> FileOutcome:
        _ledger_row(
            con,
            load_id or _next_load_id(con),
            unit.display_name,
            unit.sheet,
            path,
            digest,
            export_date,
            fmt,
            outcome,
            settings.as_of,
            settings.run_id,
        )
        return outcome

    try:
        fmt = detect_format(
            unit.headers, unit.sheet or path.name, settings.formats, settings.user_formats
        )
        if not fmt.outputs:
            raise IgnoredFileError(unit.display_name, fmt.ignore_reason)
    except IngestionError as exc:
        return record(
            FileOutcome(
                unit.display_name,
                "set_aside",
                message=exc.message,
                format_name=fmt.name if fmt else None,
            )
        )
    blocked = blocked_before(con, digest, unit.sheet)
    if blocked is not None:
        # Reported, not blocking again: dropping a corrected file is all the user must do.
        return record(
            FileOutcome(
                unit.display_name,
                "skipped",
                format_name=fmt.name,
                message=f"blocked earlier, not loaded: {blocked}",
            )
        )
    if already_loaded(con, digest, unit.sheet, export_date if fmt.current_state else None):
        day = f", export date {export_date}" if fmt.current_state else ""
        return record(
            FileOutcome(
                unit.display_name,
                "skipped",
                format_name=fmt.name,
                message=f"already loaded (same content{day})",
            )
        )
    try:
        # The rows as text, read before the transaction: a rolled-back one-pass attempt
        # leaves them in place for the staged path.
        read_into_src(con, unit)
    except IngestionError as exc:
        return record(
            FileOutcome(unit.display_name, "failed", message=exc.message, format_name=fmt.name)
        )
    try:
        return _load_src(con, unit, fmt, export_date, settings, record)
    finally:
        con.execute("DROP TABLE IF EXISTS src")
        con.execute("DROP TABLE IF EXISTS src_unreadable")
        con.execute("DROP TABLE IF EXISTS src_base")


def _load_src(con, unit, fmt, export_date, settings, record) -> FileOutcome:
    """Parse temp table src into the raw tables in one transaction, whole or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        load_id = _next_load_id(con)
        outcome = None
        if fast_path_applies(unit, fmt):
            try:
                outcome = _fast_insert(con, unit, fmt, load_id, export_date, settings)
            except duckdb.Error:
                # a value to reject: the staged path says which, where and why
                con.execute("ROLLBACK")
                con.execute("BEGIN TRANSACTION")
        if outcome is None:
            outcome = _parse_and_insert(con, unit, fmt, load_id, export_date, settings)
        outcome = record_unreadable(con, outcome, load_id)
        checks = tuple(_validate(con, fmt, outcome, load_id, settings))
        blocking = [c for c in checks if c.blocks]
        if blocking:
            # The contract says this file would corrupt the marts: take it out again.
            con.execute("ROLLBACK")
            message = "; ".join(
                f"{c.check.label} ({c.failing_rows}: {', '.join(c.sample_ids[:5])})"
                for c in blocking
            )
            return record(
                replace(outcome, status="blocked", rows_loaded=0, message=message, checks=checks),
                load_id,
            )
        outcome = record(replace(outcome, checks=checks), load_id)
        if settings.before_commit is not None:
            settings.before_commit(unit.display_name)
        con.execute("COMMIT")
        return outcome
    except IngestionError as exc:
        con.execute("ROLLBACK")
        return record(
            FileOutcome(unit.display_name, "failed", message=exc.message, format_name=fmt.name)
        )
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _validate(con, fmt: Format, outcome: FileOutcome, load_id: int, settings: LoadSettings):
    """Contracts on every table this load wrote (nothing when no validator is set)."""
    if settings.validator is None or outcome.status != "loaded":
        return []
    results = []
    for table in dict.fromkeys(o.table for o in outputs_for(fmt)):
        results.extend(settings.validator(con, table, load_id, outcome.file_name))
    return results


def _extras_json(unit: SourceUnit, fmt: Format, params: Params) -> str:
    """Source columns no output uses, kept as JSON: extra columns are never dropped."""
    index = header_index(unit.headers)
    used = set()
    for output in fmt.outputs:
        for spec in output.fields.values():
            for source in spec.sources:
                if normalise_header(source) in index:
                    used.add(index[normalise_header(source)])
            if spec.sql:
                for name in re.findall(r"\{(?:\w+:)?([^{}]+)\}", spec.sql):
                    if normalise_header(name) in index:
                        used.add(index[normalise_header(name)])
        if output.unpivot is not None:
            pattern = re.compile(output.unpivot.header_pattern)
            used.update(i for i, h in enumerate(unit.headers) if pattern.search(h))
    pairs = [
        f"{params.add(header)}, {ref(i)}"
        for i, header in enumerate(unit.headers)
        if i not in used and normalise_header(header) != "source_system"
    ]
    return f"json_object({', '.join(pairs)})" if pairs else "CAST(NULL AS JSON)"


def _source_system_sql(unit: SourceUnit, fmt: Format, params: Params) -> str:
    default = params.add(fmt.source_system)
    i = header_index(unit.headers).get("source_system")
    if i is None:
        return f"CAST({default} AS VARCHAR)"
    return f"coalesce(nullif(trim({ref(i)}), ''), {default})"


def fast_path_applies(unit: SourceUnit, fmt: Format) -> bool:
    """Outputs that map rows one to one (no filter, no unpivot) can be parsed and inserted
    in one pass; anything else goes through the staged path."""
    return all(
        o.where is None and o.unpivot is None and not TABLES[o.table].one_of
        for o in outputs_for(fmt)
    )


def _guarded(column, got: ResolvedColumn | None) -> str | None:
    """The column's parse expression, raising instead of yielding a value the staged path
    would reject (unreadable or missing required); None when every row would be rejected."""
    if got is None:
        if column.required:
            return None
        return f"CAST(NULL AS {SQL_TYPES[column.kind]})"
    expr = got.typed_sql
    if got.raw_sql is not None and got.kind in EXPECTED:
        expr = (
            f"coalesce({expr}, CASE WHEN nullif(trim({got.raw_sql}), '') IS NOT NULL "
            f"THEN error('unreadable {column.name}') END)"
        )
    if column.required:
        expr = f"coalesce({expr}, error('missing {column.name}'))"
    return expr


def _fast_insert(con, unit, fmt, load_id, export_date, settings) -> FileOutcome | None:
    """Parse the rows of src straight into the raw tables in one pass: no parsed copy and
    no separate scan for problems (at 12 million rows: 27 s -> ~15 s, and a fraction of the
    spill). Any value the staged path would reject raises (DuckDB's error()); the caller
    then rolls back and loads the file the staged way, which names each bad row."""
    params = Params()
    all_refs = [ref(i) for i in range(len(unit.headers))]
    extra = _extras_json(unit, fmt, params)
    source_system = _source_system_sql(unit, fmt, params)
    outputs = outputs_for(fmt)
    statements = []  # all built before any runs: declining must leave nothing inserted
    for n, output in enumerate(outputs):
        table = TABLES[output.table]
        resolved = resolve_output(output, unit.headers, params, all_refs)
        exprs = [_guarded(c, resolved.columns.get(c.name)) for c in table.columns]
        if any(e is None for e in exprs):
            return None
        row_extra = extra if n == 0 else "CAST(NULL AS JSON)"
        statements.append(
            f"INSERT INTO raw.{output.table} ({raw_insert_columns(output.table)}) "
            f"SELECT {', '.join(exprs)}, {source_system}, {row_extra}, $load_id, $file, "
            f"{SRC_ROW_NUMBER}, $export_date, {resolved.estimated_sql()} FROM src"
        )
    values = {
        **params.values,
        "tz": settings.source_timezones.get(fmt.source_system, settings.business_tz),
        "export_date": export_date,
        "load_id": load_id,
        "file": unit.display_name,
    }
    counts = [_execute(con, sql, values).fetchone()[0] for sql in statements]
    rows = counts[0]
    return FileOutcome(
        unit.display_name,
        "loaded",
        outputs[0].table,
        rows,
        rows,
        0,
        "" if rows else "header only: no rows",
        fmt.name,
    )


def _parse_and_insert(con, unit, fmt, load_id, export_date, settings) -> FileOutcome:
    params = Params()
    all_refs = [ref(i) for i in range(len(unit.headers))]
    extra = _extras_json(unit, fmt, params)
    source_system = _source_system_sql(unit, fmt, params)
    tz = settings.source_timezones.get(fmt.source_system, settings.business_tz)
    base = {"tz": tz, "export_date": export_date}
    outputs = outputs_for(fmt)
    rows_read = con.execute("SELECT count(*) FROM src").fetchone()[0]
    con.execute("DROP TABLE IF EXISTS problems")
    con.execute(
        "CREATE TEMP TABLE problems (table_name VARCHAR, row_number BIGINT, "
        "column_name VARCHAR, value VARCHAR, reason VARCHAR)"
    )
    parsed_tables = []
    for n, output in enumerate(outputs):
        resolved = resolve_output(output, unit.headers, params, all_refs)
        name = f"parsed_{n}"
        # Extra columns ride with the file's main table only.
        row_extra = extra if n == 0 else "CAST(NULL AS JSON)"
        select = parsed_select(resolved, len(unit.headers), row_extra, source_system)
        con.execute(f"DROP TABLE IF EXISTS {name}")
        sql = f"CREATE TEMP TABLE {name} AS {select}"
        _execute(con, sql, {**params.values, **base, **unpivot_params(resolved)})
        problems = problems_select(resolved, name, params)
        if problems:
            _execute(
                con,
                f"INSERT INTO problems SELECT {params.add(output.table)}, * FROM ({problems})",
                params.values,
            )
        parsed_tables.append((name, output.table))
    rejected = con.execute("SELECT count(DISTINCT row_number) FROM problems").fetchone()[0]
    con.execute(
        "INSERT INTO raw.rejects SELECT $load_id, $file, table_name, row_number, column_name, "
        "value, reason, now() FROM problems ORDER BY row_number, table_name",
        {"load_id": load_id, "file": unit.display_name},
    )
    main_table = outputs[0].table
    if rows_read > 0 and rejected == rows_read:
        return FileOutcome(
            unit.display_name,
            "set_aside",
            main_table,
            rows_read,
            0,
            rejected,
            "every row was rejected; see raw.rejects for the reasons",
            fmt.name,
        )
    loaded_main = 0
    for (name, table_name), output in zip(parsed_tables, outputs, strict=True):
        table = TABLES[table_name]
        # A parsed table holds the file's rows in order, unless unpivoted (one SELECT per
        # header); with no problems there is nothing to leave out. Both spare a pass over
        # tens of millions of rows.
        keep = " WHERE _row_number NOT IN (SELECT row_number FROM problems)" if rejected else ""
        order = " ORDER BY _row_number" if output.unpivot else ""
        _execute(
            con,
            f"INSERT INTO raw.{table_name} ({raw_insert_columns(table_name)}) "
            f"SELECT {', '.join(table.column_names)}, source_system, extra, $load_id, $file, "
            f"_row_number, $export_date, _estimated FROM {name}{keep}{order}",
            {"load_id": load_id, "file": unit.display_name, "export_date": export_date},
        )
        if table_name == main_table:
            distinct = "DISTINCT " if output.unpivot else ""
            loaded_main = con.execute(
                f"SELECT count({distinct}_row_number) FROM {name}{keep}"
            ).fetchone()[0]
    ignored = rows_read - rejected - loaded_main if outputs[0].where or outputs[0].unpivot else 0
    messages = []
    if rows_read == 0:
        messages.append("header only: no rows")
    if rejected:
        messages.append(f"{rejected} row(s) rejected; see raw.rejects")
    if ignored:
        messages.append(f"{ignored} row(s) hold nothing for {main_table} and were ignored")
    return FileOutcome(
        unit.display_name,
        "loaded",
        main_table,
        rows_read,
        loaded_main,
        rejected,
        "; ".join(messages),
        fmt.name,
        max(ignored, 0),
    )


def load_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    settings: LoadSettings,
    digest: str | None = None,
    origin: Path | None = None,
) -> list[FileOutcome]:
    """Load every table (sheet) in one file; `origin` is where it was found (the ledger's
    file_path) when `path` is the intake copy taken of it."""
    digest = digest or content_hash(path)
    origin = origin or path
    with tempfile.TemporaryDirectory(prefix="oppwh-") as work:
        try:
            units = source_units(path, Path(work), settings.max_workbook_mb)
        except IngestionError as exc:
            return [
                _record_file(
                    con,
                    origin,
                    FileOutcome(path.name, "failed", message=exc.message),
                    settings,
                    digest,
                )
            ]
        return [load_unit(con, unit, digest, settings, origin) for unit in units]


def _record_file(
    con, origin: Path, outcome: FileOutcome, settings: LoadSettings, digest: str | None = None
) -> FileOutcome:
    """A ledger row for a whole file that was not read (set aside, failed, deferred)."""
    _ledger_row(
        con,
        _next_load_id(con),
        outcome.file_name,
        None,
        origin,
        digest,
        export_date_of(origin.name, settings.as_of),
        None,
        outcome,
        settings.as_of,
        settings.run_id,
    )
    return outcome


# Header words of exports that define stages (native stage_definitions, Salesforce
# OpportunityStage): loaded before the deals whose stages they define.
_DEFINITION_HEADERS = (b"stage_order", b"SortOrder")


def definitions_first(path: Path) -> tuple[int, str]:
    """Sort key: stage definitions before other files, then by name."""
    try:
        with path.open("rb") as handle:
            head = handle.readline(4096)
    except OSError:
        head = b""
    return (0 if any(h in head for h in _DEFINITION_HEADERS) else 1, path.name)


DEFERRED = "deferred"  # left in landing: still being written
VANISHED = "vanished"  # gone from landing before it could be read


def load_landing(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, settings: LoadSettings
) -> list[FileOutcome]:
    """Load every new landing file; one bad file never stops the others.

    Each file is taken only once it has settled (settings.settle_seconds) and is loaded
    from a copy made into the intake folder; the copy is what gets hashed, loaded and
    archived, so the bytes loaded are exactly the bytes archived. A file that moves while
    being taken stays in landing for the next run; one that vanishes is noted."""
    ensure_raw_schema(con)
    outcomes: list[FileOutcome] = []
    for entry, reason in refused_entries(landing_dir):
        name = entry.name
        outcomes.append(
            _record_file(con, entry, FileOutcome(name, "set_aside", message=reason), settings)
        )
    ready, busy, gone = settle(landing_files(landing_dir), settings.settle_seconds)
    with contextlib.ExitStack() as stack:
        intake = settings.intake_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="oppwh-intake-"))
        )
        for path in sorted(ready, key=definitions_first):
            try:
                copy, digest = take_snapshot(path, ready[path], intake)
            except FileChangedError:
                busy.append(path)
                continue
            except FileVanishedError:
                gone.append(path)
                continue
            outcomes.extend(
                replace(o, path=str(path), snapshot=str(copy), state=ready[path])
                for o in load_file(con, copy, settings, digest, origin=path)
            )
    for path in busy:
        message = (
            "still being written (its size or time changed while it was being taken); "
            "left in the landing folder for the next run / 文件仍在写入，留待下次运行"
        )
        outcomes.append(
            _record_file(con, path, FileOutcome(path.name, DEFERRED, message=message), settings)
        )
    for path in gone:
        message = "the file disappeared from the landing folder before it could be read"
        outcomes.append(
            _record_file(con, path, FileOutcome(path.name, VANISHED, message=message), settings)
        )
    return outcomes


@dataclass(frozen=True)
class TakenFile:
    """A landing file whose intake copy was read: archived, or removed from the intake."""

    landing: Path
    snapshot: Path
    state: tuple[int, int]
    loaded: bool


def files_loaded(outcomes: list[FileOutcome]) -> list[TakenFile]:
    """Each landing file once, and whether its content is in the warehouse now."""
    taken: dict[str, TakenFile] = {}
    for o in outcomes:
        if o.path is None or o.snapshot is None:
            continue
        ok = o.status in ("loaded", "skipped")
        before = taken.get(o.path)
        taken[o.path] = TakenFile(
            Path(o.path), Path(o.snapshot), o.state, ok or (before is not None and before.loaded)
        )
    return list(taken.values())

"""Load landing files into DuckDB schema ``raw``: whole file or nothing, ledgered, idempotent.

Per file: hash it; skip it when the ledger already holds that content; detect its format
from the header; let DuckDB read the rows as text; parse every value in SQL; rows with an
unreadable or missing required value go to ``raw.rejects`` (one row per problem, with the
file, row number, column, value and reason); the rest go to ``raw.<table>``; the ledger
records the counts. All of it in one transaction, so a crash or error mid-file leaves
nothing of that file behind.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from ingestion.errors import IngestionError, UnreadableFileError, UnrecognisedFileError
from ingestion.files import content_hash, export_date_from_name, landing_files, read_csv_layout
from ingestion.formats import Detection, detect_format
from ingestion.schema import LINEAGE_COLUMNS, SQL_TYPES, TABLES, TEXT
from ingestion.values import EXPECTED, parse_sql

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS raw.load_ledger (
    load_id BIGINT,
    file_name VARCHAR,
    file_path VARCHAR,
    content_hash VARCHAR,
    export_date DATE,
    format_name VARCHAR,
    source_system VARCHAR,
    table_name VARCHAR,
    status VARCHAR,          -- loaded | skipped | set_aside | failed
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    message VARCHAR,
    as_of DATE,
    recorded_at TIMESTAMPTZ
)"""

REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS raw.rejects (
    load_id BIGINT,
    file_name VARCHAR,
    table_name VARCHAR,
    row_number BIGINT,
    column_name VARCHAR,
    value VARCHAR,
    reason VARCHAR,
    rejected_at TIMESTAMPTZ
)"""


@dataclass(frozen=True)
class LoadSettings:
    """What a load needs to know beyond the files: the business time zone and 'today'."""

    as_of: date
    business_tz: str = "Asia/Shanghai"


@dataclass(frozen=True)
class FileOutcome:
    file_name: str
    status: str
    table: str | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    message: str = ""


def raw_table_ddl(table_name: str) -> str:
    table = TABLES[table_name]
    cols = [f"{c.name} {SQL_TYPES[c.kind]}" for c in table.columns]
    cols += [f"{name} {sql_type}" for name, sql_type in LINEAGE_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS raw.{table_name} ({', '.join(cols)})"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ``raw`` with every canonical table, the ledger and the rejects table."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for name in TABLES:
        con.execute(raw_table_ddl(name))
    con.execute(LEDGER_DDL)
    con.execute(REJECTS_DDL)


def _source_ref(index: int) -> str:
    return f"c{index}"


def parse_select(detection: Detection) -> tuple[str, dict]:
    """SELECT over temp table ``src`` giving typed canonical columns and the raw text.

    Returns the SQL and its named parameters (extra-column names travel as parameters,
    never as SQL text).
    """
    table = TABLES[detection.table]
    params: dict = {}
    # Spreadsheet row number (header = row 1): what a user finds the row by in Excel.
    parts = ["rowid - (SELECT min(rowid) FROM src) + 2 AS _row_number"]
    for column in table.columns:
        index = detection.columns.get(column.name)
        if index is None:
            parts.append(f"CAST(NULL AS {SQL_TYPES[column.kind]}) AS {column.name}")
            parts.append(f"CAST(NULL AS VARCHAR) AS _raw_{column.name}")
        else:
            ref = _source_ref(index)
            parts.append(f"{parse_sql(column.kind, ref)} AS {column.name}")
            parts.append(f"{ref} AS _raw_{column.name}")
    if detection.extras:
        pairs = []
        for n, (index, header) in enumerate(sorted(detection.extras.items())):
            params[f"x{n}"] = header
            pairs.append(f"$x{n}, {_source_ref(index)}")
        parts.append(f"json_object({', '.join(pairs)}) AS extra")
    else:
        parts.append("CAST(NULL AS JSON) AS extra")
    if detection.source_system_column is not None:
        ref = _source_ref(detection.source_system_column)
        params["default_source"] = detection.source_system
        parts.append(f"coalesce(nullif(trim({ref}), ''), $default_source) AS source_system")
    else:
        params["default_source"] = detection.source_system
        parts.append("CAST($default_source AS VARCHAR) AS source_system")
    return f"SELECT {', '.join(parts)} FROM src", params


def problems_select(detection: Detection, headers: list[str]) -> tuple[str, dict]:
    """One row per unreadable or missing required value in ``parsed``.

    Columns: row_number, column_name (as the file spells it), value, reason.
    """
    table = TABLES[detection.table]
    selects, params = [], {}
    for n, column in enumerate(table.columns):
        index = detection.columns.get(column.name)
        shown = headers[index] if index is not None else column.name
        params[f"col{n}"] = shown
        if column.required:
            params[f"req{n}"] = f"missing required value for {column.name}"
            selects.append(
                f"SELECT _row_number, $col{n}, _raw_{column.name}, $req{n} "
                f"FROM parsed WHERE {column.name} IS NULL "
                f"AND nullif(trim(_raw_{column.name}), '') IS NULL"
            )
        if column.kind != TEXT and index is not None:
            params[f"bad{n}"] = (
                f"cannot read value as {column.kind}: expected {EXPECTED[column.kind]}"
            )
            selects.append(
                f"SELECT _row_number, $col{n}, _raw_{column.name}, $bad{n} "
                f"FROM parsed WHERE {column.name} IS NULL "
                f"AND nullif(trim(_raw_{column.name}), '') IS NOT NULL"
            )
    sql = " UNION ALL ".join(selects) if selects else "SELECT NULL, NULL, NULL, NULL WHERE FALSE"
    return (
        f"SELECT * FROM ({sql}) AS p(row_number, column_name, value, reason)",
        params,
    )


def used_params(sql: str, params: dict) -> dict:
    """Only the named parameters the statement mentions: DuckDB rejects unused ones."""
    return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}


def _ledger_row(con, load_id, path: Path, digest, export_date, detection, outcome, as_of):
    con.execute(
        "INSERT INTO raw.load_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load_id,
            path.name,
            str(path),
            digest,
            export_date,
            detection.format_name if detection else None,
            detection.source_system if detection else None,
            outcome.table,
            outcome.status,
            outcome.rows_read,
            outcome.rows_loaded,
            outcome.rows_rejected,
            outcome.message,
            as_of,
            datetime.now(UTC),
        ],
    )


def _next_load_id(con) -> int:
    return con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM raw.load_ledger").fetchone()[0]


def already_loaded(con, digest: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM raw.load_ledger WHERE content_hash = ? AND status = 'loaded'",
        [digest],
    ).fetchone()
    return row[0] > 0


def _read_into_src(con, path: Path, work_dir: Path) -> list[str]:
    layout = read_csv_layout(path, work_dir)
    names = [_source_ref(i) for i in range(len(layout.headers))]
    con.execute("DROP TABLE IF EXISTS src")
    try:
        con.execute(
            "CREATE TEMP TABLE src AS SELECT * FROM read_csv($path, header = true, "
            "all_varchar = true, delim = $delim, quote = '\"', escape = '\"', "
            "null_padding = true, auto_detect = false, columns = $columns)",
            {
                "path": str(layout.path),
                "delim": layout.delimiter,
                "columns": {n: "VARCHAR" for n in names},
            },
        )
    except duckdb.Error as exc:
        raise UnreadableFileError(path.name, f"DuckDB could not read it as CSV: {exc}") from exc
    return layout.headers


def load_file(con: duckdb.DuckDBPyConnection, path: Path, settings: LoadSettings) -> FileOutcome:
    """Load one file whole or not at all; record what happened in the ledger."""
    digest = content_hash(path)
    export_date = export_date_from_name(path.name) or settings.as_of
    if already_loaded(con, digest):
        outcome = FileOutcome(path.name, "skipped", message="already loaded (same content)")
        _ledger_row(
            con, _next_load_id(con), path, digest, export_date, None, outcome, settings.as_of
        )
        return outcome
    detection = None
    con.execute("BEGIN TRANSACTION")
    try:
        load_id = _next_load_id(con)
        with tempfile.TemporaryDirectory(prefix="oppwh-") as work:
            headers = _read_into_src(con, path, Path(work))
            detection = detect_format(headers, path.name)
            outcome = _parse_and_insert(
                con, path, detection, headers, load_id, export_date, settings
            )
        _ledger_row(con, load_id, path, digest, export_date, detection, outcome, settings.as_of)
        con.execute("COMMIT")
        return outcome
    except IngestionError as exc:
        con.execute("ROLLBACK")
        status = "set_aside" if isinstance(exc, UnrecognisedFileError) else "failed"
        outcome = FileOutcome(path.name, status, message=exc.message)
        _ledger_row(
            con, _next_load_id(con), path, digest, export_date, detection, outcome, settings.as_of
        )
        return outcome
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _parse_and_insert(con, path, detection, headers, load_id, export_date, settings) -> FileOutcome:
    table = TABLES[detection.table]
    select, params = parse_select(detection)
    con.execute("DROP TABLE IF EXISTS parsed")
    params["tz"] = settings.business_tz
    sql = f"CREATE TEMP TABLE parsed AS {select}"
    con.execute(sql, used_params(sql, params))
    problems, problem_params = problems_select(detection, headers)
    con.execute("DROP TABLE IF EXISTS problems")
    sql = f"CREATE TEMP TABLE problems AS {problems}"
    con.execute(sql, used_params(sql, problem_params))
    rows_read = con.execute("SELECT count(*) FROM parsed").fetchone()[0]
    rejected = con.execute("SELECT count(DISTINCT row_number) FROM problems").fetchone()[0]
    con.execute(
        "INSERT INTO raw.rejects SELECT $load_id, $file, $table, row_number, column_name, "
        "value, reason, now() FROM problems ORDER BY row_number",
        {"load_id": load_id, "file": path.name, "table": table.name},
    )
    if rows_read > 0 and rejected == rows_read:
        return FileOutcome(
            path.name,
            "set_aside",
            table.name,
            rows_read,
            0,
            rejected,
            "every row was rejected; see raw.rejects for the reasons",
        )
    cols = ", ".join(table.column_names + [n for n, _ in LINEAGE_COLUMNS])
    con.execute(
        f"INSERT INTO raw.{table.name} ({cols}) "
        f"SELECT {', '.join(table.column_names)}, source_system, extra, $load_id, $file, "
        f"_row_number, $export_date FROM parsed "
        f"WHERE _row_number NOT IN (SELECT row_number FROM problems) ORDER BY _row_number",
        {"load_id": load_id, "file": path.name, "export_date": export_date},
    )
    if rows_read == 0:
        message = "header only: no rows"
    elif rejected:
        message = f"{rejected} row(s) rejected; see raw.rejects"
    else:
        message = ""
    return FileOutcome(
        path.name, "loaded", table.name, rows_read, rows_read - rejected, rejected, message
    )


def load_landing(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, settings: LoadSettings
) -> list[FileOutcome]:
    """Load every new landing file; one bad file never stops the others."""
    ensure_raw_schema(con)
    return [load_file(con, path, settings) for path in landing_files(landing_dir)]

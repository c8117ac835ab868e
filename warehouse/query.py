"""The one read-only door for people and tools: `oppwh sql`, the dashboards, assistants.

Whatever the SQL says, it runs on the published serving copy (never the warehouse the run
writes), opened read-only with DuckDB's file system access and extension loading off and
the configuration locked, one statement at a time, and only statements that read. So a
query can neither change a file, read one from the host, nor hold the writer's lock.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from warehouse.database import connect, used_params

# Statement kinds a reader may run (DESCRIBE, SHOW, SUMMARIZE, FROM and VALUES parse as SELECT;
# PIVOT parses as MULTI: checked by its first word).
READING_STATEMENTS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
PIVOT_WORDS = ("pivot", "unpivot")
ALLOWED_TEXT = "SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN or PIVOT"
# A reader's share of the machine: the run keeps the rest.
READER_MEMORY_LIMIT = "2GB"

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


class QueryRefusedError(ValueError):
    """The SQL is not exactly one reading statement; the message says what is allowed."""


class ServingCopyMissingError(FileNotFoundError):
    """No serving copy yet: the daily job has not published one."""


def missing_serving_copy(serving: Path) -> str:
    return f"No serving copy at {serving}: run `oppwh run` first / 请先运行 oppwh run"


def first_word(sql: str) -> str:
    text = _COMMENTS.sub(" ", sql).strip().lstrip("(").strip()
    return text.split(None, 1)[0].lower() if text else ""


def check_query(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but exactly one statement that only reads."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefusedError(one_line(exc)) from exc
    if len(statements) != 1:
        raise QueryRefusedError(
            f"exactly one statement is allowed, got {len(statements)} "
            f"/ 只允许一条语句 (allowed: {ALLOWED_TEXT})"
        )
    kind = statements[0].type
    pivot = kind == duckdb.StatementType.MULTI and first_word(sql) in PIVOT_WORDS
    if kind not in READING_STATEMENTS and not pivot:
        raise QueryRefusedError(
            f"only queries are allowed ({ALLOWED_TEXT}), not {kind.name} / 只允许查询语句"
        )


def one_line(exc: BaseException) -> str:
    """DuckDB's error without its multi-line context: what a person needs to fix the SQL."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@contextlib.contextmanager
def open_reader(serving: Path, timezone: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked-down read-only connection to the serving copy, in the business time zone."""
    if not serving.exists():
        raise ServingCopyMissingError(missing_serving_copy(serving))
    con = connect(
        serving,
        read_only=True,
        timezone=timezone,
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "memory_limit": READER_MEMORY_LIMIT,
        },
    )
    try:
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


def run_query(
    serving: Path,
    sql: str,
    timezone: str,
    params: dict | list | None = None,
    max_rows: int | None = None,
) -> tuple[list[str], list[str], list[tuple]]:
    """One reading statement on the serving copy: column names, types and rows (at most
    `max_rows` + 1 of them when a cap is given, so the caller can say the cap cut it).

    Raises QueryRefusedError for anything else and for SQL errors (one line each)."""
    with open_reader(serving, timezone) as con:
        check_query(con, sql)
        try:
            relation = con.execute(sql, params) if params else con.execute(sql)
            rows = relation.fetchall() if max_rows is None else relation.fetchmany(max_rows + 1)
        except duckdb.Error as exc:
            raise QueryRefusedError(one_line(exc)) from exc
        columns = [d[0] for d in relation.description or []]
        types = [str(d[1]) for d in relation.description or []]
        return columns, types, rows


def read_frame(serving: Path, sql: str, timezone: str, params: dict | None = None):
    """A fixed query of the dashboards as a DataFrame, through the same locked door."""
    with open_reader(serving, timezone) as con:
        check_query(con, sql)
        return con.execute(sql, used_params(sql, params)).df()

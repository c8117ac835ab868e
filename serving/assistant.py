"""An assistant's read-only door: a Model Context Protocol server over stdio (`oppwh mcp`).

Three tools, all on the published serving copy through the same locked door as `oppwh sql`
(warehouse.query: one reading statement, read-only, no file or network access):
`list_marts` (each mart with its description and rows), `describe_mart` (columns, types,
descriptions) and `query` (one statement, at most `MAX_ROWS` rows, the cap stated when it cuts).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from pathlib import Path

from mcp.server.fastmcp import FastMCP

from warehouse.query import QueryRefusedError, run_query
from warehouse.settings import DEFAULT_TIMEZONE

MAX_ROWS = 500
MARTS_SQL = (
    "SELECT t.table_name, t.comment, t.estimated_size FROM duckdb_tables() AS t "
    "WHERE t.schema_name = 'marts' ORDER BY t.table_name"
)
COLUMNS_SQL = (
    "SELECT column_name, data_type, comment FROM duckdb_columns() "
    "WHERE schema_name = 'marts' AND table_name = $mart ORDER BY column_index"
)


def plain(value):
    """A cell as JSON can carry it: dates and times in ISO 8601, decimals as numbers."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def serving_timezone(serving: Path) -> str:
    """The business time zone the serving copy was published in."""
    try:
        _, _, rows = run_query(serving, "SELECT timezone FROM main.publication", DEFAULT_TIMEZONE)
    except QueryRefusedError:
        return DEFAULT_TIMEZONE
    return rows[0][0] if rows and rows[0][0] else DEFAULT_TIMEZONE


def list_marts(serving: Path, timezone: str) -> list[dict]:
    _, _, rows = run_query(serving, MARTS_SQL, timezone)
    return [{"mart": name, "description": comment, "rows": size} for name, comment, size in rows]


def describe_mart(serving: Path, timezone: str, mart: str) -> dict:
    _, _, rows = run_query(serving, COLUMNS_SQL, timezone, {"mart": mart})
    if not rows:
        known = ", ".join(m["mart"] for m in list_marts(serving, timezone))
        raise QueryRefusedError(f"no mart named {mart!r} (marts: {known})")
    columns = [{"column": c, "type": t, "description": d} for c, t, d in rows]
    return {"mart": f"marts.{mart}", "columns": columns}


def query(serving: Path, timezone: str, sql: str, max_rows: int = MAX_ROWS) -> dict:
    columns, types, rows = run_query(serving, sql, timezone, max_rows=max_rows)
    cut = len(rows) > max_rows
    result = {
        "columns": columns,
        "types": types,
        "rows": [[plain(v) for v in row] for row in rows[:max_rows]],
        "row_count": min(len(rows), max_rows),
        "truncated": cut,
    }
    if cut:
        result["note"] = (
            f"only the first {max_rows} rows are returned (the cap); aggregate or add a "
            "LIMIT / WHERE to see the rest"
        )
    return result


def build_server(serving: Path) -> FastMCP:
    """The MCP server of one data folder's serving copy."""
    server = FastMCP("oppwh", instructions=__doc__)
    # The business time zone the copy was published in, read once per server.
    timezone = serving_timezone(serving)

    @server.tool(name="list_marts")
    def _list_marts() -> list[dict]:
        """The marts of the opportunity warehouse (商机数仓), each with its description
        (中文 / English) and its number of rows."""
        return list_marts(serving, timezone)

    @server.tool(name="describe_mart")
    def _describe_mart(mart: str) -> dict:
        """One mart's columns: name, type and description (中文 / English)."""
        return describe_mart(serving, timezone, mart)

    @server.tool(name="query")
    def _query(sql: str) -> dict:
        """Run one read-only SQL statement (DuckDB dialect: SELECT, WITH, FROM, DESCRIBE,
        SUMMARIZE ...) on the marts, e.g. `select status, count(*) from marts.opportunities
        group by 1`. At most 500 rows come back; `truncated` says when the cap cut them."""
        return query(serving, timezone, sql)

    return server

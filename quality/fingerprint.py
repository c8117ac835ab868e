"""Order-insensitive fingerprints of tables, to show two builds gave the same marts.

Used to check that DuckDB and Spark build identical marts from the same raw rows, and
that reruns are reproducible. Row order, column order and numeric storage types do not
count (Spark and DuckDB pick different integer and decimal widths for the same figure);
every number is compared as a double rounded to `decimals` places, so the last-bit noise
of a float sum taken in a different order does not count either.
"""

from __future__ import annotations

import duckdb

NUMERIC_PREFIXES = (
    "DOUBLE",
    "FLOAT",
    "REAL",
    "DECIMAL",
    "HUGEINT",
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
)


def canonical_text(column: str, data_type: str, decimals: int) -> str:
    """SQL for one column as text that reads the same whichever engine built it."""
    ref = f'"{column}"'
    if data_type.startswith(NUMERIC_PREFIXES):
        return f"cast(round(cast({ref} as double), {decimals}) as varchar)"
    if data_type == "DATE":
        return f"strftime({ref}, '%Y-%m-%d')"
    if data_type.startswith("TIMESTAMP"):
        # one instant, one text: the epoch in microseconds
        return f"cast(epoch_us({ref}) as varchar)"
    return f"cast({ref} as varchar)"


def columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Column name -> DuckDB type of a table, view or read_parquet(...) expression."""
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def row_text_sql(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    decimals: int = 6,
    columns: dict[str, str] | None = None,
) -> str:
    """SELECT of each row of `relation` as one canonical text, columns in name order."""
    columns = columns or columns_of(con, relation)
    parts = [
        f"coalesce({canonical_text(name, columns[name], decimals)}, '<null>')"
        for name in sorted(columns)
    ]
    return f"SELECT concat_ws('|', {', '.join(parts)}) AS row_text FROM {relation}"


def fingerprint(con: duckdb.DuckDBPyConnection, relation: str, decimals: int = 6) -> str:
    """'<rows>:<sorted column names hash>:<order-insensitive sum of row hashes>'."""
    columns = columns_of(con, relation)
    names = ",".join(sorted(columns))
    rows, total = con.execute(
        f"SELECT count(*), coalesce(sum(hash(row_text)::hugeint), 0) "
        f"FROM ({row_text_sql(con, relation, decimals, columns)})"
    ).fetchone()
    name_hash = con.execute("SELECT hash(?)", [names]).fetchone()[0]
    return f"{rows}:{name_hash}:{total}"


def differing_rows(
    con: duckdb.DuckDBPyConnection, left: str, right: str, limit: int = 5, decimals: int = 6
) -> list[tuple[str, str]]:
    """A few rows found on one side only, as ('left only' | 'right only', row text)."""
    a, b = row_text_sql(con, left, decimals), row_text_sql(con, right, decimals)
    rows = con.execute(
        f"(SELECT 'left only', row_text FROM ({a} EXCEPT ALL {b}) LIMIT {limit}) UNION ALL "
        f"(SELECT 'right only', row_text FROM ({b} EXCEPT ALL {a}) LIMIT {limit})"
    ).fetchall()
    return [(side, text) for side, text in rows]

"""Publish the marts to `serving.duckdb`: a new file, swapped in atomically.

Dashboards and BI tools read only this copy, so they never hold a lock on the warehouse the
run writes, and never see a half-built set of marts. Personal data that found its way into
free-text columns (e-mail addresses, phone numbers) is masked in the copy.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from serving.comments import comment_marts
from warehouse.database import connect, table_exists
from warehouse.settings import DEFAULT_TIMEZONE

EMAIL = r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})"
CN_MOBILE = r"(^|[^0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})([^0-9]|$)"
INTL_PHONE = r"\+[0-9][0-9 -]{7,}[0-9]"


def masked(column: str) -> str:
    """Text with e-mail addresses and phone numbers masked (ids are left alone)."""
    ref = f'"{column}"'
    return (
        f"regexp_replace(regexp_replace(regexp_replace({ref}, '{EMAIL}', '***@\\1', 'g'), "
        f"'{CN_MOBILE}', '\\1\\2****\\3\\4', 'g'), '{INTL_PHONE}', '+***', 'g') AS {ref}"
    )


def published_select(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """SELECT of a mart for the serving copy: personal data (e-mails, phone numbers) that
    found its way into free-text columns such as deal names is masked there."""
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = 'warehouse' AND table_schema = 'marts' AND table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    parts = [
        masked(name) if dtype == "VARCHAR" and not name.endswith("_id") else f'"{name}"'
        for name, dtype in columns
    ]
    return f'SELECT {", ".join(parts)} FROM warehouse.marts."{table}"'


def mart_tables(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> list[str]:
    """The tables of schema marts (in `catalog`, else the connection's database), by name."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
        "AND table_catalog = coalesce(?, current_database()) ORDER BY 1",
        [catalog],
    ).fetchall()
    return [r[0] for r in rows]


def publish_quality(con: duckdb.DuckDBPyConnection) -> None:
    """The quality report (last 30 runs), load ledger and rejects, for dashboards and BI."""
    con.execute("CREATE SCHEMA quality")
    if table_exists(con, "quality.check_results", catalog="warehouse"):
        con.execute(
            "CREATE TABLE quality.check_results AS SELECT * FROM warehouse.quality.check_results "
            "WHERE run_id IN (SELECT run_id FROM warehouse.quality.check_results GROUP BY run_id "
            "ORDER BY max(checked_at) DESC LIMIT 30)"
        )
    con.execute(
        "CREATE TABLE quality.load_ledger AS SELECT * EXCLUDE (file_path) "
        "FROM warehouse.raw.load_ledger"
    )
    con.execute("CREATE TABLE quality.rejects AS SELECT * FROM warehouse.raw.rejects")


# BI tools bundle older DuckDB versions: write the serving copy in a storage format that
# DuckDB 1.0 and every later version opens (README: "Connecting BI tools").
SERVING_STORAGE_VERSION = "v1.0.0"


def remove_stale_copies(serving: Path) -> None:
    """Half-written copies left by a run that was killed while publishing."""
    for stale in serving.parent.glob(f".{serving.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def publish_serving_copy(
    warehouse: Path, serving: Path, as_of: str, before_swap=None, timezone: str = DEFAULT_TIMEZONE
) -> dict[str, int]:
    """Copy every mart into a fresh file next to `serving`, then rename it over `serving`."""
    remove_stale_copies(serving)
    tmp = serving.with_name(f".{serving.name}.{os.getpid()}.tmp")
    counts: dict[str, int] = {}
    with connect() as con:
        con.execute(
            f"ATTACH ? AS serving (STORAGE_VERSION '{SERVING_STORAGE_VERSION}')", [str(tmp)]
        )
        con.execute("USE serving")
        con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(warehouse)])
        con.execute("CREATE SCHEMA marts")
        for table in mart_tables(con, "warehouse"):
            con.execute(f'CREATE TABLE marts."{table}" AS {published_select(con, table)}')
            counts[table] = con.execute(f'SELECT count(*) FROM marts."{table}"').fetchone()[0]
        comment_marts(con, "serving", timezone)
        publish_quality(con)
        con.execute(
            "CREATE TABLE main.publication AS SELECT CAST(? AS DATE) AS as_of, "
            "CAST(? AS TIMESTAMPTZ) AS published_at, CAST(? AS VARCHAR) AS timezone",
            [as_of, datetime.now(UTC), timezone],
        )
        con.execute("DETACH warehouse")
        con.execute("USE memory")
        con.execute("DETACH serving")
    if before_swap is not None:
        before_swap()
    os.replace(tmp, serving)
    return counts


def export_parquet(serving: Path, folder: Path) -> list[Path]:
    """One Parquet file per mart (written aside, then renamed), for tools that prefer files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with connect(serving, read_only=True) as con:
        for table in mart_tables(con):
            target = folder / f"{table}.parquet"
            tmp = folder / f".{table}.parquet.tmp"
            quoted = str(tmp).replace("'", "''")  # COPY takes no bound file name
            con.execute(f"COPY marts.\"{table}\" TO '{quoted}' (FORMAT parquet)")
            os.replace(tmp, target)
            written.append(target)
    return written

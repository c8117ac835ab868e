"""The engines that build the marts (DuckDB, Spark). The Spark engine: what it needs, and bringing the marts it built back to DuckDB.

With `--engine spark` the same dbt project builds the marts on Apache Spark (dbt-spark's
`session` method, PySpark in local mode) from the raw tables ingestion writes as Parquet.
Spark writes every table as Parquet files under DATA_DIR/spark/warehouse/<schema>.db/.
Scoring, the serving copy and the write-back then read those files: the relations below
are copied, in one DuckDB transaction, into the warehouse in place of the DuckDB-built
ones, so every later step (and every dashboard, BI tool and CRM import) works unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb

from warehouse.database import Database, transaction

ENGINES = ("duckdb", "spark")
# The engine of runs that do not name one (the Dagster UI's schedule and sensor, `oppwh run`).
ENGINE_ENV = "OPPWH_ENGINE"


def default_engine() -> str:
    return os.environ.get(ENGINE_ENV) or "duckdb"


# Spark's log configuration: its log to DATA_DIR/spark/spark.log, not the console.
SPARK_LOG_CONFIG = (
    Path(__file__).resolve().parents[1] / "dbt_project" / "spark" / "log4j2.properties"
)
INSTALL_HINT = (
    "install the optional extra (pip install -c constraints.txt -e '.[spark]': PySpark and "
    "dbt-spark) and Java 17 (Debian: apt install openjdk-17-jre-headless)"
)


class SparkUnavailableError(RuntimeError):
    """The Spark engine was asked for on a machine without PySpark, dbt-spark or Java 17."""


def java_major_version(java: str) -> int | None:
    """The major version of a `java` executable (17 for 17.0.15), None if it does not run."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java() -> str | None:
    """JAVA_HOME's java, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def spark_unavailable_reason() -> str | None:
    """Why the Spark engine cannot run here (one sentence with the fix), or None if it can."""
    missing = [
        name
        for module, name in (("pyspark", "PySpark"), ("dbt.adapters.spark", "dbt-spark"))
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        return f"{' and '.join(missing)} not installed: {INSTALL_HINT}"
    java = find_java()
    if java is None:
        return f"no Java found (JAVA_HOME or java on PATH): {INSTALL_HINT}"
    major = java_major_version(java)
    if major is None or major < 17:
        return f"{java} is not Java 17 or later (found {major}): {INSTALL_HINT}"
    return None


def require_spark() -> None:
    reason = spark_unavailable_reason()
    if reason:
        raise SparkUnavailableError(f"The Spark engine cannot run / 无法使用 Spark 引擎: {reason}")


def spark_tables(
    warehouse: Path, marts: list[str], also: tuple[tuple[str, str], ...] = ()
) -> list[tuple[str, str, Path]]:
    """(schema, table, folder) of the given marts and the scoring inputs Spark wrote under
    its warehouse folder (spark.sql.warehouse.dir)."""
    relations = [("marts", name) for name in marts] + [r for r in also if r[0] != "marts"]
    return [(schema, table, warehouse / f"{schema}.db" / table) for schema, table in relations]


def parquet_glob(folder: Path) -> str:
    """read_parquet() argument for every part file of a Spark table folder."""
    return str(folder / "*.parquet").replace("'", "''")


def drop_if_view(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
    """A DuckDB build leaves some relations as views (staging); a table replaces them.
    (DROP VIEW IF EXISTS fails when the name is a table, hence the look first.)"""
    kind = con.execute(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = ? AND table_catalog = current_database()",
        [schema, table],
    ).fetchone()
    if kind and kind[0] == "VIEW":
        con.execute(f'DROP VIEW {schema}."{table}"')


def import_spark_tables(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    marts: list[str],
    also: tuple[tuple[str, str], ...] = (),
) -> dict[str, int]:
    """Replace the warehouse's marts, and the relations `also` names (what the steps after
    dbt read besides the marts: scoring's inputs), by the tables Spark built.

    One transaction: either every table is the Spark build's, or none changed.
    Returns rows per `schema.table`.
    """
    tables = spark_tables(warehouse, marts, also)
    missing = [f"{schema}.{table}" for schema, table, folder in tables if not folder.is_dir()]
    if not tables or missing:
        raise FileNotFoundError(
            f"Spark did not write {', '.join(missing) or 'any mart'} under {warehouse}"
        )
    counts: dict[str, int] = {}
    with transaction(con):
        for schema, table, folder in tables:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            drop_if_view(con, schema, table)
            con.execute(
                f'CREATE OR REPLACE TABLE {schema}."{table}" AS '
                f"SELECT * FROM read_parquet('{parquet_glob(folder)}')"
            )
            counts[f"{schema}.{table}"] = con.execute(
                f'SELECT count(*) FROM {schema}."{table}"'
            ).fetchone()[0]
    return counts


def import_spark_build(
    db: Database, spark_warehouse: Path, marts: list[str], also: tuple[tuple[str, str], ...]
) -> dict[str, int]:
    """After a Spark build: its marts and the relations `also` names replace the
    warehouse's copies."""
    with db.connect() as con:
        return import_spark_tables(con, spark_warehouse, marts, also)

"""Whether the marts are already built from exactly this run's inputs, so the dbt step can
skip a build that would change nothing (a rerun of the same day with no new export, the
run after a crash past the dbt step).

A dbt build depends on: every raw table (what ingestion loaded, the load ledger, the run's
as-of day), the dbt project's files, the vars and the dbt version. Their fingerprint is kept
beside the raw tables once a build has succeeded, and dropped before any build starts, so a
build that fails or is killed half-way is never taken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import duckdb

from warehouse.database import (
    STATE_SCHEMA,
    Database,
    ensure_state_schema,
    table_exists,
    transaction,
)
from warehouse.dbt_cli import PROJECT_INPUTS, project_files

STATE_TABLE = "raw.dbt_build_state"
# The one-row table the models read the run's as-of day from (macros/as_of.sql): the day is
# data, not a dbt var, so that dbt's parse of one day serves the next (a var that changes
# makes dbt parse the whole project again).
RUN_CONTEXT_TABLE = "raw.run_context"
# Raw tables no model reads (the rejected rows are for people: `oppwh quality`).
NOT_READ_BY_MODELS = ("rejects",)
# The rows of a raw table the models read, where not all: the same filter as the staging
# view that reads it (stg_raw__load_ledger takes the ledger rows of loaded deal exports: a
# file seen again and skipped, or another table's file, changes no model reading it).
ROWS_READ = {"load_ledger": "status = 'loaded' AND table_name = 'opportunities'"}
# Beside a build's run_results.json: the results of the nodes it kept from earlier builds
# (warehouse.node_state), which count for it too.
KEPT_RESULTS_FILE = "kept_results.json"


def record_run_context(database: Database, as_of) -> None:
    """The as-of day the next build measures against, in RUN_CONTEXT_TABLE."""
    with database.connect() as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS raw")
        con.execute(
            f"CREATE OR REPLACE TABLE {RUN_CONTEXT_TABLE} AS SELECT ?::DATE AS as_of_date", [as_of]
        )


def project_digest(project_dir: Path, names: Sequence[str] = PROJECT_INPUTS) -> str:
    """SHA-256 over the names and bytes of the dbt project's files (or those under `names`)."""
    digest = hashlib.sha256()
    for path in project_files(project_dir, names):
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def raw_figures(db: Database) -> dict[str, list]:
    """Row count and content hash of what the models read of every raw table, by table."""
    schema, state = STATE_TABLE.split(".")
    with db.connect() as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = ? ORDER BY 1",
                [schema],
            ).fetchall()
            if r[0] not in (state, *NOT_READ_BY_MODELS)
        ]
        ensure_state_schema(con)
        con.execute(LOAD_FIGURES_DDL)
        return {table: table_figures(con, schema, table) for table in tables}


# Per raw table and load: its rows' count and hash sum, so that a run hashes only the loads
# it has not measured (at a million deals, hashing all 12 million activities was 0.5 s of
# every run; counting them per load, 0.04 s). A load's rows never change once committed
# (ingestion appends whole loads, nothing updates them); a load gone or grown, another
# filter or another set of columns (a column added to the raw table) is measured again.
LOAD_FIGURES_TABLE = f"{STATE_SCHEMA}.raw_load_figures"
LOAD_FIGURES_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LOAD_FIGURES_TABLE} (table_name VARCHAR, "
    "signature VARCHAR, load_id BIGINT, row_count BIGINT, hash_sum HUGEINT)"
)
LOAD_COLUMN = "_load_id"


def table_figures(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list:
    """[row count, sum of the rows' hashes as text] of the rows the models read of `table`:
    the sum over its loads of each load's figures, measured once per load (the same
    figures as hashing every row: sums add up)."""
    relation = f'{schema}."{table}"'
    rows_read = ROWS_READ.get(table, "true")
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, table],
    ).fetchall()
    if LOAD_COLUMN not in {name for name, _ in columns}:
        return _figures(con, relation, rows_read)
    signature = json.dumps([columns, rows_read])
    counts = dict(
        con.execute(
            f"SELECT {LOAD_COLUMN}, count(*) FROM {relation} WHERE {rows_read} GROUP BY 1"
        ).fetchall()
    )
    kept = {
        load: (rows, total)
        for load, rows, total in con.execute(
            f"SELECT load_id, row_count, hash_sum FROM {LOAD_FIGURES_TABLE} "
            "WHERE table_name = ? AND signature = ?",
            [table, signature],
        ).fetchall()
    }
    fresh = [load for load, rows in counts.items() if kept.get(load, (None,))[0] != rows]
    measured = _measured_loads(con, relation, rows_read, fresh) if fresh else {}
    if fresh or kept.keys() != counts.keys():
        _keep_load_figures(con, table, signature, list(counts), measured)
    figures = [measured.get(load) or kept[load] for load in counts]
    count = sum(rows for rows, _ in figures)
    return [count, str(sum(total for _, total in figures)) if count else None]


def _figures(con: duckdb.DuckDBPyConnection, relation: str, rows_read: str) -> list:
    """A table's figures from every row (a table that is not loaded in loads)."""
    count, total = con.execute(
        f"SELECT count(*), sum(hash(t)) FROM {relation} AS t WHERE {rows_read}"
    ).fetchone()
    return [count, None if total is None else str(total)]


def _measured_loads(
    con: duckdb.DuckDBPyConnection, relation: str, rows_read: str, loads: list
) -> dict:
    """load -> (row count, hash sum) of `loads` (None: the rows of no load)."""
    return {
        load: (rows, total)
        for load, rows, total in con.execute(
            f"SELECT {LOAD_COLUMN}, count(*), sum(hash(t)) FROM {relation} AS t "
            f"WHERE ({rows_read}) AND ({LOAD_COLUMN} IN (SELECT unnest(?)) "
            f"OR ({LOAD_COLUMN} IS NULL AND ?)) GROUP BY 1",
            [[load for load in loads if load is not None], None in loads],
        ).fetchall()
    }


def _keep_load_figures(
    con: duckdb.DuckDBPyConnection, table: str, signature: str, loads: list, measured: dict
) -> None:
    """Keep the figures just `measured`, drop those of loads gone or measured otherwise (the
    rows of no load are never kept: they are measured each time)."""
    keep = [(load, rows, total) for load, (rows, total) in measured.items() if load is not None]
    with transaction(con):
        con.execute(
            f"DELETE FROM {LOAD_FIGURES_TABLE} WHERE table_name = $table AND ("
            "signature <> $signature OR load_id NOT IN (SELECT unnest($loads)) "
            "OR load_id IN (SELECT unnest($measured)))",
            {
                "table": table,
                "signature": signature,
                "loads": [load for load in loads if load is not None],
                "measured": [load for load, _, _ in keep],
            },
        )
        if keep:
            con.execute(
                f"INSERT INTO {LOAD_FIGURES_TABLE} SELECT $table, $signature, "
                "unnest($loads), unnest($rows), unnest(CAST($totals AS HUGEINT[]))",
                {
                    "table": table,
                    "signature": signature,
                    "loads": [load for load, _, _ in keep],
                    "rows": [rows for _, rows, _ in keep],
                    "totals": [str(total) for _, _, total in keep],
                },
            )


def digest(value) -> str:
    """SHA-256 of a JSON-able value, keys sorted (the same value always gives the same hash)."""
    return hashlib.sha256(json.dumps(value, default=str, sort_keys=True).encode()).hexdigest()


def inputs_fingerprint(
    db: Database, project_dir: Path, settings: dict, figures: dict | None = None
) -> str:
    """One hash of everything a build reads; `settings` are the vars, dbt version, target;
    `figures` the raw tables' (raw_figures), when already measured."""
    return digest(
        {
            "raw": digest(figures if figures is not None else raw_figures(db)),
            "project": project_digest(project_dir),
            "settings": settings,
        }
    )


def forget_build(db: Database) -> None:
    """Before a build starts: the marts are about to change."""
    with db.connect() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_TABLE.split('.')[0]}")
        con.execute(f"DROP TABLE IF EXISTS {STATE_TABLE}")


def remember_build(db: Database, fingerprint: str, artifacts: Path) -> None:
    """After a build succeeded: its inputs, and the folder holding its dbt artifacts."""
    with db.connect() as con:
        con.execute(
            f"CREATE OR REPLACE TABLE {STATE_TABLE} AS "
            "SELECT ? AS fingerprint, ? AS artifacts, now() AS built_at",
            [fingerprint, str(artifacts)],
        )


def read_artifacts(folder: Path) -> tuple[dict, dict]:
    """A finished build's run_results.json, with the results of the nodes it kept from
    earlier builds (warehouse.node_state), and its manifest.json (the quality report's input)."""
    manifest = folder / "manifest.json"
    run_results = json.loads((folder / "run_results.json").read_text(encoding="utf-8"))
    kept = folder / KEPT_RESULTS_FILE
    if kept.exists():
        run_results["results"] = [
            *run_results.get("results", []),
            *json.loads(kept.read_text(encoding="utf-8")),
        ]
    return (
        run_results,
        json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else {},
    )


def finished_build(db: Database, fingerprint: str) -> Path | None:
    """The artifacts folder of the finished build with these inputs, if there is one and
    its run_results.json is still there; else None (build)."""
    with db.connect() as con:
        if not table_exists(con, STATE_TABLE):
            return None
        row = con.execute(f"SELECT fingerprint, artifacts FROM {STATE_TABLE}").fetchone()
    if row is None or row[0] != fingerprint:
        return None
    artifacts = Path(row[1])
    return artifacts if (artifacts / "run_results.json").exists() else None


def test_statuses(run_results: dict, manifest: dict) -> dict[str, str]:
    """Each dbt test's status in a finished build, by the test's name."""
    nodes = manifest.get("nodes", {})
    return {
        nodes.get(r["unique_id"], {}).get("name", r["unique_id"].split(".")[2]): r["status"]
        for r in run_results.get("results", [])
        if r["unique_id"].startswith("test.")
    }

"""The dbt project as Dagster assets: `dbt build`, so dbt tests show as asset checks."""

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.crash import crash_point
from orchestration.progress import report
from orchestration.resources import WarehouseSettings
from orchestration.spark import import_spark_tables, require_spark
from quality.report import ensure_quality_schema, record_dbt_results
from warehouse.folders import prune_old_folders

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
# Per-run dbt output folders kept under DATA_DIR/dbt (older ones are removed).
DBT_RUNS_KEPT = 3


def dbt_executable() -> str:
    """The dbt of this interpreter's venv: `.venv/bin/oppwh` may run without an active venv."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """True when manifest.json is missing or older than any file of the dbt project."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    for folder in ("models", "seeds", "macros", "tests"):
        for path in (project_dir / folder).rglob("*"):
            if path.is_file() and path.stat().st_mtime > built:
                return True
    return (project_dir / "dbt_project.yml").stat().st_mtime > built


def prepare_manifest(project: DbtProject) -> Path:
    """Run `dbt parse` when the manifest is missing or stale, so Definitions always load."""
    if manifest_is_stale(project.project_dir, project.manifest_path):
        subprocess.run(
            [dbt_executable(), "parse", "--quiet", "--profiles-dir", str(project.profiles_dir)],
            cwd=project.project_dir,
            check=True,
            # dbt's log beside the manifest (ignored by git), not in a logs/ folder of its own
            env={
                **os.environ,
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "DBT_LOG_PATH": str(project.project_dir / "target"),
            },
        )
    return project.manifest_path


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Instead of prepare_if_dev (which only acts under `dagster dev` and looks for dbt on PATH):
# parse whenever the manifest is out of date, under any entry point.
prepare_manifest(dbt_project)


class LayeredTranslator(DagsterDbtTranslator):
    """Models and seeds are keyed by their schema (`marts/opportunities`) so they never
    collide with the raw table of the same name (`raw/opportunities`)."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            schema = dbt_resource_props.get("config", {}).get("schema") or "main"
            return dg.AssetKey([schema, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props.get("config", {}).get("schema") or "dbt"


def summarise_results(results: list[dict]) -> str:
    """'12 models, 31 tests: 31 pass' style counts from dbt's run_results.json."""
    kinds = Counter(r["unique_id"].split(".")[0] for r in results)
    statuses = Counter(r["status"] for r in results)
    shown = ", ".join(f"{n} {kind}s" for kind, n in sorted(kinds.items()))
    return f"{shown}: " + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))


def read_artifact(invocation, name: str) -> dict | None:
    try:
        return invocation.get_artifact(name)
    except (FileNotFoundError, ValueError):
        return None


def record_test_results(
    warehouse: WarehouseSettings, run_id: str, run_results: dict, manifest: dict
) -> None:
    with duckdb.connect(str(warehouse.warehouse_path)) as con:
        ensure_quality_schema(con)
        record_dbt_results(con, run_id, warehouse.as_of_date(), run_results, manifest)


def dbt_build_args(vars_: dict, full_refresh: bool = False, target: str = "duckdb") -> list[str]:
    """`dbt build` for the daily job: unit tests run in the test suite, not every day.

    Incremental models take only the new loads unless a full refresh is asked for.
    `target` is the profile's output: duckdb, or spark for the same project on Spark.
    """
    return [
        "build",
        "--target",
        target,
        "--vars",
        json.dumps(vars_, ensure_ascii=False),
        "--exclude-resource-type",
        "unit_test",
        *(["--full-refresh"] if full_refresh else []),
    ]


def mart_names() -> list[str]:
    """The dbt models of schema marts (the tables every engine must build)."""
    return [key.path[-1] for key in MART_KEYS]


def bring_back_spark_marts(warehouse: WarehouseSettings) -> dict[str, int]:
    """After a Spark build: its marts and scoring inputs replace the warehouse's copies."""
    with duckdb.connect(str(warehouse.warehouse_path), config=warehouse.duckdb_config()) as con:
        return import_spark_tables(con, warehouse.spark_warehouse_path, mart_names())


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=LayeredTranslator())
def warehouse_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseSettings
):
    """Seeds, staging, intermediate and marts, with their tests, in one `dbt build`
    (on DuckDB, or on Spark with `engine: spark`)."""
    if warehouse.engine == "spark":
        require_spark()
    # dbt's artifacts and log go under DATA_DIR, never into the project folder.
    prune_old_folders(warehouse.dbt_runs_path, DBT_RUNS_KEPT - 1, prefix="run-")
    invocation = dbt.cli(
        dbt_build_args(warehouse.dbt_vars(), warehouse.full_refresh, warehouse.dbt_target),
        context=context,
        target_path=warehouse.dbt_runs_path / f"run-{context.run.run_id[:8]}",
    )
    try:
        for n, event in enumerate(invocation.stream()):
            yield event
            if n == 0:
                crash_point("dbt:mid_build")
    finally:
        # Every dbt test of every run goes into the quality report, failed builds included.
        run_results = read_artifact(invocation, "run_results.json")
        if run_results:
            record_test_results(
                warehouse,
                context.run.run_id,
                run_results,
                read_artifact(invocation, "manifest.json") or {},
            )
    report(context, f"dbt build: {summarise_results(run_results.get('results', []))}")
    if warehouse.engine == "spark":
        counts = bring_back_spark_marts(warehouse)
        report(
            context,
            f"Spark marts read back from {warehouse.spark_warehouse_path}: "
            f"{len(counts)} tables, {sum(counts.values()):,} rows",
        )


# The dbt models of schema marts, in name order.
MART_KEYS = sorted(
    (key for key in warehouse_models.keys if key.path[0] == "marts"), key=lambda k: k.path
)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )

"""The dbt project as Dagster assets: `dbt build`, so dbt tests show as asset checks."""

import graphlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.asset_utils import (
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from packaging import version

from forecast.inputs import INPUT_RELATIONS
from orchestration.crash import crash_point
from orchestration.progress import report
from orchestration.resources import WarehouseSettings
from quality.step import record_dbt_build
from warehouse.build_state import (
    finished_build,
    forget_build,
    inputs_fingerprint,
    raw_figures,
    read_artifacts,
    record_run_context,
    remember_build,
    test_statuses,
)
from warehouse.dbt_cli import (
    DBT_PROJECT_DIR,
    PARTIAL_PARSE_FILE,
    dbt_build_args,
    dbt_executable,
    dbt_version,
    environment,
    prepare_manifest,
    reuse_last_parse,
    summarise_results,
)
from warehouse.dbt_in_process import DbtInThisProcess
from warehouse.engines import import_spark_build, require_spark
from warehouse.folders import prune_old_folders
from warehouse.node_state import (
    excluded_names,
    fingerprints_in,
    indirect_selection,
    nodes_to_keep,
    remember_built_nodes,
    shared_digest,
    write_kept_results,
)

# Per-run dbt output folders kept under DATA_DIR/dbt (older ones are removed).
DBT_RUNS_KEPT = 3


dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Instead of prepare_if_dev (which only acts under `dagster dev` and looks for dbt on PATH):
# parse whenever the manifest is out of date, under any entry point.
prepare_manifest(dbt_project.project_dir, dbt_project.manifest_path)
# The manifest the assets below are made from, read once: the kept nodes' fingerprints are
# of these definitions, whatever a `dbt` command by hand later writes into the project's
# target folder (a build's manifest holds compiled SQL, and every node would differ).
PROJECT_MANIFEST = json.loads(dbt_project.manifest_path.read_text(encoding="utf-8"))


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


def read_artifact(invocation, name: str) -> dict | None:
    try:
        return invocation.get_artifact(name)
    except (FileNotFoundError, ValueError):
        return None


def mart_names() -> list[str]:
    """The dbt models of schema marts (the tables every engine must build)."""
    return [key.path[-1] for key in MART_KEYS]


def graph_order(context: dg.AssetExecutionContext, keys) -> list[dg.AssetKey]:
    """`keys`, each after those of them it depends on (the order Dagster requires)."""
    chosen = set(keys)
    deps = context.assets_def.asset_deps
    graph = {key: set(deps.get(key, ())) & chosen for key in chosen}
    return list(graphlib.TopologicalSorter(graph).static_order())


def outputs_in_build_order(context: dg.AssetExecutionContext) -> list[str]:
    """The selected outputs, each after those it depends on."""
    return [
        context.assets_def.get_output_name_for_asset_key(key)
        for key in graph_order(context, context.selected_asset_keys)
    ]


def kept_events(context: dg.AssetExecutionContext, manifest: dict, kept: dict, after_build: bool):
    """The outputs and checks of the nodes this build keeps from an earlier one, each
    node after those it reads. Before the build: the kept nodes whose every upstream
    asset is kept too; after it (`after_build`): the others (an as-of independent mart,
    kept while a mart it reads was built again, whose output dbt's events gave first)."""
    if not kept:
        return
    translator = LayeredTranslator()
    nodes = manifest.get("nodes", {})
    by_key = {
        translator.get_asset_key(nodes[uid]): uid
        for uid in kept
        if nodes[uid]["resource_type"] != "test"
    }
    selected = set(context.selected_asset_keys)
    deps = context.assets_def.asset_deps
    early: dict[dg.AssetKey, bool] = {}
    for key in graph_order(context, [k for k in by_key if k in selected]):
        upstream = set(deps.get(key, ())) & selected
        early[key] = all(early.get(d, False) for d in upstream)
    for key, first in early.items():
        if first != after_build:
            yield dg.Output(
                None,
                output_name=context.assets_def.get_output_name_for_asset_key(key),
                metadata={"kept from": Path(kept[by_key[key]]["kept_from"]).name},
            )
    tests = {nodes[uid]["name"]: result for uid, result in kept.items() if uid.startswith("test.")}
    for key in context.selected_asset_check_keys:
        if key.name in tests and early.get(key.asset_key, True) != after_build:
            result = tests[key.name]
            yield earlier_check_result(key, result["status"], "kept from", result["kept_from"])


def earlier_check_result(
    key: dg.AssetCheckKey, status: str, how: str, folder
) -> dg.AssetCheckResult:
    """A dbt test's result from an earlier build (in dbt folder `folder`), for this run."""
    return dg.AssetCheckResult(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=status in ("pass", "warn"),
        metadata={"status": status, how: Path(folder).name},
    )


def reuse_build(context: dg.AssetExecutionContext, database, as_of, finished: Path):
    """Nothing a build reads has changed since the build in `finished`: its marts stand as
    they are, its test results count for this run too (quality report, asset checks)."""
    run_results, manifest = read_artifacts(finished)
    record_dbt_build(database, context.run.run_id, as_of, run_results, manifest)
    report(
        context,
        f"dbt build skipped: nothing changed since the build in {finished.name} "
        f"(same raw data, as-of day, settings and models); its tests: "
        f"{summarise_results(run_results.get('results', []))}",
    )
    for name in outputs_in_build_order(context):
        yield dg.Output(None, output_name=name, metadata={"built in": finished.name})
    statuses = test_statuses(run_results, manifest)
    for key in context.selected_asset_check_keys:
        yield earlier_check_result(key, statuses.get(key.name, "not run"), "built in", finished)


# Models a later step writes in Python (the grades), declared to dbt only for the semantic
# layer: Dagster's assets for them are the scoring step's.
WRITTEN_BY_PYTHON = "config.materialized:written_by_python"


@dbt_assets(
    manifest=PROJECT_MANIFEST,
    dagster_dbt_translator=LayeredTranslator(),
    exclude=WRITTEN_BY_PYTHON,
)
def warehouse_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseSettings
):
    """Seeds, staging, intermediate and marts, with their tests, in one `dbt build`
    (on DuckDB, or on Spark with `engine: spark`)."""
    if warehouse.engine_name == "spark":
        require_spark()
    database, as_of = warehouse.database, warehouse.as_of_date()
    record_run_context(database, as_of)
    fingerprint, manifest, prints, counted = None, {}, {}, True
    if warehouse.engine_name == "duckdb":
        settings = warehouse.dbt_settings()
        figures = raw_figures(database)
        fingerprint = inputs_fingerprint(database, DBT_PROJECT_DIR, settings, figures)
        finished = None if warehouse.full_refresh else finished_build(database, fingerprint)
        if finished:
            yield from reuse_build(context, database, as_of, finished)
            return
        manifest = PROJECT_MANIFEST
        shared = {"settings": settings, "files": shared_digest(DBT_PROJECT_DIR)}
        measure = (database, manifest, figures, shared, as_of, warehouse.as_of_end())
        prints, counted = fingerprints_in(*measure)
    forget_build(database)
    kept = nodes_to_keep(database, manifest, prints, warehouse.full_refresh)
    # dbt's artifacts and log go under DATA_DIR, never into the project folder.
    runs = warehouse.folder.dbt_runs
    target = runs / f"run-{context.run.run_id[:8]}"
    prune_old_folders(runs, DBT_RUNS_KEPT - 1, prefix="run-")
    reuse_last_parse(runs, target, dbt_project.manifest_path.with_name(PARTIAL_PARSE_FILE))
    yield from kept_events(context, manifest, kept, after_build=False)
    # The environment holds while dbt runs: in this process, dbt reads it as it goes.
    with environment(warehouse.dbt_env()):
        invocation = dbt.cli(
            dbt_build_args(
                warehouse.dbt_vars(),
                warehouse.full_refresh,
                warehouse.dbt_target,
                exclude=excluded_names(manifest, kept),
            ),
            context=context,
            target_path=target,
            in_process=warehouse.engine_name == "duckdb",
        )
        selected = context.op_execution_context.selected_output_names
        shown = DbtProgress(len(selected) + len(context.selected_asset_check_keys) - len(kept))
        try:
            for n, event in enumerate(invocation.stream()):
                yield event
                if n == 0:
                    crash_point("dbt:mid_build")
                line = shown.after_event()
                if line:
                    report(context, line)
        finally:
            # Every dbt test of every run goes into the quality report, failed builds included,
            # the tests kept from an earlier build too.
            run_results = read_artifact(invocation, "run_results.json")
            if run_results:
                built = run_results.get("results", [])
                record_dbt_build(
                    database,
                    context.run.run_id,
                    as_of,
                    {**run_results, "results": [*built, *kept.values()]},
                    read_artifact(invocation, "manifest.json") or {},
                )
                if prints:
                    if not counted:
                        # A view a cutoff counts in was not there before this build (a
                        # first build): counted now, so the next day can keep what reads it.
                        prints, counted = fingerprints_in(*measure)
                    remember_built_nodes(database, prints, built, target)
    yield from kept_events(context, manifest, kept, after_build=True)
    write_kept_results(target, kept)
    if fingerprint:
        remember_build(database, fingerprint, target)
    summary = summarise_results(run_results.get("results", []))
    if kept:
        summary += f"; {len(kept)} kept, inputs unchanged / 输入未变, 沿用上次结果"
    report(context, f"dbt build: {summary}")
    if warehouse.engine_name == "spark":
        # Its marts and scoring inputs replace the warehouse's copies.
        counts = import_spark_build(
            warehouse.database, warehouse.folder.spark_warehouse, mart_names(), INPUT_RELATIONS
        )
        report(
            context,
            f"Spark marts read back from {warehouse.folder.spark_warehouse}: "
            f"{len(counts)} tables, {sum(counts.values()):,} rows",
        )


# The dbt models of schema marts, in name order.
MART_KEYS = sorted(
    (key for key in warehouse_models.keys if key.path[0] == "marts"), key=lambda k: k.path
)


class DbtProgress:
    """'dbt: 40 of 83 models and tests done' every few seconds of a build, so a long dbt
    step shows that it moves."""

    def __init__(self, total: int, every_seconds: float = 5.0):
        self.total, self.done, self.every = total, 0, every_seconds
        self.last = time.monotonic()

    def after_event(self) -> str | None:
        self.done += 1
        now = time.monotonic()
        if now - self.last < self.every or self.done >= self.total:
            return None
        self.last = now
        return f"dbt: {self.done} of {self.total} models and tests done / 已完成"


class WarehouseDbtCli(DbtCliResource):
    """dagster-dbt's resource without three costs per run this project gets nothing from:
    - it starts `dbt --version` once per run (a whole dbt start, ~3 s here): the version is
      asked once per process;
    - it loads dbt's adapter and every macro in this process to offer column metadata and
      row counts, which no asset here asks for (~4 s): no adapter is loaded;
    - it starts dbt as a process (Python, dbt's imports, ~2-5 s): with `in_process`, dbt
      runs in a thread of this one (warehouse.dbt_in_process), its events read the same."""

    @property
    def _cli_version(self) -> version.Version:
        return dbt_version(self.dbt_executable)

    def _initialize_dbt_core_adapter(self, args):
        return None

    def cli(self, args, *, in_process: bool = False, **kwargs) -> DbtCliInvocation:
        if not in_process:
            return super().cli(args, **kwargs)
        return self._cli_in_process(args, **kwargs)

    def _cli_in_process(
        self,
        args,
        *,
        context: dg.AssetExecutionContext,
        target_path: Path,
        raise_on_error: bool = True,
    ) -> DbtCliInvocation:
        """What `DbtCliResource.cli` does for an asset's dbt command (the asset selection as
        dbt's, the run's own target folder), with dbt in this process."""
        args, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest={},
            dagster_dbt_translator=LayeredTranslator(),
            runtime_selects=selects,
            runtime_excludes=excludes,
        )
        project_dir = Path(
            params.dbt_project.project_dir if params.dbt_project else self.project_dir
        )
        settings = {
            "DBT_TARGET_PATH": str(target_path),
            "DBT_LOG_PATH": str(target_path),
            "DBT_PROFILES_DIR": self.profiles_dir or str(project_dir),
            "DBT_PROJECT_DIR": str(project_dir),
            "DBT_INDIRECT_SELECTION": indirect_selection(params.indirect_selection, bool(excludes))
            or "",
        }
        command = [self.dbt_executable, *self.global_config_flags, *args, *params.selection_args]
        return DbtCliInvocation(
            process=DbtInThisProcess(command, settings),
            manifest=params.manifest,
            dagster_dbt_translator=params.dagster_dbt_translator,
            project_dir=project_dir,
            target_path=target_path,
            raise_on_error=raise_on_error,
            context=context,
            adapter=None,
            cli_version=self._cli_version,
            project=params.dbt_project,
        )


def dbt_resource() -> DbtCliResource:
    return WarehouseDbtCli(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),
    )

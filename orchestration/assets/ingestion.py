"""Landing folder -> DuckDB schema `raw`: one multi-asset, one materialisation per raw table,
and the data contracts of each new export as asset checks on those tables."""

from collections.abc import Iterable
from dataclasses import replace

import dagster as dg

from ingestion.archive import archive_files, clear_intake
from ingestion.config import load_settings, read_config
from ingestion.load import FileOutcome, files_loaded
from ingestion.schema import TABLES
from ingestion.step import load_into, raw_table_counts, write_raw_parquet
from orchestration.crash import crash_point
from orchestration.progress import report
from orchestration.resources import WarehouseSettings
from quality import gx_worker
from quality.contracts import BLOCK, CHECKS
from quality.step import record_intake
from quality.validate import evaluate_with_gx, validate_load
from warehouse.safe_names import printable

RAW_KEYS = {name: dg.AssetKey(["raw", name]) for name in TABLES}
LEDGER_KEY = dg.AssetKey(["raw", "load_ledger"])
CHECK_SPECS = [
    dg.AssetCheckSpec(
        c.name, asset=RAW_KEYS[c.table], blocking=c.severity == BLOCK, description=c.label
    )
    for c in CHECKS
] + [
    dg.AssetCheckSpec(
        "landing_freshness",
        asset=LEDGER_KEY,
        description="a new export arrived recently / 近期有新导出",
    )
]


class BlockedExportError(dg.Failure):
    """A new export breaks a blocking contract: the run stops before the marts change."""


def outcome_lines(outcomes: list[FileOutcome]) -> list[str]:
    """One human line per landing file: what happened to it and why."""
    lines = []
    for o in outcomes:
        detail = f"{o.rows_loaded}/{o.rows_read} rows -> raw.{o.table}" if o.table else ""
        name = printable(o.file_name)  # a newline in a file name must not split the line
        lines.append(" ".join(p for p in (f"[{o.status}]", name, detail, o.message) if p))
        lines.extend(
            f"      ! {r.check.severity}: {r.check.label} ({r.failing_rows} rows{named(r)})"
            for r in o.checks
            if not r.passed
        )
    return lines


def named(result) -> str:
    """The values a failed value-set check did not know (the stage or activity-type names
    to define), as the run's line shows them: the user's own words, not the label's
    example. Each escaped like a file name, so that a name is never a second line."""
    if not result.unknown_values:
        return ""
    return ": " + ", ".join(printable(v) for v in result.unknown_values)


def check_results(outcomes: list[FileOutcome]) -> Iterable[dg.AssetCheckResult]:
    """One result per contract: passed when every new file of the run passed it."""
    by_name: dict[str, list] = {c.name: [] for c in CHECKS}
    for outcome in outcomes:
        for result in outcome.checks:
            by_name[result.check.name].append(result)
    for check in CHECKS:
        results = by_name[check.name]
        failing = [r for r in results if not r.passed]
        yield dg.AssetCheckResult(
            asset_key=RAW_KEYS[check.table],
            check_name=check.name,
            passed=not failing,
            severity=dg.AssetCheckSeverity.ERROR
            if check.severity == BLOCK
            else dg.AssetCheckSeverity.WARN,
            metadata={
                "files_checked": len(results),
                "failing_rows": sum(r.failing_rows for r in failing),
                "failing_files": ", ".join(r.file_name for r in failing) or "-",
                "sample_ids": ", ".join(i for r in failing for i in r.sample_ids[:5]) or "-",
                "fix": check.fix,
            },
        )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, description=TABLES[name].label, group_name="raw", kinds={"duckdb"})
        for name, key in RAW_KEYS.items()
    ]
    + [
        dg.AssetSpec(
            LEDGER_KEY,
            description="What happened to each landing file, per run",
            group_name="raw",
            kinds={"duckdb"},
        )
    ],
    check_specs=CHECK_SPECS,
    can_subset=False,
)
def raw_tables(context: dg.AssetExecutionContext, warehouse: WarehouseSettings):
    """Load every new file of the landing folder into `raw` (ledgered, whole or nothing),
    checking each against its contracts before it is committed."""
    warehouse.data_path.mkdir(parents=True, exist_ok=True)
    as_of = warehouse.as_of_date()
    as_of_end = warehouse.as_of_end()
    settings = load_settings(warehouse.data_path, as_of, warehouse.timezone)
    folder_config = read_config(warehouse.data_path)
    clear_intake(warehouse.folder.intake)
    # GX in the worker `oppwh run` started, if it did (else in this process).
    evaluate = gx_worker.evaluator(evaluate_with_gx)
    settings = replace(
        settings,
        settle_seconds=folder_config.settle_seconds,
        intake_dir=warehouse.folder.intake,
        run_id=context.run.run_id,
        validator=lambda con, table, load_id, name: validate_load(
            con, table, load_id, name, as_of_end, evaluate=evaluate
        ),
        before_commit=lambda name: crash_point("ingest:mid_file"),
    )
    db = warehouse.database
    try:
        outcomes = load_into(db, warehouse.landing_path, settings)
    finally:
        gx_worker.stop()
    freshness = record_intake(
        db, context.run.run_id, as_of, outcomes, folder_config.max_days_without_export
    )
    counts, ledger_rows = raw_table_counts(db)
    crash_point("ingest:after_load")
    if warehouse.engine_name == "spark":
        # Spark reads the raw tables from Parquet (dbt source tables on Spark)
        write_raw_parquet(db, warehouse.folder.spark_raw)
    archived = archive_files(
        files_loaded(outcomes), warehouse.folder.archive / as_of.isoformat(), warehouse.archive_mode
    )
    clear_intake(warehouse.folder.intake)
    for line in outcome_lines(outcomes) or ["landing folder holds no files"]:
        report(context, line)
    if archived:
        verb = "copied" if warehouse.archive_mode == "copy" else "moved"
        report(
            context,
            f"{len(archived)} file(s) {verb} to {warehouse.folder.archive / as_of.isoformat()}",
        )
    if not freshness.passed:
        report(context, f"! warn: {freshness.finding}")
    for name, key in RAW_KEYS.items():
        files = [o for o in outcomes if o.table == name and o.status == "loaded"]
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/row_count": counts[name],
                "files_loaded": len(files),
                "rows_loaded": sum(o.rows_loaded for o in files),
                "rows_rejected": sum(o.rows_rejected for o in files),
            },
        )
    yield dg.MaterializeResult(
        asset_key=LEDGER_KEY,
        metadata={
            "dagster/row_count": ledger_rows,
            "files_seen": len(outcomes),
            "set_aside": sum(o.status == "set_aside" for o in outcomes),
            "failed": sum(o.status == "failed" for o in outcomes),
            "blocked": sum(o.status == "blocked" for o in outcomes),
            "deferred": sum(o.status == "deferred" for o in outcomes),
            "landing_report": dg.MetadataValue.md(
                "\n".join(f"- {line}" for line in outcome_lines(outcomes)) or "(no files)"
            ),
        },
    )
    yield from check_results(outcomes)
    yield dg.AssetCheckResult(
        asset_key=LEDGER_KEY,
        check_name="landing_freshness",
        passed=freshness.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "days_since_new_export": freshness.days_since_new_export,
            "max_days": freshness.max_days,
        },
    )
    blocked = [o for o in outcomes if o.status == "blocked"]
    if blocked:
        raise BlockedExportError(
            description="blocked / 已阻断: "
            + "; ".join(f"{o.file_name}: {o.message}" for o in blocked)
            + " — the marts keep their last good state; drop a corrected export into the "
            "landing folder / 数据集保持上次的正确状态，请放入修正后的导出文件"
        )

"""Priority grades after the marts, and the CRM write-back files after the grades."""

import dagster as dg

from orchestration.assets.dbt import warehouse_models
from orchestration.crash import crash_point
from orchestration.progress import report
from orchestration.resources import WarehouseSettings
from scoring.config import load_config
from scoring.inputs import INPUT_RELATIONS
from scoring.step import grade_warehouse
from scoring.writeback import read_grades, write_exports

PRIORITY = dg.AssetKey(["marts", "opportunity_priority"])
HISTORY = dg.AssetKey(["marts", "opportunity_priority_history"])
CALIBRATION = dg.AssetKey(["marts", "grade_calibration"])
WRITEBACK = dg.AssetKey(["exports", "crm_writeback"])
SIGNALS = dg.AssetKey(["marts", "scoring_signals"])
VALIDATION = dg.AssetKey(["marts", "scoring_validation"])
VALIDATION_HISTORY = dg.AssetKey(["marts", "scoring_validation_history"])
SCORING_KEYS = [PRIORITY, HISTORY, CALIBRATION, SIGNALS, VALIDATION, VALIDATION_HISTORY]
# The dbt models scoring reads (scoring.inputs declares them).
MART_INPUTS = [key for key in warehouse_models.keys if tuple(key.path) in INPUT_RELATIONS]


# What scoring writes into marts, each described once.
SCORING_TABLES = {
    PRIORITY: "Open opportunities graded A-D with reasons, trend and win probability",
    HISTORY: "One row per opportunity per scoring day",
    CALIBRATION: "Win rate and lift per grade on past deals scored before they closed",
    SIGNALS: "Per source and signal: coverage, used or left out and why, weight",
    VALIDATION: "Per source: backtest AUC, win rate by grade, the verdict, write-back",
    VALIDATION_HISTORY: "Every scoring day's validation per source",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            deps=MART_INPUTS,
            group_name="scoring",
            kinds={"python", "duckdb"} if key == PRIORITY else {"duckdb"},
            description=description,
        )
        for key, description in SCORING_TABLES.items()
    ],
    can_subset=False,
)
def priority_grades(context: dg.AssetExecutionContext, warehouse: WarehouseSettings):
    """Grade every open deal; score past deals as they stood before closing to calibrate."""
    outcome = grade_warehouse(
        warehouse.database,
        load_config(warehouse.data_path),
        warehouse.as_of_date(),
        warehouse.as_of_end(),
        before_commit=lambda: crash_point("scoring:mid_save"),
        reuse=not warehouse.full_refresh,
    )
    run, today, scorer = outcome.run, outcome.today, outcome.run.scorer
    report(context, f"model {scorer.model_version}: {scorer.note}")
    for line in run.messages():
        report(context, line)
    report(context, outcome.grade_line())
    yield dg.MaterializeResult(
        asset_key=PRIORITY,
        metadata={
            "dagster/row_count": len(today),
            "model_version": scorer.model_version,
            "grades": dg.MetadataValue.json(outcome.grade_counts),
            "note": scorer.note,
        },
    )
    yield dg.MaterializeResult(
        asset_key=HISTORY, metadata={"dagster/row_count": outcome.history_rows}
    )
    yield dg.MaterializeResult(
        asset_key=SIGNALS,
        metadata={
            "dagster/row_count": len(run.signals),
            "left_out": int((~run.signals["used"]).sum()) if len(run.signals) else 0,
        },
    )
    verdicts = {v.source_system: v.writeback_status for v in run.verdicts}
    yield dg.MaterializeResult(
        asset_key=VALIDATION,
        metadata={
            "dagster/row_count": len(run.validation),
            "writeback": dg.MetadataValue.json(verdicts),
        },
    )
    yield dg.MaterializeResult(asset_key=VALIDATION_HISTORY)
    yield dg.MaterializeResult(
        asset_key=CALIBRATION,
        metadata={
            "dagster/row_count": len(run.calibration),
            "auc": None if outcome.backtest_auc is None else round(outcome.backtest_auc, 3),
            "win_rate_by_grade": dg.MetadataValue.json(
                {v.source_system: v.win_rate_by_grade for v in run.verdicts}
            ),
        },
    )


@dg.asset(key=WRITEBACK, deps=[PRIORITY], group_name="exports", kinds={"csv", "xlsx"})
def crm_writeback(context: dg.AssetExecutionContext, warehouse: WarehouseSettings):
    """Files that import into the source CRM as updates (one folder per source system)."""
    config = load_config(warehouse.data_path)
    today, withheld = read_grades(warehouse.database)
    result = write_exports(
        today,
        warehouse.folder.exports,
        warehouse.as_of_date(),
        config,
        after_file=lambda _: crash_point("writeback:mid_files"),
        withheld=withheld,
    )
    for message in result.messages:
        report(context, message)
    report(context, f"write-back: {len(result.files)} files in {warehouse.folder.exports}")
    return dg.MaterializeResult(
        metadata={
            "files": dg.MetadataValue.json([str(p) for p in result.files]),
            "deals": len(today),
        }
    )

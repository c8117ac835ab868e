"""Priority grades after the marts, and the CRM write-back files after the grades."""

import dagster as dg
import duckdb

from orchestration.assets.dbt import warehouse_models
from orchestration.crash import crash_point
from orchestration.progress import report
from orchestration.resources import WarehouseSettings
from orchestration.spark import SCORING_INPUTS
from scoring.config import load_config
from scoring.model import auc, score_and_calibrate
from scoring.store import save_priority
from scoring.writeback import write_exports

PRIORITY = dg.AssetKey(["marts", "opportunity_priority"])
HISTORY = dg.AssetKey(["marts", "opportunity_priority_history"])
CALIBRATION = dg.AssetKey(["marts", "grade_calibration"])
WRITEBACK = dg.AssetKey(["exports", "crm_writeback"])
SIGNALS = dg.AssetKey(["marts", "scoring_signals"])
VALIDATION = dg.AssetKey(["marts", "scoring_validation"])
VALIDATION_HISTORY = dg.AssetKey(["marts", "scoring_validation_history"])
SCORING_KEYS = [PRIORITY, HISTORY, CALIBRATION, SIGNALS, VALIDATION, VALIDATION_HISTORY]
MART_INPUTS = [
    key
    for key in warehouse_models.keys
    if (
        key.path[0] == "marts"
        and key.path[-1] in ("opportunities", "opportunity_lifecycle", "funnel_conversion")
    )
    or tuple(key.path) in SCORING_INPUTS
]


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
    config = load_config(warehouse.data_path)
    with duckdb.connect(str(warehouse.warehouse_path), config=warehouse.duckdb_config()) as con:
        con.execute("SET TimeZone = ?", [warehouse.timezone])
        run = score_and_calibrate(con, config, warehouse.as_of_end())
        scorer, graded, calibration = run.scorer, run.graded, run.calibration
        report(context, f"model {scorer.model_version}: {scorer.note}")
        for line in run.messages():
            report(context, line)
        today = save_priority(
            con,
            run.scored,
            calibration,
            warehouse.as_of_date(),
            scorer.model_version,
            config.trend_threshold,
            before_commit=lambda: crash_point("scoring:mid_save"),
            signals=run.signals,
            validation=run.validation,
        )
        history_rows = con.execute(
            "SELECT count(*) FROM marts.opportunity_priority_history"
        ).fetchone()[0]
    grades = today["grade"].value_counts().reindex(["A", "B", "C", "D"], fill_value=0)
    area = (
        auc(graded["score"].to_numpy(), graded["won"].to_numpy()) if len(graded) else float("nan")
    )
    report(
        context,
        "grades / 评级: "
        + ", ".join(f"{g} {n}" for g, n in grades.items())
        + f"; backtest AUC {area:.3f}",
    )
    yield dg.MaterializeResult(
        asset_key=PRIORITY,
        metadata={
            "dagster/row_count": len(today),
            "model_version": scorer.model_version,
            "grades": dg.MetadataValue.json({g: int(n) for g, n in grades.items()}),
            "note": scorer.note,
        },
    )
    yield dg.MaterializeResult(asset_key=HISTORY, metadata={"dagster/row_count": history_rows})
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
            "dagster/row_count": len(calibration),
            "auc": None if area != area else round(area, 3),
            "win_rate_by_grade": dg.MetadataValue.json(
                {v.source_system: v.win_rate_by_grade for v in run.verdicts}
            ),
        },
    )


@dg.asset(key=WRITEBACK, deps=[PRIORITY], group_name="exports", kinds={"csv", "xlsx"})
def crm_writeback(context: dg.AssetExecutionContext, warehouse: WarehouseSettings):
    """Files that import into the source CRM as updates (one folder per source system)."""
    config = load_config(warehouse.data_path)
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        today = con.execute(
            "SELECT source_system, opportunity_id, opportunity_name, score, grade, reasons, "
            "previous_grade FROM marts.opportunity_priority"
        ).df()
        withheld = dict(
            con.execute(
                "SELECT source_system, why FROM marts.scoring_validation "
                "WHERE writeback_status = 'withheld'"
            ).fetchall()
        )
    result = write_exports(
        today,
        warehouse.exports_path,
        warehouse.as_of_date(),
        config,
        after_file=lambda _: crash_point("writeback:mid_files"),
        withheld=withheld,
    )
    for message in result.messages:
        report(context, message)
    report(context, f"write-back: {len(result.files)} files in {warehouse.exports_path}")
    return dg.MaterializeResult(
        metadata={
            "files": dg.MetadataValue.json([str(p) for p in result.files]),
            "deals": len(today),
        }
    )

"""Priority grades after the marts, and the CRM write-back files after the grades."""

import dagster as dg
import duckdb

from orchestration.assets.dbt import warehouse_models
from orchestration.crash import crash_point
from orchestration.progress import report
from orchestration.resources import WarehouseSettings
from orchestration.spark import SCORING_INPUTS
from scoring.config import load_config
from scoring.model import auc, build_scorer, calibrate, calibration_table, score_open_deals
from scoring.store import save_priority
from scoring.writeback import write_exports

PRIORITY = dg.AssetKey(["marts", "opportunity_priority"])
HISTORY = dg.AssetKey(["marts", "opportunity_priority_history"])
CALIBRATION = dg.AssetKey(["marts", "grade_calibration"])
WRITEBACK = dg.AssetKey(["exports", "crm_writeback"])
SCORING_KEYS = [PRIORITY, HISTORY, CALIBRATION]
MART_INPUTS = [
    key
    for key in warehouse_models.keys
    if (
        key.path[0] == "marts"
        and key.path[-1] in ("opportunities", "opportunity_lifecycle", "funnel_conversion")
    )
    or tuple(key.path) in SCORING_INPUTS
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            PRIORITY,
            deps=MART_INPUTS,
            group_name="scoring",
            kinds={"python", "duckdb"},
            description="Open opportunities graded A-D with reasons and trend",
        ),
        dg.AssetSpec(
            HISTORY,
            deps=MART_INPUTS,
            group_name="scoring",
            kinds={"duckdb"},
            description="One row per opportunity per scoring day",
        ),
        dg.AssetSpec(
            CALIBRATION,
            deps=MART_INPUTS,
            group_name="scoring",
            kinds={"duckdb"},
            description="Win rate and lift per grade on past deals scored before they closed",
        ),
    ],
    can_subset=False,
)
def priority_grades(context: dg.AssetExecutionContext, warehouse: WarehouseSettings):
    """Grade every open deal; score past deals as they stood before closing to calibrate."""
    config = load_config(warehouse.data_path)
    with duckdb.connect(str(warehouse.warehouse_path), config=warehouse.duckdb_config()) as con:
        con.execute("SET TimeZone = ?", [warehouse.timezone])
        scorer = build_scorer(con, config)
        report(context, f"model {scorer.model_version}: {scorer.note}")
        scored = score_open_deals(con, scorer, warehouse.as_of_end())
        graded = calibrate(con, scorer)
        calibration = calibration_table(graded, scorer.model_version)
        today = save_priority(
            con,
            scored,
            calibration,
            warehouse.as_of_date(),
            scorer.model_version,
            config.trend_threshold,
            before_commit=lambda: crash_point("scoring:mid_save"),
        )
        history_rows = con.execute(
            "SELECT count(*) FROM marts.opportunity_priority_history"
        ).fetchone()[0]
    grades = today["grade"].value_counts().reindex(["A", "B", "C", "D"], fill_value=0)
    overall = calibration[calibration["period"] == "all"].set_index("grade")
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
        asset_key=CALIBRATION,
        metadata={
            "dagster/row_count": len(calibration),
            "auc": None if area != area else round(area, 3),
            "win_rate_by_grade": dg.MetadataValue.json(
                {
                    g: (
                        None
                        if overall.loc[g, "win_rate"] != overall.loc[g, "win_rate"]
                        else overall.loc[g, "win_rate"]
                    )
                    for g in overall.index
                }
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
    result = write_exports(
        today,
        warehouse.exports_path,
        warehouse.as_of_date(),
        config,
        after_file=lambda _: crash_point("writeback:mid_files"),
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

"""The revenue forecast, its backtest and the targets, after the grades (forecast.step does
the work)."""

import dagster as dg

from forecast.inputs import INPUT_RELATIONS
from forecast.step import refresh_forecast
from orchestration.assets.dbt import warehouse_models
from orchestration.assets.scoring import PRIORITY
from orchestration.progress import report
from orchestration.resources import WarehouseSettings
from scoring.config import load_config

FORECAST = dg.AssetKey(["marts", "revenue_forecast"])
ACCURACY = dg.AssetKey(["marts", "forecast_accuracy"])
ATTAINMENT = dg.AssetKey(["marts", "target_attainment"])
FORECAST_TABLES = {
    FORECAST: "Expected won amount per source, owner and month ahead, with its 80% interval",
    ACCURACY: "Each past month's forecast, made at its start, against what was won",
    ATTAINMENT: "Each target against won amount, open pipeline and the forecast",
}
FORECAST_KEYS = list(FORECAST_TABLES)
FORECAST_INPUTS = [key for key in warehouse_models.keys if tuple(key.path) in INPUT_RELATIONS]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            deps=[PRIORITY, *FORECAST_INPUTS],
            group_name="forecast",
            kinds={"python", "duckdb"},
            description=description,
        )
        for key, description in FORECAST_TABLES.items()
    ],
    can_subset=False,
)
def revenue_forecast(context: dg.AssetExecutionContext, warehouse: WarehouseSettings):
    """Forecast the months ahead from the calibrated win probabilities and past cycle times;
    make the same forecast at the start of each past month and set it against the wins;
    measure every target."""
    months_back = warehouse.folder_config.forecast_backtest_months
    outcome = refresh_forecast(
        warehouse.database,
        load_config(warehouse.data_path),
        warehouse.as_of_date(),
        warehouse.as_of_end(),
        warehouse.timezone,
        months_back,
        reuse=not warehouse.full_refresh,
    )
    report(context, outcome.line())
    for key in FORECAST_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata={"backtest_months": months_back})

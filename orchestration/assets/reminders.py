"""Today's action items, after the grades (reminders.step does the work)."""

import dagster as dg

from orchestration.assets.scoring import PRIORITY
from orchestration.progress import report
from orchestration.resources import WarehouseSettings
from reminders.step import refresh_action_items

ACTION_ITEMS = dg.AssetKey(["marts", "action_items"])
# The marts the items are read from, besides the grades.
ITEM_INPUTS = [
    dg.AssetKey(["marts", name])
    for name in ("opportunities", "opportunity_lifecycle", "follow_up_frequency")
]


@dg.asset(key=ACTION_ITEMS, deps=[PRIORITY, *ITEM_INPUTS], group_name="reminders", kinds={"duckdb"})
def action_items(
    context: dg.AssetExecutionContext, warehouse: WarehouseSettings
) -> dg.MaterializeResult:
    """One row per open deal and reason its owner should act on today (no follow-up, past
    its close date, stuck in its stage, no owner), with the reason in Chinese and English."""
    stale_days = warehouse.folder_config.reminder_stale_days
    rows = refresh_action_items(warehouse.database, warehouse.as_of_date(), stale_days)
    report(context, f"action items / 待办: {rows} (stale after {stale_days} days)")
    return dg.MaterializeResult(metadata={"dagster/row_count": rows, "stale_days": stale_days})

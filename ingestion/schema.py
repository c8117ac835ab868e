"""The canonical raw schema: the contract every adapter maps onto (see DESIGN.md).

Kept as plain data so ingestion, quality checks and docs read one definition.
A column's ``kind`` decides how its text is parsed; ``required`` columns must be
non-blank for a row to load (a blank one sends the row to the rejects table).
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text"
TIMESTAMP = "timestamp"
DATE = "date"
AMOUNT = "amount"
INTEGER = "integer"
BOOLEAN = "boolean"
# Parse kinds that adapters use for source quirks; they land as a canonical SQL type.
DAY_TIMESTAMP = "day_timestamp"  # a date-only field used as a time: local midnight, no shift
HEADCOUNT = "headcount"  # "100-499人", "500人以上": the first number
PERCENT = "percent"  # a win probability in percent: 30, 30%, 30.5
FRACTION = "fraction"  # a probability as a fraction (HubSpot 0.3): stored in percent
MONTH = "month"  # a calendar month (2026-01, 2026/1, 2026年1月): its first day
# an amount written with a decimal comma (1.234,56; 8 000,50 €): a mapping's decimal_comma
AMOUNT_DECIMAL_COMMA = "amount_decimal_comma"

SQL_TYPES = {
    TEXT: "VARCHAR",
    TIMESTAMP: "TIMESTAMPTZ",
    DATE: "DATE",
    AMOUNT: "DECIMAL(18,2)",
    INTEGER: "BIGINT",
    BOOLEAN: "BOOLEAN",
    DAY_TIMESTAMP: "TIMESTAMPTZ",
    HEADCOUNT: "BIGINT",
    PERCENT: "DECIMAL(9,2)",
    FRACTION: "DECIMAL(9,2)",
    MONTH: "DATE",
    AMOUNT_DECIMAL_COMMA: "DECIMAL(18,2)",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = TEXT
    required: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    label: str
    # Columns of which a row needs at least one (a target names an owner or a team).
    one_of: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "opportunities",
            (
                Column("opportunity_id", required=True),
                Column("opportunity_name"),
                Column("account_id"),
                Column("owner_id"),
                Column("stage"),
                Column("status"),
                Column("amount", AMOUNT),
                Column("currency"),
                # the deal's own win probability in percent, when the CRM keeps one
                Column("probability", PERCENT),
                Column("created_at", TIMESTAMP, required=True),
                Column("closed_at", TIMESTAMP),
                Column("expected_close_date", DATE),
                Column("loss_reason"),
                Column("source"),
                Column("is_deleted", BOOLEAN),
                # ids of records merged into this one (HubSpot), separated by ';'
                Column("merged_from_ids"),
                # the account's name and industry as the deal export writes them (a Chinese
                # CRM's 商机 form carries 客户名称 and 所属行业): used when no account export
                # gives them, which wins when it does
                Column("account_name"),
                Column("industry"),
            ),
            key=("opportunity_id",),
            label="商机 / opportunities",
        ),
        Table(
            "stage_history",
            (
                Column("opportunity_id", required=True),
                Column("stage", required=True),
                Column("entered_at", TIMESTAMP, required=True),
                Column("is_deleted", BOOLEAN),
            ),
            key=("opportunity_id", "entered_at", "stage"),
            label="阶段历史 / stage history",
        ),
        Table(
            "activities",
            (
                Column("activity_id", required=True),
                Column("opportunity_id"),
                Column("account_id"),
                Column("owner_id"),
                Column("activity_type"),
                Column("occurred_at", TIMESTAMP, required=True),
                Column("duration_seconds", INTEGER),
                Column("subject"),
                Column("is_deleted", BOOLEAN),
            ),
            key=("activity_id",),
            label="跟进记录 / activities",
        ),
        Table(
            "accounts",
            (
                Column("account_id", required=True),
                Column("account_name"),
                Column("industry"),
                Column("employees", INTEGER),
                Column("annual_revenue", AMOUNT),
                Column("region"),
                Column("merged_into_id"),
                Column("is_deleted", BOOLEAN),
            ),
            key=("account_id",),
            label="客户 / accounts",
        ),
        Table(
            "owners",
            (
                Column("owner_id", required=True),
                Column("owner_name"),
                Column("team"),
                Column("manager_id"),
            ),
            key=("owner_id",),
            label="负责人 / owners",
        ),
        Table(
            "opportunity_snapshots",
            (
                Column("opportunity_id", required=True),
                Column("snapshot_date", DATE, required=True),
                Column("opportunity_name"),
                Column("account_id"),
                Column("owner_id"),
                Column("stage"),
                Column("status"),
                Column("amount", AMOUNT),
                Column("currency"),
                Column("created_at", TIMESTAMP),
                Column("closed_at", TIMESTAMP),
                Column("expected_close_date", DATE),
                Column("loss_reason"),
                Column("is_deleted", BOOLEAN),
            ),
            key=("opportunity_id", "snapshot_date"),
            label="商机快照 / opportunity snapshots",
        ),
        Table(
            "stage_definitions",
            (
                Column("stage", required=True),
                Column("stage_order", INTEGER),
                Column("is_closed", BOOLEAN),
                Column("is_won", BOOLEAN),
                Column("default_probability", INTEGER),
            ),
            key=("stage",),
            label="阶段定义 / stage definitions",
        ),
        Table(
            "targets",
            (
                # An owner's target, or a team's: it counts that owner's (team's) deals from
                # every source.
                Column("owner_id"),
                Column("team"),
                Column("month", MONTH, required=True),
                # in the installation's currency (oppwh.yml currency:) unless `currency` says
                Column("target_amount", AMOUNT, required=True),
                Column("currency"),
            ),
            key=("owner_id", "team", "month"),
            label="目标 / targets",
            one_of=("owner_id", "team"),
        ),
    )
}

# Lineage columns every raw row carries: where it came from.
LINEAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_system", "VARCHAR"),
    ("extra", "JSON"),
    ("_load_id", "BIGINT"),
    ("_file_name", "VARCHAR"),
    ("_row_number", "BIGINT"),
    ("_export_date", "DATE"),
    # canonical columns this row took from a mapping's defaults (comma-separated)
    ("_estimated", "VARCHAR"),
)

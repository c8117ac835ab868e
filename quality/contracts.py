"""The data contracts: for each canonical raw table, the checks a new export must pass.

Each check says what it protects, how severe a failure is, and how to fix it, in Chinese
and English. `block` stops the run before the marts change (the file is taken out of
`raw` again); `warn` lets the run go on and puts the problem in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BLOCK = "block"
WARN = "warn"

STATUS_WORDS = (
    "open",
    "won",
    "lost",
    "进行中",
    "跟进中",
    "赢单",
    "成交",
    "输单",
    "丢单",
    "closed won",
    "closed lost",
)
LOST_WORDS = ("lost", "输单", "丢单", "closed lost")
# The status words of a closed deal (won or lost), as dbt's normalise_status reads them.
CLOSED_WORDS = ("won", "赢单", "成交", "closed won", *LOST_WORDS)
# The params of a check on a closed deal's close date, which looks at closed deals only:
# Salesforce's CloseDate and HubSpot's closedate hold an open deal's expected close (in the
# future by design). A deal is closed by its status word, else (no status word the
# warehouse knows) by its stage, as in dbt (quality.validate.closed_deal_sql).
CLOSED_DEALS_ONLY = {"closed_words": CLOSED_WORDS, "status_words": STATUS_WORDS}
MAX_PLAUSIBLE_AMOUNT = 10_000_000_000  # 100亿: beyond this an amount is a typo


@dataclass(frozen=True)
class Check:
    """One expectation on the rows of one new export."""

    name: str
    table: str
    severity: str
    kind: str  # which expectation (see quality/validate.py)
    column: str
    label: str  # what is checked, Chinese / English
    fix: str  # what the user should do, Chinese / English
    params: dict[str, Any] = field(default_factory=dict)
    id_column: str | None = None


def _duplicate_ids(table: str, key: str, label: str) -> Check:
    return Check(
        f"{table}_{key}_unique_in_export",
        table,
        BLOCK,
        "unique_after_exact_duplicates",
        key,
        f"同一导出中{label}编号重复且内容不同 / "
        f"the same {key} twice in one export with different values",
        "在CRM中合并或删除重复记录后重新导出，再放入landing文件夹 / merge or delete the duplicate "
        "records in the CRM, export again and drop the corrected file into the landing folder",
        id_column=key,
    )


def _not_after_as_of(table: str, column: str, id_column: str, closed_only: bool = False) -> Check:
    return Check(
        f"{table}_{column}_not_after_as_of",
        table,
        WARN,
        "not_after_as_of",
        column,
        f"{column} 晚于统计日{'（已结单商机）' if closed_only else ''} / "
        f"{column} after the as-of day{' (closed deals)' if closed_only else ''}",
        "检查日期是否录错（年份、月日颠倒）/ "
        "check the date for typos (year, day and month swapped)",
        CLOSED_DEALS_ONLY if closed_only else {},
        id_column=id_column,
    )


CHECKS: tuple[Check, ...] = (
    # opportunities
    _duplicate_ids("opportunities", "opportunity_id", "商机"),
    Check(
        "opportunities_status_known",
        "opportunities",
        WARN,
        "in_set",
        "status",
        "状态不是 进行中/赢单/输单 / status is not open, won or lost",
        "在导出中使用 进行中/赢单/输单，或在映射文件的 values.status 中翻译 / use open/won/lost "
        "(进行中/赢单/输单) or translate the word in your mapping's values.status",
        {"values": STATUS_WORDS, "lowercase": True},
        "opportunity_id",
    ),
    Check(
        "opportunities_stage_known",
        "opportunities",
        WARN,
        "known_stage",
        "stage",
        "阶段名称未定义（如 签约成交）/ stage name not defined (e.g. 签约成交)",
        "在落地目录放入阶段定义导出（stage_definitions：source_system, stage, stage_order, "
        "is_closed, is_won）/ drop a stage_definitions export into landing (source_system, "
        "stage, stage_order, is_closed, is_won; README: Your own stages)",
        {},
        "opportunity_id",
    ),
    Check(
        "opportunities_amount_not_negative",
        "opportunities",
        WARN,
        "between",
        "amount",
        "金额为负数 / negative amount",
        "修正CRM中的金额 / correct the amount in the CRM",
        {"min_value": 0},
        "opportunity_id",
    ),
    Check(
        "opportunities_amount_plausible",
        "opportunities",
        WARN,
        "between",
        "amount",
        "金额超过100亿，可能录错 / amount above 10 billion, probably a typo",
        "检查单位（元/万元）和多余的零 / check the unit (元 or 万元) and extra zeros",
        {"max_value": MAX_PLAUSIBLE_AMOUNT},
        "opportunity_id",
    ),
    Check(
        "opportunities_probability_in_range",
        "opportunities",
        WARN,
        "between",
        "probability",
        "赢率不在0–100之间 / win probability outside 0–100",
        "在CRM中把赢率改为百分数 / set the probability in the CRM as a percent",
        {"min_value": 0, "max_value": 100},
        "opportunity_id",
    ),
    Check(
        "opportunities_closed_after_created",
        "opportunities",
        WARN,
        "a_not_before_b",
        "closed_at",
        "结单早于创建 / closed before created",
        "修正结单日期或创建日期 / correct the close or the creation date",
        {"other": "created_at", **CLOSED_DEALS_ONLY},
        "opportunity_id",
    ),
    _not_after_as_of("opportunities", "created_at", "opportunity_id"),
    _not_after_as_of("opportunities", "closed_at", "opportunity_id", closed_only=True),
    Check(
        "opportunities_lost_has_reason",
        "opportunities",
        WARN,
        "not_null_when_lost",
        "loss_reason",
        "输单未填写原因 / lost deal without a reason",
        "要求销售在输单时填写输单原因（可设为必填）/ ask reps to give a reason when a deal is "
        "lost (make the field required)",
        {},
        "opportunity_id",
    ),
    Check(
        "opportunities_has_owner",
        "opportunities",
        WARN,
        "not_null",
        "owner_id",
        "商机没有负责人 / deal without an owner",
        "每个商机必须有且只有一个负责人：在CRM中分配 / every deal needs exactly one owner: "
        "assign one in the CRM",
        {},
        "opportunity_id",
    ),
    # stage history
    Check(
        "stage_history_opportunity_known",
        "stage_history",
        WARN,
        "not_null",
        "opportunity_id",
        "阶段历史缺少商机编号 / stage history row without an opportunity id",
        "检查导出是否包含商机编号列 / check the export includes the opportunity id",
        {},
        None,
    ),
    Check(
        "stage_history_stage_known",
        "stage_history",
        WARN,
        "known_stage",
        "stage",
        "阶段名称未定义 / stage name not defined",
        "在落地目录放入阶段定义导出（stage_definitions）/ drop a stage_definitions export "
        "into landing (README: Your own stages)",
        {},
        "opportunity_id",
    ),
    _not_after_as_of("stage_history", "entered_at", "opportunity_id"),
    # activities
    _duplicate_ids("activities", "activity_id", "跟进记录"),
    Check(
        "activities_type_known",
        "activities",
        WARN,
        "known_activity_type",
        "activity_type",
        "跟进方式不在已知类型中（记为other）/ activity type not known (counted as other)",
        "在 dbt_project/seeds/activity_type_map.csv 中加入该词 / add the word to "
        "dbt_project/seeds/activity_type_map.csv",
        {},
        "activity_id",
    ),
    Check(
        "activities_duration_not_negative",
        "activities",
        WARN,
        "between",
        "duration_seconds",
        "通话时长为负 / negative duration",
        "修正时长 / correct the duration",
        {"min_value": 0},
        "activity_id",
    ),
    _not_after_as_of("activities", "occurred_at", "activity_id"),
    # accounts
    _duplicate_ids("accounts", "account_id", "客户"),
    Check(
        "accounts_has_industry",
        "accounts",
        WARN,
        "not_null",
        "industry",
        "客户没有行业 / account without an industry",
        "在CRM中补全所属行业（评分和周期分析要用）/ fill in the industry in the CRM (scoring and "
        "cycle-time segments use it)",
        {},
        "account_id",
    ),
    Check(
        "accounts_employees_not_negative",
        "accounts",
        WARN,
        "between",
        "employees",
        "员工数为负 / negative head count",
        "修正人员规模 / correct the head count",
        {"min_value": 0},
        "account_id",
    ),
    # owners, snapshots, stage definitions
    _duplicate_ids("owners", "owner_id", "负责人"),
    Check(
        "opportunity_snapshots_unique_in_export",
        "opportunity_snapshots",
        BLOCK,
        "unique_after_exact_duplicates",
        "opportunity_id",
        "同一导出中商机重复且内容不同 / the same opportunity twice in one export with different "
        "values",
        "在CRM中合并重复商机后重新导出 / merge the duplicates in the CRM and export again",
        {"with": ("snapshot_date",)},
        "opportunity_id",
    ),
    Check(
        "targets_unique_in_export",
        "targets",
        BLOCK,
        "unique_after_exact_duplicates",
        "month",
        "同一导出中同一负责人（团队）同月有两个不同目标 / the same owner's (team's) month twice in "
        "one export with different targets",
        "在目标表中每个负责人或团队每月只保留一行后重新导出 / keep one row per owner or team and "
        "month, then export again",
        {"with": ("owner_id", "team")},
        "month",
    ),
    Check(
        "stage_definitions_unique_in_export",
        "stage_definitions",
        BLOCK,
        "unique_after_exact_duplicates",
        "stage",
        "阶段定义重复 / a stage defined twice with different values",
        "修正阶段定义导出 / correct the stage export",
        {},
        "stage",
    ),
)


def checks_for(table: str) -> list[Check]:
    return [c for c in CHECKS if c.table == table]


def check_by_name(name: str) -> Check | None:
    return next((c for c in CHECKS if c.name == name), None)

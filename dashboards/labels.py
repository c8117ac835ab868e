"""Every label the dashboards show, in Chinese and English."""

from __future__ import annotations

from warehouse.display import LOSS_CATEGORIES

LANGUAGES = {"中文": "zh", "English": "en"}

LABELS: dict[str, tuple[str, str]] = {
    "title": ("商机数仓", "Opportunity warehouse"),
    "language": ("语言", "Language"),
    "page": ("页面", "Page"),
    "overview": ("总览", "Overview"),
    "lifecycle": ("生命周期", "Lifecycle"),
    "follow_up": ("跟进", "Follow-up"),
    "cycle_time": ("成交周期", "Cycle time"),
    "loss_reasons": ("输单原因", "Loss reasons"),
    "priority": ("优先级", "Priority"),
    "calibration": ("评级校验", "Calibration"),
    "forecast": ("预测与目标", "Forecast"),
    "quality": ("数据质量", "Data quality"),
    "filters": ("筛选", "Filters"),
    "choose": ("请选择", "Choose options"),
    "owner": ("负责人", "Owner"),
    "team": ("团队", "Team"),
    "industry": ("行业", "Industry"),
    "created_between": ("创建日期", "Created between"),
    "as_of": ("统计日", "As of"),
    "no_data": ("没有数据：先运行 oppwh run", "No data: run `oppwh run` first"),
    "open_deals": ("进行中商机", "Open deals"),
    "open_pipeline": ("在途金额", "Open pipeline"),
    "weighted_pipeline": ("加权金额", "Weighted pipeline"),
    "win_rate": ("赢率", "Win rate"),
    "stale_deals": ("停滞商机", "Stale deals"),
    "share_unspecified": ("未填输单原因占比", "Losses without a reason"),
    "pipeline_by_stage": ("各阶段在途商机", "Open pipeline by stage"),
    "funnel": ("漏斗", "Funnel"),
    "win_rate_trend": ("赢率趋势（按结单月份）", "Win rate by month of close"),
    "stage": ("阶段", "Stage"),
    "deals": ("商机数", "Deals"),
    "amount": ("金额", "Amount"),
    "month": ("月份", "Month"),
    "week": ("周", "Week"),
    "reached": ("到达", "Reached"),
    "conversion": ("转化率（相对首阶段）", "Conversion from the first stage"),
    "median_days": ("中位天数", "Median days"),
    "p90_days": ("90分位天数", "P90 days"),
    "time_per_stage": ("各阶段停留时间", "Time per stage"),
    "regressions": ("阶段倒退", "Regressions"),
    "bottlenecks": ("瓶颈阶段", "Bottlenecks"),
    "visits": ("访问次数", "Visits"),
    "stale_list": ("停滞商机（超过阈值未跟进）", "Stale deals (untouched too long)"),
    "days_since": ("距上次跟进天数", "Days since last touch"),
    "touches_per_week": ("每人每周跟进次数", "Touches per owner per week"),
    "touches": ("跟进次数", "Touches"),
    "touches_by_outcome": ("赢单与输单前的跟进次数", "Touches before a win vs a loss"),
    "outcome": ("结果", "Outcome"),
    "avg_touches": ("平均跟进次数", "Average touches"),
    "segment": ("分组维度", "Segment by"),
    "cycle_by_segment": ("各分组成交周期（天）", "Cycle time by segment (days)"),
    "percentile": ("分位", "Percentile"),
    "days": ("天数", "Days"),
    "pareto": ("输单原因帕累托图", "Loss reasons (pareto)"),
    "category": ("原因类别", "Category"),
    "cumulative": ("累计占比", "Cumulative share"),
    "unspecified_by_month": ("各月未填原因占比", "Share without a reason, by month"),
    "unspecified_by_owner": ("各负责人未填原因占比", "Share without a reason, by owner"),
    "grade": ("等级", "Grade"),
    "score": ("评分", "Score"),
    "reasons": ("原因", "Reasons"),
    "trend": ("趋势", "Trend"),
    "deals_by_grade": ("各等级商机", "Open deals by grade"),
    "download": ("下载CSV", "Download CSV"),
    "win_rate_by_grade": ("各等级历史赢率", "Win rate by grade on past deals"),
    "lift": ("提升倍数", "Lift"),
    "verdict_ok": (
        "{source}：评级通过回测（AUC {auc}，{n} 个历史商机），已回写CRM",
        "{source}: grades validated on {n} past deals (AUC {auc}); written back to the CRM",
    ),
    "verdict_bad": (
        "{source}：评级未优于随机（{why}）；评分保留在数据集中，{status}",
        "{source}: grades no better than chance ({why}); scores stay in the marts, {status}",
    ),
    "withheld": ("未回写CRM", "nothing written back to the CRM"),
    "written_anyway": (
        "仍已回写（writeback_gate: always）",
        "written anyway (writeback_gate: always)",
    ),
    "period": ("期间", "Period"),
    "latest_report": ("最新质量报告", "Latest quality report"),
    "completeness": ("各负责人数据完整度", "Data completeness by owner"),
    "severity": ("严重程度", "Severity"),
    "check": ("检查", "Check"),
    "failing_rows": ("问题行数", "Failing rows"),
    "file": ("文件", "File"),
    "fix": ("处理方法", "Fix"),
    "all_passed": (
        "最近一次报告没有未通过的检查（数据完整度见下）",
        "No failing check in the latest report (completeness below)",
    ),
    "no_match": ("没有符合筛选条件的数据", "No data for these filters"),
    "ignores_filters": (
        "本页内容不受左侧筛选影响（按来源系统汇总）",
        "This page does not follow the filters (it is summed per source system)",
    ),
    "load_ledger": ("文件加载记录", "Load ledger"),
    "status": ("状态", "Status"),
    "name": ("名称", "Name"),
    "opportunity": ("商机", "Opportunity"),
    "forecast_by_month": (
        "各月预期赢单（80%区间）与目标",
        "Expected wins per month (80% interval) and target",
    ),
    "forecast_interval_note": (
        "柱为预期赢单金额，竖线为80%区间，菱形为目标；只按负责人和团队筛选",
        "Bars: expected won amount; lines: the 80% interval; diamonds: the target. "
        "Follows the owner and team filters only",
    ),
    "attainment_table": ("目标达成与管道覆盖", "Attainment and coverage"),
    "accuracy_history": (
        "历史预测准确度（月初预测 vs 实际）",
        "Forecast accuracy (made at each month's start vs won)",
    ),
    "accuracy_note": (
        "每月初用当时已知的数据重新预测，与当月月初在手商机的实际赢单对比；不随筛选变化",
        "Each month's forecast made again from what was known at its start, against what "
        "the deals open then won; not filtered",
    ),
    "series": ("系列", "Series"),
    "target_amount": ("目标金额", "Target"),
}

# Column names of the marts as shown in tables.
COLUMNS: dict[str, tuple[str, str]] = {
    "grade": ("等级", "Grade"),
    "score": ("评分", "Score"),
    "trend": ("趋势", "Trend"),
    "opportunity_id": ("商机编号", "Opportunity id"),
    "opportunity_name": ("商机名称", "Opportunity"),
    "owner_name": ("负责人", "Owner"),
    "owner": ("负责人", "Owner"),
    "stage": ("阶段", "Stage"),
    "amount_reporting": ("金额", "Amount"),
    "reasons": ("原因", "Reasons"),
    "days_since": ("距上次跟进天数", "Days since last touch"),
    "stage_order": ("阶段顺序", "Stage order"),
    "visits": ("访问次数", "Visits"),
    "median_days": ("中位天数", "Median days"),
    "p90_days": ("90分位天数", "P90 days"),
    "regressions": ("倒退次数", "Regressions"),
    "segment": ("分组", "Segment"),
    "outcome": ("结果", "Outcome"),
    "deals": ("商机数", "Deals"),
    "p50_days": ("中位天数", "P50 days"),
    "p75_days": ("75分位天数", "P75 days"),
    "slowest_stage": ("最慢阶段", "Slowest stage"),
    "period": ("期间", "Period"),
    "closed_deals": ("已关闭商机", "Closed deals"),
    "won_deals": ("赢单数", "Won"),
    "win_rate": ("赢率", "Win rate"),
    "base_win_rate": ("基准赢率", "Base win rate"),
    "lift": ("提升倍数", "Lift"),
    "source_system": ("来源系统", "Source"),
    "severity": ("严重程度", "Severity"),
    "check_name": ("检查", "Check"),
    "table_name": ("表", "Table"),
    "file_name": ("文件", "File"),
    "failing_rows": ("问题行数", "Failing rows"),
    "description": ("说明", "Description"),
    "fix": ("处理方法", "Fix"),
    "fill_rate_amount": ("金额填写率", "Amount filled"),
    "fill_rate_expected_close_date": ("预计成交日期填写率", "Close date filled"),
    "fill_rate_industry": ("行业填写率", "Industry filled"),
    "fill_rate_loss_reason": ("输单原因填写率", "Loss reason filled"),
    "data_completeness": ("数据完整度", "Completeness"),
    "recorded_at": ("时间", "When"),
    "status": ("状态", "Status"),
    "rows_loaded": ("加载行数", "Rows loaded"),
    "rows_rejected": ("拒绝行数", "Rows rejected"),
    "message": ("说明", "Message"),
    "month": ("月份", "Month"),
    "name": ("名称", "Name"),
    "target_level": ("层级", "Level"),
    "target_amount": ("目标金额", "Target"),
    "won_amount": ("已赢单金额", "Won"),
    "attainment": ("达成率", "Attainment"),
    "open_pipeline": ("当月到期管道", "Pipeline due"),
    "expected_amount": ("预期赢单", "Expected"),
    "coverage": ("覆盖倍数", "Coverage (x)"),
    "gap": ("缺口", "Gap"),
    "low_amount": ("区间下限", "Low (80%)"),
    "high_amount": ("区间上限", "High (80%)"),
    "weighted_pipeline_stage": ("阶段赢率加权", "Stage-weighted"),
    "forecast_amount": ("月初预测", "Forecast"),
    "baseline_amount": ("阶段赢率基准", "Stage baseline"),
    "actual_from_open_deals": ("月初在手商机实际赢单", "Won from deals open then"),
    "actual_amount": ("当月全部赢单", "All won in month"),
    "forecast_abs_error_pct": ("预测误差率", "Forecast error"),
    "baseline_abs_error_pct": ("基准误差率", "Baseline error"),
    "is_within_interval": ("落在区间内", "Within interval"),
}

# Loss-reason categories and trend words, as shown.
VALUES: dict[str, tuple[str, str]] = {
    **LOSS_CATEGORIES,
    "won": ("赢单", "won"),
    "lost": ("输单", "lost"),
    "new": ("新", "new"),
    "improving": ("上升", "improving"),
    "steady": ("持平", "steady"),
    "declining": ("下降", "declining"),
}

PAGES = (
    "overview",
    "lifecycle",
    "follow_up",
    "cycle_time",
    "loss_reasons",
    "priority",
    "calibration",
    "forecast",
    "quality",
)


def label(key: str, lang: str) -> str:
    zh, en = LABELS[key]
    return zh if lang == "zh" else en


def column_label(name: str, lang: str) -> str:
    zh, en = COLUMNS.get(name, (name, name))
    return zh if lang == "zh" else en


def value_label(value, lang: str):
    if not isinstance(value, str) or value not in VALUES:
        return value
    zh, en = VALUES[value]
    return zh if lang == "zh" else en

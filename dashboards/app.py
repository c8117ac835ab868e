"""The managers' dashboards (Streamlit), over the read-only serving copy.

Start with `oppwh dashboard`; the data folder comes from OPPWH_DATA_DIR (default data/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboards.formats import axis, column_kind, reasons_in  # noqa: E402
from dashboards.labels import LANGUAGES, PAGES, column_label, label, value_label  # noqa: E402
from dashboards.queries import Filters, query  # noqa: E402
from warehouse.display import format_amount  # noqa: E402
from warehouse.layout import DataFolder  # noqa: E402
from warehouse.spreadsheet_safe import safe_csv_bytes, safe_rows  # noqa: E402

SERVING = DataFolder.from_env().serving

st.set_page_config(page_title="商机数仓 / Opportunity warehouse", layout="wide")


# The language of the page being drawn (set by main() on every rerun).
LANG = {"current": "zh"}


def money(value) -> str:
    """Amounts as the reader's language writes them: 1.2亿 / 6,201万 (zh), 62M (en)."""
    return format_amount(value, None, LANG["current"])


def pct(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.0%}"


def has_data(frame: pd.DataFrame) -> bool:
    """False, with a plain note in the page's language, when the filters match nothing."""
    if frame.empty:
        st.info(label("no_match", LANG["current"]))
        return False
    return True


# Columns whose values are codes (won, improving, price...): shown in the page's language.
CODED_COLUMNS = ("outcome", "trend", "category", "loss_reason_category")


def coded_in(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The frame with its coded values in `lang` (a copy)."""
    shown = frame.copy()
    for column in CODED_COLUMNS:
        if column in shown:
            shown[column] = shown[column].map(lambda v: value_label(v, lang))
    return shown


def legend(color: str) -> alt.Color:
    """A colour encoding whose legend title is in the page's language."""
    return alt.Color(color, title=label(color.split(":")[0], LANG["current"]))


def bar(frame: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, sort=None, color=None):
    if not has_data(frame):
        return
    chart = (
        alt.Chart(coded_in(frame, LANG["current"]))
        .mark_bar()
        .encode(
            x=alt.X(x, title=x_title, sort=sort, axis=axis(x, LANG["current"])),
            y=alt.Y(y, title=y_title, axis=axis(y, LANG["current"])),
            tooltip=list(frame.columns),
        )
    )
    if color:
        chart = chart.encode(color=legend(color))
    st.altair_chart(chart, width="stretch")


def line(frame: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, color=None):
    if not has_data(frame):
        return
    chart = (
        alt.Chart(coded_in(frame, LANG["current"]))
        .mark_line(point=True)
        .encode(
            x=alt.X(x, title=x_title, axis=axis(x, LANG["current"])),
            y=alt.Y(y, title=y_title, axis=axis(y, LANG["current"])),
            tooltip=list(frame.columns),
        )
    )
    if color:
        chart = chart.encode(color=legend(color))
    st.altair_chart(chart, width="stretch")


class Translator:
    """t("key") gives the label in the chosen language; t.lang is that language."""

    def __init__(self, lang: str):
        self.lang = lang

    def __call__(self, key: str) -> str:
        return label(key, self.lang)


def table(frame: pd.DataFrame, lang: str) -> None:
    """A table with its column names and coded values in the chosen language."""
    if not has_data(frame):
        return
    shown = coded_in(frame, lang)
    if "reasons" in shown:
        shown["reasons"] = shown["reasons"].map(lambda v: reasons_in(v, lang))
    # Streamlit's own table download writes the values it is given: free text goes in
    # neutralised, so that file opens in a spreadsheet without running anything either.
    shown = pd.DataFrame(list(safe_rows(shown)), columns=shown.columns, index=shown.index)
    config = {}
    for column in shown.columns:
        kind = column_kind(column)
        if kind == "amount" and lang == "zh":  # 万 / 亿: shown as text
            shown[column] = shown[column].map(money)
        elif kind == "amount":
            config[column_label(column, lang)] = st.column_config.NumberColumn(format="compact")
        elif kind == "rate":
            config[column_label(column, lang)] = st.column_config.NumberColumn(format="percent")
        elif kind == "days":
            config[column_label(column, lang)] = st.column_config.NumberColumn(format="%d")
        elif column == "reasons":  # read in full, not cut at the column's edge
            config[column_label(column, lang)] = st.column_config.TextColumn(width="large")
    st.dataframe(
        shown.rename(columns=lambda c: column_label(c, lang)), hide_index=True, column_config=config
    )


def sidebar() -> tuple[str, str, Filters]:
    lang = LANGUAGES[st.sidebar.radio("语言 / Language", list(LANGUAGES), horizontal=True)]
    t = Translator(lang)
    page = st.sidebar.radio(t("page"), PAGES, format_func=t)
    st.sidebar.subheader(t("filters"))
    options = query(SERVING, "filter_options")
    pick = lambda kind: tuple(options.loc[options["kind"] == kind, "value"])  # noqa: E731
    owners = st.sidebar.multiselect(t("owner"), pick("owner"), placeholder=t("choose"))
    teams = st.sidebar.multiselect(t("team"), pick("team"), placeholder=t("choose"))
    industries = st.sidebar.multiselect(t("industry"), pick("industry"), placeholder=t("choose"))
    dates = st.sidebar.date_input(t("created_between"), value=(), format="YYYY-MM-DD")
    start, end = (
        (tuple(dates) + (None, None))[:2] if isinstance(dates, tuple | list) else (dates, None)
    )
    as_of = pd.Timestamp(query(SERVING, "as_of")["as_of"].iloc[0]).date()
    st.sidebar.caption(f"{t('as_of')}: {as_of}")
    return lang, page, Filters(tuple(owners), tuple(teams), tuple(industries), start, end)


def panel(t, f: Filters, chart, name: str, x: str, y: str, **options) -> None:
    """A titled chart of one named query; the title and axis titles come from the labels."""
    st.subheader(t(name))
    chart(query(SERVING, name, f), x, y, t(x.split(":")[0]), t(y), **options)


def overview(t, f: Filters):
    h = query(SERVING, "headline", f).iloc[0]
    cols = st.columns(6)
    count = lambda v: 0 if pd.isna(v) else int(v)  # noqa: E731 - no deal matches: 0, not NaN
    cols[0].metric(t("open_deals"), count(h["open_deals"]))
    cols[1].metric(t("open_pipeline"), money(h["open_pipeline"]))
    cols[2].metric(t("weighted_pipeline"), money(h["weighted_pipeline"]))
    cols[3].metric(t("win_rate"), pct(h["win_rate"]))
    cols[4].metric(t("stale_deals"), count(h["stale_deals"]))
    cols[5].metric(t("share_unspecified"), pct(h["share_unspecified"]))
    left, right = st.columns(2)
    with left:
        panel(t, f, bar, "pipeline_by_stage", "stage", "amount", sort=None)
    with right:
        panel(t, f, bar, "funnel", "stage", "conversion", sort=None)
    panel(t, f, line, "win_rate_trend", "month:T", "win_rate")


def lifecycle(t, f: Filters):
    data = query(SERVING, "time_per_stage", f)
    left, right = st.columns(2)
    with left:
        st.subheader(t("time_per_stage"))
        bar(data, "stage", "median_days", t("stage"), t("median_days"), sort=None)
    with right:
        st.subheader(t("regressions"))
        bar(data, "stage", "regressions", t("stage"), t("regressions"), sort=None)
    st.subheader(t("bottlenecks"))
    table(data.sort_values("median_days", ascending=False), t.lang)


def follow_up(t, f: Filters):
    st.subheader(t("stale_list"))
    table(query(SERVING, "stale_deals", f), t.lang)
    left, right = st.columns(2)
    with left:
        panel(t, f, line, "touches_per_week", "week:T", "touches", color="owner:N")
    with right:
        panel(t, f, bar, "touches_by_outcome", "outcome", "avg_touches")


def cycle_time(t, f: Filters):
    if f.is_set():
        st.caption(t("ignores_filters"))
    segment = st.selectbox(
        t("segment"),
        ["industry", "size_band", "amount_band", "lead_source", "owner", "customer_type", "all"],
    )
    data = query(SERVING, "cycle_by_segment", f, segment_type=segment)
    st.subheader(t("cycle_by_segment"))
    long = data.melt(
        id_vars=["segment", "outcome"],
        value_vars=["p50_days", "p75_days", "p90_days"],
        var_name="percentile",
        value_name="days",
    )
    # the legend and the outcomes in the page's language
    long["percentile"] = long["percentile"].map(lambda c: column_label(c, t.lang))
    bar(long, "segment", "days", t("segment"), t("days"), color="percentile:N")
    table(data, t.lang)


def loss_reasons(t, f: Filters):
    data = query(SERVING, "pareto", f)
    data = coded_in(data, t.lang)
    if not data.empty:
        data["cumulative"] = data["deals"].cumsum() / data["deals"].sum()
    st.subheader(t("pareto"))
    if has_data(data):
        pareto_chart(data, t)
    left, right = st.columns(2)
    with left:
        panel(t, f, line, "unspecified_by_month", "month:T", "share_unspecified")
    with right:
        panel(t, f, bar, "unspecified_by_owner", "owner", "share_unspecified", sort="-y")


def pareto_chart(data: pd.DataFrame, t) -> None:
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("category", sort="-y", title=t("category")), y=alt.Y("deals", title=t("deals"))
        )
    )
    cumulative = (
        alt.Chart(data)
        .mark_line(point=True, color="#d62728")
        .encode(
            x=alt.X("category", sort="-y"),
            y=alt.Y("cumulative", title=t("cumulative"), axis=alt.Axis(format="%")),
        )
    )
    st.altair_chart(alt.layer(bars, cumulative).resolve_scale(y="independent"), width="stretch")


def verdicts(t) -> None:
    """Each source's backtest verdict: whether its grades beat chance and went to the CRM."""
    for row in query(SERVING, "validation").itertuples():
        auc = "–" if pd.isna(row.auc) else f"{row.auc:.2f}"
        if row.is_better_than_chance:
            st.success(
                t("verdict_ok").format(source=row.source_system, auc=auc, n=row.closed_deals_scored)
            )
        else:
            status = t("withheld") if row.writeback_status == "withheld" else t("written_anyway")
            st.warning(
                t("verdict_bad").format(source=row.source_system, why=row.why or "", status=status)
            )


def priority(t, f: Filters):
    verdicts(t)
    data = query(SERVING, "priority", f)
    st.subheader(t("deals_by_grade"))
    counts = data.groupby("grade", as_index=False).size().rename(columns={"size": "deals"})
    bar(counts, "grade", "deals", t("grade"), t("deals"))
    table(data, t.lang)
    st.download_button(
        t("download"),
        safe_csv_bytes(data),  # no formula reaches a spreadsheet; ids byte for byte
        file_name="priority.csv",
        mime="text/csv",
    )


def calibration(t, f: Filters):
    if f.is_set():
        st.caption(t("ignores_filters"))
    verdicts(t)
    data = query(SERVING, "calibration")
    for source, rows in data.groupby("source_system"):
        overall = rows[rows["period"] == "all"]
        st.subheader(f"{t('win_rate_by_grade')} · {source}")
        bar(overall, "grade", "win_rate", t("grade"), t("win_rate"))
        cols = st.columns(4)
        for col, row in zip(cols, overall.itertuples(), strict=False):
            col.metric(
                f"{row.grade} · {t('lift')}", "-" if pd.isna(row.lift) else f"{row.lift:.2f}"
            )
    table(data, t.lang)


# The normal's 90th percentile: a month's 80% interval from its rows' combined spread.
Z_80 = 1.2816


def forecast(t, f: Filters):
    st.subheader(t("forecast_by_month"))
    if f.industries or f.created_from or f.created_to:
        st.caption(t("ignores_filters"))
    data = query(SERVING, "forecast_by_month", f)
    if has_data(data):
        data["low_amount"] = (data["expected_amount"] - Z_80 * data["stddev_amount"]).clip(lower=0)
        data["high_amount"] = data["expected_amount"] + Z_80 * data["stddev_amount"]
        forecast_chart(data, t)
        st.caption(t("forecast_interval_note"))
    st.subheader(t("attainment_table"))
    table(query(SERVING, "attainment", f), t.lang)
    st.subheader(t("accuracy_history"))
    st.caption(t("accuracy_note"))
    accuracy = query(SERVING, "accuracy")
    if has_data(accuracy):
        long = accuracy.melt(
            id_vars=["month"],
            value_vars=["forecast_amount", "baseline_amount", "actual_from_open_deals"],
            var_name="series",
            value_name="amount",
        )
        long["series"] = long["series"].map(lambda c: column_label(c, t.lang))
        long = long.groupby(["month", "series"], as_index=False)["amount"].sum()
        line(long, "month:T", "amount", t("month"), t("amount"), color="series:N")
        table(accuracy, t.lang)


def forecast_chart(data: pd.DataFrame, t) -> None:
    """Expected won amount per month as bars, its 80% interval as a rule, the target as a
    diamond: will we make the month?"""
    lang = LANG["current"]
    data = data.assign(month=pd.to_datetime(data["month"]).dt.strftime("%Y-%m"))
    x = alt.X("month:O", title=t("month"), axis=alt.Axis(labelAngle=0))
    y_axis = axis("expected_amount", lang)
    bars = (
        alt.Chart(data)
        .mark_bar(opacity=0.8)
        .encode(
            x=x,
            y=alt.Y("expected_amount", title=column_label("expected_amount", lang), axis=y_axis),
            tooltip=list(data.columns),
        )
    )
    spread = alt.Chart(data).mark_rule(strokeWidth=2).encode(x=x, y="low_amount", y2="high_amount")
    target = (
        alt.Chart(data.dropna(subset=["target_amount"]))
        .mark_point(shape="diamond", size=120, filled=True, color="#d62728")
        .encode(x=x, y="target_amount")
    )
    st.altair_chart(alt.layer(bars, spread, target), width="stretch")


def quality(t, f: Filters):
    if f.is_set():
        st.caption(t("ignores_filters"))
    report = query(SERVING, "quality_report")
    st.subheader(t("latest_report"))
    if report.empty:
        st.success(t("all_passed"))
    else:
        table(report, t.lang)
    completeness = query(SERVING, "completeness", f)
    st.subheader(t("completeness"))
    bar(completeness, "owner", "data_completeness", t("owner"), t("completeness"), sort="y")
    table(completeness, t.lang)
    st.subheader(t("load_ledger"))
    table(query(SERVING, "load_ledger"), t.lang)


PAGE_FUNCTIONS = {
    "overview": overview,
    "lifecycle": lifecycle,
    "follow_up": follow_up,
    "cycle_time": cycle_time,
    "loss_reasons": loss_reasons,
    "priority": priority,
    "calibration": calibration,
    "forecast": forecast,
    "quality": quality,
}


def main() -> None:
    if not SERVING.exists():
        st.title("商机数仓 / Opportunity warehouse")
        st.warning("没有数据：先运行 oppwh run / No data: run `oppwh run` first")
        return
    lang, page, filters = sidebar()
    LANG["current"] = lang
    t = Translator(lang)
    st.title(f"{t('title')} · {t(page)}")
    PAGE_FUNCTIONS[page](t, filters)


main()

"""Priority grades: every open deal graded with reasons, grades that mean something on
past deals, history and trend, the YAML in control, and write-back files a CRM imports."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
from openpyxl import load_workbook

from ingestion.sample import generate_sample, write_sample
from orchestration.cli import main
from scoring.config import DEFAULT_CONFIG, load_config
from scoring.model import auc, build_scorer, calibrate, calibration_table, score_open_deals
from scoring.store import save_priority
from scoring.writeback import neutralise, write_exports
from tests.conftest import SAMPLE_AS_OF, query

pytestmark = pytest.mark.e2e
AS_OF_END = datetime(2025, 7, 1, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_every_open_deal_has_a_grade_and_a_reason_and_closed_ones_none(built_warehouse):
    db = built_warehouse / "serving.duckdb"
    open_ids = {
        r[0]
        for r in query(db, "SELECT opportunity_id FROM marts.opportunities WHERE status = 'open'")
    }
    graded = query(
        db,
        "SELECT opportunity_id, grade, score, reasons, trend, model_version "
        "FROM marts.opportunity_priority",
    )
    assert {r[0] for r in graded} == open_ids
    for _, grade, score, reasons, trend, version in graded:
        assert grade in "ABCD" and 0 <= score <= 100
        # in Chinese and in English, with a direction
        assert re.search(r"[\u4e00-\u9fff]", reasons) and re.search(r"[a-z]{4}", reasons)
        assert reasons.startswith(("▲", "▼"))
        assert trend == "new" and version.startswith("rules-")


def test_grades_order_win_rates_on_data_where_the_truth_is_known(tmp_path):
    # The sample's deals are won more often in some industries, with more follow-up and
    # further along the pipeline; a hoarding rep rarely wins. Grades must find that.
    write_sample(tmp_path / "landing", generate_sample(2000, 3, SAMPLE_AS_OF))
    assert main(["run", "--data-dir", str(tmp_path), "--as-of", SAMPLE_AS_OF.isoformat()]) == 0
    rows = dict(
        query(
            tmp_path / "serving.duckdb",
            "SELECT grade, win_rate FROM marts.grade_calibration WHERE period = 'all'",
        )
    )
    assert rows["A"] > rows["B"] > rows["C"] > rows["D"], rows
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        graded = calibrate(con, build_scorer(con, load_config(tmp_path)))
    assert auc(graded["score"].to_numpy(), graded["won"].to_numpy()) > 0.62
    # The forecast built on these grades, made at the start of each of the last six months
    # from what was known then, misses what was won by no more than the stage-probability
    # forecast of the same deals (the CRM's weighted pipeline).
    [(months, forecast_miss, baseline_miss)] = query(
        tmp_path / "serving.duckdb",
        "SELECT count(*), sum(abs(forecast_error)), sum(abs(baseline_error)) "
        "FROM marts.forecast_accuracy",
    )
    assert months == 6 and forecast_miss <= baseline_miss, (forecast_miss, baseline_miss)


def test_calibration_uses_only_what_was_known_before_the_close(warehouse_copy):
    config = load_config()
    graded = calibrate(warehouse_copy, build_scorer(warehouse_copy, config))
    closed = query_count(
        warehouse_copy, "SELECT count(*) FROM marts.opportunities WHERE status IN ('won', 'lost')"
    )
    assert len(graded) == closed
    # Scored as of 30 days before the close: a deal's own closing touches are not counted.
    from scoring.features import closed_deal_cutoffs, features_at

    cutoffs = closed_deal_cutoffs(warehouse_copy, 30)
    features = features_at(warehouse_copy, cutoffs[["source_system", "opportunity_id", "cutoff"]])
    merged = features.merge(cutoffs, on=["source_system", "opportunity_id"])
    assert (pd.to_datetime(merged["cutoff_x"]) < pd.to_datetime(merged["closed_at"])).all()
    assert (merged["days_since_touch"].dropna() > 0).all()


def test_a_deal_s_touch_and_stage_features_at_each_of_its_cutoffs_match_a_count_by_hand(
    warehouse_copy,
):
    """The same deals at three cutoffs each (as the backtest asks): each (deal, cutoff) row
    gets its own last touch, touches in the 30 days before the cutoff and in the 30 before
    those, and its stage then, counted here in pandas from the touches and visits."""
    from scoring.features import features_at

    touches = warehouse_copy.execute(
        "SELECT source_system, opportunity_id, occurred_at "
        "FROM intermediate.int_opportunity_touches"
    ).df()
    visits = warehouse_copy.execute(
        "SELECT source_system, opportunity_id, visit_number, stage, entered_at "
        "FROM marts.opportunity_lifecycle WHERE NOT is_closing_stage"
    ).df()
    busiest = touches.groupby(["source_system", "opportunity_id"]).size().nlargest(25).index
    tz = ZoneInfo("Asia/Shanghai")
    days = [datetime(2025, 3, 1, tzinfo=tz), datetime(2025, 5, 15, tzinfo=tz), AS_OF_END]
    cutoffs = pd.DataFrame(
        [(source, deal, day) for source, deal in busiest for day in days],
        columns=["source_system", "opportunity_id", "cutoff"],
    )
    got = features_at(warehouse_copy, cutoffs)
    assert len(got) == len(cutoffs)
    checked = 0
    for row in got.itertuples():
        cutoff = pd.Timestamp(row.cutoff).tz_convert(tz)
        mine = touches[
            (touches["source_system"] == row.source_system)
            & (touches["opportunity_id"] == row.opportunity_id)
        ]["occurred_at"].dt.tz_convert(tz)
        before = mine[mine < cutoff]
        last_30 = (before >= cutoff - pd.Timedelta(days=30)).sum()
        prev_30 = (
            (before >= cutoff - pd.Timedelta(days=60)) & (before < cutoff - pd.Timedelta(days=30))
        ).sum()
        assert (row.touches_30d, row.touches_prev_30d) == (last_30, prev_30), row
        if len(before):
            since = (cutoff - before.max()).total_seconds() / 86400
            assert abs(row.days_since_touch - since) < 1e-6
            checked += 1
        else:
            assert pd.isna(row.days_since_touch)
        stages = visits[
            (visits["source_system"] == row.source_system)
            & (visits["opportunity_id"] == row.opportunity_id)
            & (visits["entered_at"].dt.tz_convert(tz) < cutoff)
        ].sort_values("visit_number")
        if len(stages):
            assert row.stage == stages["stage"].iloc[-1], row
        else:  # no stage entered by then
            assert pd.isna(row.stage), row
    assert checked > 25  # most rows had touches before their cutoff


def query_count(con, sql):
    return con.execute(sql).fetchone()[0]


def test_changing_a_weight_changes_model_version_and_scores(warehouse_copy, tmp_path):
    before = load_config(tmp_path)
    first = score_open_deals(warehouse_copy, build_scorer(warehouse_copy, before), AS_OF_END)
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace("recency: 12", "recency: 30")
    (tmp_path / "scoring.yml").write_text(text, encoding="utf-8")
    after = load_config(tmp_path)
    second = score_open_deals(warehouse_copy, build_scorer(warehouse_copy, after), AS_OF_END)
    assert after.model_version != before.model_version
    assert (first["score"].to_numpy() != second["score"].to_numpy()).any()


def test_the_calibration_table_counts_each_grade_by_source_and_quarter():
    """Deals and wins per source, quarter (and 'all') and grade, counted here by hand; a
    past deal without a grade is in no count, a grade no deal got reads as no deals."""
    graded = pd.DataFrame(
        {
            "source_system": pd.array(["hubspot"] * 5 + ["native"] * 2, dtype="str"),
            "opportunity_id": [f"D{i}" for i in range(7)],
            "score": [90.0, 80.0, 70.0, 20.0, 50.0, 60.0, 40.0],
            "grade": ["A", "A", "B", "D", None, "A", "C"],
            "won": [True, False, True, False, True, True, False],
            "period": pd.array(
                ["2025-Q1", "2025-Q2", "2025-Q2", "2025-Q2", "2025-Q1", "2025-Q1", "2025-Q1"],
                dtype="str",
            ),
        }
    )
    table = calibration_table(graded, "v1")
    rows = {
        (r.source_system, r.period, r.grade): (r.closed_deals, r.won_deals, r.win_rate, r.lift)
        for r in table.itertuples()
    }
    # hubspot over all its graded deals: A 2 (1 won), B 1 (1), D 1 (0): base 2 of 4
    assert rows[("hubspot", "all", "A")] == (2, 1, 0.5, 1.0)
    assert rows[("hubspot", "all", "B")] == (1, 1, 1.0, 2.0)
    assert rows[("hubspot", "all", "C")][:2] == (0, 0)
    assert rows[("hubspot", "2025-Q2", "A")] == (1, 0, 0.0, 0.0)  # Q2: base 1 of 3
    assert rows[("hubspot", "2025-Q1", "A")] == (1, 1, 1.0, 1.0)  # Q1: only D0 graded
    assert rows[("native", "all", "C")] == (1, 0, 0.0, 0.0)
    assert len(table) == 4 * (3 + 2)  # hubspot all/Q1/Q2, native all/Q1; four grades each
    assert list(table["period"][:4]) == ["all"] * 4  # each source's 'all' first


def test_history_keeps_one_row_per_day_and_trend_compares_with_the_day_before(warehouse_copy):
    config = load_config()
    scorer = build_scorer(warehouse_copy, config)
    scored = score_open_deals(warehouse_copy, scorer, AS_OF_END)
    calibration = calibration_table(calibrate(warehouse_copy, scorer), scorer.model_version)
    save_priority(warehouse_copy, scored, calibration, date(2025, 6, 29), "v", 5)
    moved = scored.copy()
    moved.loc[0, "score"] += 10
    moved.loc[1, "score"] -= 10
    moved.loc[2, "score"] += 1
    for _ in range(2):  # a rerun of the same day replaces that day's rows
        today = save_priority(warehouse_copy, moved, calibration, date(2025, 6, 30), "v", 5)
    assert list(today["trend"][:3]) == ["improving", "declining", "steady"]
    days = warehouse_copy.execute(
        "SELECT scored_on, count(*) FROM marts.opportunity_priority_history GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [n for _, n in days] == [len(scored), len(scored)]


def test_previous_grade_is_each_deals_last_grade_before_the_day_on_any_day_order(warehouse_copy):
    """The previous grade (trend, write-back delta) is a deal's last grade before the day,
    on the usual next day (read from the kept latest grades), for a deal missing from the
    last day (closed, then open again), and on a rerun for a past day (read from the
    history). Expected figures from the history rows alone, in pandas."""
    config = load_config()
    scorer = build_scorer(warehouse_copy, config)
    scored = score_open_deals(warehouse_copy, scorer, AS_OF_END)
    calibration = calibration_table(calibrate(warehouse_copy, scorer), scorer.model_version)
    gone = scored["opportunity_id"].iloc[0]

    def day(n: int, shift: float, without: str | None = None) -> pd.DataFrame:
        frame = scored[scored["opportunity_id"] != without].copy()
        frame["score"] = (frame["score"] + shift * (frame.index % 3 - 1)).clip(0, 100)
        return frame.reset_index(drop=True)

    def expected(as_of: date) -> dict:
        history = warehouse_copy.execute(
            "SELECT opportunity_id, scored_on, score, grade FROM marts.opportunity_priority_history"
        ).df()
        before = history[history["scored_on"] < pd.Timestamp(as_of)]
        last = before.sort_values("scored_on").groupby("opportunity_id").tail(1)
        return {r.opportunity_id: (r.score, r.grade) for r in last.itertuples()}

    first = SAMPLE_AS_OF + timedelta(days=1)  # the days after the sample's own run
    runs = [
        (first, day(1, 0)),
        (first + timedelta(days=1), day(2, 7, without=gone)),  # the deal is not open that day
        (first + timedelta(days=2), day(3, 4)),  # open again: its previous grade is the first's
        (first + timedelta(days=1), day(4, 9, without=gone)),  # a rerun for a past day
        (first + timedelta(days=3), day(5, 2)),
    ]
    for as_of, frame in runs:
        want = expected(as_of)
        today = save_priority(warehouse_copy, frame, calibration, as_of, "v", 5)
        got = {
            r.opportunity_id: (r.previous_score, r.previous_grade)
            for r in today.itertuples()
            if isinstance(r.previous_grade, str)
        }
        assert got == {k: v for k, v in want.items() if k in set(frame["opportunity_id"])}
    assert len(got) == len(scored)
    # after the last run the kept grades agree with the history, row for row
    kept = warehouse_copy.execute(
        "SELECT opportunity_id, scored_on, score, grade FROM state.latest_grades ORDER BY 1"
    ).fetchall()
    newest = warehouse_copy.execute(
        "SELECT opportunity_id, max(scored_on), arg_max(score, scored_on), "
        "arg_max(grade, scored_on) FROM marts.opportunity_priority_history GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert kept == newest


def test_learned_mode_falls_back_to_rules_with_a_clear_message(warehouse_copy, tmp_path):
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace("mode: rules", "mode: learned")
    (tmp_path / "scoring.yml").write_text(text, encoding="utf-8")
    scorer = build_scorer(warehouse_copy, load_config(tmp_path))
    assert scorer.model is None and "at least 200 won and 200 lost" in scorer.note
    (tmp_path / "scoring.yml").write_text(
        text.replace("min_won: 200", "min_won: 20").replace("min_lost: 200", "min_lost: 20"),
        encoding="utf-8",
    )
    scorer = build_scorer(warehouse_copy, load_config(tmp_path))
    assert scorer.model is not None and scorer.model_version.startswith("learned-")
    scored = score_open_deals(warehouse_copy, scorer, AS_OF_END)
    assert scored["reasons"].str.len().min() > 0
    graded = calibrate(warehouse_copy, scorer)
    assert (
        0
        < len(graded)
        < query_count(
            warehouse_copy,
            "SELECT count(*) FROM marts.opportunities WHERE status IN ('won', 'lost')",
        )
    )


def test_writeback_files_reimport_with_the_source_ids(built_warehouse):
    folder = built_warehouse / "exports" / "native"
    stamp = SAMPLE_AS_OF.strftime("%Y%m%d")
    with (folder / "priority_latest.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["商机编号", "优先级", "评分", "评分原因"]
    db = built_warehouse / "serving.duckdb"
    expected = dict(query(db, "SELECT opportunity_id, grade FROM marts.opportunity_priority"))
    assert {r["商机编号"]: r["优先级"] for r in rows} == expected
    assert (folder / f"priority_{stamp}.csv").read_bytes() == (
        folder / "priority_latest.csv"
    ).read_bytes()
    sheet = load_workbook(folder / f"priority_delta_{stamp}.xlsx").active
    ids = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sorted(ids) == sorted(expected)  # first scoring day: every grade is new


def test_salesforce_writeback_and_hostile_values_neutralised(tmp_path):
    today = pd.DataFrame(
        {
            "source_system": ["salesforce", "cn_crm", "cn_crm"],
            "opportunity_id": ["006A0000001", '=HYPERLINK("http://evil","x")', "@SUM(1+1)"],
            "score": [71.0, 40.0, 12.5],
            "grade": ["A", "C", "D"],
            "reasons": ["▲ ok", "+cmd|' /C calc'!A0", "-2+3"],
            "previous_grade": ["A", None, "C"],
        }
    )
    result = write_exports(today, tmp_path, date(2025, 6, 30), load_config(), xlsx_max_rows=2)
    with (tmp_path / "salesforce" / "priority_latest.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {
            "Id": "006A0000001",
            "Priority_Grade__c": "A",
            "Priority_Score__c": "71.0",
            "Priority_Reasons__c": "▲ ok",
        }
    ]
    with (tmp_path / "cn_crm" / "priority_latest.csv").open(encoding="utf-8-sig") as handle:
        cn = list(csv.DictReader(handle))
    # Record ids are written byte for byte (an altered id no longer matches its record on
    # import); every free-text cell is neutralised.
    assert [row["商机编号"] for row in cn] == ['=HYPERLINK("http://evil","x")', "@SUM(1+1)"]
    reasons = [row["评分原因"] for row in cn]
    assert "'+cmd|' /C calc'!A0" in reasons and "'-2+3" in reasons
    free_text = [v for row in cn for k, v in row.items() if k != "商机编号"]
    assert not any(v.startswith(("=", "+", "-", "@")) for v in free_text)
    # the salesforce delta is empty (grade unchanged); cn_crm's has 2 rows -> 2 workbooks of 1
    assert (tmp_path / "cn_crm" / "priority_delta_20250630_part2.xlsx").exists()
    assert any("split into 2 files" in m for m in result.messages)
    assert neutralise("\t=1") == "'\t=1" and neutralise(42) == 42


def test_backtest_command_prints_auc_and_lift(built_warehouse, capsys):
    assert main(["score", "--backtest", "--data-dir", str(built_warehouse)]) == 0
    out = capsys.readouterr().out
    assert "AUC:" in out and "lift of A over base rate" in out
    for grade in "ABCD":
        assert f"\n      {grade} " in out


def test_delta_workbook_reads_back_in_excel_readers(tmp_path):
    from python_calamine import CalamineWorkbook

    from scoring.xlsx import write_xlsx

    path = tmp_path / "delta.xlsx"
    rows = [
        ["B-1", "A", 71.5, '▲ <近7天> & "有跟进"'],
        ["B-2", None, float("nan"), "bad\x00\x07char"],
        ["B-3", "D", 3, "  spaces kept  "],
    ]
    write_xlsx(path, ["商机编号", "优先级", "评分", "评分原因"], rows, sheet="priority")
    sheet = load_workbook(path).active
    assert sheet.title == "priority"
    assert list(sheet.iter_rows(values_only=True)) == [
        ("商机编号", "优先级", "评分", "评分原因"),
        ("B-1", "A", 71.5, '▲ <近7天> & "有跟进"'),
        ("B-2", None, None, "badchar"),
        ("B-3", "D", 3, "  spaces kept  "),
    ]
    assert CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()[1][2] == 71.5


def test_reasons_name_each_deals_strongest_signals_it_has_data_for():
    """The reason line a salesperson reads: up to three signals by strength, for (▲) or
    against (▼), the weaker ones only when they count a point or more, never one about data
    the deal lacks; none left: the no-signal line."""
    from scoring.signals import NO_REASON, top_reasons

    features = pd.DataFrame(
        {
            "days_since_touch": [3.2, None, 40.0],
            "touches_30d": [1, 0, 0],
            "stage": ["Negotiate", None, "Qualify"],
            "account_wins": [2, None, 0],
            "account_losses": [1, None, 3],
        },
        index=[10, 11, 12],  # a chunk's index need not start at 0
    )
    signals = ["recency", "frequency", "stage_progress", "account_history"]
    contributions = pd.DataFrame(
        [[5.0, -3.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0], [-2.0, 0.0, -1.5, -4.0]], columns=signals
    )
    allowed = pd.DataFrame(
        [[True, True, True, True], [False] * 4, [True, True, True, False]], columns=signals
    )
    reasons = top_reasons(features, contributions, allowed=allowed)
    assert reasons.tolist() == [
        "▲ 3天前有跟进 / followed up 3 days ago; "
        "▼ 跟进稀少（近30天1次）/ little follow-up (1 touches in 30 days)",
        NO_REASON,
        "▼ 近40天无跟进 / no follow-up in 40 days; "
        "▼ 仍在早期阶段（Qualify）/ still early (Qualify)",
    ]
    assert reasons.index.tolist() == [10, 11, 12], "each reason stays with its deal"
    # without the mask, a deal with nothing above a point still hears its first signal
    assert top_reasons(features, contributions).tolist()[1] == "▲ 新商机 / new deal"
    # a chunk with no deals has no reasons
    assert top_reasons(features.iloc[:0], contributions.iloc[:0]).tolist() == []


def test_a_deal_uses_the_signals_its_own_source_uses_and_has_data_for():
    """Which signals score a deal: those its source uses (scoring_signals) that the deal has
    the data for; a source with no decision yet (or a deal without one) uses every signal."""
    from scoring.config import SIGNALS
    from scoring.model import Scorer
    from scoring.validation import SignalUse

    left_out = {"crm_a": {"recency", "frequency"}, "crm_b": {"deal_amount"}}
    uses = [
        SignalUse(source, signal, 1.0, 1.0, signal not in out, 1.0, "")
        for source, out in left_out.items()
        for signal in SIGNALS
    ]
    sources = pd.Series(["crm_b", "crm_a", None, "crm_new", "crm_a", "crm_b"], dtype="str")
    known = pd.DataFrame(True, index=range(40, 46), columns=list(SIGNALS))
    known.loc[44, "industry_trend"] = False  # this deal lacks the data
    used = Scorer(DEFAULT_CONFIG, uses=uses).used_of(sources, known)
    assert list(used.columns) == list(SIGNALS) and used.index.tolist() == list(range(40, 46))
    for (row, flags), source in zip(used.iterrows(), sources, strict=True):
        out = left_out.get(source, set()) if isinstance(source, str) else set()
        lacking = {"industry_trend"} if row == 44 else set()
        assert {s for s in SIGNALS if not flags[s]} == out | lacking, (row, source)

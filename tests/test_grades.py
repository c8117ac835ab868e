"""Grades you can trust: on generated data where follow-up really drives wins (the truth is
known), grades order win rates A > B > C > D, beat chance, and are written back; in
learned mode too."""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from orchestration.cli import main
from tests.conftest import query
from tests.exports import NATIVE_OPPORTUNITY_HEADER

pytestmark = pytest.mark.e2e
TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2025, 6, 30, tzinfo=TZ)


def probabilities_sql(table: str) -> str:
    """The deals of one cutoff ($cutoff) in a table scoring.as_of.probabilities_at wrote."""
    return (
        f"SELECT source_system, opportunity_id, win_probability FROM {table} WHERE cutoff = $cutoff"
    )


def list_open_deals(con, cutoffs: list[datetime], table: str = "every_open_deal") -> str:
    """Every deal open at each cutoff, listed in a temp table as scoring.as_of.probabilities_at
    reads its deals (cutoff, source_system, opportunity_id); returns its name."""
    from scoring.as_of import OPEN_AT_CUTOFF

    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} (cutoff TIMESTAMPTZ, source_system VARCHAR, "
        "opportunity_id VARCHAR)"
    )
    for cutoff in cutoffs:
        con.execute(
            f"INSERT INTO {table} SELECT CAST($cutoff AS TIMESTAMPTZ), source_system, "
            f"opportunity_id FROM marts.opportunities WHERE {OPEN_AT_CUTOFF}",
            {"cutoff": cutoff},
        )
    return table


def generate(n: int = 700, seed: int = 17) -> tuple[list[list], list[list]]:
    """Deals whose chance to win rises with the touches they got in the 60 days before the
    scoring cutoff (30 days before the close): nothing else tells the outcome."""
    rng = random.Random(seed)
    deals, touches = [], []
    for i in range(n):
        opp = f"F-{i:04d}"
        created = AS_OF - timedelta(days=rng.randrange(150, 420))
        k = rng.randrange(0, 7)
        closes = rng.random() < 0.75
        close = created + timedelta(days=rng.randrange(70, 140))
        if close >= AS_OF:
            closes = False
        cutoff = close - timedelta(days=30) if closes else AS_OF
        for t in range(k):
            when = cutoff - timedelta(days=rng.uniform(1, 55))
            touches.append([f"T-{i}-{t}", opp, "电话", when.strftime("%Y-%m-%d %H:%M:%S")])
        if closes:
            won = rng.random() < 0.08 + 0.13 * k
            deals.append(
                [
                    opp,
                    f"跟进商机{i}",
                    "U1" if i % 2 else "U2",
                    "赢单" if won else "输单",
                    "赢单" if won else "输单",
                    "50000",
                    created.strftime("%Y-%m-%d %H:%M:%S"),
                    close.strftime("%Y-%m-%d %H:%M:%S"),
                    "" if won else "价格太高",
                ]
            )
        else:
            deals.append(
                [
                    opp,
                    f"跟进商机{i}",
                    "U1" if i % 2 else "U2",
                    "方案报价",
                    "进行中",
                    "50000",
                    created.strftime("%Y-%m-%d %H:%M:%S"),
                    "",
                    "",
                ]
            )
    return deals, touches


def write(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def follow_up_warehouse(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("follow") / "data"
    deals, touches = generate()
    write(
        data / "landing" / "opportunities.csv",
        NATIVE_OPPORTUNITY_HEADER[:-1],  # no account_id
        deals,
    )
    write(
        data / "landing" / "activities.csv",
        ["activity_id", "opportunity_id", "activity_type", "occurred_at"],
        touches,
    )
    assert main(["run", "--data-dir", str(data), "--as-of", AS_OF.date().isoformat()]) == 0
    return data


def test_follow_up_driven_wins_give_ordered_validated_grades(follow_up_warehouse):
    data = follow_up_warehouse
    rates = dict(
        query(
            data / "serving.duckdb",
            "SELECT grade, win_rate FROM marts.grade_calibration "
            "WHERE period = 'all' AND closed_deals > 0",
        )
    )
    assert rates["A"] > rates["B"] > rates["C"] > rates["D"], rates
    [(area, better, status)] = query(
        data / "serving.duckdb",
        "SELECT auc, is_better_than_chance, writeback_status FROM marts.scoring_validation",
    )
    assert area >= 0.6 and better is True and status == "written"
    assert (data / "exports" / "native" / "priority_latest.csv").exists()
    assert not (data / "exports" / "native" / "NOT_WRITTEN.txt").exists()
    # every open deal has a calibrated win probability, higher for better grades
    probs = query(
        data / "serving.duckdb",
        "SELECT grade, avg(win_probability), count(*) FILTER (WHERE win_probability IS NULL) "
        "FROM marts.opportunity_priority GROUP BY 1 ORDER BY 1",
    )
    assert all(missing == 0 for _, _, missing in probs)
    averages = [p for _, p, _ in probs]
    assert averages == sorted(averages, reverse=True)


def test_learned_mode_finds_the_follow_up_signal_too(follow_up_warehouse, tmp_path):
    from scoring.config import DEFAULT_CONFIG, load_config
    from scoring.model import score_and_calibrate

    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace("mode: rules", "mode: learned")
    text = text.replace("min_won: 200", "min_won: 50").replace("min_lost: 200", "min_lost: 50")
    text = text.replace("min_closed_deals: 100", "min_closed_deals: 60")
    (tmp_path / "scoring.yml").write_text(text, encoding="utf-8")
    with duckdb.connect(str(follow_up_warehouse / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        run = score_and_calibrate(con, load_config(tmp_path), AS_OF + timedelta(days=1))
    [verdict] = run.verdicts
    assert run.scorer.mode == "learned" and verdict.auc >= 0.6, verdict
    assert verdict.is_better_than_chance and verdict.writeback_status == "written"


def test_backtest_command_prints_interval_grades_and_verdict(follow_up_warehouse, capsys):
    assert main(["score", "--backtest", "--data-dir", str(follow_up_warehouse)]) == 0
    out = capsys.readouterr().out
    assert "AUC:" in out and "90% interval" in out and "verdict" in out
    assert "nan" not in out.lower()


def test_deals_scored_a_chunk_at_a_time_get_what_the_run_saved(follow_up_warehouse):
    """Scoring reads the deals' features a chunk at a time (its memory stays bounded at
    ten million deals): the chunks of the features table are features_at's rows in its
    order, the closed deals reduced 7 at a time are what reducing them at once gives, and
    in chunks of 7 every open deal gets the score, grade and reasons it gets scored all at
    once, which are the ones the daily run saved."""
    import pandas as pd

    from scoring.config import load_config
    from scoring.deal_sets import OUTCOME_COLUMNS, read_deals
    from scoring.features import FeatureTable, closed_deal_cutoffs, features_at
    from scoring.model import (
        build_scorer,
        calibrate,
        open_deal_features,
        score_features,
        sources_with_activities,
    )

    config = load_config()
    with duckdb.connect(str(follow_up_warehouse / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        as_of_end = AS_OF + timedelta(days=1)
        features = open_deal_features(con, as_of_end)
        cutoffs = closed_deal_cutoffs(con, config.horizon_days)
        outcomes = cutoffs.assign(won=cutoffs["outcome"] == "won")
        activities = sources_with_activities(con)
        with FeatureTable(con, outcomes, "closed_test", OUTCOME_COLUMNS) as table:
            read = pd.concat(table.chunks(7), ignore_index=True)
            in_sevens = read_deals(table, activities, config, chunk_rows=7)
            at_once = read_deals(table, activities, config, chunk_rows=len(cutoffs))
        # the features in features_at's order, each row with its own deal's outcome
        expected = features_at(con, cutoffs).merge(
            outcomes[["source_system", "opportunity_id", *OUTCOME_COLUMNS]],
            on=["source_system", "opportunity_id"],
        )
        pd.testing.assert_frame_equal(read, expected, check_dtype=False)
        for part in ("deals", "known", "signals"):
            pd.testing.assert_frame_equal(getattr(in_sevens, part), getattr(at_once, part))
        assert in_sevens.won.sum() == (cutoffs["outcome"] == "won").sum()
        scorer = build_scorer(con, config, as_of_end)
        calibrate(con, scorer)
        whole = score_features(scorer, features, chunk_rows=len(features))
        chunked = score_features(scorer, features, chunk_rows=7)
    assert len(features) > 7 * 10 and len(cutoffs) > 7 * 10
    pd.testing.assert_frame_equal(chunked, whole)
    saved = query(
        follow_up_warehouse / "serving.duckdb",
        "SELECT opportunity_id, score, grade, reasons FROM marts.opportunity_priority",
    )
    assert sorted(saved) == sorted(
        whole[["opportunity_id", "score", "grade", "reasons"]].itertuples(index=False, name=None)
    )


def test_open_deals_kept_from_the_first_read_are_scored_as_when_read_again(
    follow_up_warehouse, tmp_path
):
    """Today's open deals are read twice (which signals each source can use, then their
    scores): a table of few enough deals keeps what the first read gave, and the second
    pass reads those even when the table is gone, with the scores, grades and reasons of
    reading it again; a larger table queries again (its temp table dropped: an error)."""
    import shutil

    import pandas as pd

    from scoring.config import load_config
    from scoring.features import FeatureTable
    from scoring.model import open_deal_cutoffs, score_and_calibrate

    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(follow_up_warehouse / "warehouse.duckdb", copy)
    as_of_end = AS_OF + timedelta(days=1)
    with duckdb.connect(str(copy)) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        cutoffs = open_deal_cutoffs(con, as_of_end)
        for kept_rows, kept in ((len(cutoffs), True), (len(cutoffs) - 1, False)):
            with FeatureTable(con, cutoffs, "open_test", kept_rows=kept_rows) as table:
                first = pd.concat(table.chunks(7), ignore_index=True)
                con.execute("DROP TABLE open_test")
                if kept:
                    pd.testing.assert_frame_equal(
                        pd.concat(table.chunks(7), ignore_index=True), first
                    )
                else:
                    with pytest.raises(duckdb.CatalogException):
                        next(table.chunks(7))
        assert len(first) == len(cutoffs) > 7 * 10
        config = load_config()
        read_once = score_and_calibrate(con, config, as_of_end).scored
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("scoring.model.OPEN_DEALS_KEPT", 0)
            read_twice = score_and_calibrate(con, config, as_of_end).scored
    pd.testing.assert_frame_equal(read_once, read_twice)
    assert read_once["reasons"].notna().all() and len(read_once) == len(cutoffs)


def test_the_backtest_reads_its_months_in_batches_with_the_same_answer(follow_up_warehouse):
    """The forecast's backtest reads the deals open at each month's start in batches of at
    most FEATURES_BATCH_ROWS rows (ten million deals would not fit at once): one cutoff at
    a time, every deal's win probability is what reading them all together gives."""
    import pandas as pd

    from scoring.as_of import cutoff_batches, probabilities_at
    from scoring.config import load_config

    assert cutoff_batches({"a": 3, "b": 3, "c": 5, "d": 1}, limit=6) == [["a", "b"], ["c", "d"]]
    assert cutoff_batches({"a": 9, "b": 1}, limit=6) == [["a"], ["b"]]
    cutoffs = [datetime(2025, month, 1, tzinfo=TZ) for month in (3, 4, 5, 6)]

    def read(con, table, cutoff) -> pd.DataFrame:
        sql = f"{probabilities_sql(table)} ORDER BY source_system, opportunity_id"
        return con.execute(sql, {"cutoff": cutoff}).df()

    with duckdb.connect(str(follow_up_warehouse / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        listed = list_open_deals(con, cutoffs)
        table = probabilities_at(con, load_config(), cutoffs, listed, batch_rows=10**9)
        together = {c: read(con, table, c) for c in cutoffs}
        table = probabilities_at(con, load_config(), cutoffs, listed, batch_rows=1)
        apart = {c: read(con, table, c) for c in cutoffs}
    assert all(len(together[c]) > 50 for c in cutoffs)
    for cutoff in cutoffs:
        pd.testing.assert_frame_equal(apart[cutoff], together[cutoff])


def test_the_backtest_calibrates_each_month_on_the_rules_scores_of_the_deals_closed_before_it(
    follow_up_warehouse,
):
    """In rules mode a closed deal's score is the same at every cutoff, so the backtest
    scores the closed deals once and fits each month's calibration on the deals closed
    before the month: the same calibration as scoring that month's deals again (and a
    different one from the deals closed later on)."""
    import numpy as np
    import pandas as pd

    from scoring.as_of import rule_scores_of, scorer_known_at, stored_signal_uses
    from scoring.config import load_config
    from scoring.deal_sets import closed_deals
    from scoring.model import sources_with_activities

    config = load_config()
    assert config.mode == "rules"
    grid = np.linspace(0, 100, 401)
    with duckdb.connect(str(follow_up_warehouse / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        uses, activities = stored_signal_uses(con), sources_with_activities(con)
        training = closed_deals(con, config, activities)
        scores = rule_scores_of(config, training, uses, activities)
        closed_at = pd.to_datetime(training.deals["closed_at"], utc=True)
        seen = []
        for month in (3, 4, 5, 6):
            cutoff = datetime(2025, month, 1, tzinfo=TZ)
            again = scorer_known_at(con, config, training, uses, activities, cutoff)
            once = scorer_known_at(con, config, training, uses, activities, cutoff, scores)
            assert again.calibrations and set(once.calibrations) == set(again.calibrations)
            for source, calibration in again.calibrations.items():
                kept = once.calibrations[source]
                np.testing.assert_array_equal(kept.probability(grid), calibration.probability(grid))
                assert kept.cutoffs == calibration.cutoffs
                assert kept.base_rate == calibration.base_rate
                # the base rate is the win rate of that source's deals closed before the cutoff
                before = (closed_at < pd.Timestamp(cutoff)).to_numpy() & (
                    training.sources.astype(str).to_numpy() == source
                )
                assert kept.base_rate == pytest.approx(training.won[before].mean())
            seen.append(next(iter(once.calibrations.values())).base_rate)
    assert len(set(seen)) > 1, "each month is calibrated on its own deals"


def test_a_chunk_of_the_backtest_is_scored_once_and_calibrated_per_month(follow_up_warehouse):
    """In rules mode a (deal, month) row's score does not depend on the month's scorer, so a
    chunk of rows from several months is scored once; each row's probability is still its
    own month's calibration of that score: what scoring each month's rows with that month's
    scorer gives (and, the general path, what learned mode does)."""
    import pandas as pd

    from scoring.as_of import (
        batch_features,
        chunk_probabilities,
        listed_deals_at,
        rule_scores_of,
        scorer_known_at,
        stored_signal_uses,
    )
    from scoring.config import load_config
    from scoring.deal_sets import closed_deals
    from scoring.model import score_features, sources_with_activities

    config = load_config()
    cutoffs = [datetime(2025, month, 1, tzinfo=TZ) for month in (3, 4, 5, 6)]
    with duckdb.connect(str(follow_up_warehouse / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        uses, activities = stored_signal_uses(con), sources_with_activities(con)
        training = closed_deals(con, config, activities)
        scores = rule_scores_of(config, training, uses, activities)
        scorers = {
            c: scorer_known_at(con, config, training, uses, activities, c, scores) for c in cutoffs
        }
        listed = list_open_deals(con, cutoffs)
        deals = pd.concat([listed_deals_at(con, listed, c) for c in cutoffs], ignore_index=True)
        chunks = list(batch_features(con, deals))
    keys = ["cutoff", "source_system", "opportunity_id"]
    for chunk in chunks:
        expected = []
        for cutoff, scorer in scorers.items():
            rows = chunk[chunk["cutoff"] == pd.Timestamp(cutoff)]
            scored = score_features(scorer, rows, reasons=False)
            expected += [
                (pd.Timestamp(cutoff), s, o, p)
                for s, o, p in scored[
                    ["source_system", "opportunity_id", "win_probability"]
                ].itertuples(index=False, name=None)
            ]
        for rules in (True, False):
            got = chunk_probabilities(scorers, chunk, rules)
            assert len(got) == len(chunk)
            assert sorted(got[[*keys, "win_probability"]].itertuples(index=False, name=None)) == (
                sorted(expected)
            )
    months = {t for chunk in chunks for t in chunk["cutoff"]}
    assert len(months) == 4 and sum(len(c) for c in chunks) > 200
    # the months' calibrations differ, so one calibration for the chunk would not pass
    grid = [10.0, 50.0, 90.0]
    curves = {
        tuple(next(iter(s.calibrations.values())).probability(grid)) for s in scorers.values()
    }
    assert len(curves) > 1


def test_the_backtest_scores_only_the_deals_that_can_close_in_their_month(follow_up_warehouse):
    """A past month's forecast adds up the deals with a share of that month; the win
    probability of the others changes none of its figures. So the backtest scores only
    those: its rows are the ones scoring every deal open at each month's start gives (the
    same amounts, intervals from the same random draws), and it scores fewer deals."""
    import pandas as pd

    from forecast.build import (
        ACCURACY_COLUMNS,
        Months,
        accuracy_rows,
        actual_won,
        deals_at,
        next_month,
    )
    from forecast.closing_history import ClosingHistory
    from forecast.step import NEEDED_TABLE, backtest, month_deals, month_rng, plan_backtest
    from scoring.as_of import probabilities_at
    from scoring.config import load_config

    config, tz = load_config(), "Asia/Shanghai"
    end = (AS_OF + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    with duckdb.connect(str(follow_up_warehouse / "warehouse.duckdb"), read_only=True) as con:
        con.execute(f"SET TimeZone = '{tz}'")
        plan = plan_backtest(con, config, AS_OF.date(), 6, tz, reuse=False)
        history = ClosingHistory.read(con, end)
        months = month_deals(con, plan, history, tz)
        got = backtest(con, config, plan, months).computed
        scored = dict(
            con.execute(f"SELECT cutoff, count(*) FROM {NEEDED_TABLE} GROUP BY 1").fetchall()
        )
        # every deal open at each month's start scored, and the figures worked out on them all
        cutoffs = [m.cutoff for m in months]
        table = probabilities_at(con, config, cutoffs, list_open_deals(con, cutoffs))
        rows = []
        for m in months:
            window = Months([m.month], tz)
            deals, shares = deals_at(
                con, probabilities_sql(table), m.cutoff, window, m.month, False, history
            )
            actual = actual_won(con, m.cutoff, window.start(next_month(m.month)))
            rows += accuracy_rows(m.month, deals, shares, actual, m.sources, month_rng(m.month))
            assert 0 < scored[m.cutoff] < len(deals), "some deals could not close in the month"
            assert deals["win_probability"].notna().any()
    assert len(months) == 6
    pd.testing.assert_frame_equal(got, pd.DataFrame(rows, columns=ACCURACY_COLUMNS))

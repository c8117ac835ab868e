"""The closed deals scoring learns and calibrates from are read back from the last run's
while nothing they are computed from has changed, and computed again (equal to computing
them from scratch) as soon as something before a cutoff changes."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from scoring.config import DEFAULT_CONFIG, load_config
from scoring.deal_sets import DealSet, closed_deals
from scoring.features import closed_deal_cutoffs
from scoring.model import sources_with_activities
from scoring.validation import auc, auc_interval
from tests.conftest import SAMPLE_AS_OF

pytestmark = pytest.mark.e2e


def add_touch(con, deal: pd.Series, occurred_at, activity_id: str) -> None:
    """A call on `deal` at `occurred_at`, as the touches model would hold it."""
    con.execute(
        "INSERT INTO intermediate.int_opportunity_touches (source_system, opportunity_id, "
        "activity_type, occurred_at, is_before_close, activity_id) VALUES (?, ?, 'call', ?, "
        "true, ?)",
        [deal["source_system"], deal["opportunity_id"], occurred_at, activity_id],
    )


def assert_same(a: DealSet, b: DealSet) -> None:
    for field in DealSet.FIELDS:
        pd.testing.assert_frame_equal(getattr(a, field), getattr(b, field), check_dtype=False)


def test_past_deals_are_kept_until_something_before_a_cutoff_changes(warehouse_copy, tmp_path):
    con, config = warehouse_copy, load_config(tmp_path)
    activities = sources_with_activities(con)
    first = closed_deals(con, config, activities, reuse=False)
    assert not first.kept and len(first) > 100

    # A call today, after every past deal's cutoff: nothing they are computed from moves.
    cutoffs = closed_deal_cutoffs(con, config.horizon_days)
    deal = cutoffs.sort_values("cutoff").iloc[0]
    add_touch(con, deal, pd.Timestamp(SAMPLE_AS_OF.isoformat(), tz="Asia/Shanghai"), "TODAY")
    kept = closed_deals(con, config, activities)
    assert kept.kept
    assert_same(kept, first)

    # A call an hour before the deal's cutoff, arriving late: computed again, as from scratch.
    add_touch(con, deal, deal["cutoff"] - timedelta(hours=1), "LATE")
    again = closed_deals(con, config, activities)
    assert not again.kept
    assert_same(again, closed_deals(con, config, activities, reuse=False))
    row = np.flatnonzero(
        (first.deals["opportunity_id"] == deal["opportunity_id"]).to_numpy()
        & (first.deals["source_system"] == deal["source_system"]).to_numpy()
    )[0]
    assert not first.signals.iloc[row].equals(again.signals.iloc[row])
    others = np.arange(len(first)) != row
    pd.testing.assert_frame_equal(
        first.signals[others].reset_index(drop=True), again.signals[others].reset_index(drop=True)
    )


def test_past_deals_are_computed_again_when_scoring_yml_changes(warehouse_copy, tmp_path):
    con = warehouse_copy
    activities = sources_with_activities(con)
    closed_deals(con, load_config(tmp_path), activities, reuse=False)
    (tmp_path / "scoring.yml").write_text(
        DEFAULT_CONFIG.read_text(encoding="utf-8").replace("recency: 12", "recency: 14"),
        encoding="utf-8",
    )
    changed = load_config(tmp_path)
    assert not closed_deals(con, changed, activities).kept


def test_past_deals_are_computed_again_when_a_deal_s_outcome_or_close_changes(
    warehouse_copy, tmp_path
):
    """A re-export that turns a won deal into a lost one, or moves another's close, changes
    which outcomes and cutoffs the scorer learns from: computed again, and equal to
    computing from scratch (with the new outcome and cutoff)."""
    con, config = warehouse_copy, load_config(tmp_path)
    activities = sources_with_activities(con)
    closed_deals(con, config, activities, reuse=False)

    def after(change: str, deal: pd.Series) -> DealSet:
        """The closed deals after `change` (SET ...) to `deal`: computed again, as from
        scratch."""
        assert closed_deals(con, config, activities).kept
        con.execute(
            f"UPDATE marts.opportunities {change} WHERE source_system = ? AND opportunity_id = ?",
            [deal["source_system"], deal["opportunity_id"]],
        )
        again = closed_deals(con, config, activities)
        assert not again.kept
        assert_same(again, closed_deals(con, config, activities, reuse=False))
        return again

    cutoffs = closed_deal_cutoffs(con, config.horizon_days)
    won = cutoffs[cutoffs["outcome"] == "won"].iloc[0]
    again = after("SET status = 'lost'", won)
    row = (again.deals["opportunity_id"] == won["opportunity_id"]).to_numpy() & (
        again.deals["source_system"] == won["source_system"]
    ).to_numpy()
    assert not again.won[row].any()  # learnt as lost now
    after("SET closed_at = closed_at + INTERVAL 1 DAY", cutoffs.iloc[-1])


def test_auc_interval_matches_a_bootstrap_of_the_deals_themselves():
    """The interval drawn per (score, outcome) cell equals, within the bootstrap's own
    noise, resampling the deals one by one and ranking them again."""
    rng = np.random.default_rng(5)
    scores = np.round(rng.normal(50, 15, 4000), 0)
    won = rng.random(4000) < 1 / (1 + np.exp(-(scores - 50) / 10))
    low, high = auc_interval(scores, won, draws=400)
    resampled = []
    for _ in range(400):
        picked = rng.integers(0, len(scores), len(scores))
        resampled.append(auc(scores[picked], won[picked]))
    assert low < auc(scores, won) < high
    assert abs(low - np.quantile(resampled, 0.05)) < 0.006
    assert abs(high - np.quantile(resampled, 0.95)) < 0.006

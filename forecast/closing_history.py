"""How long past deals took to close, as known at any cutoff: the histories the forecast's
timing is fitted on (forecast.timing), read from DuckDB once per run and cut at each cutoff
in numpy.

The forecast is made today and at the start of each past month of its backtest. A cutoff
knows the deals created before it; a deal counts as closed only if it closed before the
cutoff, else it is censored there; a stage visit counts from its entry until the deal's
close (or the cutoff). Asking DuckDB for these per cutoff moved the same three million stage
visits into pandas seven times a run at a million deals (about a third of the forecast
step); each cutoff is now a few masks over arrays read once.

What a cutoff would have asked DuckDB for, exactly (the arithmetic is DuckDB's own: every
moment is read as DuckDB's `epoch()`, which orders as the timestamps do, and a cutoff's
days are the same double subtractions the SQL made):
- cycles: each deal created before the cutoff (open, or closed with a close date), its
  source, days from creation to its close (closed then) or to the cutoff;
- stages: each visit to a stage that is not a closing stage, entered before the deal's close
  (or the cutoff), with the deal's source and customer type, days from entering it to the
  close or to the cutoff;
- base rates: per source, the share won of the deals closed before the cutoff.

A deal is an existing customer's at a cutoff when its account had a deal won before the
deal was created, among the deals created before the cutoff: the earliest creation among
the account's wins closed before the deal was created is read once (`first_win_created`),
and the deal is an existing customer's at a cutoff after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from forecast.frames import coded_frame

# The deals a cutoff up to $until may know. A visit finds its deal by the row's place in the
# new temp table (DuckDB's rowid: numbering them with row_number() doubled the query).
DEALS_TABLE = "closing_deals"
DEALS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {DEALS_TABLE} AS
WITH deal AS (
    SELECT source_system, opportunity_id, account_id, status, created_at, closed_at
    FROM marts.opportunities
    WHERE created_at < $until AND (status = 'open' OR closed_at IS NOT NULL)
),
-- each account's wins in the order they closed, with the earliest creation among the wins
-- closed so far (ties in the close included: the default frame takes the row's peers)
win AS (
    SELECT source_system, account_id, closed_at,
        min(created_at) OVER (
            PARTITION BY source_system, account_id ORDER BY closed_at
        ) AS first_created
    FROM deal
    WHERE status = 'won' AND closed_at IS NOT NULL AND account_id IS NOT NULL
)
SELECT d.source_system, d.opportunity_id,
    epoch(d.created_at) AS created,
    CASE WHEN d.status IN ('won', 'lost') THEN epoch(d.closed_at) END AS closed,
    d.status = 'won' AS won,
    epoch(w.first_created) AS first_win_created
FROM deal AS d
-- the last win closed before the deal was created
ASOF LEFT JOIN win AS w
    ON w.source_system = d.source_system AND w.account_id = d.account_id
    AND d.created_at > w.closed_at
"""

VISITS_SQL = f"""
SELECT d.rowid AS deal_row, l.stage, epoch(l.entered_at) AS entered
FROM marts.opportunity_lifecycle AS l
JOIN {DEALS_TABLE} AS d USING (source_system, opportunity_id)
WHERE NOT l.is_closing_stage AND l.entered_at IS NOT NULL
"""

CUSTOMER_TYPES = ["new", "existing"]
SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class CutoffHistory:
    """What one cutoff knew (the module's docstring): the frames forecast.timing fits."""

    cycles: pd.DataFrame  # source_system, days, closed
    stages: pd.DataFrame  # source_system, customer_type, stage, days, closed
    base_rates: dict[str, float]  # per source with a deal closed then: the share won


@dataclass(frozen=True)
class ClosingHistory:
    """Every deal and stage visit any cutoff up to the run's as-of end may know, as arrays
    (deals by deal_row; visits pointing at their deal)."""

    sources: pd.Index  # the source names, by code
    source_code: np.ndarray
    created: np.ndarray  # epoch seconds, as DuckDB's epoch()
    closed: np.ndarray  # NaN: not won or lost
    won: np.ndarray
    first_win_created: np.ndarray  # NaN: no earlier win of the account
    stages: pd.Index
    visit_deal: np.ndarray
    visit_stage: np.ndarray  # code into `stages`, -1 none
    visit_entered: np.ndarray
    # deals and visits in two orders each (spans_in_order), so that a cutoff's days come
    # sorted from one merge instead of a sort of millions of days per cutoff (None: read
    # for one cutoff, whose days are sorted)
    deal_orders: tuple[np.ndarray, np.ndarray] | None = None
    visit_orders: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def read(
        cls, con: duckdb.DuckDBPyConnection, until: datetime, cutoffs: int = 1
    ) -> ClosingHistory:
        """The deals created before `until` and their visits (one query each), to be cut at
        `cutoffs` cutoffs: from two on, put in order once (spans_in_order, which costs
        what sorting the days of two cutoffs does)."""
        con.execute(DEALS_SQL, {"until": until})
        try:
            deals = coded_frame(
                con, f"SELECT rowid AS deal_row, * EXCLUDE (opportunity_id) FROM {DEALS_TABLE}"
            )
            visits = coded_frame(con, VISITS_SQL)
        finally:
            con.execute(f"DROP TABLE IF EXISTS {DEALS_TABLE}")
        rows = deals["deal_row"].to_numpy()
        size = int(rows.max()) + 1 if len(rows) else 0

        def by_row(values, dtype, missing) -> np.ndarray:
            out = np.full(size, missing, dtype=dtype)  # a row not read: never known
            out[rows] = values
            return out

        source = deals["source_system"].astype("category")
        stage = visits["stage"].astype("category")
        created = by_row(deals["created"].to_numpy(dtype=float), float, np.nan)
        closed = by_row(deals["closed"].to_numpy(dtype=float, na_value=np.nan), float, np.nan)
        visit_deal = visits["deal_row"].to_numpy(dtype=np.int32 if size < 2**31 else np.int64)
        visit_entered = visits["entered"].to_numpy(dtype=float)
        return cls(
            sources=source.cat.categories,
            source_code=by_row(source.cat.codes.to_numpy(), np.int32, -1),
            created=created,
            closed=closed,
            won=by_row(deals["won"].to_numpy(dtype=bool, na_value=False), bool, False),
            first_win_created=by_row(
                deals["first_win_created"].to_numpy(dtype=float, na_value=np.nan), float, np.nan
            ),
            stages=stage.cat.categories,
            visit_deal=visit_deal,
            visit_stage=stage.cat.codes.to_numpy(),
            visit_entered=visit_entered,
            deal_orders=spans_in_order(created, closed) if cutoffs > 1 else None,
            visit_orders=(
                spans_in_order(visit_entered, closed[visit_deal]) if cutoffs > 1 else None
            ),
        )

    def at(self, cutoff: float) -> CutoffHistory:
        """What the cutoff (epoch seconds, as DuckDB's epoch() of it) knew."""
        known = self.created < cutoff
        closed = self.closed < cutoff  # NaN (not closed) compares False
        end = np.where(closed, self.closed, cutoff)
        existing = (self.first_win_created < cutoff).astype(np.int8)
        deals = _in_days_order(known, closed, self.deal_orders)
        days = (end[deals] - self.created[deals]) / SECONDS_PER_DAY
        # in order of days, as forecast.timing fits them (from deal_orders: two sorted runs,
        # merged)
        order = np.argsort(days, kind="stable")
        deals, days = deals[order], days[order]
        cycles = pd.DataFrame(
            {
                "source_system": self._sources(self.source_code[deals]),
                "days": days,
                "closed": closed[deals],
            }
        )
        deal = self.visit_deal
        keep = _in_days_order(
            known[deal] & (self.visit_entered < end[deal]), closed[deal], self.visit_orders
        )
        deal = self.visit_deal[keep]
        days = (end[deal] - self.visit_entered[keep]) / SECONDS_PER_DAY
        order = np.argsort(days, kind="stable")
        keep, deal, days = keep[order], deal[order], days[order]
        stages = pd.DataFrame(
            {
                "source_system": self._sources(self.source_code[deal]),
                "customer_type": pd.Categorical.from_codes(existing[deal], CUSTOMER_TYPES),
                "stage": pd.Categorical.from_codes(self.visit_stage[keep], self.stages),
                "days": days,
                "closed": closed[deal],
            }
        )
        return CutoffHistory(cycles, stages, self._base_rates(known & closed))

    def _sources(self, codes: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, self.sources)

    def _base_rates(self, closed: np.ndarray) -> dict[str, float]:
        closed = closed & (self.source_code >= 0)
        count = np.bincount(self.source_code[closed], minlength=len(self.sources))
        won = np.bincount(self.source_code[closed & self.won], minlength=len(self.sources))
        return {
            str(name): float(won[i]) / float(count[i])
            for i, name in enumerate(self.sources)
            if count[i]
        }


def _in_days_order(
    mask: np.ndarray, closed: np.ndarray, orders: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """The positions where `mask` holds: from `orders` (spans_in_order) the closed ones by
    length, then the censored ones by start, latest first (each run ascending in days, so a
    stable sort of the days only merges them); without orders, in position order."""
    if orders is None:
        return np.flatnonzero(mask)
    first, second = orders
    return np.concatenate([first[(mask & closed)[first]], second[(mask & ~closed)[second]]])


def spans_in_order(start: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two orders of spans (deals from creation, visits from entry) that a cutoff cuts: the
    ones with a `close` (NaN: none) by their length, close minus start, and all by their
    start, latest first. At any cutoff the spans closed before it, taken in the first order,
    and the ones censored there (days: cutoff minus start), taken in the second, are each in
    ascending order of days: their days sort by merging two sorted runs. Spans of equal days
    may come in another order than a full sort's; the timing fitted on them counts days
    alone (forecast.timing.Survival). Positions as int32 where they fit (half the memory at
    ten million deals)."""
    kind = np.int32 if len(start) < 2**31 else np.int64
    ended = np.flatnonzero(~np.isnan(close))
    by_length = ended[np.argsort(close[ended] - start[ended], kind="stable")]
    by_start = np.argsort(-start, kind="stable")
    return by_length.astype(kind), by_start.astype(kind)


def epoch_of(con: duckdb.DuckDBPyConnection, moment: datetime) -> float:
    """`moment` in epoch seconds as DuckDB's epoch() gives it (ClosingHistory.at's cutoff)."""
    return con.execute("SELECT epoch(CAST(? AS TIMESTAMPTZ))", [moment]).fetchone()[0]

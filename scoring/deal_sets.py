"""Deals as far as scoring needs them once their features are read, a chunk at a time.

Deciding which signals a source can use needs, per deal, only whether the data behind each
signal is there (for the signals a leakage check looks at, whether their field is); learning and
calibrating need, per closed deal, its signals and outcome. So the features of the closed
deals (and, for the decision, of the open ones) are read from a DuckDB temp table a chunk
at a time and reduced to those: at ten million deals, holding the features themselves took
scoring to 8.37 GiB; reduced, it peaked at 5.85 GiB (DuckDB's 4 GB included).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from scoring import past_deals
from scoring.config import SIGNALS, ScoringConfig
from scoring.features import CHUNK_ROWS, FeatureTable, closed_deal_cutoffs
from scoring.signals import compute_signals
from scoring.validation import known_signals

KEYS = ["source_system", "opportunity_id"]


@dataclass
class DealSet:
    """Open or closed deals, one row each in every frame (same order, index 0..n-1)."""

    deals: pd.DataFrame  # source_system, opportunity_id; closed deals add won and closed_at
    known: pd.DataFrame  # deal x signal: the data it is computed from is there
    signals: pd.DataFrame | None = None  # closed deals: deal x signal, -1..+1
    # Closed deals read back from the last run's (scoring.past_deals), not computed.
    kept: bool = False

    FIELDS = ("deals", "known", "signals")

    def __len__(self) -> int:
        return len(self.deals)

    @property
    def sources(self) -> pd.Series:
        return self.deals["source_system"]

    @property
    def won(self) -> np.ndarray:
        return self.deals["won"].to_numpy(dtype=bool)

    def where(self, mask: np.ndarray) -> DealSet:
        """The deals where `mask` holds."""

        def pick(frame):
            return None if frame is None else frame[mask].reset_index(drop=True)

        return DealSet(*(pick(getattr(self, f)) for f in self.FIELDS))

    @classmethod
    def of(
        cls,
        features: pd.DataFrame,
        activities: set[str],
        config: ScoringConfig | None = None,
        columns: tuple[str, ...] = tuple(KEYS),
    ) -> DealSet:
        """Reduce one chunk of features (with `config`, the signals are kept too)."""
        return cls(
            features[list(columns)].reset_index(drop=True),
            known_signals(features, activities).reset_index(drop=True),
            None if config is None else compute_signals(features, config).reset_index(drop=True),
        )

    @classmethod
    def concat(cls, parts: list[DealSet], empty: DealSet) -> DealSet:
        if not parts:
            return empty
        if len(parts) == 1:
            return parts[0]

        def joined(frames):
            return None if frames[0] is None else pd.concat(frames, ignore_index=True)

        return cls(*(joined([getattr(p, f) for p in parts]) for f in cls.FIELDS))

    @classmethod
    def empty(cls, closed: bool) -> DealSet:
        return cls(
            pd.DataFrame(columns=[*KEYS, "won", "closed_at"] if closed else KEYS),
            pd.DataFrame(columns=list(SIGNALS), dtype=bool),
            pd.DataFrame(columns=list(SIGNALS), dtype=float) if closed else None,
        )


# What a closed deal's features table carries beside its features (FeatureTable).
OUTCOME_COLUMNS = ("won", "closed_at")


def read_deals(
    table: FeatureTable,
    activities: set[str],
    config: ScoringConfig | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> DealSet:
    """The table's deals reduced chunk by chunk (closed deals: a table carrying
    OUTCOME_COLUMNS, and `config` for their signals)."""
    closed = table.carried == OUTCOME_COLUMNS
    columns = (*KEYS, *OUTCOME_COLUMNS) if closed else tuple(KEYS)
    parts = [DealSet.of(chunk, activities, config, columns) for chunk in table.chunks(chunk_rows)]
    return DealSet.concat(parts, DealSet.empty(closed=closed))


def closed_deals(
    con: duckdb.DuckDBPyConnection,
    config: ScoringConfig,
    activities: set[str],
    reuse: bool = True,
) -> DealSet:
    """Closed deals with their signals as of the cutoff before the close, and outcomes:
    read back from the last run's when their inputs are unchanged (`reuse`; see
    scoring.past_deals), else computed (and kept for the next run)."""
    print_, count = past_deals.fingerprint(con, config, activities)
    if not count:
        return DealSet.empty(closed=True)
    kept = past_deals.stored(con, print_) if reuse else None
    if kept is not None:
        return DealSet(*kept, kept=True)
    cutoffs = closed_deal_cutoffs(con, config.horizon_days)
    outcomes = cutoffs.assign(won=cutoffs["outcome"] == "won")
    del cutoffs
    with FeatureTable(con, outcomes, "closed_deal_features", OUTCOME_COLUMNS) as table:
        closed = read_deals(table, activities, config)
    if past_deals.writable(con):
        past_deals.store(con, print_, closed.deals, closed.known, closed.signals)
    return closed

"""Score open deals, calibrate on closed ones, and measure the grades (AUC, lift).

Rules mode (the default) needs no training. Learned mode fits on past deals with the
features they had before they closed, and only when there are enough of them; otherwise
the run falls back to the rules and says so. In both modes each source uses only the
signals its data supports (scoring.validation), scores are calibrated into win
probabilities on past deals scored as of their cutoff, and grades come from those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import numpy as np
import pandas as pd

from scoring.config import SIGNALS, ScoringConfig
from scoring.deal_sets import DealSet, closed_deals, read_deals
from scoring.features import CHUNK_ROWS, FeatureTable, features_at, open_deal_cutoffs
from scoring.learned import LogisticModel, fit_logistic
from scoring.signals import (
    compute_signals,
    grades_for,
    rule_contributions,
    scores_from_contributions,
    top_reasons,
)
from scoring.validation import (
    GRADES,
    Calibration,
    SignalUse,
    Verdict,
    auc,
    fit_calibration,
    known_signals,
    leaking_fields,
    signal_use,
    signals_frame,
    validation_frame,
    verdict,
)

__all__ = ["GRADES", "auc"]


@dataclass
class Scorer:
    """What turns signals into scores: the rules, or a fitted model, over the signals each
    source's data supports."""

    config: ScoringConfig
    model: LogisticModel | None = None
    note: str = ""
    # The closed deals with their signals, when building the scorer already read them:
    # calibration reuses them instead of querying again.
    training_set: DealSet | None = None
    # Per source and signal: its coverage, whether it is used, and why not.
    uses: list[SignalUse] = field(default_factory=list)
    sources_with_activities: set[str] = field(default_factory=set)
    # Per source: scores -> calibrated win probability (set by calibrate()).
    calibrations: dict[str, Calibration] = field(default_factory=dict)

    @property
    def model_version(self) -> str:
        if self.model is None:
            return self.config.model_version
        return f"learned-{self.config.content_hash}"

    @property
    def mode(self) -> str:
        return "learned" if self.model is not None else "rules"

    def used(self, features: pd.DataFrame) -> pd.DataFrame:
        """Deal x signal: the signal is used for the deal's source (all, before any use is
        known), and the deal has the data it is computed from."""
        known = known_signals(features, self.sources_with_activities)
        return self.used_of(features["source_system"], known.set_index(features.index))

    def used_of(self, sources: pd.Series, known: pd.DataFrame) -> pd.DataFrame:
        """`used` of deals already reduced to their sources and known signals (DealSet)."""
        if not self.uses:
            return known
        per_source = (
            pd.DataFrame(
                [(u.source_system, u.signal, u.used) for u in self.uses],
                columns=["source_system", "signal", "used"],
            )
            .pivot(index="source_system", columns="signal", values="used")
            .reindex(columns=list(SIGNALS))
        )
        # one row of the table per distinct source, then picked per deal by its source's
        # code (reindexing the table by every deal's source name cost 40 ms per 100,000)
        codes, names = pd.factorize(sources)
        rows = per_source.reindex([str(n) for n in names]).fillna(True).astype(bool).to_numpy()
        rows = np.vstack([rows, np.ones((1, rows.shape[1]), dtype=bool)])  # code -1: no source
        mask = pd.DataFrame(rows[codes], columns=per_source.columns, index=known.index)
        return mask & known

    def score(
        self, signals: pd.DataFrame, used: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, pd.DataFrame]:
        """Scores 0-100 and per-signal contributions (for reasons); `used` (self.used of the
        deals' features) leaves out what a deal's source does not use or the deal lacks."""
        if used is not None:
            signals = signals.where(used.to_numpy(), 0.0)
        if self.model is None:
            contributions = rule_contributions(signals, self.config, used)
            return scores_from_contributions(contributions), contributions
        x = signals.to_numpy(dtype=float)
        scores = np.round(self.model.probability(x) * 100, 1)
        contributions = pd.DataFrame(
            self.model.contributions(x), columns=list(SIGNALS), index=signals.index
        )
        if used is not None:
            contributions = contributions.where(used.to_numpy(), 0.0)
        return scores, contributions * 10  # logit units -> about points, for the reason threshold


def sources_with_activities(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Sources that exported any activity: for the others, engagement is unknown, not zero."""
    rows = con.execute(
        "SELECT DISTINCT source_system FROM intermediate.int_opportunity_touches"
    ).fetchall()
    return {r[0] for r in rows}


def distinct_sources(*columns: pd.Series) -> list[str]:
    """The sources in these columns, sorted (each column's distinct values first: a set of
    a string column iterates every row in Python, a second at a million deals)."""
    return sorted({s for column in columns for s in column.unique() if pd.notna(s)})


def signal_uses(config: ScoringConfig, closed: DealSet, open_: DealSet) -> list[SignalUse]:
    """Per source: each signal's coverage on open and closed deals, and whether it is used."""
    uses: list[SignalUse] = []
    for source in distinct_sources(open_.sources, closed.sources):
        o = open_.where((open_.sources == source).to_numpy())
        c = closed.where((closed.sources == source).to_numpy())
        leaks = leaking_fields(c.known, c.won, o.known)
        uses += signal_use(source, o.known, c.known, leaks, config.weights)
    return uses


def open_deal_features(con: duckdb.DuckDBPyConnection, as_of_end=None) -> pd.DataFrame:
    """Every open deal's features at the end of the as-of day (empty when none is open)."""
    cutoffs = open_deal_cutoffs(con, as_of_end or datetime.now(UTC))
    return features_at(con, cutoffs) if len(cutoffs) else pd.DataFrame()


# Up to this many open deals, their features are read from DuckDB once and kept for the
# second pass (~240 bytes a deal: 97 MiB for the 404,717 open deals of the million-deal
# bench, where the second read cost 0.43 s); more (ten million deals: four million open)
# are read again a chunk at a time, as memory allows.
OPEN_DEALS_KEPT = 1_000_000


def open_deal_table(con: duckdb.DuckDBPyConnection, as_of_end=None) -> FeatureTable:
    """Every open deal's features at the end of the as-of day, in a temp table."""
    cutoffs = open_deal_cutoffs(con, as_of_end or datetime.now(UTC))
    return FeatureTable(con, cutoffs, "open_deal_features", kept_rows=OPEN_DEALS_KEPT)


def build_scorer(
    con: duckdb.DuckDBPyConnection,
    config: ScoringConfig,
    as_of_end=None,
    open_deals: DealSet | None = None,
    reuse: bool = True,
) -> Scorer:
    """The rules, or in learned mode a model fitted on enough past deals; either way over
    the signals each source's data supports (judged on the closed deals and on the open
    ones, `open_deals` when the caller has read them already). `reuse`: the closed deals
    may be read back from the last run's when their inputs are unchanged."""
    activities = sources_with_activities(con)
    closed = closed_deals(con, config, activities, reuse)
    if open_deals is None:
        with open_deal_table(con, as_of_end) as table:
            open_deals = read_deals(table, activities)
    uses = signal_uses(config, closed, open_deals)
    base = Scorer(config, training_set=closed, uses=uses, sources_with_activities=activities)
    if config.mode != "learned":
        base.note = "rules mode (scoring.yml)"
        return base
    won, lost = outcome_counts(closed)
    if not learns(config, closed):
        base.note = (
            f"learned mode needs at least {config.min_won} won and {config.min_lost} lost "
            f"deals; found {won} won and {lost} lost, so the rules are used "
            f"/ 已成交样本不足，使用规则评分"
        )
        return base
    x = _masked(closed.signals, base.used_of(closed.sources, closed.known))
    base.model = fit_logistic(x, closed.won.astype(float))
    base.note = f"learned mode: fitted on {won} won and {lost} lost deals"
    return base


def outcome_counts(closed: DealSet) -> tuple[int, int]:
    """Won and lost deals of a training set."""
    won = closed.won
    return int(won.sum()), int((~won).sum())


def learns(config: ScoringConfig, closed: DealSet) -> bool:
    """Whether these closed deals get a fitted model: learned mode, and enough of each
    outcome (else the rules score)."""
    won, lost = outcome_counts(closed)
    return config.mode == "learned" and won >= config.min_won and lost >= config.min_lost


def _masked(signals: pd.DataFrame, used: pd.DataFrame) -> np.ndarray:
    """Signals with the ones a deal's source does not use, or the deal lacks, at 0."""
    return signals.where(used.to_numpy(), 0.0).to_numpy(dtype=float)


def score_open_deals(con: duckdb.DuckDBPyConnection, scorer: Scorer, as_of_end) -> pd.DataFrame:
    """One row per open deal: score, calibrated win probability, grade, reasons."""
    return score_deals(con, scorer, open_deal_cutoffs(con, as_of_end))


def score_deals(
    con: duckdb.DuckDBPyConnection, scorer: Scorer, cutoffs: pd.DataFrame, reasons: bool = True
):
    """One row per (deal, cutoff) of `cutoffs`, scored as it stood then: score, calibrated
    win probability, grade, reasons (None without `reasons`: the backtest needs none)."""
    if cutoffs.empty:
        return pd.DataFrame(columns=SCORED_COLUMNS)
    return score_features(scorer, features_at(con, cutoffs), reasons)


SCORED_COLUMNS = ["source_system", "opportunity_id", "score", "win_probability", "grade", "reasons"]


def score_features(
    scorer: Scorer, features: pd.DataFrame, reasons: bool = True, chunk_rows: int = CHUNK_ROWS
) -> pd.DataFrame:
    """score_deals on features already read (scoring.features.features_at), `chunk_rows`
    deals at a time. Every figure is row by row, so the chunks add up to the whole; at 1M
    deals, scoring them all at once peaked at 3.4 GiB on the reason texts alone."""
    return score_chunks(
        scorer,
        (
            features.iloc[start : start + chunk_rows]
            for start in range(0, len(features), chunk_rows)
        ),
        reasons,
    )


def score_chunks(scorer: Scorer, chunks, reasons: bool = True) -> pd.DataFrame:
    """score_features of deals that come a chunk of features at a time (FeatureTable)."""
    parts = [score_chunk(scorer, chunk, reasons) for chunk in chunks if len(chunk)]
    if not parts:
        return pd.DataFrame(columns=SCORED_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def score_chunk(scorer: Scorer, features: pd.DataFrame, reasons: bool) -> pd.DataFrame:
    """score_features of one chunk of deals."""
    scores, contributions, used = scores_of(scorer, features)
    out = features[["source_system", "opportunity_id"]].copy()
    out["score"] = scores
    out["win_probability"], out["grade"] = calibrated_grades(scorer, out["source_system"], scores)
    out["reasons"] = top_reasons(features, contributions, allowed=used) if reasons else None
    return out[SCORED_COLUMNS]


def scores_of(
    scorer: Scorer, features: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Each deal's score, its signals' contributions and which signals it uses."""
    used = scorer.used(features)
    scores, contributions = scorer.score(compute_signals(features, scorer.config), used)
    return scores, contributions, used


def calibrated_grades(
    scorer: Scorer, sources: pd.Series, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Win probability and grade per deal: from its source's calibration when there is one
    (cut-offs ordered on its past deals), else no probability and scoring.yml's cut-offs."""
    probability = np.full(len(scores), np.nan)
    grades = np.asarray(grades_for(np.asarray(scores), scorer.config), dtype=object)
    source_values = sources.astype(str).to_numpy()
    for source, calibration in scorer.calibrations.items():
        mask = source_values == source
        if mask.any():
            probability[mask] = calibration.probability(np.asarray(scores)[mask])
            grades[mask] = calibration.grades(np.asarray(scores)[mask])
    return np.round(probability, 4), grades


def calibrate(con: duckdb.DuckDBPyConnection, scorer: Scorer) -> pd.DataFrame:
    """Past deals scored as they stood before they closed: one row per deal with its score,
    grade, outcome and period (quarter of the close). In learned mode only the later 30%
    of deals (by close), which the model was not fitted on, are graded. Fits each source's
    calibration on these deals (kept on the scorer for today's grades)."""
    closed = scorer.training_set
    if closed is None:
        closed = closed_deals(con, scorer.config, scorer.sources_with_activities)
    columns = ["source_system", "opportunity_id", "score", "grade", "won", "period"]
    if not len(closed):
        return pd.DataFrame(columns=[*columns, "win_probability"])
    scorer_for_backtest = scorer
    keep = np.ones(len(closed), dtype=bool)
    used = scorer.used_of(closed.sources, closed.known)
    if scorer.model is not None:
        order = closed.deals["closed_at"].rank(method="first").to_numpy()
        split = order > 0.7 * len(closed)
        train = ~split
        y = closed.won.astype(float)
        model = fit_logistic(_masked(closed.signals, used)[train], y[train])
        scorer_for_backtest = Scorer(
            scorer.config,
            model,
            uses=scorer.uses,
            sources_with_activities=scorer.sources_with_activities,
        )
        keep = split
    out = closed.deals[["source_system", "opportunity_id"]].copy()
    out["score"] = chunked_scores(scorer_for_backtest, closed.signals, used)
    out["won"] = closed.won
    closed_at = pd.to_datetime(closed.deals["closed_at"], utc=True)
    out["period"] = closed_at.dt.year.astype(str) + "-Q" + closed_at.dt.quarter.astype(str)
    out = out[keep].reset_index(drop=True)
    scorer.calibrations = fit_calibrations(
        scorer.config, out["source_system"], out["score"].to_numpy(), out["won"].to_numpy()
    )
    out["win_probability"], out["grade"] = calibrated_grades(
        scorer, out["source_system"], out["score"].to_numpy()
    )
    return out[[*columns, "win_probability"]]


def fit_calibrations(
    config: ScoringConfig, sources: pd.Series, scores: np.ndarray, won: np.ndarray
) -> dict[str, Calibration]:
    """Per source: scores -> win probability, fitted on its past deals' scores and outcomes
    (a source with too few past deals gets none)."""
    codes, names = pd.factorize(sources, sort=True)
    scores, won = np.asarray(scores), np.asarray(won)
    fitted = {
        source: fit_calibration(scores[codes == i], won[codes == i], config.grade_cutoffs)
        for i, source in enumerate(names)
    }
    return {source: c for source, c in fitted.items() if c is not None}


def chunked_scores(
    scorer: Scorer, signals: pd.DataFrame, used: pd.DataFrame, chunk_rows: int = CHUNK_ROWS
) -> np.ndarray:
    """Scorer.score's scores, `chunk_rows` deals at a time (the contributions of millions
    of closed deals at once were GBs; every score is row by row)."""
    if not len(signals):
        return np.array([], dtype=float)
    return np.concatenate(
        [
            scorer.score(signals.iloc[s : s + chunk_rows], used.iloc[s : s + chunk_rows])[0]
            for s in range(0, len(signals), chunk_rows)
        ]
    )


def grade_counts_by_period(graded: pd.DataFrame) -> dict[tuple, tuple[int, int]]:
    """(source, period, grade) -> (deals, wins) of the graded past deals, period 'all' too
    (rows with no source, period or grade left out). Grouped on categories: on the text
    columns of 600,000 past deals pandas took 0.3-0.8 s, three times as long."""
    frame = pd.DataFrame(
        {c: pd.Categorical(graded[c]) for c in ("source_system", "period", "grade")}
    )
    frame["won"] = graded["won"].to_numpy(dtype=int)
    counts: dict[tuple, tuple[int, int]] = {}
    for part in (frame.assign(period=pd.Categorical(["all"] * len(frame))), frame):
        grouped = part.groupby(["source_system", "period", "grade"], observed=True)
        for key, (n, won) in grouped["won"].agg(["size", "sum"]).iterrows():
            counts[key] = (int(n), int(won))
    return counts


def calibration_table(graded: pd.DataFrame, model_version: str) -> pd.DataFrame:
    """Win rate per grade, and lift over the base rate, per source, overall ('all') and
    per quarter."""
    rows = []
    counts = grade_counts_by_period(graded)
    totals: dict[tuple, tuple[int, int]] = {}
    for (source, period, _), (n, won) in counts.items():
        group_n, group_won = totals.get((source, period), (0, 0))
        totals[(source, period)] = (group_n + n, group_won + won)
    for source, period in sorted(totals, key=lambda k: (k[0], k[1] != "all", k[1])):
        group_n, group_won = totals[(source, period)]
        base = group_won / group_n
        for grade in GRADES:
            n, won = counts.get((source, period, grade), (0, 0))
            rate = won / n if n else np.nan
            rows.append(
                {
                    "source_system": source,
                    "grade": grade,
                    "period": period,
                    "closed_deals": n,
                    "won_deals": won,
                    "win_rate": round(rate, 4) if n else None,
                    "base_win_rate": round(base, 4),
                    "lift": round(rate / base, 3) if n and base else None,
                    "model_version": model_version,
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "source_system",
            "grade",
            "period",
            "closed_deals",
            "won_deals",
            "win_rate",
            "base_win_rate",
            "lift",
            "model_version",
        ],
    )


@dataclass
class ScoringRun:
    """Everything one run of scoring produces."""

    scorer: Scorer
    scored: pd.DataFrame  # open deals
    graded: pd.DataFrame  # past deals, scored as of their cutoff
    calibration: pd.DataFrame  # win rate per grade
    signals: pd.DataFrame  # marts.scoring_signals
    validation: pd.DataFrame  # marts.scoring_validation
    verdicts: list[Verdict]
    past_kept: bool = False  # the closed deals' signals read back from the last run's

    def withheld(self) -> dict[str, str]:
        """Sources whose grades are not written for the CRM, with why."""
        return {v.source_system: v.why for v in self.verdicts if v.writeback_status == "withheld"}

    def messages(self) -> list[str]:
        """What the run says, bilingually: signals left out, and the verdict per source."""
        lines = []
        for source, rows in self.signals.groupby("source_system"):
            out = rows[~rows["used"]]
            if len(out):
                lines.append(
                    f"{source}: signals left out / 未使用的信号: "
                    + "; ".join(f"{r.signal} ({r.left_out_because})" for r in out.itertuples())
                )
        if self.past_kept:
            lines.append(
                "past deals' signals kept from the last run (inputs unchanged) "
                "/ 历史商机信号沿用上次结果"
            )
        return lines + [v.line() for v in self.verdicts]


def score_and_calibrate(
    con: duckdb.DuckDBPyConnection, config: ScoringConfig, as_of_end, reuse: bool = True
) -> ScoringRun:
    """The one scoring path of the daily job and `oppwh score --backtest`: build the scorer
    over the signals each source supports, backtest and calibrate it on past deals, grade
    today's open deals, and give each source its verdict (`reuse`: build_scorer's)."""
    # Today's open deals are computed once, into a temp table, and read from it twice a
    # chunk at a time: for which signals each source can use, then to be scored.
    with open_deal_table(con, as_of_end) as table:
        open_deals = read_deals(table, sources_with_activities(con))
        scorer = build_scorer(con, config, as_of_end, open_deals, reuse)
        past_kept = scorer.training_set.kept
        graded = calibrate(con, scorer)
        scorer.training_set = None  # calibrated: the closed deals are not needed again
        scored = score_chunks(scorer, table.chunks())
    verdicts = []
    sources = distinct_sources(scored["source_system"], graded["source_system"])
    for source in sources:
        past = graded[graded["source_system"] == source]
        verdicts.append(
            verdict(
                source,
                scorer.mode,
                scorer.model_version,
                past["score"].to_numpy(dtype=float),
                past["grade"].to_numpy(),
                past["won"].to_numpy(dtype=bool),
                config.min_auc,
                config.min_closed_deals,
                config.writeback_gate,
            )
        )
    return ScoringRun(
        scorer,
        scored,
        graded,
        calibration_table(graded, scorer.model_version),
        signals_frame(scorer.uses),
        validation_frame(verdicts),
        verdicts,
        past_kept,
    )

"""Grades earn their keep: which signals a source's data can support, calibration of scores
into win probabilities, and the verdict that decides whether grades go back to the CRM.

Everything here is per source system, because sources differ in what they export: one
has activities and accounts, another only deals. A signal whose data a source lacks is
left out (its weight shared among the rest); a field whose blank or zero pattern tells
the outcome (amount 0 only on lost deals) is an outcome, not a signal, and is left out
too; grades come from win probabilities calibrated on past deals scored as of their
cutoff, so win rates fall from A to D; and a source whose backtest is no better than
chance keeps its scores but writes nothing for the CRM to import.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from scoring.config import SIGNALS

# Below this share of deals with the data, a signal says nothing for the source.
MIN_COVERAGE = 0.05
# A field present (non-blank, non-zero) this much more often for one outcome (or for closed
# than for open deals) than another is filled by the outcome, not a signal of it.
LEAKAGE_GAP = 0.5
ENGAGEMENT = ("recency", "frequency", "engagement_trend")
# The deal field behind each signal that a leakage check looks at (engagement, stage and
# history signals are rebuilt as of each cutoff from dated events: no field to leak).
LEAKAGE_FIELDS = {
    "deal_amount": "amount_reporting",
    "target_industry": "industry",
    "industry_trend": "industry",
    "account_size": "employees",
    "repeat_customer": "account_id",
    "account_history": "account_id",
}
GRADES = ("A", "B", "C", "D")
# Fewer closed deals than this: no calibration (grades from the score cut-offs).
MIN_CALIBRATION_DEALS = 30
CALIBRATION_BINS = 10


def _present(values: pd.Series) -> np.ndarray:
    """Non-blank and, for numbers, non-zero: what 'the export has this field' means."""
    if pd.api.types.is_numeric_dtype(values):  # no text to strip (and 10x faster)
        return (values.notna() & (values != 0)).to_numpy(dtype=bool)
    text = values.astype("string").str.strip()
    has = (values.notna() & (text != "").fillna(False)).to_numpy(dtype=bool)
    # Only text that starts like a number can read as zero: parse just those (parsing a
    # million ids as numbers took seconds).
    maybe_zero = text.str.match(r"[-+]?[0.]").fillna(False).to_numpy(dtype=bool)
    if maybe_zero.any():
        zero = (pd.to_numeric(values[maybe_zero], errors="coerce") == 0).fillna(False)
        has[np.flatnonzero(maybe_zero)[zero.to_numpy(dtype=bool)]] = False
    return has


def known_signals(features: pd.DataFrame, sources_with_activities: set[str]) -> pd.DataFrame:
    """Per deal and signal: does the export hold the data the signal is computed from?
    Unknown is not zero: a deal without an account has no account history to speak of."""
    f = features
    known = pd.DataFrame(index=f.index)
    industry = _present(f["industry"])
    account = _present(f["account_id"])
    has_activities = f["source_system"].isin(sources_with_activities).to_numpy()
    known["target_industry"] = industry
    known["industry_trend"] = industry
    known["account_size"] = _present(f["employees"])
    known["deal_amount"] = _present(f["amount_reporting"])
    known["repeat_customer"] = account
    known["account_history"] = account
    for name in ENGAGEMENT:
        known[name] = has_activities
    known["stage_progress"] = f["stage_order"].notna().to_numpy()
    known["time_in_stage"] = (
        f["days_in_stage"].notna() & f["usual_days_in_stage"].notna()
    ).to_numpy()
    known["regressions"] = f["stage"].notna().to_numpy()
    known["close_date_pushes"] = f["has_close_date_history"].fillna(False).to_numpy(dtype=bool)
    return known[list(SIGNALS)]


def leaking_fields(closed: pd.DataFrame, won: np.ndarray, open_: pd.DataFrame) -> dict[str, str]:
    """Signals whose field's presence differs by outcome or between closed and open deals,
    with the words that say so: such a field is filled by the outcome. `closed` and `open_`
    are known_signals of the closed and open deals (for these signals, known is the field's
    presence), `won` the closed deals' outcomes."""
    found: dict[str, str] = {}
    if closed.empty:
        return found
    for signal, field in LEAKAGE_FIELDS.items():
        present = closed[signal].to_numpy(dtype=bool)
        rates = {
            "won": present[won].mean() if won.any() else np.nan,
            "lost": present[~won].mean() if (~won).any() else np.nan,
            "open": open_[signal].mean() if len(open_) else np.nan,
        }
        closed_rate = present.mean()
        outcome_gap = abs(rates["won"] - rates["lost"]) if won.any() and (~won).any() else 0.0
        open_gap = abs(closed_rate - rates["open"]) if len(open_) else 0.0
        if max(outcome_gap, open_gap) >= LEAKAGE_GAP:
            shown = ", ".join(f"{k} {v:.0%}" for k, v in rates.items() if v == v)
            found[signal] = (
                f"{field} is filled by the outcome (present: {shown}) / {field} 的有无由结果决定"
            )
    return found


@dataclass(frozen=True)
class SignalUse:
    source_system: str
    signal: str
    coverage_open: float | None
    coverage_closed: float | None
    used: bool
    weight: float
    why: str


def signal_use(
    source: str,
    known_open: pd.DataFrame,
    known_closed: pd.DataFrame,
    leaks: dict[str, str],
    weights: dict[str, float],
) -> list[SignalUse]:
    """Which signals the source's data supports, and the weight each then carries (the
    configured weights of the signals left out are shared among the rest)."""
    rows = []
    for name in SIGNALS:
        cov_open = float(known_open[name].mean()) if len(known_open) else None
        cov_closed = float(known_closed[name].mean()) if len(known_closed) else None
        why = ""
        if weights.get(name, 0) <= 0:
            why = "weight 0 in scoring.yml / 权重为0"
        elif name in ENGAGEMENT and not (cov_open or cov_closed):
            why = "no activities linked to a deal exported / 未导出关联商机的跟进记录"
        elif name in leaks:
            why = leaks[name]
        elif cov_open is not None and cov_open < MIN_COVERAGE:
            why = f"data on {cov_open:.0%} of open deals / 仅{cov_open:.0%}的进行中商机有数据"
        elif cov_closed is not None and cov_closed < MIN_COVERAGE:
            why = (
                f"data on {cov_closed:.0%} of closed deals as of their cutoff "
                f"/ 仅{cov_closed:.0%}的已关闭商机有数据"
            )
        rows.append(SignalUse(source, name, cov_open, cov_closed, not why, 0.0, why))
    total = sum(weights[r.signal] for r in rows if r.used)
    return [
        SignalUse(
            r.source_system,
            r.signal,
            r.coverage_open,
            r.coverage_closed,
            r.used,
            round(weights[r.signal] * 100.0 / total, 2) if r.used and total else 0.0,
            r.why,
        )
        for r in rows
    ]


# --- calibration: scores -> win probabilities -> grades -----------------------------------


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing step function from score to win probability (isotonic regression
    on past deals), the base win rate those deals had, and the grade cut-offs on the score
    that keep win rates falling from A to D on them."""

    edges: np.ndarray  # upper score bound of each step
    probabilities: np.ndarray  # win probability of each step (non-decreasing)
    base_rate: float
    cutoffs: dict[str, float] | None = None

    def grades(self, scores: np.ndarray) -> np.ndarray:
        return grades_on_cutoffs(np.asarray(scores, dtype=float), self.cutoffs or {})

    def probability(self, scores: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.edges, np.asarray(scores, dtype=float), side="left")
        return self.probabilities[np.clip(i, 0, len(self.probabilities) - 1)]


def pool_adjacent_violators(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Isotonic (non-decreasing) fit of `values` with `weights`: violating neighbours are
    pooled into their weighted mean, so every block's value is its deals' real rate."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for v, w in zip(values, weights, strict=True):
        blocks.append([float(v), float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] >= blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([[b[0]] * b[2] for b in blocks]) if blocks else np.array([])


def fit_calibration(
    scores: np.ndarray, won: np.ndarray, cutoffs: dict[str, float]
) -> Calibration | None:
    """Bin the past deals by score (about ten bins of equal size, equal scores together),
    then make the bins' win rates non-decreasing; and order the grade cut-offs on the same
    deals. None with too few deals."""
    scores, won = np.asarray(scores, dtype=float), np.asarray(won, dtype=float)
    if len(scores) < MIN_CALIBRATION_DEALS:
        return None
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], won[order]
    cuts = np.unique(np.quantile(s, np.linspace(0, 1, CALIBRATION_BINS + 1)[1:-1]))
    bin_of = np.searchsorted(cuts, s, side="left")
    edges, rates, counts = [], [], []
    for b in np.unique(bin_of):
        mask = bin_of == b
        edges.append(s[mask].max())
        rates.append(y[mask].mean())
        counts.append(mask.sum())
    fitted = pool_adjacent_violators(np.array(rates), np.array(counts, dtype=float))
    edges_arr = np.array(edges)
    edges_arr[-1] = np.inf
    return Calibration(edges_arr, fitted, float(y.mean()), ordered_cutoffs(s, y, cutoffs))


def grades_on_cutoffs(scores: np.ndarray, cutoffs: dict[str, float]) -> np.ndarray:
    """A, B, C from the minimum score of each (a missing cut-off never reached); else D."""
    inf = float("inf")
    a, b, c = (cutoffs.get(g, inf) for g in ("A", "B", "C"))
    return np.select([scores >= a, scores >= b, scores >= c], ["A", "B", "C"], "D")


def ordered_cutoffs(scores: np.ndarray, won: np.ndarray, cutoffs: dict[str, float]) -> dict:
    """The configured cut-offs, with adjacent grades merged (the lower one's deals join the
    higher grade) wherever, on the past deals, a grade would not win more often than the one
    below it: win rates then fall from A to D on the deals the grades were checked on."""
    cut = dict(cutoffs)
    scores, won = np.asarray(scores, dtype=float), np.asarray(won, dtype=bool)
    for _ in range(len(GRADES)):
        grades = grades_on_cutoffs(scores, cut)
        rates = [(g, won[grades == g].mean()) for g in GRADES if (grades == g).any()]
        inverted = next((i for i in range(len(rates) - 1) if rates[i][1] <= rates[i + 1][1]), None)
        if inverted is None:
            return cut
        upper, lower = rates[inverted][0], rates[inverted + 1][0]
        # the lower grade's range joins the upper grade: the upper grade now starts where
        # the lower one did (D has no cut-off: it starts at 0)
        start = cut.get(lower, float("-inf")) if lower != "D" else float("-inf")
        for g in GRADES[GRADES.index(upper) + 1 : GRADES.index(lower) + 1]:
            if g != "D":
                cut[g] = float("inf")
        cut[upper] = start
    return cut


# --- the verdict ---------------------------------------------------------------------------


def auc(scores: np.ndarray, won: np.ndarray) -> float:
    """Probability that a random won deal scored above a random lost one (ties count half)."""
    won = np.asarray(won, dtype=bool)
    if won.all() or not won.any():
        return float("nan")
    ranks = pd.Series(scores).rank().to_numpy()
    n_won, n_lost = won.sum(), (~won).sum()
    return float((ranks[won].sum() - n_won * (n_won + 1) / 2) / (n_won * n_lost))


def _auc_of_level_counts(won_at: np.ndarray, lost_at: np.ndarray) -> float:
    """AUC of deals counted per score level, lowest level first (ties count half)."""
    n_won, n_lost = won_at.sum(), lost_at.sum()
    if n_won == 0 or n_lost == 0:
        return float("nan")
    lost_below = np.cumsum(lost_at) - lost_at
    return float((won_at * (lost_below + lost_at / 2)).sum() / (n_won * n_lost))


def auc_interval(
    scores: np.ndarray, won: np.ndarray, draws: int = 200, seed: int = 7
) -> tuple[float, float]:
    """A 90% bootstrap interval of the AUC (fixed seed: the same data, the same interval)."""
    scores, won = np.asarray(scores, dtype=float), np.asarray(won, dtype=bool)
    if len(scores) < 2 or won.all() or not won.any():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    # Deals of the same score and outcome are interchangeable, so a resample of n deals is,
    # in distribution, how many it takes from each (score, outcome) cell: one multinomial
    # draw over the cells, a few thousand at most, instead of n picks (a million deals:
    # 2 s of picking down to milliseconds).
    levels, level_of = np.unique(scores, return_inverse=True)
    cells = np.bincount(level_of * 2 + won, minlength=2 * len(levels))
    counts = rng.multinomial(len(scores), cells / len(scores), size=draws)
    values = [_auc_of_level_counts(c[1::2], c[0::2]) for c in counts]
    values = [v for v in values if v == v]
    if not values:
        return float("nan"), float("nan")
    return float(np.quantile(values, 0.05)), float(np.quantile(values, 0.95))


def win_rate_by_grade(grades: np.ndarray, won: np.ndarray) -> dict[str, dict]:
    frame = pd.DataFrame({"grade": grades, "won": np.asarray(won, dtype=bool)})
    out = {}
    for g in GRADES:
        deals = frame[frame["grade"] == g]
        out[g] = {
            "deals": len(deals),
            "won": int(deals["won"].sum()),
            "win_rate": round(float(deals["won"].mean()), 4) if len(deals) else None,
        }
    return out


@dataclass(frozen=True)
class Verdict:
    source_system: str
    mode: str
    model_version: str
    closed_deals_scored: int
    auc: float | None
    auc_low: float | None
    auc_high: float | None
    win_rate_by_grade: dict
    is_better_than_chance: bool
    writeback_status: str
    why: str

    def line(self) -> str:
        """One bilingual line for the run's output."""
        area = "–" if self.auc is None else f"{self.auc:.3f}"
        if self.is_better_than_chance:
            return (
                f"{self.source_system}: grades validated (AUC {area} on "
                f"{self.closed_deals_scored} past deals), write-back {self.writeback_status} "
                f"/ 评级通过回测，回写{'已写出' if self.writeback_status == 'written' else '未写出'}"
            )
        return (
            f"! warn: {self.source_system}: grades no better than chance ({self.why}); "
            f"write-back {self.writeback_status} / 评级未优于随机，"
            f"{'仍已回写' if self.writeback_status == 'written' else '不回写CRM'}"
        )


def verdict(
    source: str,
    mode: str,
    model_version: str,
    scores: np.ndarray,
    grades: np.ndarray,
    won: np.ndarray,
    min_auc: float,
    min_closed: int,
    gate: str,
) -> Verdict:
    """Better than chance: AUC at least min_auc on at least min_closed past deals scored as
    of their cutoff, and the best grade present wins more often than the worst one."""
    n = len(scores)
    area = auc(scores, won) if n else float("nan")
    low, high = auc_interval(scores, won) if n else (float("nan"), float("nan"))
    rates = win_rate_by_grade(grades, won)
    present = [rates[g]["win_rate"] for g in GRADES if rates[g]["deals"]]
    ordered = len(present) >= 2 and present[0] > present[-1]
    reasons = []
    if n < min_closed:
        reasons.append(f"{n} closed deals scored, {min_closed} needed / 已关闭商机不足")
    if area != area or area < min_auc:
        shown = "–" if area != area else f"{area:.3f}"
        reasons.append(f"AUC {shown} < {min_auc} / AUC不足")
    if not ordered:
        reasons.append(
            "the top grade does not win more often than the bottom one / 高等级赢率不高于低等级"
        )
    better = not reasons
    status = "written" if better or gate == "always" else "withheld"
    return Verdict(
        source,
        mode,
        model_version,
        n,
        None if area != area else round(area, 4),
        None if low != low else round(low, 4),
        None if high != high else round(high, 4),
        rates,
        better,
        status,
        "; ".join(reasons),
    )


# The columns of the two tables scoring writes about itself, with their SQL types (a column
# NULL on every row must still get a plain type for BI tools).
VALIDATION_COLUMNS = {
    "source_system": "VARCHAR",
    "mode": "VARCHAR",
    "model_version": "VARCHAR",
    "closed_deals_scored": "BIGINT",
    "auc": "DOUBLE",
    "auc_low": "DOUBLE",
    "auc_high": "DOUBLE",
    "win_rate_by_grade": "VARCHAR",
    "is_better_than_chance": "BOOLEAN",
    "writeback_status": "VARCHAR",
    "why": "VARCHAR",
}
SIGNAL_COLUMNS = {
    "source_system": "VARCHAR",
    "signal": "VARCHAR",
    "coverage_open": "DOUBLE",
    "coverage_closed": "DOUBLE",
    "used": "BOOLEAN",
    "weight": "DOUBLE",
    "left_out_because": "VARCHAR",
}


def validation_frame(verdicts: list[Verdict]) -> pd.DataFrame:
    """marts.scoring_validation: one row per source for this run."""
    rows = [
        {**asdict(v), "win_rate_by_grade": json.dumps(v.win_rate_by_grade), "why": v.why or None}
        for v in verdicts
    ]
    return pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))


def signals_frame(uses: list[SignalUse]) -> pd.DataFrame:
    """marts.scoring_signals: one row per source and signal for this run."""
    rows = [
        {
            **asdict(u),
            "coverage_open": None if u.coverage_open is None else round(u.coverage_open, 4),
            "coverage_closed": None if u.coverage_closed is None else round(u.coverage_closed, 4),
            "left_out_because": u.why or None,
        }
        for u in uses
    ]
    return pd.DataFrame(rows, columns=list(SIGNAL_COLUMNS))

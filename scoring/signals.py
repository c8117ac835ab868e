"""From features to signals (-1..+1), rule scores, and the reasons people read.

Vectorised over all deals at once (numpy on the feature frame): a million deals cost a
handful of array operations, not a Python loop per deal; only the reason strings are
built per deal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from scoring.config import SIGNALS, ScoringConfig


def _clip(values, low=-1.0, high=1.0) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=float), low, high)


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def compute_signals(f: pd.DataFrame, config: ScoringConfig) -> pd.DataFrame:
    """One column per signal, each from -1 (against the deal) to +1 (for it); 0 = unknown."""
    out = pd.DataFrame(index=f.index)
    targets = {t.strip().lower() for t in config.target_industries}
    industry = f["industry"].astype("string").str.strip().str.lower()
    out["target_industry"] = np.where(
        industry.isna(), 0.0, np.where(industry.isin(targets), 1.0, -0.5)
    )
    employees = _num(f, "employees")
    out["account_size"] = np.select(
        [np.isnan(employees), employees >= 1000, employees >= 100], [0.0, 1.0, 0.3], -0.5
    )
    amount, typical = _num(f, "amount_reporting"), _num(f, "typical_amount")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log2(amount / typical)
    out["deal_amount"] = np.where(np.isfinite(ratio), _clip(ratio / 2), 0.0)
    out["repeat_customer"] = np.where(_num(f, "account_wins") > 0, 1.0, 0.0)
    recent, longrun = _num(f, "industry_recent_win_rate"), _num(f, "industry_longrun_win_rate")
    trend_known = (_num(f, "industry_recent_closed") >= 3) & ~np.isnan(recent) & ~np.isnan(longrun)
    out["industry_trend"] = np.where(trend_known, _clip((recent - longrun) * 5), 0.0)
    out["account_history"] = _clip((_num(f, "account_wins") - _num(f, "account_losses")) / 2)
    since, age = _num(f, "days_since_touch"), _num(f, "age_days")
    # A deal only days old says little yet: no touch in its first week is not neglect.
    out["recency"] = np.select(
        [
            np.isnan(since) & (age <= 7),
            np.isnan(since) & (age <= 14),
            np.isnan(since),
            since <= 7,
            since <= 14,
            since <= 30,
        ],
        [0.0, -0.4, -1.0, 1.0, 0.4, -0.4],
        -1.0,
    )
    weeks = np.clip(np.minimum(age, 30.0) / 7.0, 1.0, None)
    per_week = _num(f, "touches_30d") / weeks
    maturity = np.clip(np.nan_to_num(age) / 14.0, 0.0, 1.0)
    out["frequency"] = _clip((per_week - 1.0) / 1.5) * maturity
    last, before = _num(f, "touches_30d"), _num(f, "touches_prev_30d")
    trend_ok = (last + before >= 2) & (age > 45)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["engagement_trend"] = np.where(trend_ok, (last - before) / (last + before), 0.0)
    order, first, final = _num(f, "stage_order"), _num(f, "first_order"), _num(f, "last_order")
    with np.errstate(divide="ignore", invalid="ignore"):
        progress = (order - first) / (final - first) * 2 - 1
    out["stage_progress"] = np.where(np.isfinite(progress), _clip(progress), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        stay = _num(f, "days_in_stage") / _num(f, "usual_days_in_stage")
    out["time_in_stage"] = np.where(np.isfinite(stay), _clip(1 - stay, -1.0, 0.3), 0.0)
    out["regressions"] = -np.minimum(_num(f, "regressions") * 0.5, 1.0)
    out["close_date_pushes"] = -np.minimum(_num(f, "close_date_pushes") * 0.4, 1.0)
    return out[list(SIGNALS)].fillna(0.0)


def rule_contributions(
    signals: pd.DataFrame, config: ScoringConfig, used: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Points each signal adds to or takes from 50; all used signals at +1 make 100.

    `used` (deal x signal, from the deal's source) leaves signals out: the weight of those
    left out is shared among the rest, row by row."""
    weights = np.array([config.weights[s] for s in SIGNALS])
    if used is None:
        scale = 50.0 / weights.sum() if weights.sum() > 0 else 0.0
        return signals * (weights * scale)
    mask = used[list(SIGNALS)].to_numpy(dtype=float)
    totals = mask @ weights
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(totals > 0, 50.0 / totals, 0.0)
    return signals * mask * weights * scale[:, None]


def scores_from_contributions(contributions: pd.DataFrame) -> np.ndarray:
    return np.clip(50.0 + contributions.sum(axis=1).to_numpy(), 0, 100).round(1)


def grades_for(scores: np.ndarray, config: ScoringConfig) -> np.ndarray:
    cut = config.grade_cutoffs
    return np.select(
        [scores >= cut["A"], scores >= cut["B"], scores >= cut["C"]], ["A", "B", "C"], "D"
    )


def _num_text(frame: pd.DataFrame, column: str) -> pd.Series:
    """Whole numbers as text for every row ('?' when unknown), vectorised."""
    values = pd.to_numeric(frame[column], errors="coerce").round(0)
    return values.astype("Int64").astype("string").fillna("?")


def reason_texts(f: pd.DataFrame, name: str) -> tuple[pa.Array, pa.Array]:
    """One signal's reason for (▲) and against (▼) each deal of `f`, built column-wise as
    Arrow strings (a few string operations per signal, not a Python call per deal, nor a
    Python string per deal). top_reasons asks only for the deals whose top reasons name the
    signal: at a million deals, building every signal's text for every deal was most of the
    scoring step."""
    n = len(f)

    def same(text: str) -> pa.Array:
        return pa.repeat(pa.scalar(text, pa.string()), n)

    def pair(for_: pd.Series, against: pd.Series) -> tuple[pa.Array, pa.Array]:
        return _arrow(for_), _arrow(against)

    def both(text: pd.Series) -> tuple[pa.Array, pa.Array]:
        return pair(text, text)

    if name in ("recency", "frequency"):
        since = pd.to_numeric(f["days_since_touch"], errors="coerce")
        days = _num_text(f, "days_since_touch")
        touches = _num_text(f, "touches_30d")
    if name in ("stage_progress", "time_in_stage"):
        stage = f["stage"].astype("string").fillna("?")
    match name:
        case "recency":
            never = pa.array(since.isna().to_numpy(dtype=bool))
            today = pa.array((since < 1).to_numpy(dtype=bool))
            return (
                pc.if_else(
                    never,
                    "新商机 / new deal",
                    pc.if_else(
                        today,
                        "今天有跟进 / followed up today",
                        _arrow(days + "天前有跟进 / followed up " + days + " days ago"),
                    ),
                ),
                pc.if_else(
                    never,
                    "从未跟进 / never followed up",
                    _arrow("近" + days + "天无跟进 / no follow-up in " + days + " days"),
                ),
            )
        case "frequency":
            return pair(
                "近30天跟进" + touches + "次 / " + touches + " touches in the last 30 days",
                "跟进稀少（近30天"
                + touches
                + "次）/ little follow-up ("
                + touches
                + " touches in 30 days)",
            )
        case "engagement_trend":
            return same("跟进在增加 / follow-up increasing"), same(
                "跟进在减少 / follow-up dropping off"
            )
        case "industry_trend":
            return (
                same("行业赢率上升 / industry win rate rising"),
                same("行业赢率下降 / industry win rate falling"),
            )
        case "target_industry":
            industry = f["industry"].astype("string").fillna("?")
            return pair(
                "目标行业（" + industry + "）/ target industry (" + industry + ")",
                "非目标行业（" + industry + "）/ not a target industry (" + industry + ")",
            )
        case "account_size":
            staff = _num_text(f, "employees")
            return pair(
                "大客户（" + staff + "人）/ large account (" + staff + " staff)",
                "小客户（" + staff + "人）/ small account (" + staff + " staff)",
            )
        case "deal_amount":
            return (
                same("金额高于常规 / larger than the typical deal"),
                same("金额低于常规 / smaller than the typical deal"),
            )
        case "repeat_customer":
            repeat = same("老客户，曾成交 / existing customer with past wins")
            return repeat, repeat
        case "account_history":
            wins, losses = _num_text(f, "account_wins"), _num_text(f, "account_losses")
            return both(
                "该客户赢单"
                + wins
                + "次、输单"
                + losses
                + "次 / account won "
                + wins
                + ", lost "
                + losses
            )
        case "stage_progress":
            return pair(
                "已到后期阶段（" + stage + "）/ late stage (" + stage + ")",
                "仍在早期阶段（" + stage + "）/ still early (" + stage + ")",
            )
        case "time_in_stage":
            stay = _num_text(f, "days_in_stage")
            return (
                same("推进节奏正常 / moving at the usual pace"),
                _arrow(
                    "在"
                    + stage
                    + "停留"
                    + stay
                    + "天，超过常规 / "
                    + stay
                    + " days in "
                    + stage
                    + ", longer than usual"
                ),
            )
        case "regressions":
            regressions = _num_text(f, "regressions")
            return both("阶段倒退" + regressions + "次 / slipped back a stage " + regressions + "x")
        case "close_date_pushes":
            pushes = _num_text(f, "close_date_pushes")
            return both(
                "预计成交日期推迟" + pushes + "次 / expected close date pushed " + pushes + "x"
            )
    raise ValueError(f"no reason text for signal {name!r}")


NO_REASON = "数据中无可用信号 / no usable signal in the data"


def top_reasons(
    features: pd.DataFrame,
    contributions: pd.DataFrame,
    top: int = 3,
    min_points: float = 1.0,
    allowed: pd.DataFrame | None = None,
) -> pd.Series:
    """Each deal's strongest signed reasons, strongest first ('▲ ...; ▼ ...').

    At least one reason per deal, even when every signal is weak; but never one about data
    the deal does not have (`allowed`: deal x signal, known and used), so a deal without
    an account hears nothing about its account, one without activities nothing about
    follow-up."""
    values = contributions.to_numpy()
    names = list(contributions.columns)
    frame = features.reset_index(drop=True)
    n = len(values)
    if not n or not names:
        return pd.Series(NO_REASON, index=features.index, dtype="str")
    ok = np.ones_like(values, dtype=bool) if allowed is None else allowed.to_numpy(dtype=bool)
    priority = np.where(ok, np.abs(values), -1.0)
    width = min(top, len(names))
    order = np.argsort(-priority, axis=1, kind="stable")[:, :width]
    rows = np.arange(n)
    # per rank: the deals each signal is that rank's reason of, and their texts
    pieces: list[list[tuple[np.ndarray, pa.Array]]] = [[] for _ in range(width)]
    for k, name in enumerate(names):
        picked = order == k
        named = np.flatnonzero(picked.any(axis=1))  # the deals whose top reasons name it
        if not len(named):
            continue
        positive, negative = reason_texts(frame.iloc[named], name)
        for rank in range(width):
            at = np.flatnonzero(picked[named, rank])
            if not len(at):
                continue
            deals = named[at]
            taken = pa.array(at)
            marked = pa.concat_arrays(
                [
                    pc.binary_join_element_wise("▲ ", positive.take(taken), ""),
                    pc.binary_join_element_wise("▼ ", negative.take(taken), ""),
                ]
            )
            # for or against: the text of its sign, picked by position (Arrow's if_else
            # on text was the slow part of building the reasons)
            sign = np.where(values[deals, k] >= 0, 0, len(at)) + np.arange(len(at))
            pieces[rank].append((deals, marked.take(pa.array(sign))))
    parts, kept = [], np.empty((n, width), dtype=bool)
    for rank in range(width):
        # each deal has exactly one signal at each rank: the pieces are a permutation of them
        deals = np.concatenate([d for d, _ in pieces[rank]])
        texts = pa.concat_arrays([t for _, t in pieces[rank]])
        parts.append(texts.take(pa.array(np.argsort(deals, kind="stable"))))
        j = order[:, rank]
        kept[:, rank] = ok[rows, j] & (rank == 0 or np.abs(values[rows, j]) >= min_points)
    return joined(parts, kept, "; ", NO_REASON).set_axis(features.index)


def joined(parts: list[pa.Array], kept: np.ndarray, separator: str, empty: str) -> pd.Series:
    """Row by row, the parts that are kept (`kept`: row x part) joined by `separator`
    (`empty` when none is), into a Series of pandas' Arrow-backed strings: every row's kept
    parts gathered into one Arrow list, joined in one call (no Python string per row)."""
    n, width = kept.shape
    values = pa.concat_arrays([*parts, pa.array([empty], pa.string())])
    # row-major: row i's parts at i, n + i, ...; the `empty` text last, for rows with none
    at = np.arange(width)[None, :] * n + np.arange(n)[:, None]
    at = np.hstack([at, np.full((n, 1), width * n)])
    keep = np.hstack([kept, ~kept.any(axis=1, keepdims=True)])
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), values.take(pa.array(at[keep])))
    return pd.Series(pc.binary_join(lists, separator).to_pandas())


def _arrow(text: pd.Series) -> pa.Array:
    """A text Series as an Arrow string array (no copy of pandas' Arrow-backed strings)."""
    array = pa.array(text, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array

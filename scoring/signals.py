"""From features to signals (-1..+1), rule scores, and the reasons people read.

Vectorised over all deals at once (numpy on the feature frame): a million deals cost a
handful of array operations, not a Python loop per deal; only the reason strings are
built per deal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def rule_contributions(signals: pd.DataFrame, config: ScoringConfig) -> pd.DataFrame:
    """Points each signal adds to or takes from 50; all signals at +1 make 100."""
    weights = np.array([config.weights[s] for s in SIGNALS])
    scale = 50.0 / weights.sum() if weights.sum() > 0 else 0.0
    return signals * (weights * scale)


def scores_from_contributions(contributions: pd.DataFrame) -> np.ndarray:
    return np.clip(50.0 + contributions.sum(axis=1).to_numpy(), 0, 100).round(1)


def grades_for(scores: np.ndarray, config: ScoringConfig) -> np.ndarray:
    cut = config.grade_cutoffs
    return np.select(
        [scores >= cut["A"], scores >= cut["B"], scores >= cut["C"]], ["A", "B", "C"], "D"
    )


def _fmt(value, digits=0) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "?"
    return f"{value:.{digits}f}"


def reason_text(signal: str, positive: bool, row: pd.Series) -> str:
    """The reason in Chinese and English, with the figure behind it."""
    if signal == "recency":
        since = row["days_since_touch"]
        if np.isnan(since):
            return "从未跟进 / never followed up" if not positive else "新商机 / new deal"
        if positive and since < 1:
            return "今天有跟进 / followed up today"
        return (
            f"{_fmt(since)}天前有跟进 / followed up {_fmt(since)} days ago"
            if positive
            else f"近{_fmt(since)}天无跟进 / no follow-up in {_fmt(since)} days"
        )
    if signal == "frequency":
        n = row["touches_30d"]
        return (
            f"近30天跟进{n}次 / {n} touches in the last 30 days"
            if positive
            else f"跟进稀少（近30天{n}次）/ little follow-up ({n} touches in 30 days)"
        )
    if signal == "engagement_trend":
        return (
            "跟进在增加 / follow-up increasing"
            if positive
            else "跟进在减少 / follow-up dropping off"
        )
    if signal == "industry_trend":
        return (
            "行业赢率上升 / industry win rate rising"
            if positive
            else "行业赢率下降 / industry win rate falling"
        )
    if signal == "target_industry":
        industry = row["industry"]
        return (
            f"目标行业（{industry}）/ target industry ({industry})"
            if positive
            else f"非目标行业（{industry}）/ not a target industry ({industry})"
        )
    if signal == "account_size":
        n = _fmt(row["employees"])
        return (
            f"大客户（{n}人）/ large account ({n} staff)"
            if positive
            else f"小客户（{n}人）/ small account ({n} staff)"
        )
    if signal == "deal_amount":
        return (
            "金额高于常规 / larger than the typical deal"
            if positive
            else "金额低于常规 / smaller than the typical deal"
        )
    if signal == "repeat_customer":
        return "老客户，曾成交 / existing customer with past wins"
    if signal == "account_history":
        w, lost = int(row["account_wins"]), int(row["account_losses"])
        return f"该客户赢单{w}次、输单{lost}次 / account won {w}, lost {lost}"
    if signal == "stage_progress":
        stage = row["stage"]
        return (
            f"已到后期阶段（{stage}）/ late stage ({stage})"
            if positive
            else f"仍在早期阶段（{stage}）/ still early ({stage})"
        )
    if signal == "time_in_stage":
        d, stage = _fmt(row["days_in_stage"]), row["stage"]
        return (
            "推进节奏正常 / moving at the usual pace"
            if positive
            else f"在{stage}停留{d}天，超过常规 / {d} days in {stage}, longer than usual"
        )
    if signal == "regressions":
        return (
            f"阶段倒退{int(row['regressions'])}次 / slipped back a stage {int(row['regressions'])}x"
        )
    if signal == "close_date_pushes":
        n = int(row["close_date_pushes"])
        return f"预计成交日期推迟{n}次 / expected close date pushed {n}x"
    return signal


def top_reasons(
    features: pd.DataFrame, contributions: pd.DataFrame, top: int = 3, min_points: float = 1.0
) -> list[str]:
    """Each deal's strongest signed reasons, strongest first ('▲ ...; ▼ ...').

    At least one reason per deal, even when every signal is weak."""
    values = contributions.to_numpy()
    order = np.argsort(-np.abs(values), axis=1)[:, :top]
    names = list(contributions.columns)
    reasons = []
    for i in range(len(values)):
        row = features.iloc[i]
        parts = []
        for rank, j in enumerate(order[i]):
            points = values[i, j]
            if rank > 0 and abs(points) < min_points:
                break
            sign = "▲" if points >= 0 else "▼"
            parts.append(f"{sign} {reason_text(names[j], points >= 0, row)}")
        reasons.append("; ".join(parts))
    return reasons

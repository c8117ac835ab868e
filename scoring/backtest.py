"""`oppwh score --backtest`: how well the grades predicted past outcomes, per source, as
lines to print (the scoring itself is scoring.step.backtest, the daily job's own path)."""

from __future__ import annotations

from scoring.config import ScoringConfig
from scoring.model import GRADES, ScoringRun


def backtest_lines(run: ScoringRun, config: ScoringConfig) -> list[str]:
    """Per source: AUC with its bootstrap interval, win rate and deals per grade, verdict."""
    lines: list[str] = []
    lines.append(f"Backtest / 回测 ({run.scorer.model_version}; {run.scorer.note})")
    lines.append(f"  past deals scored as they stood {config.horizon_days} days before they closed")
    for v in run.verdicts:
        past = run.graded[run.graded["source_system"] == v.source_system]
        table = run.calibration[
            (run.calibration["source_system"] == v.source_system)
            & (run.calibration["period"] == "all")
        ].set_index("grade")
        area = "–" if v.auc is None else f"{v.auc:.3f}"
        interval = "" if v.auc_low is None else f" (90% interval {v.auc_low:.3f}–{v.auc_high:.3f})"
        lift_a = table.loc["A", "lift"] if "A" in table.index else None
        lines.append(f"\nSource / 来源: {v.source_system} — {len(past):,} closed deals scored")
        if len(past):
            lines.append(f"  base win rate / 基准赢率: {past['won'].mean():.1%}")
        lines.append(f"  AUC: {area}{interval}")
        lines.append(f"  lift of A over base rate / A级提升: {'–' if lift_a is None else lift_a}")
        lines.append("  grade  deals   won  win rate   lift")
        for grade in GRADES:
            row = table.loc[grade] if grade in table.index else None
            n = 0 if row is None else int(row["closed_deals"])
            won = 0 if row is None else int(row["won_deals"])
            rate = (
                "–"
                if row is None or row["win_rate"] is None or not n
                else f"{row['win_rate']:6.1%}"
            )
            lift = "–" if row is None or row["lift"] is None or not n else f"{row['lift']:5.2f}"
            lines.append(f"  {grade:>5}  {n:>5}  {won:>4}  {rate:>8}  {lift:>5}")
        lines.append(f"  verdict / 结论: {v.line()}")
    return lines

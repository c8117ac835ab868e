"""When an open deal will close, as shares of the months ahead.

A deal's expected close date decides when it is still ahead. Otherwise (missing, or already
past) the share of each month comes from how long past deals took to close, won or lost,
from entering the stage this deal is in, given they had lasted as long as this deal has so
far: a Kaplan-Meier estimate over the deals of its customer type (new or existing) and stage,
then of its stage, then over the source's whole cycle from creation. Deals still open count
as far as they are known (censored at the cutoff), so a pipeline full of deals that never
close is not expected to close next month. A deal older than every deal with enough history
behind it is not expected within the months ahead.

The forecast multiplies these shares by the deal's win probability, which the grades
calibrate on deals as they stood shortly before they closed: together, the chance the deal
closes in a month, times the chance a deal closing then is won.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Past deals that must have lasted as long as a deal has before their timing is trusted.
MIN_HISTORY = 5


@dataclass(frozen=True)
class Survival:
    """Kaplan-Meier: the share of deals still open `t` days after the start."""

    times: np.ndarray  # every deal's days to close or to the cutoff, sorted
    event_times: np.ndarray
    surviving: np.ndarray  # the share still open just after each event time

    @classmethod
    def fit(cls, days: np.ndarray, closed: np.ndarray) -> Survival:
        order = np.argsort(days, kind="stable")
        return cls.fit_sorted(np.asarray(days, dtype=float)[order], np.asarray(closed)[order])

    @classmethod
    def fit_sorted(cls, t: np.ndarray, closed: np.ndarray) -> Survival:
        """`fit` of days already in ascending order (close_month_shares sorts a cutoff's
        history once for all its groups)."""
        t, e = np.asarray(t, dtype=float), np.asarray(closed, dtype=bool)
        ends = t[e]  # the closes, in order: each run of equal days is one event time
        first = (
            np.flatnonzero(np.r_[True, ends[1:] != ends[:-1]])
            if len(ends)
            else np.zeros(0, dtype=int)
        )
        event_times = ends[first]
        deaths = np.diff(np.r_[first, len(ends)])
        at_risk = len(t) - np.searchsorted(t, event_times, side="left")
        surviving = np.cumprod(1.0 - deaths / at_risk)
        return cls(t, event_times, surviving)

    def at(self, t: np.ndarray) -> np.ndarray:
        if not len(self.event_times):  # none closed yet: all still open
            return np.ones(np.shape(t))
        i = np.searchsorted(self.event_times, t, side="right")
        return np.where(i > 0, self.surviving[np.maximum(i - 1, 0)], 1.0)

    def lasted(self, t: np.ndarray) -> np.ndarray:
        """How many deals are known to have lasted longer than `t`."""
        return len(self.times) - np.searchsorted(self.times, t, side="right")


def remaining_shares(
    ages: np.ndarray, survival: Survival, windows: list[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """Per deal (its age in days) and window ((lo, hi] days from the cutoff): the chance it
    closes in the window given it has lasted its age; and per deal whether enough past deals
    had lasted that long."""
    ages = np.asarray(ages, dtype=float)
    now = survival.at(ages)
    enough = (survival.lasted(ages) >= MIN_HISTORY) & (now > 0)
    shares = np.zeros((len(ages), len(windows)))
    for k, (lo, hi) in enumerate(windows):
        closed = survival.at(ages + lo) - survival.at(ages + hi)
        shares[:, k] = np.where(enough, closed / np.where(now > 0, now, 1.0), 0.0)
    return shares, enough


def close_month_shares(
    deals: pd.DataFrame,
    stage_history: pd.DataFrame,
    cycle_history: pd.DataFrame,
    windows: list[tuple[float, float]],
) -> np.ndarray:
    """deals x windows: the chance each deal closes in each window.

    `deals` has source_system, customer_type, stage, days_in_stage, age_days, and
    close_window: the window of its expected close date when that is still ahead (-1 when
    it is beyond the last window), NaN when it is missing or past. `stage_history` has
    source_system, customer_type, stage, days (from entering the stage to the close, or to
    the cutoff) and closed; `cycle_history` source_system, days (from creation) and closed.
    Windows are days from the cutoff, (lo, hi].
    """
    shares = np.zeros((len(deals), len(windows)))
    window = deals["close_window"].to_numpy(dtype=float)
    done = ~np.isnan(window)
    for k in range(len(windows)):
        shares[window == k, k] = 1.0
    levels = [
        (["source_system", "customer_type", "stage"], stage_history, "days_in_stage"),
        (["source_system", "stage"], stage_history, "days_in_stage"),
        (["source_system"], cycle_history, "age_days"),
    ]
    by_days: dict[int, pd.DataFrame] = {}
    ages = {column: deals[column].to_numpy(dtype=float) for column in ("days_in_stage", "age_days")}
    for keys, history, age_column in levels:
        if done.all() or history.empty:
            continue
        # in order of days once per history, so each group's rows come sorted
        if id(history) not in by_days:
            by_days[id(history)] = _by_days(history)
        history = by_days[id(history)]
        # a curve only for the groups that have deals still to time, on their rows by index
        # (no frame per group)
        rows_of = group_rows(history, keys)
        days, closed = history["days"].to_numpy(), history["closed"].to_numpy()
        for key, rows in group_rows(deals, keys, np.flatnonzero(~done)).items():
            past = rows_of.get(key)
            if past is None:
                continue
            curve = Survival.fit_sorted(days[past], closed[past])
            got, enough = remaining_shares(ages[age_column][rows], curve, windows)
            shares[rows[enough]] = got[enough]
            done[rows[enough]] = True
    return shares  # a deal no level could time: not expected within the windows


def _by_days(history: pd.DataFrame) -> pd.DataFrame:
    """The history in ascending order of days (as it is when forecast.closing_history cut
    it: then not copied, which at ten million deals is half a GB)."""
    days = history["days"].to_numpy()
    if len(days) < 2 or bool((days[1:] >= days[:-1]).all()):
        return history.reset_index(drop=True)
    return history.take(np.argsort(days, kind="stable")).reset_index(drop=True)


def group_rows(
    frame: pd.DataFrame, keys: list[str], rows: np.ndarray | None = None
) -> dict[tuple, np.ndarray]:
    """The positions of `frame`'s rows (of `rows`, else all) per value of `keys`, each
    group's in ascending order; a row with a missing key is in none. What pandas'
    groupby(...).indices gives, from integer codes: on a cutoff's three million stage
    visits that cost 0.25 s, seven cutoffs a run."""
    codes, values = [], []
    for key in keys:
        column = frame[key]
        if isinstance(column.dtype, pd.CategoricalDtype):
            code, uniques = column.cat.codes.to_numpy(), column.cat.categories
            code = code if rows is None else code[rows]
        else:
            column = column.to_numpy()
            code, uniques = pd.factorize(column if rows is None else column[rows])  # missing: -1
        codes.append(code)
        values.append(uniques)
    combined = np.zeros(len(frame) if rows is None else len(rows), dtype=np.int64)
    present = np.ones(len(combined), dtype=bool)
    for code, uniques in zip(codes, values, strict=True):
        combined *= max(len(uniques), 1)
        combined += code
        present &= code >= 0
    kept = np.flatnonzero(present)
    groups = combined[kept]
    if len(groups) and groups.max() < 2**16:
        # a handful of groups: numpy sorts 16-bit codes stably by radix, ten times faster
        groups = groups.astype(np.uint16)
    order = kept[np.argsort(groups, kind="stable")]
    if not len(order):
        return {}
    ordered = combined[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(order)]
    positions = order if rows is None else np.asarray(rows)[order]
    return {
        tuple(
            uniques[code[order[start]]] for code, uniques in zip(codes, values, strict=True)
        ): positions[start:end]
        for start, end in zip(starts, ends, strict=True)
    }

"""Run the contracts on the rows of one new export.

Great Expectations validates the load as a pandas batch (GX 1.x has no DuckDB engine);
only the new file's rows are fetched, never the history. A load larger than
`GX_MAX_ROWS` is checked with the same predicates in DuckDB SQL instead, so a 12-million
row export is not copied into pandas. Checks across the whole history are dbt tests.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

import duckdb
import pandas as pd

from ingestion.schema import TABLES
from quality.contracts import BLOCK, LOST_WORDS, Check, check_by_name, checks_for
from warehouse.database import used_params
from warehouse.dbt_cli import SEEDS_DIR

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# Above this many rows a load is checked in SQL: GX on a pandas copy of a million-row
# export takes ~30 s on 2 cores, the same predicates in DuckDB well under 1 s.
GX_MAX_ROWS = 100_000
SAMPLE_IDS = 10


@dataclass(frozen=True)
class CheckResult:
    check: Check
    file_name: str
    rows_checked: int
    failing_rows: int
    sample_ids: tuple[str, ...]
    engine: str  # great_expectations | sql
    # The values a value-set check did not know (the stage names to define), for the report.
    unknown_values: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0

    @property
    def blocks(self) -> bool:
        return not self.passed and self.check.severity == BLOCK


def _seed_column(name: str, column: str, flag: str | None = None) -> set[str]:
    """A seed's values of `column`, lower case (only the rows whose `flag` is true)."""
    with (SEEDS_DIR / f"{name}.csv").open(encoding="utf-8") as handle:
        return {
            row[column].strip().lower()
            for row in csv.DictReader(handle)
            if flag is None or row[flag].strip().lower() == "true"
        }


@cache
def seed_stages() -> frozenset[str]:
    return frozenset(_seed_column("stages", "stage"))


@cache
def seed_activity_words() -> frozenset[str]:
    return frozenset(_seed_column("activity_type_map", "source_word"))


@cache
def seed_closed_stages() -> frozenset[str]:
    return frozenset(_seed_column("stages", "stage", flag="is_closed"))


def closed_stages(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The stages that close a deal (the stages seed's and a source's own definitions'):
    where the status says nothing, the stage tells a closed deal from an open one."""
    own = con.execute(
        "SELECT DISTINCT lower(stage) FROM raw.stage_definitions WHERE is_closed"
    ).fetchall()
    return set(seed_closed_stages()) | {r[0] for r in own}


def known_stages(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The stages seed plus stages a source defined itself (Salesforce OpportunityStage)."""
    own = con.execute("SELECT DISTINCT lower(stage) FROM raw.stage_definitions").fetchall()
    return set(seed_stages()) | {r[0] for r in own}


def _value_set(check: Check, con) -> list[str]:
    if check.kind == "known_stage":
        return sorted(known_stages(con))
    if check.kind == "known_activity_type":
        return sorted(seed_activity_words())
    if closed_only(check):
        return sorted(closed_stages(con))
    return [v.lower() for v in check.params.get("values", ())]


# --- The predicate table ------------------------------------------------------------------
# Each kind of check, defined once: the SQL that flags a failing row (run in DuckDB on
# loads too large for pandas) beside the Great Expectations expectation built from the same
# check (run on a pandas batch of the new file). tests/test_quality.py runs both paths on
# the same exports and requires the same findings.


def _value_sql(col: str) -> str:
    return f"lower({col}) NOT IN (SELECT unnest($values))"


def _between_sql(check: Check) -> str:
    col = check.column
    bounds = (
        f"{col} < $min" if "min_value" in check.params else "",
        f"{col} > $max" if "max_value" in check.params else "",
    )
    return " OR ".join(b for b in bounds if b)


def _gx_unique(check: Check, frame: pd.DataFrame, value_sets, as_of_end):
    import great_expectations.expectations as gxe

    distinct = frame[TABLES[check.table].column_names].drop_duplicates()
    extra = check.params.get("with", ())
    if extra:
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=[check.column, *extra]), distinct
    return gxe.ExpectColumnValuesToBeUnique(column=check.column), distinct


def _gx_not_null(check: Check, frame: pd.DataFrame, value_sets, as_of_end):
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToNotBeNull(column=check.column), frame


def _gx_between(check: Check, frame: pd.DataFrame, value_sets, as_of_end):
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnValuesToBeBetween(
        column=check.column,
        min_value=check.params.get("min_value"),
        max_value=check.params.get("max_value"),
    ), frame


def _gx_a_not_before_b(check: Check, frame: pd.DataFrame, value_sets, as_of_end):
    """Compared here and flagged, like the SQL (`A < B`; a missing value fails nothing):
    GX's own pair expectation compares the columns' `.values`, which drop the time zone
    and which pandas deprecates for time-zone-aware columns."""
    first, second = frame[check.column], frame[check.params["other"]]
    before = (first.notna() & second.notna() & (first < second)).astype(bool)
    return _gx_flag("_before", check, frame, before, value_sets)


def _gx_flag(prefix: str, check: Check, frame: pd.DataFrame, flags: pd.Series, value_sets=None):
    """The failing rows computed here, as a column of the check's own (`<prefix>__<check>`)
    that GX expects to be all False (of closed deals only, for a check that says so)."""
    import great_expectations.expectations as gxe

    if closed_only(check):
        flags = (flags.fillna(False) & _closed_deals(check, frame, value_sets)).astype(bool)
    column = f"{prefix}__{check.name}"
    expectation = gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[False])
    return expectation, frame.assign(**{column: flags})


def _gx_not_after_as_of(check: Check, frame: pd.DataFrame, value_sets, as_of_end):
    after = frame[check.column] >= pd.Timestamp(as_of_end)
    return _gx_flag("_after", check, frame, after, value_sets)


def closed_deal_sql() -> str:
    """A deal known closed: by its status word, or (no status word the warehouse knows) by
    its stage (as dbt's normalise_status and int_stages_resolved tell)."""
    status = "lower(trim(status))"
    return (
        f"({status} IN (SELECT unnest($closed_words)) "
        f"OR (coalesce({status} NOT IN (SELECT unnest($status_words)), true) "
        "AND lower(trim(stage)) IN (SELECT unnest($values))))"
    )


def _closed_deals(check: Check, frame: pd.DataFrame, value_sets) -> pd.Series:
    """closed_deal_sql over a pandas batch."""
    status = frame["status"].astype("string").str.strip().str.lower()
    stage = frame["stage"].astype("string").str.strip().str.lower()
    by_status = status.isin(check.params["closed_words"])
    by_stage = ~status.isin(check.params["status_words"]) & stage.isin(value_sets[check.name])
    return by_status | by_stage


def closed_only(check: Check) -> bool:
    """Whether the check looks at closed deals only (quality.contracts.CLOSED_DEALS_ONLY)."""
    return "closed_words" in check.params


def _gx_not_null_when_lost(check: Check, frame: pd.DataFrame, value_sets, as_of_end):
    lost = frame["status"].astype("string").str.lower().isin(LOST_WORDS)
    missing = lost.fillna(False) & frame[check.column].isna()
    return _gx_flag("_missing", check, frame, missing)


def _gx_in_value_set(check: Check, frame: pd.DataFrame, value_sets, as_of_end):
    """Compared in lower case, like the SQL."""
    import great_expectations.expectations as gxe

    column = f"_value__{check.name}"
    lowered = frame.assign(**{column: frame[check.column].astype("string").str.lower()})
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=value_sets[check.name]), lowered


@dataclass(frozen=True)
class Kind:
    """One kind of check: its failing-row SQL predicate and its GX expectation."""

    sql: Callable[[Check], str] | None  # None: unique_after_exact_duplicates (a GROUP BY)
    gx: Callable


KINDS: dict[str, Kind] = {
    "unique_after_exact_duplicates": Kind(None, _gx_unique),
    "not_null": Kind(lambda c: f"{c.column} IS NULL", _gx_not_null),
    "between": Kind(_between_sql, _gx_between),
    "a_not_before_b": Kind(lambda c: f"{c.column} < {c.params['other']}", _gx_a_not_before_b),
    "not_after_as_of": Kind(lambda c: f"{c.column} >= $as_of_end", _gx_not_after_as_of),
    "not_null_when_lost": Kind(
        lambda c: f"lower(status) IN $lost AND {c.column} IS NULL", _gx_not_null_when_lost
    ),
    "in_set": Kind(lambda c: _value_sql(c.column), _gx_in_value_set),
    "known_stage": Kind(lambda c: _value_sql(c.column), _gx_in_value_set),
    "known_activity_type": Kind(lambda c: _value_sql(c.column), _gx_in_value_set),
}


# --- SQL path -------------------------------------------------------------------------


def failing_rows_sql(check: Check, table: str) -> str:
    """SELECT of the failing rows' ids of one load (bound: load id, as-of end, ...)."""
    where = "_load_id = $load_id"
    if check.kind == "unique_after_exact_duplicates":
        return duplicated_keys_sql(check, table, where)
    predicate = KINDS[check.kind].sql(check)
    if closed_only(check):
        predicate = f"({predicate}) AND {closed_deal_sql()}"
    id_expr = (
        f"CAST({check.id_column} AS VARCHAR)" if check.id_column else "CAST(_row_number AS VARCHAR)"
    )
    return f"SELECT {id_expr} FROM raw.{table} WHERE {where} AND ({predicate})"


def duplicated_keys_sql(check: Check, table: str, where: str) -> str:
    """The keys of one load held by two rows that differ (rows repeated exactly are one).

    The rows of repeated keys only are compared whole: a key held by one row cannot fail,
    and comparing every row whole (a DISTINCT over all columns, notes and subjects
    included) took 9 s of a 12-million-activity load, finding the few repeated keys 0.5 s.
    Keys are matched NULL-safe, as GROUP BY groups them."""
    values = ", ".join(TABLES[check.table].column_names)
    keys = (check.column, *check.params.get("with", ()))
    key = ", ".join(keys)
    same_key = " AND ".join(f"r.{k} IS NOT DISTINCT FROM d.{k}" for k in keys)
    return (
        f"WITH repeated AS (SELECT {key} FROM raw.{table} WHERE {where} GROUP BY {key} "
        "HAVING count(*) > 1) "
        f"SELECT CAST({check.column} AS VARCHAR) FROM (SELECT DISTINCT {values} "
        f"FROM raw.{table} AS r WHERE {where} AND EXISTS "
        f"(SELECT 1 FROM repeated AS d WHERE {same_key})) GROUP BY {key} HAVING count(*) > 1"
    )


def check_with_sql(con, check: Check, load_id: int, file_name: str, as_of_end) -> CheckResult:
    sql = failing_rows_sql(check, check.table)
    params = {
        "load_id": load_id,
        "min": check.params.get("min_value"),
        "max": check.params.get("max_value"),
        "as_of_end": as_of_end,
        "lost": list(LOST_WORDS),
        "closed_words": list(check.params.get("closed_words", ())),
        "status_words": list(check.params.get("status_words", ())),
        "values": _value_set(check, con),
    }
    failing = [r[0] for r in con.execute(sql, used_params(sql, params)).fetchall()]
    rows = con.execute(
        f"SELECT count(*) FROM raw.{check.table} WHERE _load_id = ?", [load_id]
    ).fetchone()[0]
    return CheckResult(check, file_name, rows, len(failing), tuple(failing[:SAMPLE_IDS]), "sql")


# --- Great Expectations path -------------------------------------------------------------


class GxCheckError(RuntimeError):
    """Great Expectations could not evaluate a check (an error inside GX, not failing rows)."""

    def __init__(self, check: str, file_name: str, info: dict):
        self.details = (check, file_name, {"exception_message": info.get("exception_message")})
        message = info.get("exception_message") or "unknown error"
        super().__init__(
            f"{file_name}: Great Expectations could not evaluate check {check!r}: {message}"
        )

    def __reduce__(self):
        # Raised in the GX worker (quality.gx_worker), raised again in the run.
        return (GxCheckError, self.details)


@cache
def _gx_batch_definition():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("new_exports")
    asset = source.add_dataframe_asset(name="export_rows")
    return asset.add_batch_definition_whole_dataframe("whole_export")


def gx_batches(frame: pd.DataFrame, checks: list[Check], value_sets, as_of_end) -> list[tuple]:
    """The checks grouped by the batch they read: every check on the export's own rows (with
    its helper column added under a name of its own) in one batch, each check on a batch of
    its own (the distinct rows of a uniqueness check) alone. One GX validation per batch
    instead of one per check: each validation costs ~0.2 s however small the export."""
    shared, alone = frame.copy(), []
    together: list[tuple[Check, object]] = []
    for check in checks:
        expectation, data = KINDS[check.kind].gx(check, frame, value_sets, as_of_end)
        if data is frame or (data.index.equals(frame.index) and len(data) == len(frame)):
            added = [c for c in data.columns if c not in frame.columns]
            for column in added:
                shared[column] = data[column]
            together.append((check, expectation))
        else:
            alone.append((data, [(check, expectation)]))
    return ([(shared, together)] if together else []) + alone


# The kinds of check whose expectation is a set of values (read from the warehouse or a seed).
VALUE_SET_KINDS = frozenset(name for name, kind in KINDS.items() if kind.gx is _gx_in_value_set)


def value_sets_of(checks: list[Check], con) -> dict[str, list[str]]:
    """Each value-set check's allowed values, by check name (read here, where the warehouse
    is open, so that the GX part needs no connection and can run in the GX worker)."""
    return {
        c.name: _value_set(c, con) for c in checks if c.kind in VALUE_SET_KINDS or closed_only(c)
    }


def evaluate_with_gx(
    frame: pd.DataFrame, checks: list[Check], value_sets: dict, file_name: str, as_of_end
) -> list[CheckResult]:
    """Every check of one export through Great Expectations, in the order given."""
    import great_expectations as gx

    found: dict[str, CheckResult] = {}
    for data, pairs in gx_batches(frame, checks, value_sets, as_of_end):
        flat = data.reset_index(drop=True)
        for check, expectation in pairs:
            expectation.meta = {"check": check.name}
        suite = gx.ExpectationSuite(
            name=f"{file_name}:{pairs[0][0].table}", expectations=[e for _, e in pairs]
        )
        batch = _gx_batch_definition().get_batch(batch_parameters={"dataframe": flat})
        results = batch.validate(suite, result_format={"result_format": "COMPLETE"}).results
        for result in results:
            check = check_by_name(result.expectation_config.meta["check"])
            found[check.name] = gx_check_result(check, result, flat, file_name)
    return [found[c.name] for c in checks]


def gx_check_result(check: Check, result, flat: pd.DataFrame, file_name: str) -> CheckResult:
    """One check's finding from its GX result: how many rows failed, and which ids."""
    raised = (result.exception_info or {}).get("raised_exception")
    if raised:
        # Not a finding of no failing rows: GX could not evaluate the check at all.
        raise GxCheckError(check.name, file_name, result.exception_info)
    if result.success:
        return CheckResult(check, file_name, len(flat), 0, (), "great_expectations")
    if check.kind == "unique_after_exact_duplicates":
        # failing = duplicated ids (not rows); the unexpected values are the ids
        values = result.result.get("unexpected_list") or []
        ids = sorted({str(v[check.column] if isinstance(v, dict) else v) for v in values})
        return CheckResult(
            check, file_name, len(flat), len(ids), tuple(ids[:SAMPLE_IDS]), "great_expectations"
        )
    failing = int(result.result.get("unexpected_count") or 0)
    positions = result.result.get("unexpected_index_list") or []
    ids: list[str] = []
    for index in positions:
        position = index if isinstance(index, int) else index.get("index", 0)
        value = flat.iloc[position][check.id_column] if check.id_column else position + 2
        if str(value) not in ids:
            ids.append(str(value))
        if len(ids) >= SAMPLE_IDS:
            break
    return CheckResult(check, file_name, len(flat), failing, tuple(ids), "great_expectations")


def validate_load(
    con: duckdb.DuckDBPyConnection,
    table: str,
    load_id: int,
    file_name: str,
    as_of_end: datetime,
    gx_max_rows: int = GX_MAX_ROWS,
    evaluate: Callable = evaluate_with_gx,
) -> list[CheckResult]:
    """Every contract of `table` on the rows of one load (before it is committed). A load
    small enough for GX goes to `evaluate` (evaluate_with_gx, here or in the GX worker)."""
    checks = checks_for(table)
    if not checks:
        return []
    rows = con.execute(
        f"SELECT count(*) FROM raw.{table} WHERE _load_id = ?", [load_id]
    ).fetchone()[0]
    if rows > gx_max_rows:
        results = [check_with_sql(con, c, load_id, file_name, as_of_end) for c in checks]
    else:
        columns = ", ".join(TABLES[table].column_names)
        frame = con.execute(
            f"SELECT {columns} FROM raw.{table} WHERE _load_id = ? ORDER BY _row_number",
            [load_id],
        ).df()
        results = evaluate(frame, checks, value_sets_of(checks, con), file_name, as_of_end)
    return [with_unknown_values(con, r, load_id) for r in results]


UNKNOWN_VALUES_SHOWN = 10


def with_unknown_values(con, result: CheckResult, load_id: int) -> CheckResult:
    """A failed value-set check names the values it did not know (the stage names a
    stage_definitions export should define), most frequent first."""
    if result.passed or result.check.kind not in ("known_stage", "known_activity_type"):
        return result
    col = result.check.column
    rows = con.execute(
        f"SELECT {col}, count(*) FROM raw.{result.check.table} WHERE _load_id = $load_id "
        f"AND {_value_sql(col)} GROUP BY 1 ORDER BY 2 DESC, 1 "
        f"LIMIT {UNKNOWN_VALUES_SHOWN}",
        {"load_id": load_id, "values": _value_set(result.check, con)},
    ).fetchall()
    return replace(result, unknown_values=tuple(str(r[0]) for r in rows))

"""The closed deals scoring learns and calibrates from, kept from one run to the next.

A closed deal's signals are taken as it stood at its cutoff, some days before it closed
(scoring.features). They change only when the rows known before the cutoff change (a late
export, a re-export, a deletion), when the figures every deal is measured against change,
when which deals are closed, their outcomes or cutoffs change, or when the code, scoring.yml
or the time zone change. One fingerprint covers all of that up to the latest cutoff; while
it matches the one stored with the deals, they are read back instead of computed: on the
usual next day (new activities only, dated after every cutoff) that is 5 of scoring's
20 s at a million deals, and the forecast's backtest, which reads the same closed deals
right after scoring, reads them back on the day they were computed.
`oppwh run --full-refresh` computes them again.
"""

from __future__ import annotations

import hashlib
import json

import duckdb
import pandas as pd

from scoring.config import SIGNALS, ScoringConfig
from scoring.features import CLOSED_DEAL_CUTOFFS_SQL
from scoring.history import FEATURE_FIGURES, code_digest, history_before, whole_figures
from warehouse.database import STATE_SCHEMA, ensure_state_schema, table_exists, transaction

DEALS_TABLE = f"{STATE_SCHEMA}.scoring_closed_deals"
FINGERPRINT_TABLE = f"{STATE_SCHEMA}.scoring_closed_deals_fingerprint"
# The code the closed deals' signals are computed by.
CODE_FOLDERS = ("scoring",)
# A DealSet's frames in the stored table: the deals' own columns, then one column per
# signal of `known` and of `signals`.
KNOWN_PREFIX, SIGNAL_PREFIX = "known__", "signal__"


def fingerprint(
    con: duckdb.DuckDBPyConnection,
    config: ScoringConfig,
    activities: set[str],
) -> tuple[str, int]:
    """The hash of every input of the closed deals' signals: which deals, their outcomes
    and cutoffs (CLOSED_DEAL_CUTOFFS_SQL, hashed where they are: reading them into pandas
    only to hash them cost 0.5 s at a million deals), the history before the latest
    cutoff, the figures every deal is measured against, the code, scoring.yml and the time
    zone; and how many closed deals there are."""
    count, total, latest = con.execute(
        "SELECT count(*), CAST(sum(hash(source_system, opportunity_id, outcome, closed_at, "
        f"cutoff)) AS VARCHAR), max(cutoff) FROM ({CLOSED_DEAL_CUTOFFS_SQL})",
        {"horizon": config.horizon_days},
    ).fetchall()[0]
    inputs = {
        "code": code_digest(CODE_FOLDERS),
        "scoring": config.content_hash,
        "timezone": con.execute("SELECT current_setting('TimeZone')").fetchall()[0][0],
        "activities": sorted(activities),
        "deals": [count, total],
        "history": history_before(con, latest),
        "figures": whole_figures(con, FEATURE_FIGURES),
    }
    text = json.dumps(inputs, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest(), count


def stored(con: duckdb.DuckDBPyConnection, print_: str):
    """The stored closed deals (deals, known, signals frames) when they were computed from
    inputs with this fingerprint, else None."""
    if not (table_exists(con, FINGERPRINT_TABLE) and table_exists(con, DEALS_TABLE)):
        return None
    rows = con.execute(f"SELECT fingerprint FROM {FINGERPRINT_TABLE}").fetchall()
    if rows != [(print_,)]:
        return None
    prefixes = f"^({KNOWN_PREFIX}|{SIGNAL_PREFIX})"

    def read(columns: str) -> pd.DataFrame:
        # in the order stored (DuckDB keeps a table's insertion order when reading it)
        return con.execute(f"SELECT {columns} FROM {DEALS_TABLE}").df()

    return (
        read(f"COLUMNS(lambda c: NOT regexp_matches(c, '{prefixes}'))"),
        read(f"COLUMNS('^{KNOWN_PREFIX}(.*)$') AS '\\1'").astype(bool),
        read(f"COLUMNS('^{SIGNAL_PREFIX}(.*)$') AS '\\1'").astype(float),
    )


def store(
    con: duckdb.DuckDBPyConnection,
    print_: str,
    deals: pd.DataFrame,
    known: pd.DataFrame,
    signals: pd.DataFrame,
) -> None:
    """Keep the closed deals with the fingerprint of their inputs (one transaction, so the
    two never disagree). The frames are read side by side by DuckDB (a positional join), not
    copied into one first: at ten million deals that copy was a GB."""
    frames = {
        "deals_df": deals,
        "known_df": known,
        "signals_df": signals,
    }
    select = ", ".join(
        [f'd."{c}"' for c in deals.columns]
        + [f'CAST(k."{s}" AS BOOLEAN) AS "{KNOWN_PREFIX}{s}"' for s in SIGNALS]
        + [f'CAST(g."{s}" AS DOUBLE) AS "{SIGNAL_PREFIX}{s}"' for s in SIGNALS]
    )
    ensure_state_schema(con)
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        with transaction(con):
            con.execute(
                f"CREATE OR REPLACE TABLE {DEALS_TABLE} AS SELECT {select} FROM deals_df AS d "
                "POSITIONAL JOIN known_df AS k "
                "POSITIONAL JOIN signals_df AS g"
            )
            con.execute(
                f"CREATE OR REPLACE TABLE {FINGERPRINT_TABLE} AS SELECT ? AS fingerprint",
                [print_],
            )
    finally:
        for name in frames:
            con.unregister(name)


def writable(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection may write (`oppwh score --backtest` reads only)."""
    return not con.execute(
        "SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()[0][0]

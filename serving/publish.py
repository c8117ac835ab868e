"""Publish the marts to `serving.duckdb`: a new file, swapped in atomically.

Dashboards and BI tools read only this copy, so they never hold a lock on the warehouse the
run writes, and never see a half-built set of marts. Personal data that found its way into
free-text columns (e-mail addresses, phone numbers) is masked in the copy.

A daily run pays for what changed: the new file starts as a copy of the last one, and only
the marts whose rows differ from what that copy was made from are written again (told by a
fingerprint of each mart's rows and of the SELECT that publishes it, kept in the copy); the
history marts, a day of rows per run, are compared and written a day at a time, the
lifecycle in two parts (its open visits, which move with the as-of day, and the rest), and
the marts with one row per deal a column at a time (their as-of figures move every row, but
only those columns). A copy that is half free space, or a run with --full-refresh, is
written from scratch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from serving.comments import comment_marts
from warehouse.database import Limits, connect, table_exists
from warehouse.settings import DEFAULT_TIMEZONE

EMAIL = r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})"
CN_MOBILE = r"(^|[^0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})([^0-9]|$)"
INTL_PHONE = r"\+[0-9][0-9 -]{7,}[0-9]"


# What any text with an address or number to mask holds (EMAIL needs its '@', INTL_PHONE its
# '+', CN_MOBILE eleven digits from 1[3-9]); a text without it needs none of the three.
MAY_HOLD_PERSONAL = (
    "contains({ref}, '@') OR contains({ref}, '+') OR regexp_matches({ref}, '1[3-9][0-9]{{9}}')"
)
# Columns whose texts are long (the grades' reasons, ~110 characters): each row is first
# checked for MAY_HOLD_PERSONAL, and only the few that may hold some are masked. On short
# texts (names, stages) the check costs more than it saves. At a million deals: a day of
# opportunity_priority_history 0.85 s → 0.38 s, opportunity_priority 0.80 s → 0.53 s.
CHECKED_FIRST = frozenset({"reasons"})


def masked(column: str) -> str:
    """Text with e-mail addresses and phone numbers masked (ids are left alone)."""
    ref = f'"{column}"'
    replaced = (
        f"regexp_replace(regexp_replace(regexp_replace({ref}, '{EMAIL}', '***@\\1', 'g'), "
        f"'{CN_MOBILE}', '\\1\\2****\\3\\4', 'g'), '{INTL_PHONE}', '+***', 'g')"
    )
    if column in CHECKED_FIRST:
        check = MAY_HOLD_PERSONAL.format(ref=ref)
        return f"CASE WHEN {check} THEN {replaced} ELSE {ref} END AS {ref}"
    return f"{replaced} AS {ref}"


def mart_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """The warehouse mart's columns and their types, in order."""
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = 'warehouse' AND table_schema = 'marts' AND table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()


def published_select(table: str, columns: list[tuple[str, str]]) -> str:
    """SELECT of a mart (its `columns`: mart_columns) for the serving copy: personal data
    (e-mails, phone numbers) that found its way into free-text columns such as deal names
    is masked there."""
    parts = [
        masked(name) if dtype == "VARCHAR" and not name.endswith("_id") else f'"{name}"'
        for name, dtype in columns
    ]
    return f'SELECT {", ".join(parts)} FROM warehouse.marts."{table}"'


def mart_tables(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> list[str]:
    """The tables of schema marts (in `catalog`, else the connection's database), by name."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
        "AND table_catalog = coalesce(?, current_database()) ORDER BY 1",
        [catalog],
    ).fetchall()
    return [r[0] for r in rows]


def publish_quality(con: duckdb.DuckDBPyConnection) -> None:
    """The quality report (last 30 runs), load ledger and rejects, for dashboards and BI."""
    con.execute("CREATE SCHEMA quality")
    if table_exists(con, "quality.check_results", catalog="warehouse"):
        con.execute(
            "CREATE TABLE quality.check_results AS SELECT * FROM warehouse.quality.check_results "
            "WHERE run_id IN (SELECT run_id FROM warehouse.quality.check_results GROUP BY run_id "
            "ORDER BY max(checked_at) DESC LIMIT 30)"
        )
    con.execute(
        "CREATE TABLE quality.load_ledger AS SELECT * EXCLUDE (file_path) "
        "FROM warehouse.raw.load_ledger"
    )
    con.execute("CREATE TABLE quality.rejects AS SELECT * FROM warehouse.raw.rejects")


# BI tools bundle older DuckDB versions: write the serving copy in a storage format that
# DuckDB 1.0 and every later version opens (README: "Connecting BI tools").
SERVING_STORAGE_VERSION = "v1.0.0"


def remove_stale_copies(serving: Path) -> None:
    """Half-written copies left by a run that was killed while publishing."""
    for stale in serving.parent.glob(f".{serving.name}.*.tmp"):
        stale.unlink(missing_ok=True)


# Marts published a day at a time: a run adds (or, run again for a past day, replaces) the
# rows of its own day (scoring.store), and the days before stay as they were.
PUBLISHED_BY_DAY = {
    "opportunity_priority_history": "scored_on",
    "scoring_validation_history": "scored_on",
}
# Marts published in two parts: the rows that move with the as-of day (the lifecycle's
# open visits, whose days run to the end of the day) and the rows that stay, written again
# only when they change (3.2 of the 3.6 million visits at a million deals).
PUBLISHED_BY_SPLIT = {
    "opportunity_lifecycle": "exited_at IS NULL AND NOT is_closing_stage",
}
# Marts with one row per key (their grain test) and no documented row order: on a day
# their keys are the same as the copy's, only the columns whose values changed are written
# again (told by a fingerprint per column), in place; else the mart is written whole (a
# column's fingerprint takes in its keys: when keys come or go, every column's moves). Their
# as-of figures (`age_days`, `days_since_last_activity`) change every row each day, but at a
# million deals rewriting the fifty columns of `opportunities` costs 2 s and setting the
# six that moved 0.1 s. (Not opportunity_priority: most of its columns change with the
# grades, and setting them cost as much as writing it; not action_items, which keeps an
# order.)
PUBLISHED_BY_KEY = {
    "opportunities": ("source_system", "opportunity_id"),
    "follow_up_frequency": ("source_system", "opportunity_id"),
}
# The part of a keyed mart's fingerprints that stands for its keys alone.
KEYS = "<keys>"
# The column keyed_fingerprints reads each row's key hash from (no mart has a column of
# this name: marts' columns are lower-case words).
KEY_HASH = "__key_hash"
# Where the copy keeps what each mart (each day or part of a mart published by part) was
# made from.
PARTS_TABLE = "main.published_parts"
# The part of a mart not published by part.
WHOLE = ""
# A copy whose file is more than this share free space is written anew (dropped and
# replaced tables leave free blocks that DuckDB reuses but never returns).
MAX_FREE_SHARE = 0.5


def _shape(select: str, columns: list[tuple[str, str]]) -> str:
    """What decides a mart's published columns: its SELECT and its columns' types."""
    return hashlib.sha256((select + repr(columns)).encode()).hexdigest()[:16]


def part_key(table: str) -> str | None:
    """The SQL naming the part of a mart a row belongs to (None: published whole)."""
    column = PUBLISHED_BY_DAY.get(table)
    if column:
        return f"coalesce(CAST(\"{column}\" AS VARCHAR), '<null>')"
    split = PUBLISHED_BY_SPLIT.get(table)
    return f"CASE WHEN {split} THEN 'moves' ELSE 'stays' END" if split else None


def part_fingerprints(
    con: duckdb.DuckDBPyConnection,
    table: str,
    shape: str,
    as_of: str | None = None,
    before: dict[str, str] | None = None,
) -> dict[str, str]:
    """Per part of a warehouse mart (a day, the rows that move with the day and the rows
    that stay, or the whole mart): its `shape` (_shape), row count and the sum of its rows'
    hashes. Of a mart published by day, only the `as_of`
    day's rows are hashed: a run writes the history of its own as-of day alone
    (scoring.store), and hashing every day ever scored would cost more each day (a year of
    a million deals' grades is 150 million rows). Another day keeps its fingerprint from
    `before` (the copy's) while its row count is the same."""
    key = part_key(table) or f"'{WHOLE}'"
    if table not in PUBLISHED_BY_DAY or as_of is None:
        rows = con.execute(
            f'SELECT {key} AS part, count(*), sum(hash(m)) FROM warehouse.marts."{table}" AS m '
            "GROUP BY 1"
        ).fetchall()
        return {part: f"{shape}:{n}:{total}" for part, n, total in rows} or {WHOLE: f"{shape}:0:"}
    hashed = dict(
        con.execute(
            f'SELECT {key}, sum(hash(m)) FROM warehouse.marts."{table}" AS m '
            f"WHERE {key} = CAST(? AS VARCHAR) GROUP BY 1",
            [as_of],
        ).fetchall()
    )
    fingerprints = {}
    for part, n in con.execute(
        f'SELECT {key} AS part, count(*) FROM warehouse.marts."{table}" GROUP BY 1'
    ).fetchall():
        counted = f"{shape}:{n}:"
        kept = (before or {}).get(part, "")
        if part in hashed:
            fingerprints[part] = f"{counted}{hashed[part]}"
        else:
            fingerprints[part] = kept if kept.startswith(counted) else f"{counted}counted"
    return fingerprints or {WHOLE: f"{shape}:0:"}


def stored_fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Per mart of the copy being written: the fingerprints its parts were published from."""
    if not table_exists(con, PARTS_TABLE, catalog="serving"):
        return {}
    stored: dict[str, dict[str, str]] = {}
    for table, part, fingerprint in con.execute(f"SELECT * FROM {PARTS_TABLE}").fetchall():
        stored.setdefault(table, {})[part] = fingerprint
    return stored


def publish_mart(
    con: duckdb.DuckDBPyConnection,
    table: str,
    select: str,
    now: dict[str, str],
    before: dict[str, str],
) -> None:
    """Bring the copy's mart to the warehouse's: nothing when no part changed, the changed
    parts of a mart published by part, the changed columns of a mart published by key whose
    keys did not change, else the whole mart. `before` is empty when the copy
    does not hold the mart (or does not know what from)."""
    if now == before:
        return
    key = part_key(table)
    shapes = {f.split(":")[0] for f in [*now.values(), *before.values()]}
    same_shape = bool(before) and len(shapes) == 1
    if same_shape and KEYS in now and before.get(KEYS) == now[KEYS]:
        publish_by_key(con, table, select, [c for c in now if before.get(c) != now[c]])
        return
    if key is None or not same_shape:
        con.execute(f'CREATE OR REPLACE TABLE marts."{table}" AS {select}')
        return
    changed = [p for p in now if before.get(p) != now[p]]
    gone = [p for p in before if p not in now]
    con.execute(
        f'DELETE FROM marts."{table}" WHERE {key} IN (SELECT unnest(?::VARCHAR[]))',
        [changed + gone],
    )
    con.execute(
        f'INSERT INTO marts."{table}" SELECT * FROM ({select}) WHERE '
        f"{key} IN (SELECT unnest(?::VARCHAR[]))",
        [changed],
    )


def keyed_fingerprints(
    con: duckdb.DuckDBPyConnection,
    table: str,
    shape: str,
    columns: list[tuple[str, str]],
    key: tuple[str, ...],
) -> dict[str, str]:
    """Per column of a keyed warehouse mart (PUBLISHED_BY_KEY; `columns`: mart_columns),
    the sum of the hashes of each row's key hash with its value, and of the key hashes
    alone (part KEYS): a column whose fingerprint is the copy's holds the same value for
    every key. A mart without its key columns, or with a row without its key, gets the
    whole-mart fingerprint (written whole: its rows cannot be matched)."""
    names = [name for name, _ in columns]
    if not set(key) <= set(names):
        return part_fingerprints(con, table, shape)
    values = [n for n in names if n not in key]
    keys = ", ".join(f'"{k}"' for k in key)
    missing = " OR ".join(f'"{k}" IS NULL' for k in key)
    # each row's keys hashed once (KEY_HASH), not again with each of fifty columns: at a
    # million deals 0.37 s → 0.16 s for opportunities
    sums = ", ".join(f'sum(hash({KEY_HASH}, "{c}"))' for c in values)
    row = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {missing}), sum({KEY_HASH}), {sums} "
        f'FROM (SELECT hash({keys}) AS {KEY_HASH}, * FROM warehouse.marts."{table}")'
    ).fetchone()
    n, without_key = row[0], row[1]
    if without_key or not n:
        return part_fingerprints(con, table, shape)
    parts = dict(zip([KEYS, *values], row[2:], strict=True))
    return {part: f"{shape}:{n}:{total}" for part, total in parts.items()}


def publish_by_key(
    con: duckdb.DuckDBPyConnection, table: str, select: str, changed: list[str]
) -> None:
    """Set the `changed` columns of the copy's keyed mart (PUBLISHED_BY_KEY, the same keys
    as the warehouse's) from the warehouse's rows."""
    key = PUBLISHED_BY_KEY[table]
    on = " AND ".join(f'w."{k}" = s."{k}"' for k in key)
    columns = ", ".join(f'"{c}"' for c in [*key, *changed])
    assignments = ", ".join(f'"{c}" = w."{c}"' for c in changed)
    con.execute(
        f'UPDATE marts."{table}" AS s SET {assignments} '
        f"FROM (SELECT {columns} FROM ({select})) AS w WHERE {on}"
    )


def reusable(serving: Path) -> bool:
    """Whether the last copy can be the start of the next: it exists, was written by this
    publisher (has its parts table) and is not mostly free space."""
    if not serving.exists():
        return False
    try:
        with connect(serving, read_only=True) as con:
            if not table_exists(con, PARTS_TABLE):
                return False
            total, free = con.execute(
                "SELECT total_blocks, free_blocks FROM pragma_database_size() "
                "WHERE database_name = current_database()"
            ).fetchone()
    except duckdb.Error:  # unreadable: written anew
        return False
    return free <= MAX_FREE_SHARE * max(total, 1)


def publish_serving_copy(
    warehouse: Path,
    serving: Path,
    as_of: str,
    before_swap=None,
    timezone: str = DEFAULT_TIMEZONE,
    reuse: bool = True,
    limits: Limits | None = None,
) -> dict[str, int]:
    """Write the marts into a new file next to `serving` (a copy of the last one, with the
    marts that changed written again; `reuse` False: every mart), then rename it over
    `serving`. Returns each mart's row count. `limits`: the run's memory limit and spill
    folder (without them DuckDB may take most of the machine's memory)."""
    remove_stale_copies(serving)
    tmp = serving.with_name(f".{serving.name}.{os.getpid()}.tmp")
    if reuse and reusable(serving):
        shutil.copyfile(serving, tmp)
    counts: dict[str, int] = {}
    with connect(limits=limits) as con:
        con.execute(
            f"ATTACH ? AS serving (STORAGE_VERSION '{SERVING_STORAGE_VERSION}')", [str(tmp)]
        )
        con.execute("USE serving")
        con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(warehouse)])
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        stored = stored_fingerprints(con)
        tables, held = mart_tables(con, "warehouse"), mart_tables(con, "serving")
        for table in set(held) - set(tables):
            con.execute(f'DROP TABLE marts."{table}"')
        fingerprints = {}
        for table in tables:
            columns = mart_columns(con, table)
            select = published_select(table, columns)
            before = stored.get(table, {}) if table in held else {}
            shape = _shape(select, columns)
            fingerprints[table] = (
                keyed_fingerprints(con, table, shape, columns, PUBLISHED_BY_KEY[table])
                if table in PUBLISHED_BY_KEY
                else part_fingerprints(con, table, shape, as_of, before)
            )
            publish_mart(con, table, select, fingerprints[table], before)
            counts[table] = con.execute(f'SELECT count(*) FROM marts."{table}"').fetchone()[0]
        con.execute(
            f"CREATE OR REPLACE TABLE {PARTS_TABLE} (table_name VARCHAR, part VARCHAR, fingerprint VARCHAR)"
        )
        con.executemany(
            f"INSERT INTO {PARTS_TABLE} VALUES (?, ?, ?)",
            [[t, p, f] for t, parts in fingerprints.items() for p, f in parts.items()],
        )
        comment_marts(con, "serving", timezone)
        con.execute("DROP SCHEMA IF EXISTS quality CASCADE")
        publish_quality(con)
        con.execute(
            "CREATE OR REPLACE TABLE main.publication AS SELECT CAST(? AS DATE) AS as_of, "
            "CAST(? AS TIMESTAMPTZ) AS published_at, CAST(? AS VARCHAR) AS timezone",
            [as_of, datetime.now(UTC), timezone],
        )
        con.execute("DETACH warehouse")
        con.execute("USE memory")
        con.execute("DETACH serving")
    if before_swap is not None:
        before_swap()
    os.replace(tmp, serving)
    return counts


def export_parquet(serving: Path, folder: Path) -> list[Path]:
    """One Parquet file per mart (written aside, then renamed), for tools that prefer files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with connect(serving, read_only=True) as con:
        for table in mart_tables(con):
            target = folder / f"{table}.parquet"
            tmp = folder / f".{table}.parquet.tmp"
            quoted = str(tmp).replace("'", "''")  # COPY takes no bound file name
            con.execute(f"COPY marts.\"{table}\" TO '{quoted}' (FORMAT parquet)")
            os.replace(tmp, target)
            written.append(target)
    return written

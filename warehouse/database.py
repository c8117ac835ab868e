"""The one way to open DuckDB: every stage connects through `connect`, so the business time
zone, the memory limit and the spill folder are applied the same way everywhere."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

# DuckDB's memory limit for each step of a run; above it, queries spill to disk. 4GB leaves
# room for the Python and dbt processes around DuckDB within a 6 GiB budget for the run.
DEFAULT_MEMORY_LIMIT = "4GB"
MEMORY_LIMIT_ENV = "OPPWH_MEMORY_LIMIT"
# Where DuckDB spills (default: warehouse.duckdb.tmp beside the warehouse); point it at a
# disk with room when the data folder's disk is small.
SPILL_FOLDER_ENV = "OPPWH_TEMP_DIRECTORY"


# The schema where steps keep what they carry from one run to the next (fingerprints, kept
# results, each deal's newest grade): the warehouse's bookkeeping, not for analysts and not
# published.
STATE_SCHEMA = "state"


def ensure_state_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")


def memory_limit_from_env() -> str:
    return os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT


def spill_folder_from_env() -> str:
    return os.environ.get(SPILL_FOLDER_ENV, "")


def spill_folder(warehouse: Path, temp_directory: str = "") -> Path:
    """Where queries on `warehouse` spill beyond the memory limit."""
    if temp_directory:
        return Path(temp_directory).expanduser().resolve()
    return warehouse.with_name(warehouse.name + ".tmp")


@dataclass(frozen=True)
class Limits:
    """Bounded memory and where to spill beyond it (fixed when connecting, never after)."""

    memory_limit: str
    temp_directory: Path

    def config(self) -> dict:
        return {"memory_limit": self.memory_limit, "temp_directory": str(self.temp_directory)}


def connect(
    path: str | Path | None = None,
    *,
    read_only: bool = False,
    timezone: str | None = None,
    limits: Limits | None = None,
    config: dict | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection: `path` None is an in-memory database.

    `timezone` sets the session's TimeZone (so local days are the business's days);
    `limits` bounds memory. A reader of a file another connection of this process holds
    passes neither limits nor config: DuckDB refuses a second, differently configured
    connection to the same file.
    """
    settings = {**(limits.config() if limits else {}), **(config or {})}
    con = duckdb.connect(
        ":memory:" if path is None else str(path), read_only=read_only, config=settings
    )
    if timezone:
        con.execute("SET TimeZone = ?", [timezone])
    return con


@dataclass(frozen=True)
class Database:
    """One DuckDB file with the settings every connection to it gets: what orchestration
    hands to a stage, so the stage opens its own connection the one way."""

    path: Path
    timezone: str | None = None
    limits: Limits | None = None

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        # A run's step starts with its connection: what the step before freed goes back to
        # the system first, or the frames of one step still count in the memory of the next
        # (not in connect() itself: dashboards and `oppwh sql` connect per query).
        give_back_freed_memory()
        use_system_allocator_for_arrow()
        return connect(self.path, read_only=read_only, timezone=self.timezone, limits=self.limits)


def table_exists(
    con: duckdb.DuckDBPyConnection, qualified_name: str, catalog: str | None = None
) -> bool:
    """Whether `schema.table` exists (in `catalog`, else any attached database): the state a
    step left for the next run, or a table only some runs write, may not be there yet."""
    schema, table = qualified_name.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
            "AND table_name = ? AND table_catalog = coalesce(?, table_catalog)",
            [schema, table, catalog],
        ).fetchall()[0][0]
    )


def used_params(sql: str, params: dict | None) -> dict:
    """The named parameters `sql` uses ($name): DuckDB refuses one given and not used."""
    return {k: v for k, v in (params or {}).items() if f"${k}" in sql}


# What DuckDB may hold while a step works in pandas alone (memory_lowered).
LOWERED_MEMORY_LIMIT = "512MB"
# What DuckDB may hold while a step reads millions of rows into pandas: its queries spill
# beyond it, and the frames being built have the rest of the run's budget.
READING_MEMORY_LIMIT = "2GB"

# DuckDB's units: K, KB... 1000^i; KiB... 1024^i; case and spaces ignored.
_SIZE_UNITS = {
    **{p: 1000**i for i, p in enumerate(["b", "kb", "mb", "gb", "tb"])},
    **{p: 1000**i for i, p in enumerate(["", "k", "m", "g", "t"]) if p},
    **{p: 1024**i for i, p in enumerate(["", "kib", "mib", "gib", "tib"]) if p},
}


def size_bytes(limit: str) -> int | None:
    """Bytes in a DuckDB size such as '4GB', '4G' or '3.7 GiB'; None for one DuckDB reads
    otherwise (a share of the machine's memory such as '80%')."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]+)\s*", limit)
    unit = match.group(2).lower() if match else None
    return int(float(match.group(1)) * _SIZE_UNITS[unit]) if unit in _SIZE_UNITS else None


def give_back_freed_memory() -> None:
    """Return the memory of freed pandas frames to the system (glibc's malloc_trim): glibc
    keeps freed heap for the process to reuse, so a ten-million-deal run's earlier frames
    still counted in its memory while DuckDB filled its own buffers. Elsewhere: nothing."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# Set to choose Arrow's allocator yourself (mimalloc, jemalloc, system): then it is left be.
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def use_system_allocator_for_arrow() -> None:
    """Arrow, which holds pandas' text columns, allocates from glibc's malloc like the rest
    of the run (and gives memory back with give_back_freed_memory), not from its bundled
    mimalloc: on this project's 2-core machine mimalloc made the text work of a 1M-deal
    scoring step 20-29 s against 15.8 s (building reasons, 100,000 deals: 0.93 s against
    0.42-0.48 s, with stalls of 2 s). Steps call it as they connect (Database.connect);
    arrays made before keep the pool they came from."""
    if os.environ.get(ARROW_POOL_ENV):
        return
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


@contextlib.contextmanager
def memory_lowered(
    con: duckdb.DuckDBPyConnection, restore_to: str | None, limit: str = LOWERED_MEMORY_LIMIT
) -> Iterator[None]:
    """DuckDB holding at most `limit` during the block, then `restore_to` (the connection's
    own limit) again. DuckDB keeps what it read and its temp tables in memory up to its
    limit; lowering the limit writes the temp tables to its spill folder and drops the rest
    at once (a 2 GiB process fell to 0.6 GiB), so a block that queries nothing and works in
    pandas has that memory instead of holding both. `restore_to` None (the limit is not
    known), already at or below `limit` or not in bytes: nothing changes (never raised)."""
    own = size_bytes(restore_to) if restore_to is not None else None
    if own is None or own <= size_bytes(limit):
        yield
        return
    con.execute(f"SET memory_limit = '{limit}'")
    give_back_freed_memory()
    try:
        yield
    finally:
        con.execute("SET memory_limit = '{}'".format(restore_to.replace("'", "''")))


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The block's writes all at once or, on any error (a kill's exception included), none:
    a step that fails leaves what the last good run wrote."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def raw_row_count(db: Database) -> int:
    """Rows in the raw tables, from DuckDB's catalog (no scan): a build's size, cheaply."""
    if not db.path.exists():
        return 0
    with db.connect() as con:
        rows = con.execute(
            "SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables() WHERE schema_name = 'raw'"
        ).fetchone()[0]
    return int(rows)


class DatabaseBusyError(RuntimeError):
    """A run holds the warehouse file for writing; a reader has to wait for it to end."""


def open_for_reading(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a file a run may be writing: busy is a clear error."""
    try:
        return connect(path, read_only=True)
    except duckdb.IOException as exc:
        raise DatabaseBusyError(
            "A run is writing the warehouse right now; try again when it ends. "
            "/ 正在运行，请稍后再试。"
        ) from exc

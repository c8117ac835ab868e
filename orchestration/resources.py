"""Run settings shared by every asset: where the data lives, the as-of day, business rules.

One resource, configured per run (the CLI, the schedule and the sensor pass run config),
so that every step of a run agrees on the same as-of date and paths.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from ingestion.config import DataFolderConfig, read_config
from warehouse.database import (
    Database,
    Limits,
    memory_limit_from_env,
    raw_row_count,
    spill_folder,
    spill_folder_from_env,
)
from warehouse.dbt_cli import (
    DBT_THREADS_ENV,
    dbt_executable,
    dbt_version,
    profile_env,
    threads_for,
)
from warehouse.engines import ENGINES, SPARK_LOG_CONFIG, default_engine
from warehouse.layout import DataFolder
from warehouse.lock import acquire, release
from warehouse.settings import end_of_day, has_daylight_saving, today_in

# Environment variables that set a run's defaults (read when a run starts, not at import).
SPARK_MEMORY_ENV = "OPPWH_SPARK_DRIVER_MEMORY"


class WarehouseSettings(dg.ConfigurableResource):
    """Paths and business settings for one run of the warehouse.

    Setting it up for a run takes the data folder's writer lock, held until the run ends:
    one writer at a time, whichever way the run was started (CLI, schedule, sensor, UI).
    Empty fields take their value when the run starts: from the environment or the data
    folder's oppwh.yml, else the shipped defaults.
    """

    data_dir: str = ""  # empty: OPPWH_DATA_DIR, else ./data
    landing_dir: str = ""
    as_of: str = ""
    # Empty: the data folder's oppwh.yml `timezone:` / `currency:`, else the shipped
    # defaults (warehouse.settings). `oppwh run --timezone` sets the time zone here.
    business_timezone: str = ""
    default_currency: str = ""
    stale_days: int = 14
    stale_basis: str = "calendar"  # or "business": working days per the holiday calendar
    # Empty: the installation's currency (a US team's totals are in dollars).
    reporting_currency: str = ""
    parquet: bool = False  # also write one Parquet file per mart to DATA_DIR/parquet
    # What happens to processed landing files: moved (default) or copied into
    # DATA_DIR/archive/<as-of>/, or left alone ("off").
    archive_mode: str = "move"
    lock_wait_seconds: float = 0
    # Rebuild the incremental models from every load instead of only the new ones (gives
    # the same marts; for after a change to their SQL or to repair a damaged table).
    full_refresh: bool = False
    # dbt threads (0: OPPWH_DBT_THREADS, else by the data's size: warehouse.dbt_cli.threads_for).
    dbt_threads: int = 0
    # DuckDB's memory limit (empty: OPPWH_MEMORY_LIMIT, else warehouse.database's default).
    memory_limit: str = ""
    # Where DuckDB spills (empty: OPPWH_TEMP_DIRECTORY, else beside the warehouse).
    temp_directory: str = ""
    # Which engine builds the marts (empty: OPPWH_ENGINE, else duckdb): "duckdb" or "spark"
    # (the same dbt project on Apache Spark, PySpark in local mode; needs the `spark` extra
    # and Java 17).
    engine: str = ""
    # The Spark driver's memory (empty: OPPWH_SPARK_DRIVER_MEMORY, else 4g).
    spark_driver_memory: str = ""

    _lock = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._lock = acquire(self.data_path, self.lock_wait_seconds)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None:
            release(self._lock)
            self._lock = None

    @property
    def folder(self) -> DataFolder:
        """The data folder's layout (warehouse.layout)."""
        return DataFolder.at(self.data_dir) if self.data_dir else DataFolder.from_env()

    @property
    def folder_config(self) -> DataFolderConfig:
        """The data folder's oppwh.yml (read when asked: it may change between runs)."""
        return read_config(self.data_path)

    @property
    def timezone(self) -> str:
        """The business time zone of this run: it decides every local day."""
        return self.business_timezone or self.folder_config.timezone

    @property
    def currency(self) -> str:
        """The currency of amounts whose export names none."""
        return self.default_currency or self.folder_config.currency

    @property
    def threads(self) -> int:
        chosen = self.dbt_threads or int(os.environ.get(DBT_THREADS_ENV) or 0)
        return chosen or threads_for(raw_row_count(self.database))

    @property
    def engine_name(self) -> str:
        """The engine that builds the marts (a typo never silently means DuckDB)."""
        name = self.engine or default_engine()
        if name not in ENGINES:
            raise ValueError(f"engine must be duckdb or spark (OPPWH_ENGINE), got {name!r}")
        return name

    @property
    def spill_path(self) -> Path:
        return spill_folder(self.warehouse_path, self.temp_directory or spill_folder_from_env())

    @property
    def limits(self) -> Limits:
        """Bounded memory and the spill folder of every connection a step opens."""
        return Limits(self.memory_limit or memory_limit_from_env(), self.spill_path)

    @property
    def database(self) -> Database:
        """The warehouse file with this run's time zone and limits: what stages connect to."""
        return Database(self.warehouse_path, self.timezone, self.limits)

    @property
    def dbt_target(self) -> str:
        """The dbt profile output the engine builds with."""
        return self.engine_name

    @property
    def data_path(self) -> Path:
        return self.folder.root

    @property
    def landing_path(self) -> Path:
        if self.landing_dir:
            return Path(self.landing_dir).expanduser().resolve()
        return self.folder.landing

    @property
    def warehouse_path(self) -> Path:
        return self.folder.warehouse

    @property
    def serving_path(self) -> Path:
        return self.folder.serving

    def as_of_date(self) -> date:
        if self.as_of:
            return date.fromisoformat(self.as_of)
        return today_in(self.timezone)

    def as_of_end(self) -> datetime:
        """The instant the as-of day ends in the business time zone."""
        return end_of_day(self.as_of_date(), self.timezone)

    def dbt_vars(self) -> dict:
        """The business settings the models read (dbt vars).

        On DuckDB the as-of day is in the warehouse (warehouse.build_state.RUN_CONTEXT_TABLE) and
        the paths and limits in the environment (`dbt_env`), so that one day's parse serves
        the next; Spark, which reads neither, gets them all as vars."""
        business = {
            "business_timezone": self.timezone,
            "timezone_has_dst": has_daylight_saving(self.timezone),
            "default_currency": self.currency,
            "source_currencies": self.folder_config.source_currencies(),
            "stale_days": self.stale_days,
            "stale_basis": self.stale_basis,
            "reporting_currency": self.reporting_currency or self.currency,
        }
        if self.engine_name != "spark":
            return business
        folder = self.folder
        return {
            **business,
            "as_of": self.as_of_date().isoformat(),
            "dbt_threads": self.threads,
            "spark_dir": str(folder.spark),
            "spark_raw_dir": str(folder.spark_raw),
            "spark_warehouse_dir": str(folder.spark_warehouse),
            "spark_log_config": str(SPARK_LOG_CONFIG),
            "spark_driver_memory": self.spark_driver_memory
            or os.environ.get(SPARK_MEMORY_ENV, "4g"),
        }

    def dbt_settings(self) -> dict:
        """What besides the data and the models decides a build's result."""
        return {
            "vars": self.dbt_vars(),
            "target": self.dbt_target,
            "dbt": str(dbt_version(dbt_executable())),
        }

    def dbt_env(self) -> dict[str, str]:
        """The environment of this run's dbt process on DuckDB: its warehouse, threads and
        limits (Spark gets them all as vars)."""
        return {} if self.engine_name == "spark" else profile_env(self.database, self.threads)


def run_config_for(
    data_dir: str | Path | None = None,
    landing_dir: str | Path | None = None,
    as_of: date | str | None = None,
    parquet: bool = False,
    archive_mode: str | None = None,
    lock_wait_seconds: float | None = None,
    full_refresh: bool = False,
    engine: str | None = None,
    timezone: str | None = None,
) -> dict:
    """Run config that points the `warehouse` resource at a data folder and as-of day."""
    given = {
        "data_dir": None if data_dir is None else str(Path(data_dir).expanduser().resolve()),
        "landing_dir": None
        if landing_dir is None
        else str(Path(landing_dir).expanduser().resolve()),
        "as_of": as_of if as_of is None or isinstance(as_of, str) else as_of.isoformat(),
        "parquet": parquet or None,
        "archive_mode": archive_mode,
        "lock_wait_seconds": lock_wait_seconds or None,
        "full_refresh": full_refresh or None,
        "engine": engine,
        "business_timezone": timezone or None,
    }
    config = {key: value for key, value in given.items() if value is not None}
    return {"resources": {"warehouse": {"config": config}}} if config else {}

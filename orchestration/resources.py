"""Run settings shared by every asset: where the data lives, the as-of day, business rules.

One resource, configured per run (the CLI, the schedule and the sensor pass run config),
so that every step of a run agrees on the same as-of date and paths.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import PrivateAttr

from ingestion.config import DataFolderConfig, read_config
from orchestration.lock import acquire, release
from orchestration.spark import ENGINES
from warehouse.settings import DEFAULT_CURRENCY, has_daylight_saving

DEFAULT_DATA_DIR = os.environ.get("OPPWH_DATA_DIR", "data")
# Spark's log configuration: its log to DATA_DIR/spark/spark.log, not the console.
SPARK_LOG_CONFIG = (
    Path(__file__).resolve().parents[1] / "dbt_project" / "spark" / "log4j2.properties"
)


def today_in(timezone: str) -> date:
    """Today's date in the business time zone (not the machine's)."""
    return datetime.now(ZoneInfo(timezone)).date()


class WarehouseSettings(dg.ConfigurableResource):
    """Paths and business settings for one run of the warehouse.

    Setting it up for a run takes the data folder's writer lock, held until the run ends:
    one writer at a time, whichever way the run was started (CLI, schedule, sensor, UI).
    """

    data_dir: str = DEFAULT_DATA_DIR
    landing_dir: str = ""
    as_of: str = ""
    # Empty: the data folder's oppwh.yml `timezone:` / `currency:`, else the shipped
    # defaults (warehouse.settings). `oppwh run --timezone` sets the time zone here.
    business_timezone: str = ""
    default_currency: str = ""
    stale_days: int = 14
    stale_basis: str = "calendar"  # or "business": working days per the holiday calendar
    reporting_currency: str = DEFAULT_CURRENCY
    parquet: bool = False  # also write one Parquet file per mart to DATA_DIR/parquet
    # What happens to processed landing files: moved (default) or copied into
    # DATA_DIR/archive/<as-of>/, or left alone ("off").
    archive_mode: str = "move"
    lock_wait_seconds: float = 0
    # Rebuild the incremental models from every load instead of only the new ones (gives
    # the same marts; for after a change to their SQL or to repair a damaged table).
    full_refresh: bool = False
    # dbt threads: 1 is fastest on big data with 2 cores; tiny builds gain from more.
    dbt_threads: int = int(os.environ.get("OPPWH_DBT_THREADS", "1"))
    # DuckDB's memory limit for every step; above it, queries spill to disk. 4GB leaves room
    # for the Python and dbt processes around DuckDB within a 6 GiB budget for the run.
    memory_limit: str = os.environ.get("OPPWH_MEMORY_LIMIT", "4GB")
    # Where DuckDB spills (default: warehouse.duckdb.tmp beside the warehouse); point it at
    # a disk with room when the data folder's disk is small.
    temp_directory: str = os.environ.get("OPPWH_TEMP_DIRECTORY", "")
    # Which engine builds the marts: "duckdb" (default) or "spark" (the same dbt project on
    # Apache Spark, PySpark in local mode; needs the `spark` extra and Java 17).
    engine: str = os.environ.get("OPPWH_ENGINE", "duckdb")
    # The Spark driver's memory (local mode runs everything in that one JVM).
    spark_driver_memory: str = os.environ.get("OPPWH_SPARK_DRIVER_MEMORY", "4g")

    _lock = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._lock = acquire(self.data_path, self.lock_wait_seconds)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None:
            release(self._lock)
            self._lock = None

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
    def spill_path(self) -> Path:
        if self.temp_directory:
            return Path(self.temp_directory).expanduser().resolve()
        return self.warehouse_path.with_name(self.warehouse_path.name + ".tmp")

    def duckdb_config(self) -> dict:
        """Settings for every DuckDB connection a step opens on the warehouse: bounded
        memory, and where to spill beyond it (set when connecting, never changed after)."""
        return {"memory_limit": self.memory_limit, "temp_directory": str(self.spill_path)}

    @property
    def spark_path(self) -> Path:
        """Spark's folder: raw/ (Parquet from ingestion), warehouse/ (its tables), metastore."""
        return self.data_path / "spark"

    @property
    def spark_raw_path(self) -> Path:
        """The raw tables as Parquet, one folder per table, that Spark's sources read."""
        return self.spark_path / "raw"

    @property
    def spark_warehouse_path(self) -> Path:
        """spark.sql.warehouse.dir: Spark's tables, one folder per <schema>.db/<table>."""
        return self.spark_path / "warehouse"

    @property
    def dbt_target(self) -> str:
        """The dbt profile output the engine builds with (a typo never silently means DuckDB)."""
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be duckdb or spark (OPPWH_ENGINE), got {self.engine!r}")
        return self.engine

    @property
    def archive_path(self) -> Path:
        return self.data_path / "archive"

    @property
    def dbt_runs_path(self) -> Path:
        """dbt's per-run output (artifacts and log), one folder per run, the newest kept."""
        return self.data_path / "dbt"

    @property
    def intake_path(self) -> Path:
        """Where landing files are copied before being read (emptied after archiving)."""
        return self.data_path / "intake"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def landing_path(self) -> Path:
        if self.landing_dir:
            return Path(self.landing_dir).expanduser().resolve()
        return self.data_path / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_path / "warehouse.duckdb"

    @property
    def serving_path(self) -> Path:
        return self.data_path / "serving.duckdb"

    @property
    def exports_path(self) -> Path:
        return self.data_path / "exports"

    def as_of_date(self) -> date:
        if self.as_of:
            return date.fromisoformat(self.as_of)
        return today_in(self.timezone)

    def as_of_end(self) -> datetime:
        """The instant the as-of day ends in the business time zone."""
        day = self.as_of_date() + timedelta(days=1)
        return datetime.combine(day, time.min, tzinfo=ZoneInfo(self.timezone))

    def dbt_vars(self) -> dict:
        """The vars every dbt invocation of this run gets."""
        return {
            "warehouse_path": str(self.warehouse_path),
            "as_of": self.as_of_date().isoformat(),
            "business_timezone": self.timezone,
            "timezone_has_dst": has_daylight_saving(self.timezone),
            "default_currency": self.currency,
            "source_currencies": self.folder_config.source_currencies(),
            "stale_days": self.stale_days,
            "stale_basis": self.stale_basis,
            "reporting_currency": self.reporting_currency,
            "dbt_threads": self.dbt_threads,
            "memory_limit": self.memory_limit,
            "temp_directory": str(self.spill_path),
            "spark_dir": str(self.spark_path),
            "spark_raw_dir": str(self.spark_raw_path),
            "spark_warehouse_dir": str(self.spark_warehouse_path),
            "spark_log_config": str(SPARK_LOG_CONFIG),
            "spark_driver_memory": self.spark_driver_memory,
        }


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
    config: dict = {}
    if data_dir is not None:
        config["data_dir"] = str(Path(data_dir).expanduser().resolve())
    if landing_dir is not None:
        config["landing_dir"] = str(Path(landing_dir).expanduser().resolve())
    if as_of is not None:
        config["as_of"] = as_of if isinstance(as_of, str) else as_of.isoformat()
    if parquet:
        config["parquet"] = True
    if archive_mode is not None:
        config["archive_mode"] = archive_mode
    if lock_wait_seconds:
        config["lock_wait_seconds"] = lock_wait_seconds
    if full_refresh:
        config["full_refresh"] = True
    if engine is not None:
        config["engine"] = engine
    if timezone:
        config["business_timezone"] = timezone
    return {"resources": {"warehouse": {"config": config}}} if config else {}

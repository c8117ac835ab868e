"""The data folder's layout, named once: every stage asks `DataFolder` where its files are.

A data folder holds everything one warehouse owns (landing files, the DuckDB files, the
archive, exports, logs, configuration), so a backup, a restore or a second warehouse is a
matter of pointing at another folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The environment variable that names the data folder for processes started without a
# command line (the Dagster UI's schedule and sensor, the dashboards).
DATA_DIR_ENV = "OPPWH_DATA_DIR"
DEFAULT_DATA_DIR = "data"

CONFIG_FILE = "oppwh.yml"
SCORING_FILE = "scoring.yml"
MAPPINGS_FOLDER = "mappings"
WAREHOUSE_FILE = "warehouse.duckdb"
SERVING_FILE = "serving.duckdb"
LOCK_FILE = ".oppwh.lock"
ARCHIVE_FOLDER = "archive"


def data_dir_from_env() -> Path:
    """The data folder named by OPPWH_DATA_DIR (read when asked, not at import)."""
    return Path(os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR)).expanduser().resolve()


@dataclass(frozen=True)
class DataFolder:
    """Where each file of one data folder lives."""

    root: Path

    @classmethod
    def at(cls, path: str | Path) -> DataFolder:
        return cls(Path(path).expanduser().resolve())

    @classmethod
    def from_env(cls) -> DataFolder:
        return cls(data_dir_from_env())

    @property
    def landing(self) -> Path:
        """Where the user drops CRM exports (`oppwh run --landing` may name another)."""
        return self.root / "landing"

    @property
    def intake(self) -> Path:
        """Where landing files are copied before being read (emptied after archiving)."""
        return self.root / "intake"

    @property
    def archive(self) -> Path:
        """Processed landing files, one folder per as-of day: `oppwh replay` rebuilds from it."""
        return self.root / ARCHIVE_FOLDER

    @property
    def warehouse(self) -> Path:
        """The DuckDB file the run writes (one writer at a time)."""
        return self.root / WAREHOUSE_FILE

    @property
    def serving(self) -> Path:
        """The published read-only copy that people, dashboards and BI tools open."""
        return self.root / SERVING_FILE

    @property
    def exports(self) -> Path:
        """Files for the CRMs to import (the grades' write-back), one folder per source."""
        return self.root / "exports"

    @property
    def parquet(self) -> Path:
        return self.root / "parquet"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def last_run_log(self) -> Path:
        return self.logs / "last_run.log"

    @property
    def dbt_runs(self) -> Path:
        """dbt's per-run output (artifacts and log), one folder per run, the newest kept."""
        return self.root / "dbt"

    @property
    def dbt_docs(self) -> Path:
        return self.root / "dbt_docs"

    @property
    def spark(self) -> Path:
        """Spark's folder: raw/ (Parquet from ingestion), warehouse/ (its tables), metastore."""
        return self.root / "spark"

    @property
    def spark_raw(self) -> Path:
        """The raw tables as Parquet, one folder per table, that Spark's sources read."""
        return self.spark / "raw"

    @property
    def spark_warehouse(self) -> Path:
        """spark.sql.warehouse.dir: Spark's tables, one folder per <schema>.db/<table>."""
        return self.spark / "warehouse"

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance of the folder's runs (run history, logs) unless DAGSTER_HOME
        names another."""
        return self.root / "dagster"

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def scoring_file(self) -> Path:
        return self.root / SCORING_FILE

    @property
    def mappings(self) -> Path:
        return self.root / MAPPINGS_FOLDER

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

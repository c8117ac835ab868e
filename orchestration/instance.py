"""The Dagster instance a data folder's runs are recorded in: `DATA_DIR/dagster` unless
DAGSTER_HOME names another, so `oppwh ui --data-dir DIR` lists the runs `oppwh run` made, with
their logs and materialisations. Telemetry and the first-visit pop-up are off."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import yaml

from warehouse.layout import DataFolder
from warehouse.run_history import PooledSqliteEventLogStorage


def instance_settings(home: Path) -> dict:
    """What the instance's dagster.yaml must say (other keys a user added are kept):
    telemetry and the first-visit pop-up off, the pooled event log."""
    return {
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
        "event_log_storage": {
            "module": PooledSqliteEventLogStorage.__module__,
            "class": PooledSqliteEventLogStorage.__name__,
            "config": {"base_dir": str(home / "storage")},
        },
    }


def instance_home(data_dir: Path) -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or DataFolder.at(data_dir).dagster_home)


def prepare_instance_home(home: Path) -> Path:
    """The instance folder with a dagster.yaml that switches telemetry and pop-ups off."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    current = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}) if config.exists() else {}
    wanted = {**current, **instance_settings(home)}
    if wanted != current:
        config.write_text(yaml.safe_dump(wanted, sort_keys=False), encoding="utf-8")
    return home


def run_history(data_dir: Path) -> dg.DagsterInstance:
    """The persistent instance that records this data folder's runs."""
    return dg.DagsterInstance.from_config(str(prepare_instance_home(instance_home(data_dir))))

"""What every `oppwh` command shares: the options (defined once), how they are read, and
the quiet, offline environment the tools run in."""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import warnings
from datetime import date
from pathlib import Path

from ingestion.config import read_config
from warehouse.engines import spark_unavailable_reason
from warehouse.layout import DEFAULT_DATA_DIR, DataFolder
from warehouse.query import missing_serving_copy
from warehouse.settings import DEFAULT_TIMEZONE, today_in, valid_timezone

QUIET_ENV = {
    "GX_ANALYTICS_ENABLED": "false",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DAGSTER_DISABLE_TELEMETRY": "yes",
}


def quiet_environment() -> None:
    """No telemetry from dbt, Dagster or great-expectations: this tool runs offline."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # great-expectations imports PySpark when the spark extra is installed, which warns
    # about pandas 3; no pandas data goes through PySpark here (dbt-spark runs SQL).
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")


def set_aside_imported_objects() -> None:
    """Keep the objects the imports made out of the garbage collector's passes (`gc.freeze`).

    Dagster, dagster-dbt, dbt and pandas leave ~400,000 objects that live as long as the
    process. Each full collection during a run walks them all again, and so do the
    interpreter's collections on exit: on the 10,000-deal sample's next day that was about
    1 s of a 10 s `oppwh run` (0.9 s of it after the run had ended). Set aside, they are
    still freed by reference counting; only a cycle among them would never be collected,
    and these are modules, classes and functions that live until the process ends.
    """
    gc.freeze()


def timezone_name(text: str) -> str:
    if not valid_timezone(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time zone name (America/New_York, Europe/Berlin, UTC …)"
        )
    return text


def iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from exc


def add_data_dir(parser: argparse.ArgumentParser, **kwargs) -> None:
    kwargs.setdefault("default", DEFAULT_DATA_DIR)
    kwargs.setdefault("help", "the data folder: landing/, warehouse.duckdb, serving.duckdb, ...")
    parser.add_argument("--data-dir", **kwargs)


def add_timezone(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument(
        "--timezone",
        type=timezone_name,
        help=help
        or f"business time zone (default: the data folder's oppwh.yml timezone, else "
        f"{DEFAULT_TIMEZONE})",
    )


def add_as_of(parser: argparse.ArgumentParser, help: str = "the day 'today' is") -> None:
    parser.add_argument(
        "--as-of", type=iso_date, help=f"{help} (default: today in the business time zone)"
    )


def business_timezone(args: argparse.Namespace) -> str:
    """--timezone, else the data folder's oppwh.yml `timezone:`, else the shipped default."""
    return getattr(args, "timezone", None) or read_config(Path(args.data_dir)).timezone


def as_of_day(args: argparse.Namespace, timezone: str) -> date:
    """--as-of, else today in the business time zone."""
    return date.fromisoformat(args.as_of) if args.as_of else today_in(timezone)


def engine_unavailable(engine: str) -> bool:
    """Say why the chosen engine cannot run here (Spark without PySpark or Java 17)."""
    if engine != "spark":
        return False
    reason = spark_unavailable_reason()
    if reason:
        print(f"The Spark engine cannot run here / 无法使用 Spark 引擎: {reason}", file=sys.stderr)
    return reason is not None


def oppwh_command() -> str:
    """How the user should type this command: `oppwh` if it is on PATH, else its path."""
    own = Path(sys.executable).parent / "oppwh"
    on_path = shutil.which("oppwh")
    if on_path and Path(on_path).resolve() == own.resolve():
        return "oppwh"
    try:
        return str(own.relative_to(Path.cwd()))
    except ValueError:
        return str(own)


def published_serving_copy(data_dir: str | Path) -> Path | None:
    """The data folder's serving copy, or None after saying how to make one (the commands
    that read what a run published)."""
    serving = DataFolder.at(data_dir).serving
    if serving.exists():
        return serving
    print(missing_serving_copy(serving), file=sys.stderr)
    return None

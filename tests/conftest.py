"""Shared fixtures: one sample export and one warehouse per test session."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "yes")
# Files the tests write are complete when the run starts: a short settle interval.
os.environ.setdefault("OPPWH_SETTLE_SECONDS", "0.3")

# pytest-xdist workers run from `python -c`: their __main__ has neither __spec__ nor __file__,
# which PySpark (imported by great-expectations when the spark extra is installed) takes for a
# doctest run, and exits the worker. Name the worker's main module.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"

from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402

import duckdb  # noqa: E402
import pytest  # noqa: E402

from ingestion.sample import generate_sample, write_sample  # noqa: E402
from warehouse.dbt_cli import DBT_PROJECT_DIR  # noqa: E402

# The next day's export and the crash chain's fixtures (base, reference, crashes).
pytest_plugins = ("tests.next_day",)

SAMPLE_AS_OF = date(2025, 6, 30)
SAMPLE_OPPORTUNITIES = 300
SAMPLE_SEED = 11


@pytest.fixture(scope="session", autouse=True)
def great_expectations_in_this_process():
    """GX imported once per test process. The tests run `oppwh run` in this process ~40
    times; a process that has not imported GX starts a worker to import it for every run
    with new files (quality.gx_worker: ~3 s of a core each, as `oppwh run` does once a
    day), one that has validates here. The worker itself is tested on its own
    (test_quality) and in the runs the tests start as their own processes."""
    import great_expectations  # noqa: F401


@pytest.fixture(scope="session")
def sample_data():
    return generate_sample(SAMPLE_OPPORTUNITIES, SAMPLE_SEED, SAMPLE_AS_OF)


@pytest.fixture(scope="session")
def sample_landing(tmp_path_factory, sample_data) -> Path:
    landing = tmp_path_factory.mktemp("sample") / "landing"
    write_sample(landing, sample_data)
    return landing


def shared_temp(tmp_path_factory) -> Path:
    """A folder every test process of the run sees (pytest-xdist gives each worker its own
    basetemp under one common parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory, name: str, build) -> Path:
    """The folder `name` made by `build(folder)` once per test run, whichever test process
    asks first (under a lock; the others wait for it): for data folders that tests only read
    or copy."""
    root = shared_temp(tmp_path_factory)
    folder, done = root / name, root / f"{name}.done"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed in another process
            build(folder)
            done.write_text("built")
    return folder


def run_ok(*args: str) -> None:
    """`oppwh run` in this process, which must succeed (else its log's end is shown)."""
    from orchestration.cli import main

    code = main(["run", *args])
    data = Path(args[args.index("--data-dir") + 1])
    assert code == 0, (data / "logs" / "last_run.log").read_text()[-5000:]


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory, sample_landing) -> Path:
    """The daily job run once per test run, through the CLI, on the sample."""

    def build(data_dir: Path) -> None:
        run_ok(
            "--data-dir",
            str(data_dir),
            "--landing",
            str(sample_landing),
            "--as-of",
            SAMPLE_AS_OF.isoformat(),
        )

    return build_once(tmp_path_factory, "sample_warehouse", build)


@pytest.fixture
def warehouse_copy(built_warehouse, tmp_path):
    """A writable connection to a copy of the sample warehouse, in the business time zone."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse / "warehouse.duckdb", path)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    yield con
    con.close()


def query(db: Path, sql: str, params=None) -> list[tuple]:
    """Read-only query in the business time zone."""
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("SET TimeZone = 'Asia/Shanghai'")
        return con.execute(sql, params or []).fetchall()


def keyed(db: Path, sql: str, params=None) -> dict:
    """Rows of a query by their first column: {first: (the rest, ...)}."""
    return {r[0]: r[1:] for r in query(db, sql, params)}


def marts_fingerprint(db: Path) -> dict[str, tuple]:
    """Order-insensitive hash of every table in schema marts (scored_at, the clock time of
    scoring, aside): equal fingerprints mean identical marts."""
    tables = [
        r[0]
        for r in query(
            db,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'marts' ORDER BY 1",
        )
    ]
    return {
        t: query(
            db, f"SELECT count(*), sum(hash(COLUMNS(lambda c: c <> 'scored_at'))) FROM marts.{t}"
        )[0]
        for t in tables
    }


@pytest.fixture(scope="session", autouse=True)
def spark_build_in_background(request, tmp_path_factory):
    """tests/test_spark.py's Spark build, started with the session in its own process when
    those tests are selected, so that it runs beside the other tests instead of after them.
    Under pytest-xdist the first worker starts it in a folder all workers share; whichever
    worker runs the Spark tests waits for it there."""
    if not any(
        item.path.name == "test_spark.py" and "spark_warehouse" in item.fixturenames
        for item in request.session.items
    ):
        yield None
        return
    from tests.test_spark import SparkBuild, start_spark_build

    root = shared_temp(tmp_path_factory) / "both_engines"
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        yield SparkBuild.at(root)
        return
    build = start_spark_build(root, request.getfixturevalue("sample_landing"))
    yield build
    if build.process is not None and build.process.poll() is None:
        build.process.kill()


# The longest files first, so that the two test processes (pytest-xdist, one file each at a
# time, `--no-loadscope-reorder`) end together; the Spark comparison late, when the Spark
# build started with the session has finished. Files not named here run after these.
FILE_ORDER = (
    "test_crash_late.py",
    "test_any_crm.py",
    "test_reliability.py",
    "test_end_to_end.py",
    "test_crash_early.py",
    "test_security.py",
    "test_quality.py",
    "test_reminders.py",
    "test_bi.py",
    "test_run_history.py",
    "test_dashboards.py",
    "test_assistant.py",
    "test_metrics.py",
    "test_incremental.py",
    "test_spark.py",
    "test_adapters.py",
    "test_scoring.py",
    "test_dbt_project.py",
    "test_grades.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: n for n, name in enumerate(FILE_ORDER)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FILE_ORDER)))


# Column types a BI tool or a notebook chokes on (a column typed NULL, 128-bit integers).
ODD_TYPES = ("NULL", '"NULL"', "HUGEINT", "UHUGEINT")


def odd_typed_columns(db: Path) -> list[tuple]:
    """Mart columns of a type BI tools do not read: (table, column, type)."""
    return query(
        db,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'marts' AND data_type IN (SELECT unnest(?))",
        [list(ODD_TYPES)],
    )


DBT_DIR = DBT_PROJECT_DIR
DBT = str(Path(sys.executable).parent / "dbt")


def run_dbt(args: list[str], warehouse: Path) -> subprocess.CompletedProcess:
    """dbt by hand on `warehouse`, its artifacts beside it: the project's own target folder
    holds the parse every daily run starts from, and other vars would overwrite it."""
    target = warehouse.parent / "dbt_target"
    return subprocess.run(
        [
            DBT,
            *args,
            "--profiles-dir",
            str(DBT_DIR),
            "--target-path",
            str(target),
            "--vars",
            json.dumps({"warehouse_path": str(warehouse)}),
        ],
        cwd=DBT_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": str(target)},
    )

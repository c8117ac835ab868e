"""The same dbt project on Apache Spark gives the same marts, grades and CRM files.

Builds the session's sample with `oppwh run --engine spark` (dbt-spark's session method,
PySpark in local mode) and compares it with the DuckDB build of the same sample
(`duckdb_warehouse`): every mart by an order-insensitive fingerprint (numbers rounded to 6
decimals, storage widths ignored), today's grades, and the write-back files byte for byte.

Needs PySpark, dbt-spark (the `spark` extra) and Java 17. Without them the tests are
skipped with the reason; in CI (CI=true, where `.ci/run` installs them) they fail instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from orchestration.assets.dbt import mart_names
from quality.fingerprint import differing_rows, fingerprint
from tests.conftest import SAMPLE_AS_OF
from tests.exports import write_cn_crm, write_hubspot, write_salesforce
from warehouse.engines import spark_unavailable_reason

REASON = spark_unavailable_reason()
needs_spark = pytest.mark.skipif(
    bool(REASON) and os.environ.get("CI") != "true", reason=f"Spark tests skipped: {REASON}"
)

# Columns that record when a step ran, not what it computed.
WALL_CLOCK = {"scored_at"}


@dataclass
class SparkBuild:
    """The Spark build of the session, started at the session's start (see conftest), in a
    folder every test process can see: `ready` marks the landing folder written, `exit_code`
    holds the build's exit code once it ends."""

    root: Path
    process: subprocess.Popen | None = None

    @classmethod
    def at(cls, root: Path) -> SparkBuild:
        return cls(root)

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def data_dir(self) -> Path:
        return self.root / "on_spark"

    def wait_for(self, name: str, timeout: float = 1200) -> str:
        marker = self.root / name
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {marker} after {timeout} s")
            time.sleep(1)
        return marker.read_text().strip()


def write_landing(folder: Path, sample_landing: Path) -> Path:
    """The sample plus the three sources' own exports (Salesforce with stage history and a
    merged account, daily Chinese CRM exports whose changes become stage history, HubSpot
    with merged deals): every path of the models runs on both engines."""
    shutil.copytree(sample_landing, folder)
    write_salesforce(folder)
    write_cn_crm(folder)
    write_hubspot(folder)
    return folder


def run_args(engine: str, data_dir: Path, landing: Path) -> list[str]:
    return [
        "run",
        "--data-dir",
        str(data_dir),
        "--landing",
        str(landing),
        "--as-of",
        SAMPLE_AS_OF.isoformat(),
        "--engine",
        engine,
    ]


def write_every_grade(data_dir: Path) -> None:
    """The small test exports cannot validate their grades (the write-back gate would
    withhold them): write them anyway, so both engines' files are compared for every source."""
    from scoring.config import DEFAULT_CONFIG

    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    (data_dir / "scoring.yml").write_text(
        text.replace("writeback_gate: auto", "writeback_gate: always"), encoding="utf-8"
    )


def start_spark_build(root: Path, sample_landing: Path) -> SparkBuild:
    """Write the landing folder and start `oppwh run --engine spark` on it in its own
    process: its minute, mostly a JVM waiting on itself, runs beside the other tests."""
    build = SparkBuild(root)
    write_landing(build.landing, sample_landing)
    build.data_dir.mkdir(parents=True)
    write_every_grade(build.data_dir)
    (root / "ready").write_text("yes")
    if REASON:
        (root / "exit_code").write_text("unavailable")
        return build
    oppwh = Path(sys.executable).parent / "oppwh"
    command = " ".join(
        shlex.quote(a) for a in [str(oppwh), *run_args("spark", build.data_dir, build.landing)]
    )
    with (root / "oppwh_run_spark.log").open("w") as log:
        build.process = subprocess.Popen(
            ["sh", "-c", f"{command}; echo $? > {shlex.quote(str(root / 'exit_code'))}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return build


@pytest.fixture(scope="module")
def duckdb_warehouse(tmp_path_factory, spark_build_in_background) -> Path:
    """The daily job on the same landing folder with DuckDB, through the CLI."""
    from orchestration.cli import main

    data_dir = tmp_path_factory.mktemp("on_duckdb")
    write_every_grade(data_dir)
    spark_build_in_background.wait_for("ready")
    code = main(run_args("duckdb", data_dir, spark_build_in_background.landing))
    assert code == 0, (data_dir / "logs" / "last_run.log").read_text()[-5000:]
    return data_dir


@pytest.fixture(scope="module")
def spark_warehouse(spark_build_in_background) -> Path:
    if REASON:
        pytest.fail(f"CI must run the Spark tests: {REASON}")
    build = spark_build_in_background
    code = build.wait_for("exit_code")
    log = build.data_dir / "logs" / "last_run.log"
    if not log.exists():
        log = build.root / "oppwh_run_spark.log"
    assert code == "0", log.read_text()[-5000:]
    return build.data_dir


def compared(con: duckdb.DuckDBPyConnection, db: str, table: str) -> str:
    """A relation over one side's serving copy, wall-clock columns left out."""
    columns = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_catalog = ? AND table_schema = 'marts' AND table_name = ? "
            "ORDER BY ordinal_position",
            [db, table],
        ).fetchall()
        if r[0] not in WALL_CLOCK
    ]
    quoted = ", ".join(f'"{c}"' for c in columns)
    return f"(SELECT {quoted} FROM {db}.marts.{table})"


@pytest.fixture(scope="module")
def both(duckdb_warehouse, spark_warehouse):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute("ATTACH ? AS on_duckdb (READ_ONLY)", [str(duckdb_warehouse / "serving.duckdb")])
    con.execute("ATTACH ? AS on_spark (READ_ONLY)", [str(spark_warehouse / "serving.duckdb")])
    yield con
    con.close()


def assert_same_table(con, table: str) -> None:
    left, right = compared(con, "on_duckdb", table), compared(con, "on_spark", table)
    rows = con.execute(f"SELECT count(*) FROM {left}").fetchone()[0]
    assert rows > 0, f"marts.{table} is empty: the sample should fill every mart"
    same = fingerprint(con, left) == fingerprint(con, right)
    assert same, f"marts.{table} differs between DuckDB and Spark: " + "; ".join(
        f"{side}: {text[:300]}" for side, text in differing_rows(con, left, right)
    )


@needs_spark
@pytest.mark.e2e
def test_spark_builds_every_mart_identical_to_duckdb(both, spark_warehouse):
    names = mart_names()
    assert len(names) == 13  # the 12 marts before, and funnel_cohorts
    sources = both.execute(
        "SELECT DISTINCT source_system FROM on_spark.marts.opportunities ORDER BY 1"
    ).fetchall()
    assert len(sources) == 4, sources
    for table in names:
        assert_same_table(both, table)
    # Spark wrote the marts as Parquet files that DuckDB (and BI tools) read directly
    parts = list(
        (spark_warehouse / "spark" / "warehouse" / "marts.db" / "opportunities").glob("*.parquet")
    )
    assert parts, "no Parquet files for marts.opportunities"
    direct = both.execute(
        "SELECT count(*) FROM read_parquet(?)", [[str(p) for p in parts]]
    ).fetchone()[0]
    assert (
        direct == both.execute("SELECT count(*) FROM on_duckdb.marts.opportunities").fetchone()[0]
    )


@needs_spark
@pytest.mark.e2e
def test_spark_marts_give_the_same_grades(both):
    for table in ("opportunity_priority", "grade_calibration", "opportunity_priority_history"):
        assert_same_table(both, table)
    grades = both.execute(
        "SELECT grade, count(*) FROM on_spark.marts.opportunity_priority GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [g for g, _ in grades] == ["A", "B", "C", "D"]


@needs_spark
@pytest.mark.e2e
def test_spark_write_back_files_are_the_same(duckdb_warehouse, spark_warehouse):
    duck_files = sorted(
        p.relative_to(duckdb_warehouse) for p in (duckdb_warehouse / "exports").rglob("*.csv")
    )
    spark_files = sorted(
        p.relative_to(spark_warehouse) for p in (spark_warehouse / "exports").rglob("*.csv")
    )
    assert duck_files == spark_files
    assert len({p.parent for p in duck_files}) == 4, duck_files  # one folder per source
    for path in duck_files:
        assert (duckdb_warehouse / path).read_bytes() == (spark_warehouse / path).read_bytes(), path


def test_without_spark_the_engine_is_refused_with_the_reason(tmp_path, monkeypatch, capsys):
    """`oppwh run --engine spark` on a machine without Spark says what to install."""
    import warehouse.engines as spark

    monkeypatch.setattr(spark.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    from orchestration.cli import main

    assert main(["run", "--data-dir", str(tmp_path), "--engine", "spark"]) == 2
    err = capsys.readouterr().err
    assert "Spark" in err and "Java 17" in err
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_java_version_is_read_from_both_version_styles(tmp_path):
    from warehouse.engines import java_major_version

    for text, major in (
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
    ):
        fake = tmp_path / f"java{major}"
        fake.write_text(f"#!/bin/sh\necho '{text}' >&2\n")
        fake.chmod(0o755)
        assert java_major_version(str(fake)) == major
    assert java_major_version(str(tmp_path / "missing")) is None


def test_reading_spark_tables_back_replaces_views_and_reruns(tmp_path):
    """Each Spark run replaces the warehouse's copies, whether a DuckDB build left a table
    or a view there; a folder Spark did not write fails the step and changes nothing."""
    from scoring.inputs import INPUT_RELATIONS
    from warehouse.engines import import_spark_tables

    spark_warehouse = tmp_path / "spark" / "warehouse"
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    relations = [("marts", "opportunities"), *[r for r in INPUT_RELATIONS if r[0] != "marts"]]

    def spark_writes(rows: int) -> None:
        for schema, table in relations:
            folder = spark_warehouse / f"{schema}.db" / table
            folder.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"COPY (SELECT range AS n FROM range({rows})) TO '{folder / 'part-0.parquet'}' "
                "(FORMAT parquet)"
            )

    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE VIEW staging.stg_raw__opportunity_snapshots AS SELECT 1 AS n")
    spark_writes(3)
    assert (
        import_spark_tables(con, spark_warehouse, ["opportunities"], INPUT_RELATIONS)[
            "marts.opportunities"
        ]
        == 3
    )
    spark_writes(5)  # the next day's run
    counts = import_spark_tables(con, spark_warehouse, ["opportunities"], INPUT_RELATIONS)
    assert set(counts.values()) == {5}
    with pytest.raises(FileNotFoundError, match="marts.cycle_time"):
        import_spark_tables(con, spark_warehouse, ["opportunities", "cycle_time"], INPUT_RELATIONS)
    assert con.execute("SELECT count(*) FROM marts.opportunities").fetchone()[0] == 5


def test_an_unknown_engine_is_an_error_not_duckdb():
    from orchestration.resources import WarehouseSettings

    assert WarehouseSettings(engine="spark").dbt_target == "spark"
    with pytest.raises(ValueError, match="duckdb or spark"):
        _ = WarehouseSettings(engine="sprak").dbt_target

"""The dbt project itself: its unit tests (subtle logic on rows written in YAML) and docs."""

from __future__ import annotations

import json
import os
import shutil
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import jinja2
import pytest
import yaml

from tests.conftest import DBT_DIR, run_dbt


@pytest.mark.e2e
def test_dbt_unit_tests_pass(built_warehouse, tmp_path):
    # Unit tests read the column types of a built warehouse; use a copy of the shared one.
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse / "warehouse.duckdb", warehouse)
    result = run_dbt(["test", "--select", "test_type:unit"], warehouse)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "PASS=12" in result.stdout
    for name in (
        "visits_collapse_repeats_and_end_with_the_close",
        "lifecycle_flags_regressions_skips_and_the_current_visit",
        "lifecycle_runs_the_open_visit_to_the_end_of_the_as_of_day",
        "amounts_convert_to_the_reporting_currency",
        "amounts_in_a_reporting_currency_the_seed_does_not_list",
        "stale_counts_business_days_over_a_holiday",
        "a_rerun_for_a_past_day_sees_that_days_state",
        "touches_carry_the_gap_since_the_previous_one_and_stop_at_the_as_of_day",
        "follow_up_counts_types_and_gaps_per_deal",
    ):
        assert name in result.stdout


def test_every_mart_column_is_documented_and_every_mart_has_a_grain_test():
    marts = {p.stem for p in (DBT_DIR / "models" / "marts").glob("*.sql")}
    documented = {}
    for name in marts:  # each mart's YAML sits beside its SQL and describes only it
        docs = yaml.safe_load(
            (DBT_DIR / "models" / "marts" / f"{name}.yml").read_text(encoding="utf-8")
        )
        assert [m["name"] for m in docs["models"]] == [name]
        documented[name] = docs["models"][0]
    assert marts <= set(documented), marts - set(documented)
    for name, model in documented.items():
        grain = [t for t in model.get("data_tests", []) if "unique_combination" in t]
        assert grain, f"{name} has no grain test"
        for column in model.get("columns", []):
            assert column.get("description"), f"{name}.{column['name']} has no description"


@pytest.mark.e2e
def test_docs_site_builds_offline_with_the_marts_catalog(built_warehouse, tmp_path):
    from orchestration.cli import main

    shutil.copy(built_warehouse / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    assert main(["docs", "--data-dir", str(tmp_path), "--no-serve"]) == 0
    site = tmp_path / "dbt_docs"
    assert (site / "index.html").exists()
    catalog = json.loads((site / "catalog.json").read_text(encoding="utf-8"))
    columns = catalog["nodes"]["model.opportunity_warehouse.opportunities"]["columns"]
    assert "days_in_current_stage" in {c.lower() for c in columns}


def test_a_run_passes_only_the_vars_it_changes_and_its_paths_through_the_environment(
    tmp_path, monkeypatch
):
    """dbt parses the whole project again when its vars or profile change: the daily run
    passes the as-of day as data, the paths and limits as environment variables, and names
    the warehouse from its data folder as home, so that with the default settings every run,
    in any data folder, reuses the project's own parse (and each day the previous day's)."""
    from warehouse.database import Database, Limits, memory_limit_from_env, spill_folder
    from warehouse.dbt_cli import (
        dbt_build_args,
        parse_env,
        profile_env,
        project_vars,
        reuse_last_parse,
    )

    defaults = project_vars()
    assert "--vars" not in dbt_build_args(dict(defaults))
    args = dbt_build_args({**defaults, "stale_days": 7, "business_timezone": "America/New_York"})
    assert json.loads(args[args.index("--vars") + 1]) == {
        "stale_days": 7,
        "business_timezone": "America/New_York",
    }
    # the warehouse named from the data folder as home: the same profile for every folder
    data = tmp_path / "data"
    env = profile_env(Database(data / "warehouse.duckdb", None, Limits("2GB", tmp_path / "s")), 4)
    assert env == {
        "HOME": str(data),
        "OPPWH_WAREHOUSE": "~/warehouse.duckdb",
        "OPPWH_DBT_THREADS": "4",
        "OPPWH_MEMORY_LIMIT": "2GB",
        "OPPWH_TEMP_DIRECTORY": str(tmp_path / "s"),  # a spill folder elsewhere stays as given
    }
    for folder in (data, tmp_path / "other"):
        warehouse = folder / "warehouse.duckdb"
        default = Database(
            warehouse, None, Limits(memory_limit_from_env(), spill_folder(warehouse))
        )
        run_env = profile_env(default, 1)
        assert run_env.pop("HOME") == str(folder) and run_env == parse_env()
    runs = tmp_path / "dbt"
    assert reuse_last_parse(runs, runs / "run-new") is None
    for n, name in enumerate(("run-a", "run-b", "run-moved")):
        (runs / name).mkdir(parents=True)
        (runs / name / "partial_parse.msgpack").write_bytes(name.encode())
        os.utime(runs / name / "partial_parse.msgpack", (1000 + n, 1000 + n))
        made_in = "/an/old/clone/dbt_project" if name == "run-moved" else str(DBT_DIR.resolve())
        (runs / name / "parsed_project.txt").write_text(made_in, encoding="utf-8")
    # the newest parse was made by a project folder that has since moved: not reused
    copied = reuse_last_parse(runs, runs / "run-new")
    assert copied == runs / "run-new" / "partial_parse.msgpack" and copied.read_bytes() == b"run-b"
    project_parse = tmp_path / "project_parse.msgpack"
    project_parse.write_bytes(b"project")
    other = tmp_path / "other_runs"
    shutil.copytree(runs / "run-moved", other / "run-moved")
    assert reuse_last_parse(other, other / "run-2", project_parse).read_bytes() == b"project"


def test_a_dbt_command_by_hand_in_the_project_makes_the_next_run_parse_again(tmp_path):
    """A developer's `dbt build` with other vars rewrites the project's partial_parse.msgpack;
    every run seeded from it would parse from scratch, so the project's parse is made again."""
    from warehouse.dbt_cli import (
        PARSE_ENV_FILE,
        PARTIAL_PARSE_FILE,
        manifest_is_stale,
        prepare_manifest,
    )

    project_target = DBT_DIR / "target"
    prepare_manifest(DBT_DIR, project_target / "manifest.json")
    for name in ("manifest.json", PARSE_ENV_FILE, PARTIAL_PARSE_FILE):
        shutil.copy2(project_target / name, tmp_path / name)
    manifest = tmp_path / "manifest.json"
    assert not manifest_is_stale(DBT_DIR, manifest)
    state = tmp_path / PARTIAL_PARSE_FILE
    state.write_bytes(state.read_bytes() + b"\0")  # what another dbt command leaves
    assert manifest_is_stale(DBT_DIR, manifest)


def test_dbt_in_this_process_reads_like_a_dbt_process(tmp_path):
    """The daily run's dbt runs in its own process (warehouse.dbt_in_process): a build's
    events come as a dbt process's JSON lines with its exit code, a wrong argument's error
    too, and the warehouse file is free again when dbt ends."""
    from warehouse.dbt_in_process import DbtInThisProcess, in_process_args

    settings = {
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "target"),
        "DBT_PROJECT_DIR": str(DBT_DIR),
        "DBT_PROFILES_DIR": str(DBT_DIR),
        "DBT_INDIRECT_SELECTION": "",
    }
    args = in_process_args(["dbt", "seed", "--select", "stages"], settings)
    assert args[:3] == ["seed", "--select", "stages"]
    assert "--indirect-selection" not in args and "--quiet" in args
    assert args[args.index("--target-path") + 1] == str(tmp_path / "target")

    warehouse = tmp_path / "warehouse.duckdb"
    os.environ["OPPWH_WAREHOUSE"] = str(warehouse)
    try:
        seed = DbtInThisProcess(["dbt", "seed", "--select", "stages"], settings)
        with seed.stdout:
            events = [json.loads(line) for line in seed.stdout]
        assert seed.wait() == 0, [e["info"]["msg"] for e in events if e["info"]["level"] == "error"]
        # only what dagster-dbt reads; each statement dbt ran is in dbt.log, for a person
        assert {e["info"]["level"] for e in events} <= {"info", "warn", "error"}
        dbt_log = (tmp_path / "target" / "dbt.log").read_text()
        assert "create table" in dbt_log.lower() and "\x1b[" not in dbt_log, "plain text"
        results = [e for e in events if e["info"]["name"] == "LogSeedResult"]
        assert [e["data"]["node_info"]["unique_id"] for e in results] == [
            "seed.opportunity_warehouse.stages"
        ]
        # dbt-duckdb let the file go: a connection with other settings opens it
        import duckdb

        with duckdb.connect(str(warehouse), config={"memory_limit": "1GB"}) as con:
            assert con.execute("SELECT count(*) FROM seeds.stages").fetchone()[0] > 0

        wrong = DbtInThisProcess(["dbt", "build", "--no-such-flag"], settings)
        with wrong.stdout:
            errors = [json.loads(line)["info"] for line in wrong.stdout]
        assert wrong.wait() == 2
        assert any(e["level"] == "error" and "no-such-flag" in e["msg"] for e in errors), errors
    finally:
        os.environ.pop("OPPWH_WAREHOUSE", None)


# Ties at the last decimal kept (2.675 is stored as 2.67499999...), negatives, and figures
# whose ten decimals a double holds exactly: rounded half up as written.
TIES = [2.675, 1.005, 0.125, -2.675, 0.0049999999996, 350000.035, 17.5, 0.0, -0.005, 999.9999999]
# Figures on both sides of 10^7, where the macro switches from a 64-bit to a 128-bit decimal,
# and the bound itself.
WIDE = [9999999.995, 9999999.994999, 1e7, 10000000.005, 12345678.905, -54320987.655, 1.5e11]
# The macro's exact decimal keeps ten places (noise past them goes before rounding).
TEN_PLACES = Decimal("1e-10")


def half_up(figure: float, places: int) -> float:
    """The figure as written, to ten places, then to `places`, ties away from zero."""
    exact = Decimal(repr(figure)).quantize(TEN_PLACES, ROUND_HALF_UP)
    return float(exact.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))


def test_rounding_half_up_agrees_with_decimal_arithmetic_on_both_sides_of_ten_million():
    """`round_half_up` (macros/cross_engine.sql) as the marts use it, rendered from the
    macro file and run in DuckDB: ties round half up as Python's Decimal rounds the figure
    as written, and every figure, on either side of 10^7, rounds as through the 128-bit
    decimal the macro used for all figures before (decimal(38, 10))."""
    macros = jinja2.Environment(extensions=["jinja2.ext.do"]).from_string(
        (DBT_DIR / "macros" / "cross_engine.sql").read_text()
    )
    round_half_up = macros.make_module().round_half_up
    con = duckdb.connect()

    def rounded(figures: list[float], sql: str) -> list[float]:
        query = f"SELECT {sql} FROM (SELECT unnest(?::DOUBLE[]) AS x)"
        return [row[0] for row in con.execute(query, [figures]).fetchall()]

    for places in (0, 2, 4):
        got = rounded(TIES, round_half_up("x", places))
        assert got == [half_up(x, places) for x in TIES], (
            places,
            list(zip(TIES, got, strict=True)),
        )
        before = f"CAST(round(CAST(x AS DECIMAL(38, 10)), {places}) AS DOUBLE)"
        got = rounded(WIDE, round_half_up("x", places))
        assert got == rounded(WIDE, before), (places, list(zip(WIDE, got, strict=True)))

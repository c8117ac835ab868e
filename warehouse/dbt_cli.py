"""How the warehouse calls dbt: the project's folder, the venv's dbt, the project's own
parse, the arguments and environment of the daily build (pure builders, tested without dbt)
and the docs site."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import yaml
from packaging import version

from warehouse.database import (
    DEFAULT_MEMORY_LIMIT,
    MEMORY_LIMIT_ENV,
    SPILL_FOLDER_ENV,
    Database,
    Limits,
    spill_folder,
)
from warehouse.layout import WAREHOUSE_FILE, DataFolder

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
# Reference data shipped with the project (stages, activity words, rates, calendar); the
# contracts read them before dbt has loaded them into the warehouse.
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
# The profile output of the DuckDB engine (profiles.yml), named in every call so that the
# project's own parse and the daily build agree (dbt parses again when the target differs).
DEFAULT_TARGET = "duckdb"
# What a parse or build reads from the project folder (target/ and logs/ are its output).
PROJECT_INPUTS = ("models", "macros", "seeds", "tests", "dbt_project.yml", "profiles.yml")
# dbt threads of a run, when set; else chosen by the data's size (threads_for).
DBT_THREADS_ENV = "OPPWH_DBT_THREADS"
# Below this many raw rows a build is mostly dbt's own work per model and test, which more
# threads overlap; above it one big query already keeps both cores busy, and more threads
# only make queries compete for memory (five marts over 12 million rows: 32 s with 1
# thread, 56 s with 2).
SMALL_BUILD_ROWS = 1_000_000
SMALL_BUILD_THREADS = 4
# The warehouse file dbt builds (profiles.yml); the run sets it, a developer may too.
WAREHOUSE_ENV = "OPPWH_WAREHOUSE"


def threads_for(raw_rows: int) -> int:
    """dbt threads for a build reading `raw_rows` rows: many when small, one when big."""
    return SMALL_BUILD_THREADS if raw_rows < SMALL_BUILD_ROWS else 1


def dbt_executable() -> str:
    """The dbt of this interpreter's venv: `.venv/bin/oppwh` may run without an active venv."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


@functools.cache
def dbt_version(executable: str) -> version.Version:
    """The dbt executable's version, asked once per process (not once per run); this venv's
    own dbt is the installed dbt-core package, whose version needs no second dbt start."""
    if Path(executable).parent == Path(sys.executable).parent:
        return version.parse(importlib.metadata.version("dbt-core"))
    output = subprocess.check_output([executable, "--version"], text=True)
    match = re.search(r"(\d+\.\d+\.\d+)", output)
    if not match:
        raise ValueError(f"Could not parse the dbt version from: {output}")
    return version.parse(match.group(1))


# Beside the project's manifest: the profile environment it was parsed with.
PARSE_ENV_FILE = "parse_env.json"
# dbt's parse state in a target folder (what a later parse of the same project reuses).
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def parse_stamp(manifest: Path) -> dict:
    """What the project's parse was made with: the profile environment, and the size and
    time of the partial_parse.msgpack it wrote. A dbt command run by hand in the project
    folder (with other vars or profile values) rewrites that file, and every run seeded
    from it would then parse from scratch: the stamp no longer matches, and it is made again."""
    state = manifest.with_name(PARTIAL_PARSE_FILE)
    seen = state.stat() if state.exists() else None
    return {"env": parse_env(), "partial_parse": [seen.st_size, seen.st_mtime_ns] if seen else None}


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """True when manifest.json is missing, older than any file of the dbt project, was
    parsed with another profile environment than runs now use, or its parse state was
    rewritten since (its parse would not serve)."""
    stamp = manifest.with_name(PARSE_ENV_FILE)
    if not manifest.exists() or not stamp.exists():
        return True
    if json.loads(stamp.read_text(encoding="utf-8")) != parse_stamp(manifest):
        return True
    built = manifest.stat().st_mtime
    return any(path.stat().st_mtime > built for path in project_files(project_dir))


def project_files(project_dir: Path, names: Sequence[str] = PROJECT_INPUTS) -> list[Path]:
    """Every file of the dbt project that a parse or build reads (or those under `names`),
    in a stable order."""
    files: list[Path] = []
    for name in names:
        top = project_dir / name
        files += [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
    return files


def prepare_manifest(project_dir: Path, manifest: Path) -> Path:
    """Run `dbt parse` when the manifest is missing or stale, so Definitions always load.

    Its partial_parse.msgpack seeds every run's own target folder (dagster-dbt copies it):
    a run with the project's default vars and target then skips most of the parse. Processes
    starting together (the UI and a run, test workers) parse one at a time, the others then
    finding it done: none reads a manifest another is still writing."""
    if not manifest_is_stale(project_dir, manifest):
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with manifest.with_name(".parse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest_is_stale(project_dir, manifest):
            manifest.with_name(PARSE_ENV_FILE).unlink(missing_ok=True)
            subprocess.run(
                [
                    dbt_executable(),
                    "parse",
                    "--quiet",
                    "--profiles-dir",
                    str(project_dir),
                    "--target",
                    DEFAULT_TARGET,
                ],
                cwd=project_dir,
                check=True,
                # dbt's log beside the manifest (ignored by git), not in a logs/ folder of its own
                env={
                    **os.environ,
                    **parse_env(),
                    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                    "DBT_LOG_PATH": str(project_dir / "target"),
                },
            )
            stamp = json.dumps(parse_stamp(manifest))
            manifest.with_name(PARSE_ENV_FILE).write_text(stamp, encoding="utf-8")
    return manifest


@functools.cache
def project_vars() -> dict:
    """The vars' defaults, as dbt_project.yml declares them."""
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return project.get("vars") or {}


def vars_to_pass(vars_: Mapping) -> dict:
    """Only the vars that differ from the project's defaults: dbt parses the whole project
    again whenever the vars it is given change, so a run with the default settings passes
    none and reuses the project's parse."""
    defaults = project_vars()
    return {
        key: value for key, value in vars_.items() if key not in defaults or defaults[key] != value
    }


def profile_env(database: Database, threads: int) -> dict[str, str]:
    """The environment the DuckDB profile (profiles.yml) reads the run's warehouse, threads
    and limits from.

    dbt parses the whole project again when a value of the profile changes, and the
    warehouse's path differs from one data folder to the next. So the profile names it from
    the data folder as home (`~/warehouse.duckdb`, HOME set to the data folder for dbt's
    process: DuckDB expands `~`): the same text for every data folder, and a new data
    folder's first build reuses the project's own parse."""
    folder = database.path.parent
    env = {
        "HOME": str(folder),
        WAREHOUSE_ENV: from_home(database.path, folder),
        DBT_THREADS_ENV: str(threads),
    }
    if database.limits:
        env[MEMORY_LIMIT_ENV] = database.limits.memory_limit
        env[SPILL_FOLDER_ENV] = from_home(database.limits.temp_directory, folder)
    return env


def from_home(path: Path, home: Path) -> str:
    """`path` as `~/...` when it lies in `home`, else as it is."""
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def parse_env() -> dict[str, str]:
    """The profile environment of a run with the default limits, for the project's own
    parse: its partial_parse.msgpack then serves every such run (dbt compares the profile)."""
    warehouse = Path("/") / WAREHOUSE_FILE
    default = Database(warehouse, limits=Limits(DEFAULT_MEMORY_LIMIT, spill_folder(warehouse)))
    env = profile_env(default, 1)
    env.pop("HOME")
    return env


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ for the duration of the block (dagster-dbt's dbt process
    inherits the environment of the moment it is started), then as it was."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# Beside a run's parse state: the dbt project folder that run parsed (dbt keeps absolute
# paths, a seed's file among them, in its parse state).
PARSE_PROJECT_FILE = "parsed_project.txt"


def reuse_last_parse(
    runs: Path,
    target: Path,
    project_parse: Path | None = None,
    project_dir: Path = DBT_PROJECT_DIR,
) -> Path | None:
    """Copy the newest earlier run's parse state into this run's dbt target folder.

    dbt keeps its parse in the target folder and each run has its own; with the previous
    day's copied in, dbt re-reads only the files that changed (its own checks decide:
    other vars, profile or dbt version and it parses from scratch). Only a parse of this
    project folder is reused: dbt does not notice that the project moved (a new clone, a
    data folder run by another checkout), and a parse from the old folder reads its seeds
    from there, so every seed failed. Without such an earlier run, the project's own parse
    (`project_parse`) is copied instead."""
    target.mkdir(parents=True, exist_ok=True)
    here = str(project_dir.resolve())
    (target / PARSE_PROJECT_FILE).write_text(here, encoding="utf-8")
    earlier = sorted(
        (
            p
            for p in runs.glob(f"run-*/{PARTIAL_PARSE_FILE}")
            if p.parent != target and parsed_in(p.parent) == here
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    source = earlier[0] if earlier else project_parse
    if source is None or not source.exists():
        return None
    return Path(shutil.copy2(source, target / PARTIAL_PARSE_FILE))


def parsed_in(run_target: Path) -> str | None:
    """The project folder a run's parse state was made in (None: not known)."""
    stamp = run_target / PARSE_PROJECT_FILE
    return stamp.read_text(encoding="utf-8") if stamp.exists() else None


def dbt_build_args(
    vars_: dict,
    full_refresh: bool = False,
    target: str = DEFAULT_TARGET,
    exclude: Sequence[str] = (),
) -> list[str]:
    """`dbt build` for the daily job: unit tests run in the test suite, not every day.

    Incremental models take only the new loads unless a full refresh is asked for.
    `target` is the profile's output: duckdb, or spark for the same project on Spark.
    `vars_` are passed only where they differ from the project's defaults. `exclude` names
    the nodes this build leaves as they are (warehouse.node_state).
    """
    passed = vars_to_pass(vars_)
    return [
        "build",
        "--target",
        target,
        *(["--vars", json.dumps(passed, ensure_ascii=False)] if passed else []),
        "--exclude-resource-type",
        "unit_test",
        # one value: dagster-dbt takes the value after --exclude as one token
        *(["--exclude", " ".join(exclude)] if exclude else []),
        *(["--full-refresh"] if full_refresh else []),
    ]


def summarise_results(results: list[dict]) -> str:
    """'12 models, 31 tests: 31 pass' style counts from dbt's run_results.json."""
    kinds = Counter(r["unique_id"].split(".")[0] for r in results)
    statuses = Counter(r["status"] for r in results)
    shown = ", ".join(f"{n} {kind}s" for kind, n in sorted(kinds.items()))
    return f"{shown}: " + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))


def build_dbt_docs(data_dir: Path) -> Path:
    """`dbt docs generate` into DATA_DIR/dbt_docs, with the catalog of the built warehouse."""
    folder = DataFolder.at(data_dir)
    out, warehouse = folder.dbt_docs, folder.warehouse
    command = [
        dbt_executable(),
        "docs",
        "generate",
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(out),
        "--vars",
        json.dumps({"warehouse_path": str(warehouse)}),
    ]
    if not warehouse.exists():
        command.append("--empty-catalog")
    result = subprocess.run(command, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dbt docs generate failed:\n{result.stdout[-3000:]}")
    return out

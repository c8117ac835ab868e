"""`oppwh bench`: the daily job at scale, against the floor of DuckDB alone.

Generates native exports in DuckDB, runs the full daily job from an empty data folder, then
the next day (new activities only, as of one day later) and a day on which deals also
move on; measures the floor (DuckDB loading the same files with explicit types and running
the project's compiled model SQL, no orchestration); and times `oppwh run` itself, start-up
included, on a 10,000-deal sample and on its next day (the size most teams have, where a
run is mostly fixed cost). Prints rows per table, wall time per step, the peak memory of
the whole process tree, and the ratios; writes JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from benchmark.core_marts import build_core_marts
from ingestion.files import landing_files
from ingestion.load import ensure_raw_schema
from ingestion.sample import DEFAULT_SEED, generate_sample, write_sample
from ingestion.sample_at_scale import generate_at_scale, generate_increment
from ingestion.schema import TABLES
from orchestration.launch import run_daily_job, run_failed
from orchestration.progress import STEPS
from quality import gx_worker
from warehouse.database import connect, memory_limit_from_env, spill_folder, spill_folder_from_env
from warehouse.dbt_cli import DBT_PROJECT_DIR, SEEDS_DIR, dbt_executable
from warehouse.layout import DataFolder
from warehouse.settings import DEFAULT_TIMEZONE, end_of_day


class TreeMemorySampler:
    """Peak resident memory of this process and all its descendants (dbt runs as a child),
    with every sample's wall-clock time, so that a run's peak can be placed in its step."""

    def __init__(
        self, interval: float = 0.2, spill_dir: Path | None = None, root: int | None = None
    ):
        self.interval = interval
        # whose tree: this process's, or another's (`oppwh run` started as a user starts it,
        # without the bench's own memory, which after its in-process runs is a GiB or more)
        self.root = os.getpid() if root is None else root
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        # DuckDB's spill folder: its largest size shows whether (and how much) a run spilled.
        self.spill_dir = spill_dir
        self.spill_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _children(pid: int) -> list[int]:
        kids = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids += [int(c) for c in (task / "children").read_text().split()]
        return kids

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def tree_rss(self) -> int:
        total, todo, seen = 0, [self.root], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += self._rss(pid)
            todo += self._children(pid)
        return total

    def spill_bytes(self) -> int:
        if self.spill_dir is None or not self.spill_dir.is_dir():
            return 0
        total = 0
        for entry in self.spill_dir.iterdir():
            with contextlib.suppress(OSError):
                total += entry.stat().st_size
        return total

    def peak_between(self, start: float, end: float) -> int:
        """The highest sample taken from `start` to `end` (wall-clock seconds)."""
        return max((rss for at, rss in self.samples if start <= at <= end), default=0)

    def _run(self):
        while not self._stop.is_set():
            rss = self.tree_rss()
            self.samples.append((time.time(), rss))
            self.peak = max(self.peak, rss)
            self.spill_peak = max(self.spill_peak, self.spill_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def step_windows(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's start and end (wall-clock seconds), from the run's event log."""
    starts, windows = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not entry.step_key:
            continue
        if event.event_type_value == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif (
            event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and entry.step_key in starts
        ):
            windows[entry.step_key] = (starts[entry.step_key], entry.timestamp)
    return windows


STEP_NAMES = {key: name for key, (name, _) in STEPS.items()}


def timed_run(data_dir: Path, landing: Path, as_of: str, engine: str = "duckdb") -> dict:
    """The daily job in this process, as `oppwh run` starts it (Great Expectations imported
    by its worker meanwhile, quality.gx_worker): wall time, each step's time and the peak
    memory of the process tree (the worker's included)."""
    started = time.monotonic()
    spill_dir = spill_folder(DataFolder.at(data_dir).warehouse, spill_folder_from_env())
    # The instance is closed here: its SQLite storage left to the garbage collector was
    # closed from another thread, which printed errors in the middle of the next run.
    with (
        dg.DagsterInstance.ephemeral() as instance,
        TreeMemorySampler(spill_dir=spill_dir) as memory,
    ):
        gx_worker.start(
            landing_files(landing), DataFolder.at(data_dir).warehouse, date.fromisoformat(as_of)
        )
        try:
            result = run_daily_job(
                data_dir, landing, as_of, archive_mode="off", instance=instance, engine=engine
            )
        finally:
            gx_worker.stop()
        wall = time.monotonic() - started
        problem = run_failed(result)
        if problem:
            raise RuntimeError(f"benchmark run failed: {problem}")
        windows = {
            STEP_NAMES.get(k, k): w for k, w in step_windows(instance, result.run_id).items()
        }
    return {
        "wall_seconds": round(wall, 2),
        "steps": {step: round(end - start, 2) for step, (start, end) in windows.items()},
        # which step the run's peak is in (a 10M run's budget is missed in one step)
        "step_peak_memory_bytes": {
            step: memory.peak_between(start, end) for step, (start, end) in windows.items()
        },
        "peak_memory_bytes": memory.peak,
        "peak_spill_bytes": memory.spill_peak,
    }


# The size of the small-team figures: a run there is almost all fixed cost.
SMALL_OPPORTUNITIES = 10_000


def cli_run(data_dir: Path, as_of: str, landing: Path | None = None) -> dict:
    """`oppwh run` as a user starts it (its own process, start-up included): wall time and
    the peak memory of its process tree."""
    command = [sys.executable, "-m", "orchestration.cli", "run", "--data-dir", str(data_dir)]
    command += ["--as-of", as_of] + (["--landing", str(landing)] if landing else [])
    started = time.monotonic()
    with (
        tempfile.TemporaryFile("w+") as output,
        subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True) as run,
    ):
        with TreeMemorySampler(root=run.pid) as memory:
            returncode = run.wait()
        if returncode != 0:
            output.seek(0)
            raise RuntimeError(f"benchmark run failed: {output.read()[-2000:]}")
    return {"wall_seconds": round(time.monotonic() - started, 2), "peak_memory_bytes": memory.peak}


def small_runs(out: Path, as_of: date, opportunities: int = SMALL_OPPORTUNITIES) -> dict:
    """The sample of `opportunities` deals into a fresh data folder, then its next day with
    no new file: what a small team's daily run costs, start-up included."""
    landing = out / "landing"
    data = generate_sample(opportunities, DEFAULT_SEED, as_of)
    write_sample(landing, data)
    folder = out / "data"
    return {
        "opportunities": opportunities,
        "activities": len(data.activities),
        "fresh": cli_run(folder, as_of.isoformat(), landing),
        "next_day": cli_run(folder, (as_of + timedelta(days=1)).isoformat()),
    }


def compiled_models(data_dir: Path, as_of: str) -> list[tuple[str, str, str, str]]:
    """(schema, name, materialization, compiled SQL) of every model, in build order."""
    target = data_dir / "floor_target"
    subprocess.run(
        [
            dbt_executable(),
            "compile",
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--quiet",
            "--vars",
            json.dumps(
                {"warehouse_path": str(data_dir / "floor" / "warehouse.duckdb"), "as_of": as_of}
            ),
        ],
        cwd=DBT_PROJECT_DIR,
        check=True,
        capture_output=True,
    )
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    nodes = {
        k: v
        for k, v in manifest["nodes"].items()
        if v["resource_type"] == "model"
        and v["config"]["materialized"] != "written_by_python"  # the grades: not SQL
    }
    order, done = [], set()

    def visit(uid):
        if uid in done or uid not in nodes:
            return
        for dep in nodes[uid]["depends_on"]["nodes"]:
            visit(dep)
        done.add(uid)
        node = nodes[uid]
        order.append(
            (node["schema"], node["name"], node["config"]["materialized"], node["compiled_code"])
        )

    for uid in sorted(nodes):
        visit(uid)
    return order


def floor(data_dir: Path, landing: Path, as_of: str) -> dict:
    """DuckDB alone: load the CSVs with explicit types, then run the compiled models."""
    db_dir = data_dir / "floor"
    db_dir.mkdir(parents=True, exist_ok=True)
    models = compiled_models(data_dir, as_of)
    started = time.monotonic()
    with (
        TreeMemorySampler() as memory,
        connect(db_dir / "warehouse.duckdb", timezone=DEFAULT_TIMEZONE) as con,
    ):
        ensure_raw_schema(con)
        for name in ("owners", "accounts", "opportunities", "stage_history", "activities"):
            table = TABLES[name]
            types = {
                c.name: (
                    "TIMESTAMP"
                    if c.kind == "timestamp"
                    else {
                        "amount": "DECIMAL(18,2)",
                        "integer": "BIGINT",
                        "boolean": "BOOLEAN",
                        "date": "DATE",
                    }.get(c.kind, "VARCHAR")
                )
                for c in table.columns
            }
            path = str(landing / f"{name}.csv")
            header = con.sql(f"SELECT * FROM read_csv('{path}', all_varchar=true) LIMIT 0").columns
            cols = ", ".join(c if c in header else f"NULL AS {c}" for c in table.column_names)
            lineage = "source_system, extra, _load_id, _file_name, _row_number, _export_date"
            con.execute(
                f"INSERT INTO raw.{name} ({', '.join(table.column_names)}, {lineage}) "
                f"SELECT {cols}, 'native', NULL, 1, '{name}.csv', 0, "
                f"DATE '{as_of}' FROM read_csv('{path}', header=true, "
                f"columns={{{', '.join(repr(k) + ': ' + repr(v) for k, v in types.items() if k in header)}}})"
            )
        load_seconds = time.monotonic() - started
        for seed in SEEDS_DIR.glob("*.csv"):
            con.execute("CREATE SCHEMA IF NOT EXISTS seeds")
            con.execute(
                f"CREATE OR REPLACE TABLE seeds.{seed.stem} AS SELECT * FROM read_csv('{seed}', header=true)"
            )
        for schema, name, materialized, sql in models:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            kind = "VIEW" if materialized == "view" else "TABLE"
            con.execute(f"CREATE OR REPLACE {kind} {schema}.{name} AS {sql}")
        wall = time.monotonic() - started
        # the second floor (#19): the same loaded tables, five marts written by hand
        core_started = time.monotonic()
        core_rows = build_core_marts(con, end_of_day(date.fromisoformat(as_of), DEFAULT_TIMEZONE))
        core_seconds = time.monotonic() - core_started
    return {
        "wall_seconds": round(wall, 2),
        "load_seconds": round(load_seconds, 2),
        "models_seconds": round(wall - load_seconds, 2),
        "peak_memory_bytes": memory.peak,
        "core_marts_seconds": round(core_seconds, 2),
        "core_marts_rows": core_rows,
        # DuckDB alone: the load and the five hand-written marts
        "duckdb_only_seconds": round(load_seconds + core_seconds, 2),
    }


def row_counts(data_dir: Path) -> dict[str, int]:
    with connect(DataFolder.at(data_dir).warehouse, read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'marts') ORDER BY 1"
        ).fetchall()
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for (t,) in tables}


# The bench's first day: a Tuesday in mid-month, so its next day and the day after are the
# ordinary days a daily run mostly sees. (A new week or month adds work on its first day:
# the weekly marts' new week, the forecast backtest's newly complete month.)
BENCH_AS_OF = date(2025, 6, 17)


def run_bench(
    out: Path,
    opportunities: int,
    as_of: date = BENCH_AS_OF,
    full_only: bool = False,
    engine: str = "duckdb",
) -> dict:
    """Generate, run the full job, then (unless `full_only`) the increment and the floor.

    `full_only` answers "does a run of this size fit on this machine?" (the 10-million-deal
    spill check) without spending the time on the comparisons. `engine` builds the marts
    with DuckDB or Spark; the floor is always DuckDB alone, so the cost of the switch shows.
    """
    out.mkdir(parents=True, exist_ok=True)
    figures: dict = {
        "opportunities": opportunities,
        "engine": engine,
        "machine": f"{os.cpu_count()} cores",
        "python": sys.version.split()[0],
        "duckdb": duckdb.__version__,
        "memory_limit": memory_limit_from_env(),
    }
    started = time.monotonic()
    figures["generated"] = generate_at_scale(out / "landing", opportunities, as_of)
    figures["generate_seconds"] = round(time.monotonic() - started, 2)
    data = out / "data"
    figures["full"] = timed_run(data, out / "landing", as_of.isoformat(), engine)
    if full_only:
        figures["rows"] = row_counts(data)
        return figures
    # The next day as it usually comes: a day of new activities, as of one day later.
    next_day = as_of + timedelta(days=1)
    figures["next_day_files"] = generate_increment(
        out / "landing_next_day", opportunities, next_day, changed=0
    )
    figures["next_day"] = timed_run(data, out / "landing_next_day", next_day.isoformat(), engine)
    # A day on which deals also move on: new stage entries and re-exported deals.
    moved = next_day + timedelta(days=1)
    figures["increment_files"] = generate_increment(
        out / "landing_increment",
        opportunities,
        moved,
        changed=max(1, opportunities // 300),
        base=out / "landing",
    )
    figures["increment"] = timed_run(data, out / "landing_increment", moved.isoformat(), engine)
    figures["rows"] = row_counts(data)
    figures["floor"] = floor(out, out / "landing", as_of.isoformat())
    full = figures["full"]["wall_seconds"]
    figures["full_over_floor"] = round(full / figures["floor"]["wall_seconds"], 2)
    figures["full_over_duckdb_only"] = round(full / figures["floor"]["duckdb_only_seconds"], 2)
    figures["next_day_over_full"] = round(figures["next_day"]["wall_seconds"] / full, 2)
    figures["increment_over_full"] = round(figures["increment"]["wall_seconds"] / full, 2)
    figures["small"] = small_runs(out / "small", as_of)
    return figures


RUN_LABELS = {
    "full": "full run",
    "next_day": "next-day run",
    "increment": "increment run",
}
# The 10,000-deal runs of `oppwh run`, with their targets in seconds (#19).
SMALL_RUNS = {"fresh": ("fresh folder", 15), "next_day": ("next day", 10)}


def render(figures: dict) -> str:
    gib = lambda b: f"{b / 2**30:.2f} GiB"  # noqa: E731
    lines = [
        f"Benchmark: {figures['opportunities']:,} opportunities, engine "
        f"{figures.get('engine', 'duckdb')} ({figures['machine']}, "
        f"DuckDB {figures['duckdb']}, memory_limit {figures.get('memory_limit', '?')})",
        f"  generate exports:   {figures['generate_seconds']:>8.1f} s  {figures['generated']}",
    ]
    for name in ("full", "next_day", "increment"):
        if name not in figures:
            continue
        run = figures[name]
        lines.append(
            f"  {RUN_LABELS[name] + ':':<19} {run['wall_seconds']:>8.1f} s  peak {gib(run['peak_memory_bytes'])}"
            f", spilled at most {gib(run.get('peak_spill_bytes', 0))}"
        )
        peaks = run.get("step_peak_memory_bytes", {})
        for step, seconds in run["steps"].items():
            peak = f"  peak {gib(peaks[step])}" if peaks.get(step) else ""
            lines.append(f"      {step:<16} {seconds:>8.1f} s{peak}")
    if "floor" not in figures:
        lines.append("  rows:")
        lines += [f"      {t:<40} {n:>12,}" for t, n in figures["rows"].items()]
        return "\n".join(lines)
    fl = figures["floor"]
    lines.append(
        f"  floor (DuckDB only): {fl['wall_seconds']:>6.1f} s  (load {fl['load_seconds']} s, "
        f"models {fl['models_seconds']} s)  peak {gib(fl['peak_memory_bytes'])}"
    )
    lines.append(f"  full / floor:       {figures['full_over_floor']:>8.2f}   (target <= 1.5)")
    if "duckdb_only_seconds" in fl:
        lines.append(
            f"  DuckDB-only floor:  {fl['duckdb_only_seconds']:>8.1f} s  (the same load, then "
            f"five core marts in hand-written SQL: {fl['core_marts_seconds']} s)"
        )
        lines.append(
            f"  full / DuckDB-only: {figures['full_over_duckdb_only']:>8.2f}   (target <= 5)"
        )
    if "next_day_over_full" in figures:
        lines.append(
            f"  next day / full:    {figures['next_day_over_full']:>8.2f}   (target <= 0.15)"
        )
    lines.append(f"  increment / full:   {figures['increment_over_full']:>8.2f}")
    small = figures.get("small")
    if small:
        lines.append(
            f"  `oppwh run`, start-up included, {small['opportunities']:,} deals "
            f"({small['activities']:,} activities):"
        )
        for name, (label, target) in SMALL_RUNS.items():
            run = small[name]
            lines.append(
                f"      {label:<16} {run['wall_seconds']:>8.1f} s  peak "
                f"{gib(run['peak_memory_bytes'])}   (target <= {target} s)"
            )
    lines.append("  rows:")
    lines += [f"      {t:<40} {n:>12,}" for t, n in figures["rows"].items()]
    return "\n".join(lines)

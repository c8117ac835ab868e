"""`oppwh`: the command line. Every command that builds runs the same Dagster job."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import warnings
from datetime import date
from pathlib import Path

from orchestration.spark import ENGINES

ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")

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


def engine_unavailable(engine: str) -> bool:
    """Say why the chosen engine cannot run here (Spark without PySpark or Java 17)."""
    if engine != "spark":
        return False
    from orchestration.spark import spark_unavailable_reason

    reason = spark_unavailable_reason()
    if reason:
        print(f"The Spark engine cannot run here / 无法使用 Spark 引擎: {reason}", file=sys.stderr)
    return reason is not None


def business_timezone(args: argparse.Namespace) -> str:
    """--timezone, else the data folder's oppwh.yml `timezone:`, else the shipped default."""
    from ingestion.config import read_config

    return getattr(args, "timezone", None) or read_config(Path(args.data_dir)).timezone


def _timezone(text: str) -> str:
    from warehouse.settings import valid_timezone

    if not valid_timezone(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time zone name (America/New_York, Europe/Berlin, UTC …)"
        )
    return text


def _iso_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from exc


def cmd_sample(args: argparse.Namespace) -> int:
    from ingestion.files import landing_files
    from ingestion.sample import generate_sample, write_sample

    out = Path(args.out)
    archive = out.parent / "archive"
    if args.if_empty and (landing_files(out) or (archive.is_dir() and any(archive.iterdir()))):
        print(
            f"{out} (or its archive) already holds files; sample not written "
            "/ 已有文件，未写入示例数据"
        )
        return 0
    if args.as_of:
        as_of = date.fromisoformat(args.as_of)
    else:  # the same "today" as `oppwh run` on the data folder the landing folder is in
        from ingestion.config import read_config
        from orchestration.resources import today_in

        as_of = today_in(read_config(out.resolve().parent).timezone)
    data = generate_sample(args.opportunities, args.seed, as_of)
    paths = write_sample(out, data)
    print(
        f"Sample export written to {out} / 示例数据已写入: "
        f"{len(data.opportunities)} opportunities, {len(data.activities)} activities "
        f"(seed {args.seed}, as of {as_of})"
    )
    for path in paths:
        print(f"  {path}")
    return 0


def run_daily_job(
    data_dir: Path,
    landing: Path | None,
    as_of: str | None,
    parquet: bool = False,
    archive_mode: str | None = None,
    wait: float | None = None,
    instance=None,
    full_refresh: bool = False,
    engine: str | None = None,
    timezone: str | None = None,
):
    """Execute the `daily` job in this process, recorded in DAGSTER_HOME when it is set."""
    import dagster as dg

    from orchestration import progress
    from orchestration.definitions import defs
    from orchestration.resources import run_config_for

    run_config = run_config_for(
        data_dir,
        landing,
        as_of,
        parquet,
        archive_mode,
        wait,
        full_refresh=full_refresh,
        engine=engine,
        timezone=timezone,
    )
    run_config["loggers"] = {"progress": {}}
    job = defs.resolve_job_def("daily")
    if instance is None and os.environ.get("DAGSTER_HOME"):
        instance = dg.DagsterInstance.get()
    log_path = data_dir / "logs" / "last_run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    progress.PROGRESS_STREAM = sys.stdout
    with log_path.open("w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        # Every event of the run goes to the log too, so a failed run's log says why.
        progress.LOG_STREAM = log
        try:
            result = job.execute_in_process(
                run_config=run_config, instance=instance, raise_on_error=False
            )
        finally:
            progress.LOG_STREAM = None
        problem = run_failed(result)
        print(f"run {result.run_id}: {problem or 'succeeded'}", flush=True)
    progress.PROGRESS_STREAM = None
    if not result.success:
        # The job has ended and released the writer lock: a slow webhook holds nothing.
        from orchestration.hooks import post_run_failure

        outcome = post_run_failure(data_dir, result.all_events, result.run_id)
        with log_path.open("a", encoding="utf-8") as log:
            print(outcome, file=log)
    return result


def mart_row_counts(serving: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(serving), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
                "ORDER BY 1"
            ).fetchall()
        ]
        return {t: con.execute(f'SELECT count(*) FROM marts."{t}"').fetchone()[0] for t in tables}


# A run whose newest data is older than this is most likely run for the wrong day.
STALE_DATA_DAYS = 30


def newest_data_day(serving: Path, timezone: str) -> date | None:
    """The latest local day any deal was created, closed, changed stage or touched.

    A plain read-only connection like any BI tool's (our own fixed query): a reader holding
    the serving copy open in this process keeps its connection settings."""
    import duckdb

    with duckdb.connect(str(serving), read_only=True) as con:
        row = con.execute(
            "SELECT CAST(timezone(?, greatest(max(created_at), max(closed_at), "
            "max(current_stage_entered_at), max(last_activity_at))) AS DATE) "
            "FROM marts.opportunities WHERE NOT coalesce(is_created_after_as_of, false)",
            [timezone],
        ).fetchone()
    return row[0] if row else None


def stale_data_warning(newest: date | None, as_of: date) -> str | None:
    """A warning when the data ends long before the as-of day (every deal looks stale)."""
    if newest is None or (as_of - newest).days <= STALE_DATA_DAYS:
        return None
    return (
        f"! warn: the newest data is from {newest}, {(as_of - newest).days} days before the "
        f"as-of day {as_of}: ages and staleness are measured to {as_of}; pass --as-of "
        f"{newest} to see the data as of its own last day / 最新数据日期为 {newest}，"
        f"比截至日 {as_of} 早 {(as_of - newest).days} 天"
    )


def skipped_steps(result) -> list[str]:
    """Steps Dagster skipped because a step before them did not report every output (a run
    that skips scoring or publishing has not done its job, whatever Dagster calls it)."""
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"]


def run_failed(result) -> str | None:
    """Why the run did not do its whole job, or None when it did."""
    if not result.success:
        return failure_summary(result)
    skipped = skipped_steps(result)
    if skipped:
        return (
            f"steps skipped / 步骤被跳过: {', '.join(skipped)} (a step before them did not "
            "report all its results; see the full log)"
        )
    return None


def failure_summary(result) -> str:
    """Which step failed and why, in one or two lines."""
    from orchestration.hooks import failed_step

    step, error = failed_step(result.all_events)
    if not error:
        return "the run failed (see the Dagster logs above)"
    where = f"step {step}" if step != "run" else "the run"
    return f"{where} failed: {ANSI_CODES.sub('', error)}"


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


def cmd_run(args: argparse.Namespace) -> int:
    if args.list_steps:
        from orchestration.crash import CRASH_STEPS

        for step, where in CRASH_STEPS.items():
            print(f"{step:<22} {where}")
        return 0
    from orchestration.resources import today_in

    data_dir = Path(args.data_dir).resolve()
    landing = Path(args.landing).resolve() if args.landing else None
    if engine_unavailable(args.engine):
        return 2
    timezone = business_timezone(args)
    as_of = args.as_of or today_in(timezone).isoformat()
    print(
        f"Running the daily job / 运行每日任务 (data: {data_dir}, as of / 截至: {as_of}, "
        f"time zone / 时区: {timezone}, engine / 引擎: {args.engine})"
    )
    # A landing folder of the user's own (--landing) is copied to the archive, not emptied.
    archive_mode = args.archive or ("copy" if landing else "move")
    result = run_daily_job(
        data_dir,
        landing,
        as_of,
        args.parquet,
        archive_mode,
        args.wait,
        full_refresh=args.full_refresh,
        engine=args.engine,
        timezone=args.timezone,
    )
    problem = run_failed(result)
    if problem:
        print(f"\nRun FAILED / 运行失败: {problem}", file=sys.stderr)
        print(f"Full log / 完整日志: {data_dir / 'logs' / 'last_run.log'}", file=sys.stderr)
        return 1
    serving = data_dir / "serving.duckdb"
    counts = mart_row_counts(serving)
    print("\nRun succeeded / 运行成功. Rows per mart / 各数据集行数:")
    for table, n in counts.items():
        print(f"  marts.{table:<28} {n:>10,}")
    warning = stale_data_warning(newest_data_day(serving, timezone), date.fromisoformat(as_of))
    if warning:
        print(f"\n{warning}")
    oppwh = oppwh_command()
    print(
        f"\nWarehouse / 数仓:       {data_dir / 'warehouse.duckdb'}\n"
        f"Serving copy / 只读副本: {serving}  (open this one from BI tools)\n"
        f"Dagster UI:             {oppwh} ui --data-dir {args.data_dir}\n"
        f'Query the marts / 查询:  {oppwh} sql "select status, count(*) from marts.opportunities '
        f'group by 1" --data-dir {args.data_dir}\n'
        f"Column docs / 字段说明:  dbt_project/models/marts/_marts.yml"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Show what the warehouse would make of a file, without loading anything."""
    from ingestion.config import load_settings
    from ingestion.inspect import inspect_file, render
    from orchestration.resources import today_in

    path = Path(args.file)
    if not path.is_file():
        print(f"{path}: no such file / 文件不存在", file=sys.stderr)
        return 2
    timezone = business_timezone(args)
    as_of = date.fromisoformat(args.as_of) if args.as_of else today_in(timezone)
    settings = load_settings(Path(args.data_dir), as_of, timezone)
    reports = inspect_file(path, settings, args.rows)
    print(render(reports))
    return 0 if all(r.outcome and r.outcome.status in ("loaded", "skipped") for r in reports) else 1


def cmd_backup(args: argparse.Namespace) -> int:
    from orchestration.backup import BackupError, backup
    from orchestration.lock import WarehouseBusyError

    try:
        target = backup(Path(args.data_dir), Path(args.target))
    except (BackupError, WarehouseBusyError) as exc:
        print(f"Backup failed / 备份失败: {exc}", file=sys.stderr)
        return 1
    print(f"Backup written to / 备份已写入 {target}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from orchestration.backup import BackupError, restore
    from orchestration.lock import WarehouseBusyError

    try:
        restore(Path(args.backup), Path(args.data_dir))
    except (BackupError, WarehouseBusyError) as exc:
        print(f"Restore failed, nothing changed / 恢复失败，未做改动: {exc}", file=sys.stderr)
        return 1
    print(
        f"Restored into {args.data_dir}; run `oppwh run` to republish the serving copy. "
        "/ 已恢复，请运行 oppwh run 重新发布。"
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Rebuild a warehouse from an archive: each day's files, in order, as that day's run."""
    from ingestion.archive import archived_days

    days = archived_days(Path(args.archive))
    if not days:
        print(f"No dated folders in {args.archive} / 归档中没有按日期的文件夹", file=sys.stderr)
        return 1
    data_dir = Path(args.data_dir).resolve()
    for day in days:
        print(f"Replaying {day.name} / 重放 {day.name}")
        result = run_daily_job(data_dir, day, day.name, archive_mode="off")
        problem = run_failed(result)
        if problem:
            print(f"Replay of {day.name} FAILED: {problem}", file=sys.stderr)
            return 1
    print(f"Replayed {len(days)} day(s) into {data_dir}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Generate data at scale, run full + increment + floor, print and save the figures."""
    import json

    from orchestration.bench import render, run_bench

    out = Path(args.out).resolve()
    if engine_unavailable(args.engine):
        return 2
    figures = run_bench(out, args.opportunities, full_only=args.full_only, engine=args.engine)
    print(render(figures))
    target = Path(args.json) if args.json else out / "bench.json"
    target.write_text(
        json.dumps(figures, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    print(f"figures written to {target}")
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    """The latest data-quality report, worst first, in Chinese and English."""
    import duckdb

    from quality.report import render_report

    warehouse = Path(args.data_dir) / "warehouse.duckdb"
    if not warehouse.exists():
        print(f"No warehouse at {warehouse}: run `oppwh run` first.", file=sys.stderr)
        return 1
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException:
        print(
            "A run is writing the warehouse right now; try again when it ends. "
            "/ 正在运行，请稍后再试。",
            file=sys.stderr,
        )
        return 1
    with con:
        print(render_report(con))
    return 0


def print_backtest(data_dir: Path, timezone: str) -> int:
    """Per source: AUC with its bootstrap interval, win rate and deals per grade, verdict."""
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    import duckdb

    from orchestration.resources import today_in
    from scoring.config import load_config
    from scoring.model import score_and_calibrate

    warehouse = data_dir / "warehouse.duckdb"
    if not warehouse.exists():
        print(f"No warehouse at {warehouse}: run `oppwh run` first.", file=sys.stderr)
        return 1
    config = load_config(data_dir)
    end = datetime.combine(today_in(timezone) + timedelta(days=1), time.min, ZoneInfo(timezone))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET TimeZone = ?", [timezone])
        run = score_and_calibrate(con, config, end)
    if run.graded.empty:
        print("No closed deals to backtest on / 没有已关闭的商机可供回测")
        return 1
    print(f"Backtest / 回测 ({run.scorer.model_version}; {run.scorer.note})")
    print(f"  past deals scored as they stood {config.horizon_days} days before they closed")
    for v in run.verdicts:
        past = run.graded[run.graded["source_system"] == v.source_system]
        table = run.calibration[
            (run.calibration["source_system"] == v.source_system)
            & (run.calibration["period"] == "all")
        ].set_index("grade")
        area = "–" if v.auc is None else f"{v.auc:.3f}"
        interval = "" if v.auc_low is None else f" (90% interval {v.auc_low:.3f}–{v.auc_high:.3f})"
        lift_a = table.loc["A", "lift"] if "A" in table.index else None
        print(f"\nSource / 来源: {v.source_system} — {len(past):,} closed deals scored")
        if len(past):
            print(f"  base win rate / 基准赢率: {past['won'].mean():.1%}")
        print(f"  AUC: {area}{interval}")
        print(f"  lift of A over base rate / A级提升: {'–' if lift_a is None else lift_a}")
        print("  grade  deals   won  win rate   lift")
        for grade in "ABCD":
            row = table.loc[grade] if grade in table.index else None
            n = 0 if row is None else int(row["closed_deals"])
            won = 0 if row is None else int(row["won_deals"])
            rate = (
                "–"
                if row is None or row["win_rate"] is None or not n
                else f"{row['win_rate']:6.1%}"
            )
            lift = "–" if row is None or row["lift"] is None or not n else f"{row['lift']:5.2f}"
            print(f"  {grade:>5}  {n:>5}  {won:>4}  {rate:>8}  {lift:>5}")
        print(f"  verdict / 结论: {v.line()}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Today's grades from the serving copy; with --backtest, how well grades predict wins."""
    import duckdb

    data_dir = Path(args.data_dir)
    if args.backtest:
        return print_backtest(data_dir, business_timezone(args))
    serving = data_dir / "serving.duckdb"
    if not serving.exists():
        print(f"No serving copy at {serving}: run `oppwh run` first.", file=sys.stderr)
        return 1
    with duckdb.connect(str(serving), read_only=True) as con:
        con.sql(
            "SELECT grade, count(*) AS deals, round(avg(score), 1) AS avg_score, "
            "sum(amount_reporting) AS amount FROM marts.opportunity_priority GROUP BY 1 ORDER BY 1"
        ).show()
        con.sql(
            "SELECT opportunity_id, opportunity_name, owner_name, score, grade, trend, reasons "
            "FROM marts.opportunity_priority ORDER BY score DESC LIMIT ?",
            params=[args.top],
        ).show(max_width=220)
        rows = con.execute(
            "SELECT source_system, closed_deals_scored, auc, is_better_than_chance, "
            "writeback_status, why FROM marts.scoring_validation ORDER BY 1"
        ).fetchall()
    for source, n, area, better, status, why in rows:
        shown = "–" if area is None else f"{area:.3f}"
        verdict = "better than chance / 优于随机" if better else f"no better than chance ({why})"
        print(
            f"Verdict / 结论 {source}: AUC {shown} on {n} past deals, {verdict}; "
            f"write-back / 回写: {status}"
        )
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """One read-only query on the serving copy (never the warehouse), printed as a table,
    CSV or JSON. Anything but one reading statement is refused in one line."""
    from warehouse.query import QueryRefusedError, ServingCopyMissingError, run_query
    from warehouse.sql_output import render_rows

    if args.file:
        sql = Path(args.file).read_text(encoding="utf-8")
    elif args.query:
        sql = args.query
    else:
        print("Give a query or -f FILE / 请提供查询语句或 -f 文件", file=sys.stderr)
        return 2
    serving = Path(args.data_dir) / "serving.duckdb"
    try:
        columns, types, rows = run_query(serving, sql, business_timezone(args))
    except ServingCopyMissingError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except QueryRefusedError as exc:
        print(f"Query refused / 查询被拒绝: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render_rows(columns, types, rows, args.format, args.max_rows))
    return 0


def dashboard_command(data_dir: Path, port: int) -> tuple[list[str], dict]:
    """The streamlit command line and environment for the dashboards."""
    app = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
    streamlit = str(Path(sys.executable).parent / "streamlit")
    command = [
        streamlit,
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.address",
        "127.0.0.1",
    ]
    return command, {**os.environ, "OPPWH_DATA_DIR": str(data_dir.resolve())}


def cmd_dashboard(args: argparse.Namespace) -> int:
    command, env = dashboard_command(Path(args.data_dir), args.port)
    print(f"Dashboards on http://127.0.0.1:{args.port} (reading {args.data_dir}/serving.duckdb)")
    os.execve(command[0], command, env)
    return 0


def build_dbt_docs(data_dir: Path) -> Path:
    """`dbt docs generate` into DATA_DIR/dbt_docs, with the catalog of the built warehouse."""
    import json
    import subprocess

    from orchestration.assets.dbt import DBT_PROJECT_DIR, dbt_executable

    out = data_dir / "dbt_docs"
    warehouse = data_dir / "warehouse.duckdb"
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


def cmd_docs(args: argparse.Namespace) -> int:
    """Build the dbt docs site (models, columns, lineage) and serve it on localhost, offline."""
    import functools
    import http.server

    data_dir = Path(args.data_dir).resolve()
    out = build_dbt_docs(data_dir)
    print(f"dbt docs built in {out} / 文档已生成")
    if args.no_serve:
        return 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        print(f"Serving on http://127.0.0.1:{args.port} ; Ctrl-C stops it.")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """Start `dagster dev` on this project with the schedule and sensor able to run."""
    data_dir = Path(args.data_dir).resolve()
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir / ".dagster")
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "OPPWH_DATA_DIR": str(data_dir),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
    }
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    command = [dagster, "dev", "-m", "orchestration.definitions", "-p", str(args.port)]
    print(f"Dagster UI on http://127.0.0.1:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops it.")
    os.execvpe(dagster, command, env)  # replaces this process; returns only on error
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ingestion.sample import DEFAULT_OPPORTUNITIES, DEFAULT_SEED

    parser = argparse.ArgumentParser(
        prog="oppwh", description="Opportunity warehouse / 商机数仓: CRM exports -> DuckDB marts."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sample = sub.add_parser("sample", help="write a synthetic export in the native format")
    sample.add_argument("--out", required=True, help="folder to write the CSVs into")
    sample.add_argument("--opportunities", type=int, default=DEFAULT_OPPORTUNITIES)
    sample.add_argument("--seed", type=int, default=DEFAULT_SEED)
    sample.add_argument(
        "--as-of",
        type=_iso_date,
        help="the last day of the sample's history (default: today in the business time "
        "zone, the same day `oppwh run` uses)",
    )
    sample.add_argument(
        "--if-empty", action="store_true", help="write only when the folder holds no files"
    )
    sample.set_defaults(func=cmd_sample)

    run = sub.add_parser("run", help="run the daily job (load, build, test, publish)")
    run.add_argument("--data-dir", default="data", help="holds landing/, warehouse.duckdb, ...")
    run.add_argument("--landing", help="landing folder (default DATA_DIR/landing)")
    run.add_argument("--as-of", type=_iso_date, help="the day 'today' is (default: today)")
    run.add_argument(
        "--parquet",
        action="store_true",
        help="also write one Parquet file per mart to DATA_DIR/parquet",
    )
    run.add_argument(
        "--archive",
        choices=["move", "copy", "off"],
        help="processed landing files: move (default for DATA_DIR/landing) or copy (default "
        "for --landing) into DATA_DIR/archive/<as-of>/, or leave them where they are",
    )
    run.add_argument(
        "--wait",
        type=float,
        default=0,
        help="seconds to wait for another run to finish (default: exit at once)",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the incremental models from every load, not only the new ones "
        "(same marts; after changing their SQL or to repair)",
    )
    run.add_argument(
        "--engine",
        choices=ENGINES,
        default=os.environ.get("OPPWH_ENGINE", "duckdb"),
        help="which engine builds the marts: duckdb (default) or spark (the same dbt project "
        "on Apache Spark; needs the spark extra and Java 17, see the README)",
    )
    run.add_argument(
        "--timezone",
        type=_timezone,
        help="business time zone of this run (default: oppwh.yml timezone, else Asia/Shanghai)",
    )
    run.add_argument(
        "--list-steps",
        action="store_true",
        help="list the named steps OPPWH_CRASH_AT can stop a run at (for tests)",
    )
    run.set_defaults(func=cmd_run)

    inspect = sub.add_parser("inspect", help="show a file's format, mapping, preview and problems")
    inspect.add_argument("file")
    inspect.add_argument("--data-dir", default="data", help="for oppwh.yml and mappings/")
    inspect.add_argument("--as-of", type=_iso_date)
    inspect.add_argument(
        "--timezone",
        help="business time zone (default: the data folder's oppwh.yml timezone, else Asia/Shanghai)",
    )
    inspect.add_argument("--rows", type=int, default=5, help="rows of parsed preview")
    inspect.set_defaults(func=cmd_inspect)

    backup = sub.add_parser("backup", help="back up the warehouse, archive and configuration")
    backup.add_argument("target", help="folder to write the dated backup into")
    backup.add_argument("--data-dir", default="data")
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="restore a backup made by `oppwh backup`")
    restore.add_argument("backup", help="the oppwh-backup-... folder")
    restore.add_argument("--data-dir", default="data")
    restore.set_defaults(func=cmd_restore)

    replay = sub.add_parser("replay", help="rebuild a warehouse from a landing archive")
    replay.add_argument("archive", help="an archive folder (DATA_DIR/archive)")
    replay.add_argument("--data-dir", required=True, help="an empty data folder to build into")
    replay.set_defaults(func=cmd_replay)

    bench = sub.add_parser("bench", help="benchmark the daily job at scale against DuckDB alone")
    bench.add_argument("--opportunities", type=int, default=1_000_000)
    bench.add_argument("--out", default="bench", help="working folder (data is generated here)")
    bench.add_argument("--json", help="where to write the figures (default OUT/bench.json)")
    bench.add_argument(
        "--full-only",
        action="store_true",
        help="only the full run: does a run of this size fit (e.g. 10,000,000 deals, spilling)?",
    )
    bench.add_argument(
        "--engine",
        choices=ENGINES,
        default="duckdb",
        help="the engine the benchmarked job builds the marts with (the floor is DuckDB alone)",
    )
    bench.set_defaults(func=cmd_bench)

    quality = sub.add_parser("quality", help="print the latest data-quality report")
    quality.add_argument("--data-dir", default="data")
    quality.set_defaults(func=cmd_quality)

    score = sub.add_parser("score", help="show today's priority grades; --backtest measures them")
    score.add_argument("--data-dir", default="data")
    score.add_argument(
        "--backtest",
        action="store_true",
        help="score past deals as they stood before closing: AUC, lift per grade",
    )
    score.add_argument("--top", type=int, default=10)
    score.add_argument(
        "--timezone",
        help="business time zone (default: the data folder's oppwh.yml timezone, else Asia/Shanghai)",
    )
    score.set_defaults(func=cmd_score)

    sql = sub.add_parser(
        "sql", help="one read-only query on the serving copy (SELECT, DESCRIBE, SHOW, ...)"
    )
    sql.add_argument("query", nargs="?", help="the SQL (or -f FILE)")
    sql.add_argument("-f", "--file", help="read the SQL from this file")
    sql.add_argument("--data-dir", default="data")
    sql.add_argument(
        "--timezone",
        help="business time zone (default: the data folder's oppwh.yml timezone, else Asia/Shanghai)",
    )
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument(
        "--max-rows", type=int, default=40, help="rows shown in table format (csv/json: all)"
    )
    sql.set_defaults(func=cmd_sql)

    docs = sub.add_parser("docs", help="build and serve the dbt docs site (offline)")
    docs.add_argument("--data-dir", default="data")
    docs.add_argument("--port", type=int, default=8080)
    docs.add_argument("--no-serve", action="store_true", help="only build the site")
    docs.set_defaults(func=cmd_docs)

    dashboard = sub.add_parser("dashboard", help="start the managers' dashboards (Streamlit)")
    dashboard.add_argument("--data-dir", default="data")
    dashboard.add_argument("--port", type=int, default=8501)
    dashboard.set_defaults(func=cmd_dashboard)

    ui = sub.add_parser("ui", help="open the Dagster UI on this project")
    ui.add_argument("--data-dir", default="data")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_environment()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

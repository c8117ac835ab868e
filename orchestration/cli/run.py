"""`oppwh sample | run | inspect | replay`: the commands that load and build."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from ingestion.archive import archived_days
from ingestion.config import load_settings, read_config
from ingestion.files import landing_files
from ingestion.inspect import inspect_file, render
from ingestion.sample import DEFAULT_OPPORTUNITIES, DEFAULT_SEED, generate_sample, write_sample
from orchestration.cli.options import (
    add_as_of,
    add_data_dir,
    add_timezone,
    as_of_day,
    business_timezone,
    engine_unavailable,
    iso_date,
    oppwh_command,
    set_aside_imported_objects,
)
from orchestration.crash import CRASH_STEPS
from quality import gx_worker
from reminders.step import post_run_reminders
from serving.reads import mart_row_counts, newest_data_day
from warehouse.engines import ENGINES, default_engine
from warehouse.layout import ARCHIVE_FOLDER, DataFolder


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    archive = out.parent / ARCHIVE_FOLDER
    if args.if_empty and (landing_files(out) or (archive.is_dir() and any(archive.iterdir()))):
        print(
            f"{out} (or its archive) already holds files; sample not written "
            "/ 已有文件，未写入示例数据"
        )
        return 0
    # Default: the same "today" as `oppwh run` on the data folder the landing folder is in.
    as_of = as_of_day(args, read_config(out.resolve().parent).timezone)
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


# A run whose newest data is older than this is most likely run for the wrong day.
STALE_DATA_DAYS = 30


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


def cmd_run(args: argparse.Namespace) -> int:
    if args.list_steps:
        for step, where in CRASH_STEPS.items():
            print(f"{step:<22} {where}")
        return 0
    data_dir = Path(args.data_dir).resolve()
    folder = DataFolder.at(data_dir)
    landing = Path(args.landing).resolve() if args.landing else None
    if engine_unavailable(args.engine):
        return 2
    timezone = business_timezone(args)
    as_of = as_of_day(args, timezone).isoformat()
    print(
        f"Running the daily job / 运行每日任务 (data: {data_dir}, as of / 截至: {as_of}, "
        f"time zone / 时区: {timezone}, engine / 引擎: {args.engine})"
    )
    started = time.monotonic()
    # Great Expectations imports in its own process while this one loads the job (quality.gx_worker).
    gx_worker.start(
        landing_files(landing or folder.landing), folder.warehouse, date.fromisoformat(as_of)
    )
    # The job's Definitions (Dagster, dagster-dbt: ~2 s) load only for the commands that run it.
    from orchestration.launch import run_daily_job, run_failed

    set_aside_imported_objects()
    # A landing folder of the user's own (--landing) is copied to the archive, not emptied.
    archive_mode = args.archive or ("copy" if landing else "move")
    try:
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
    finally:
        gx_worker.stop()  # the ingest step stops it; a run that never got there, here
    problem = run_failed(result)
    if problem:
        took = time.monotonic() - started
        print(f"\nRun FAILED after {took:.1f} s / 运行失败: {problem}", file=sys.stderr)
        print(f"Full log / 完整日志: {folder.last_run_log}", file=sys.stderr)
        return 1
    serving = folder.serving
    counts = mart_row_counts(serving)
    took = time.monotonic() - started
    print(
        f"\nRun succeeded in {took:.1f} s / 运行成功，用时 {took:.1f} 秒. Rows per mart / 各数据集行数:"
    )
    for table, n in counts.items():
        print(f"  marts.{table:<28} {n:>10,}")
    warning = stale_data_warning(newest_data_day(serving, timezone), date.fromisoformat(as_of))
    if warning:
        print(f"\n{warning}")
    # Each owner's action items to the team chat, when oppwh.yml names one (never fails the run).
    sent = post_run_reminders(data_dir)
    if sent:
        print(f"\n{sent}")
        with folder.last_run_log.open("a", encoding="utf-8") as log:
            print(sent, file=log)
    oppwh = oppwh_command()
    print(
        f"\nWarehouse / 数仓:       {folder.warehouse}\n"
        f"Serving copy / 只读副本: {serving}  (open this one from BI tools)\n"
        f"Dagster UI:             {oppwh} ui --data-dir {args.data_dir}\n"
        f'Query the marts / 查询:  {oppwh} sql "select status, count(*) from marts.opportunities '
        f'group by 1" --data-dir {args.data_dir}\n'
        f"Column docs / 字段说明:  dbt_project/models/marts/<mart>.yml, or {oppwh} docs"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Show what the warehouse would make of a file, without loading anything."""
    path = Path(args.file)
    if not path.is_file():
        print(f"{path}: no such file / 文件不存在", file=sys.stderr)
        return 2
    timezone = business_timezone(args)
    as_of = as_of_day(args, timezone)
    settings = load_settings(Path(args.data_dir), as_of, timezone)
    reports = inspect_file(path, settings, args.rows)
    print(render(reports))
    return 0 if all(r.outcome and r.outcome.status in ("loaded", "skipped") for r in reports) else 1


def cmd_replay(args: argparse.Namespace) -> int:
    """Rebuild a warehouse from an archive: each day's files, in order, as that day's run."""
    days = archived_days(Path(args.archive))
    if not days:
        print(f"No dated folders in {args.archive} / 归档中没有按日期的文件夹", file=sys.stderr)
        return 1
    from orchestration.launch import run_daily_job, run_failed

    set_aside_imported_objects()
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


def register(sub) -> None:
    sample = sub.add_parser("sample", help="write a synthetic export in the native format")
    sample.add_argument("--out", required=True, help="folder to write the CSVs into")
    sample.add_argument("--opportunities", type=int, default=DEFAULT_OPPORTUNITIES)
    sample.add_argument("--seed", type=int, default=DEFAULT_SEED)
    sample.add_argument(
        "--as-of",
        type=iso_date,
        help="the last day of the sample's history (default: today in the business time "
        "zone, the same day `oppwh run` uses)",
    )
    sample.add_argument(
        "--if-empty", action="store_true", help="write only when the folder holds no files"
    )
    sample.set_defaults(func=cmd_sample)

    run = sub.add_parser("run", help="run the daily job (load, build, test, publish)")
    add_data_dir(run)
    run.add_argument("--landing", help="landing folder (default DATA_DIR/landing)")
    add_as_of(run)
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
        default=default_engine(),
        help="which engine builds the marts: duckdb (default) or spark (the same dbt project "
        "on Apache Spark; needs the spark extra and Java 17, see the README)",
    )
    add_timezone(run)
    run.add_argument(
        "--list-steps",
        action="store_true",
        help="list the named steps OPPWH_CRASH_AT can stop a run at (for tests)",
    )
    run.set_defaults(func=cmd_run)

    inspect = sub.add_parser("inspect", help="show a file's format, mapping, preview and problems")
    inspect.add_argument("file")
    add_data_dir(inspect, help="for oppwh.yml and mappings/")
    add_as_of(inspect)
    add_timezone(inspect)
    inspect.add_argument("--rows", type=int, default=5, help="rows of parsed preview")
    inspect.set_defaults(func=cmd_inspect)

    replay = sub.add_parser("replay", help="rebuild a warehouse from a landing archive")
    replay.add_argument("archive", help="an archive folder (DATA_DIR/archive)")
    replay.add_argument("--data-dir", required=True, help="an empty data folder to build into")
    replay.set_defaults(func=cmd_replay)

"""`oppwh backup | restore | bench | docs | dashboard | ui`: looking after a warehouse and
opening its tools."""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from dashboards import APP
from orchestration.cli.options import add_data_dir, engine_unavailable
from warehouse.backup import BackupError, backup, restore
from warehouse.dbt_cli import build_dbt_docs
from warehouse.engines import ENGINES
from warehouse.layout import DATA_DIR_ENV
from warehouse.lock import WarehouseBusyError


def cmd_backup(args: argparse.Namespace) -> int:
    try:
        target = backup(Path(args.data_dir), Path(args.target))
    except (BackupError, WarehouseBusyError) as exc:
        print(f"Backup failed / 备份失败: {exc}", file=sys.stderr)
        return 1
    print(f"Backup written to / 备份已写入 {target}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
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


def cmd_bench(args: argparse.Namespace) -> int:
    """Generate data at scale, run full + increment + floor, print and save the figures."""
    from benchmark.bench import render, run_bench  # loads the job's Definitions: only here

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


def dashboard_command(data_dir: Path, port: int) -> tuple[list[str], dict]:
    """The streamlit command line and environment for the dashboards."""
    streamlit = str(Path(sys.executable).parent / "streamlit")
    command = [
        streamlit,
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.address",
        "127.0.0.1",
        # managers read the dashboards; no Deploy button or developer menu
        "--client.toolbarMode",
        "viewer",
    ]
    return command, {**os.environ, DATA_DIR_ENV: str(data_dir.resolve())}


def cmd_dashboard(args: argparse.Namespace) -> int:
    command, env = dashboard_command(Path(args.data_dir), args.port)
    print(f"Dashboards on http://127.0.0.1:{args.port} (reading {args.data_dir}/serving.duckdb)")
    os.execve(command[0], command, env)
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    """Build the dbt docs site (models, columns, lineage) and serve it on localhost, offline."""
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
    """Start `dagster dev` on this project, on the data folder's run history (the runs
    `oppwh run` recorded), with the schedule and sensors able to run."""
    data_dir = Path(args.data_dir).resolve()
    from orchestration.instance import instance_home, prepare_instance_home  # imports Dagster

    home = prepare_instance_home(instance_home(data_dir))
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        DATA_DIR_ENV: str(data_dir),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
    }
    dagster = shutil.which("dagster", path=venv_bin) or "dagster"
    command = [dagster, "dev", "-m", "orchestration.definitions", "-h", "127.0.0.1"]
    command += ["-p", str(args.port)]
    print(f"Dagster UI on http://127.0.0.1:{args.port} (DAGSTER_HOME={home}); Ctrl-C stops it.")
    return run_until_stopped(command, env)


def run_until_stopped(command: list[str], env: dict, grace_seconds: float = 3.0) -> int:
    """Run `command` in a process group of its own until it ends or this process gets
    Ctrl-C or SIGTERM; then the whole group (dagster dev's webserver, daemon and code
    servers) is asked to stop and, after `grace_seconds`, killed: the UI never outlives a
    stop by more than that."""
    child = subprocess.Popen(command, env=env, start_new_session=True)
    stopped = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while child.poll() is None and not stopped.wait(0.2):
            pass
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGINT)  # what Ctrl-C would send it
            try:
                child.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # anything of the group still left
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopped.is_set() else child.returncode


def register(sub) -> None:
    backup = sub.add_parser("backup", help="back up the warehouse, archive and configuration")
    backup.add_argument("target", help="folder to write the dated backup into")
    add_data_dir(backup)
    backup.set_defaults(func=cmd_backup)

    restore = sub.add_parser("restore", help="restore a backup made by `oppwh backup`")
    restore.add_argument("backup", help="the oppwh-backup-... folder")
    add_data_dir(restore)
    restore.set_defaults(func=cmd_restore)

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

    docs = sub.add_parser("docs", help="build and serve the dbt docs site (offline)")
    add_data_dir(docs)
    docs.add_argument("--port", type=int, default=8080)
    docs.add_argument("--no-serve", action="store_true", help="only build the site")
    docs.set_defaults(func=cmd_docs)

    dashboard = sub.add_parser("dashboard", help="start the managers' dashboards (Streamlit)")
    add_data_dir(dashboard)
    dashboard.add_argument("--port", type=int, default=8501)
    dashboard.set_defaults(func=cmd_dashboard)

    ui = sub.add_parser("ui", help="open the Dagster UI on this project")
    add_data_dir(ui)
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)

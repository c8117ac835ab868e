"""`oppwh quality | score | sql`: the commands that read what a run produced."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration.cli.options import (
    add_data_dir,
    add_timezone,
    business_timezone,
    published_serving_copy,
)
from quality.step import latest_report
from scoring.config import load_config
from serving.reads import print_grades
from warehouse.database import Database, DatabaseBusyError
from warehouse.layout import DataFolder
from warehouse.query import QueryRefusedError, ServingCopyMissingError, run_query
from warehouse.settings import end_of_day, today_in
from warehouse.sql_output import render_rows


def cmd_quality(args: argparse.Namespace) -> int:
    """The latest data-quality report, worst first, in Chinese and English."""
    warehouse = DataFolder.at(args.data_dir).warehouse
    if not warehouse.exists():
        print(f"No warehouse at {warehouse}: run `oppwh run` first.", file=sys.stderr)
        return 1
    try:
        print(latest_report(warehouse))
    except DatabaseBusyError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def print_backtest(data_dir: Path, timezone: str) -> int:
    """Score past deals as they stood before closing: AUC, lift per grade, the verdict."""
    warehouse = DataFolder.at(data_dir).warehouse
    if not warehouse.exists():
        print(f"No warehouse at {warehouse}: run `oppwh run` first.", file=sys.stderr)
        return 1
    from scoring.backtest import backtest_lines
    from scoring.step import backtest

    config = load_config(data_dir)
    run = backtest(Database(warehouse, timezone), config, end_of_day(today_in(timezone), timezone))
    if run.graded.empty:
        print("No closed deals to backtest on / 没有已关闭的商机可供回测")
        return 1
    print("\n".join(backtest_lines(run, config)))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Today's grades from the serving copy; with --backtest, how well grades predict wins."""
    data_dir = Path(args.data_dir)
    if args.backtest:
        return print_backtest(data_dir, business_timezone(args))
    serving = published_serving_copy(data_dir)
    if serving is None:
        return 1
    rows = print_grades(serving, args.top)
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
    if args.file:
        sql = Path(args.file).read_text(encoding="utf-8")
    elif args.query:
        sql = args.query
    else:
        print("Give a query or -f FILE / 请提供查询语句或 -f 文件", file=sys.stderr)
        return 2
    serving = DataFolder.at(args.data_dir).serving
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


def cmd_mcp(args: argparse.Namespace) -> int:
    """The Model Context Protocol server on the serving copy, over stdio (for assistants)."""
    from serving.assistant import build_server  # the MCP SDK only for this command

    serving = published_serving_copy(args.data_dir)
    if serving is None:
        return 1
    build_server(serving.resolve()).run(transport="stdio")
    return 0


def _four_decimals(rows: list[tuple]) -> list[tuple]:
    """Rates and other fractions with at least 4 decimals (0.3046, not 0.3)."""
    return [
        tuple(f"{v:.4f}" if isinstance(v, float) and abs(v) < 1000 else v for v in row)
        for row in rows
    ]


def cmd_metrics(args: argparse.Namespace) -> int:
    """The governed metrics from the serving copy: list them, or query some by dimensions."""
    from serving.metrics import MetricsError, list_metrics, query_metrics  # MetricFlow: here only

    serving = published_serving_copy(args.data_dir)
    if serving is None:
        return 1
    timezone = business_timezone(args)
    if args.action == "list":
        for m in list_metrics(serving, timezone):
            print(f"{m.name:<20} {m.label}")
            print(f"{'':<20} by: {', '.join(d for d in m.dimensions if '__' in d)}")
        return 0
    if not args.metrics:
        print("Give --metrics M[,M] / 请给出 --metrics", file=sys.stderr)
        return 2
    split = lambda text: [p.strip() for p in (text or "").split(",") if p.strip()]  # noqa: E731
    try:
        columns, rows = query_metrics(
            serving, timezone, split(args.metrics), split(args.group_by), args.where or None
        )
    except MetricsError as exc:
        print(f"Metrics query refused / 指标查询失败: {exc}", file=sys.stderr)
        return 2
    shown = rows if args.format == "csv" else _four_decimals(rows)
    kinds = ["metric" if c in split(args.metrics) else "dimension" for c in columns]
    sys.stdout.write(render_rows(columns, kinds, shown, args.format, 10_000))
    return 0


def register(sub) -> None:
    quality = sub.add_parser("quality", help="print the latest data-quality report")
    add_data_dir(quality)
    quality.set_defaults(func=cmd_quality)

    score = sub.add_parser("score", help="show today's priority grades; --backtest measures them")
    add_data_dir(score)
    score.add_argument(
        "--backtest",
        action="store_true",
        help="score past deals as they stood before closing: AUC, lift per grade",
    )
    score.add_argument("--top", type=int, default=10)
    add_timezone(score)
    score.set_defaults(func=cmd_score)

    sql = sub.add_parser(
        "sql", help="one read-only query on the serving copy (SELECT, DESCRIBE, SHOW, ...)"
    )
    sql.add_argument("query", nargs="?", help="the SQL (or -f FILE)")
    sql.add_argument("-f", "--file", help="read the SQL from this file")
    add_data_dir(sql)
    add_timezone(sql)
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument(
        "--max-rows", type=int, default=40, help="rows shown in table format (csv/json: all)"
    )
    sql.set_defaults(func=cmd_sql)

    mcp = sub.add_parser(
        "mcp", help="serve the marts to an assistant (Model Context Protocol, stdio)"
    )
    add_data_dir(mcp)
    mcp.set_defaults(func=cmd_mcp)

    metrics = sub.add_parser(
        "metrics", help="the governed metrics (MetricFlow) from the serving copy"
    )
    metrics.add_argument("action", choices=["list", "query"])
    metrics.add_argument("--metrics", help="metric names, comma-separated (win_rate,won_amount)")
    metrics.add_argument("--group-by", help="dimensions, comma-separated (opportunity__team)")
    metrics.add_argument(
        "--where",
        action="append",
        help="a filter, e.g. \"{{ Dimension('opportunity__team') }} = 'East'\"",
    )
    metrics.add_argument("--format", choices=["table", "csv"], default="table")
    add_data_dir(metrics)
    add_timezone(metrics)
    metrics.set_defaults(func=cmd_metrics)

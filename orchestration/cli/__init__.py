"""`oppwh`: the command line. Every command that builds runs the same Dagster job.

One module per group of commands (run.py: load and build; reports.py: read what a run
made; admin.py: look after a warehouse, open its tools; reminders.py: tell people); options.py holds what they share.
"""

from __future__ import annotations

import argparse

from orchestration.cli import admin, reminders, reports, run
from orchestration.cli.options import quiet_environment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oppwh", description="Opportunity warehouse / 商机数仓: CRM exports -> DuckDB marts."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (run, admin, reports, reminders):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_environment()
    args = build_parser().parse_args(argv)
    return args.func(args)

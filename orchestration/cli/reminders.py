"""`oppwh remind | report weekly`: telling people what the latest run found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestration.cli.options import add_data_dir, published_serving_copy
from reminders import step
from reminders.messages import as_text
from reminders.weekly import WeekError, read_review, render_review
from warehouse.layout import DataFolder


def cmd_remind(args: argparse.Namespace) -> int:
    """Each owner's action items: printed with --dry-run, else sent to the team chat."""
    data_dir = Path(args.data_dir)
    if published_serving_copy(data_dir) is None:
        return 1
    reminders = step.prepare_reminders(data_dir, args.lang)
    if args.dry_run:
        print(
            f"{len(reminders.messages)} message(s) for {reminders.settings.format}, "
            f"as of {reminders.as_of} (not sent / 未发送):"
        )
        for message in reminders.messages:
            print(f"\n--- {message.owner.who(reminders.settings.language)}")
            print(as_text(message))
        return 0
    if not reminders.configured:
        print(
            "No reminders.webhook in oppwh.yml / 未配置提醒 webhook (README: Reminders)",
            file=sys.stderr,
        )
        return 1
    deliveries = step.send_reminders(reminders)
    print(step.delivery_summary(deliveries))
    return 0 if all(d.delivered for d in deliveries) else 1


def cmd_report_weekly(args: argparse.Namespace) -> int:
    """The weekly review as one HTML file; with --send its headline figures to the chat."""
    data_dir = Path(args.data_dir)
    serving = published_serving_copy(data_dir)
    if serving is None:
        return 1
    try:
        review = read_review(serving, args.week)
    except WeekError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    out = Path(args.out or DataFolder.at(data_dir).root / "reports" / f"weekly-{review.week}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_review(review, args.lang), encoding="utf-8")
    print(f"Weekly review {review.week} written / 周报已生成: {out}")
    if args.send:
        delivery = step.send_review_headline(data_dir, review, args.lang)
        if delivery is None:
            print("No reminders.webhook in oppwh.yml: nothing sent", file=sys.stderr)
            return 1
        print(f"headline {'sent' if delivery.delivered else 'not sent'}: {delivery.detail}")
        return 0 if delivery.delivered else 1
    return 0


def register(sub) -> None:
    remind = sub.add_parser("remind", help="send (or --dry-run print) each owner's action items")
    add_data_dir(remind)
    remind.add_argument("--dry-run", action="store_true", help="print the messages, send nothing")
    remind.add_argument("--lang", choices=("zh", "en"), help="override reminders.language")
    remind.set_defaults(func=cmd_remind)

    report = sub.add_parser("report", help="write a report for managers")
    kinds = report.add_subparsers(dest="kind", required=True)
    weekly = kinds.add_parser("weekly", help="the weekly pipeline review (HTML, printable)")
    add_data_dir(weekly)
    weekly.add_argument("--week", help="ISO week YYYY-Www (default: the latest as-of day's)")
    weekly.add_argument("--lang", choices=("zh", "en"), default="zh")
    weekly.add_argument("--out", help="the HTML file (default DATA_DIR/reports/weekly-<week>.html)")
    weekly.add_argument("--send", action="store_true", help="post the headline figures to the chat")
    weekly.set_defaults(func=cmd_report_weekly)

"""The benchmark's parts that can be checked quickly: the at-scale generator and the report.
(The benchmark itself is `oppwh bench`; its figures are printed, not asserted in a test.)"""

from __future__ import annotations

import csv
from datetime import date

from benchmark.bench import TreeMemorySampler, render
from ingestion.sample_at_scale import generate_at_scale, generate_increment


def test_generator_writes_native_files_with_the_expected_shape(tmp_path):
    counts = generate_at_scale(tmp_path / "a", 3000, date(2025, 6, 30))
    again = generate_at_scale(tmp_path / "b", 3000, date(2025, 6, 30))
    assert counts == again and counts["opportunities"] == 3000
    assert counts["activities"] == 36000 and 2.5 < counts["stage_history"] / 3000 < 4.5
    for name in ("opportunities", "activities", "stage_history"):
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()
    with (tmp_path / "a" / "opportunities.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["status"] for r in rows} == {"进行中", "赢单", "输单"}
    assert max(r["created_at"] for r in rows) <= "2025-06-30"
    # an export holds only what happened by its day: no stage entered after it, and an open
    # deal stands in the last stage it entered
    with (tmp_path / "a" / "stage_history.csv").open(encoding="utf-8") as handle:
        entries = list(csv.DictReader(handle))
    assert max(e["entered_at"] for e in entries) < "2025-07-01"
    last_entered = {}
    for e in sorted(entries, key=lambda e: e["entered_at"]):
        last_entered[e["opportunity_id"]] = e["stage"]
    open_deals = [r for r in rows if r["status"] == "进行中"]
    assert open_deals and all(r["stage"] == last_entered[r["opportunity_id"]] for r in open_deals)
    increment = generate_increment(tmp_path / "inc", 3000, date(2025, 7, 1), changed=10)
    assert increment == {"activities": 36, "stage_history": 10}
    # the usual next day: a day of new activities and nothing else
    quiet_day = generate_increment(tmp_path / "day", 3000, date(2025, 7, 1), changed=0)
    assert quiet_day == {"activities": 36}
    assert sorted(p.name for p in (tmp_path / "day").iterdir()) == ["activities_20250701.csv"]


def test_memory_sampler_sees_this_process():
    with TreeMemorySampler(interval=0.01) as sampler:
        block = bytearray(50 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
        import time

        time.sleep(0.1)
    assert sampler.peak > 50 * 2**20
    # each sample is timed, so a step's peak is the highest sample within its start and end
    first, last = sampler.samples[0][0], sampler.samples[-1][0]
    assert sampler.peak_between(first, last) == sampler.peak
    assert sampler.peak_between(last + 1, last + 2) == 0


def test_report_prints_every_figure():
    run = {
        "wall_seconds": 10.0,
        "steps": {"dbt": 6.0, "publish": 1.0},
        "step_peak_memory_bytes": {"dbt": 3 * 2**29},
        "peak_memory_bytes": 2**30,
    }
    text = render(
        {
            "opportunities": 1000,
            "machine": "2 cores",
            "duckdb": "2.0.1",
            "generate_seconds": 1.0,
            "generated": {"activities": 12000},
            "full": run,
            "next_day": run,
            "increment": run,
            "next_day_over_full": 0.1,
            "small": {
                "opportunities": 10000,
                "activities": 160000,
                "fresh": {"wall_seconds": 14.0, "peak_memory_bytes": 2**29},
                "next_day": {"wall_seconds": 9.0, "peak_memory_bytes": 2**29},
            },
            "floor": {
                "wall_seconds": 5.0,
                "load_seconds": 1.0,
                "models_seconds": 4.0,
                "peak_memory_bytes": 2**29,
                "core_marts_seconds": 1.5,
                "duckdb_only_seconds": 2.5,
            },
            "full_over_floor": 2.0,
            "full_over_duckdb_only": 4.0,
            "increment_over_full": 1.0,
            "rows": {"marts.x": 5},
        }
    )
    for figure in (
        "full run",
        "increment run",
        "floor",
        "full / floor",
        "DuckDB-only floor:       2.5 s",
        "full / DuckDB-only:     4.00   (target <= 5)",
        "increment / full",
        "next-day run",
        "next day / full",
        "fresh folder",
        "10,000 deals",
        "14.0 s",
        "9.0 s",
        "1.00 GiB",
        "marts.x",
    ):
        assert figure in text
    # the step the peak was in, with its own peak
    assert "dbt                   6.0 s  peak 1.50 GiB" in text
    assert "publish               1.0 s\n" in text


def test_memory_sampler_of_a_started_process_counts_its_tree_not_the_caller():
    """`oppwh run` is timed in its own process: its peak is that process and its children
    (here a child holding 80 MB and its own child holding 40 MB), not the bench's memory
    (here 200 MB held by the caller)."""
    import subprocess
    import sys
    import time

    hold = "import sys, time; b = bytearray({mb} * 2**20); b[::4096] = b'x' * len(b[::4096]); "
    grandchild = hold.format(mb=40) + "time.sleep(1.5)"
    child = hold.format(mb=80) + (
        f"import subprocess; subprocess.run([sys.executable, '-c', {grandchild!r}])"
    )
    caller = bytearray(200 * 2**20)
    caller[::4096] = b"x" * len(caller[::4096])
    with (
        subprocess.Popen([sys.executable, "-c", child]) as process,
        TreeMemorySampler(interval=0.02, root=process.pid) as sampler,
    ):
        process.wait()
        time.sleep(0.05)
    assert 120 * 2**20 < sampler.peak < 200 * 2**20
    del caller


def test_the_hand_written_floor_builds_the_five_marts_from_raw_rows():
    """The DuckDB-only floor (benchmark.core_marts) does the work it stands for: on three
    deals, its marts hold the figures worked out by hand. As of 2025-06-17 in Shanghai: the
    day ends 2025-06-18 00:00 +08."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from benchmark.core_marts import SCHEMA, build_core_marts
    from ingestion.load import ensure_raw_schema
    from warehouse.database import connect

    tz = ZoneInfo("Asia/Shanghai")

    def at(day, hour=0):
        return datetime(2025, *day, hour, tzinfo=tz)

    with connect(timezone="Asia/Shanghai") as con:
        ensure_raw_schema(con)
        con.executemany(
            "INSERT INTO raw.opportunities (opportunity_id, account_id, owner_id, stage, "
            "status, amount, created_at, closed_at, loss_reason, is_deleted) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ["X", "A1", "U1", "需求确认", "进行中", 100, at((6, 1), 10), None, None, False],
                ["Y", "A1", "U1", "输单", "输单", 50, at((5, 1)), at((5, 21)), "  ", False],
                ["Z", "A1", "U1", "初步接触", "进行中", 9, at((6, 2)), None, None, True],
            ],
        )
        con.execute("INSERT INTO raw.accounts (account_id, industry) VALUES ('A1', '零售')")
        con.executemany(
            "INSERT INTO raw.stage_history (opportunity_id, stage, entered_at) VALUES (?, ?, ?)",
            [
                ["X", "初步接触", at((6, 1), 10)],
                ["X", "需求确认", at((6, 10), 10)],
                ["Y", "初步接触", at((5, 1))],
                ["Y", "输单", at((5, 21))],
            ],
        )
        con.executemany(
            "INSERT INTO raw.activities (activity_id, opportunity_id, activity_type, "
            "occurred_at, is_deleted) VALUES (?, ?, ?, ?, ?)",
            [
                ["t1", "X", "电话", at((6, 5), 10), False],
                ["t2", "X", "邮件", at((6, 12), 10), False],
                ["t3", "X", "电话", at((6, 13), 10), True],  # deleted
                ["t4", "X", "电话", at((6, 20), 10), False],  # after the as-of day
            ],
        )
        rows = build_core_marts(con, at((6, 18)))
        assert rows == {
            "opportunities": 2,
            "opportunity_lifecycle": 4,
            "follow_up_frequency": 2,
            "cycle_time": 1,
            "loss_reasons": 1,
        }

        def one(sql):
            return con.execute(f"SELECT {sql}").fetchone()

        # X: in 需求确认 since 06-10 10:00, i.e. 7 days 14 hours by the end of 06-17
        assert one(
            f"round(days_in_current_stage, 4), round(age_days, 4), activity_count, is_stale "
            f"FROM {SCHEMA}.opportunities WHERE opportunity_id = 'X'"
        ) == (round(7 + 14 / 24, 4), round(16 + 14 / 24, 4), 2, False)
        assert one(
            "calls, emails, touches_last_7_days, touches_last_30_days, median_gap_days, "
            f"round(days_since_last_activity, 4) FROM {SCHEMA}.follow_up_frequency "
            "WHERE opportunity_id = 'X'"
        ) == (1, 1, 1, 2, 7.0, round(5 + 14 / 24, 4))
        assert one(
            f"list(days_in_stage ORDER BY visit_number) FROM {SCHEMA}.opportunity_lifecycle "
            "WHERE opportunity_id = 'X'"
        ) == ([9.0, 7 + 14 / 24],)
        # Y: lost after 20 days, all of them in 初步接触, no reason given
        assert one(f'outcome, cycle_time_days, "初步接触", industry FROM {SCHEMA}.cycle_time') == (
            "lost",
            20.0,
            20.0,
            "零售",
        )
        assert one(f"loss_reason_category, stage_lost_at FROM {SCHEMA}.loss_reasons") == (
            "unspecified",
            "初步接触",
        )

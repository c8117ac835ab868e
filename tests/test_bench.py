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
            },
            "full_over_floor": 2.0,
            "increment_over_full": 1.0,
            "rows": {"marts.x": 5},
        }
    )
    for figure in (
        "full run",
        "increment run",
        "floor",
        "full / floor",
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

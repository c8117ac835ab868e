"""The sample generator: deterministic and realistic enough to exercise every mart."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from datetime import date

from ingestion.sample import FILES, generate_sample, write_sample
from orchestration.cli import main


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert (
            main(
                [
                    "sample",
                    "--out",
                    str(tmp_path / name),
                    "--opportunities",
                    "80",
                    "--seed",
                    str(seed),
                ]
            )
            == 0
        )
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_writes_one_native_csv_per_table(tmp_path, sample_data):
    paths = write_sample(tmp_path, sample_data)
    assert sorted(p.stem for p in paths) == sorted(FILES)
    with (tmp_path / "opportunities.csv").open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == FILES["opportunities"]


def test_sample_is_realistic(sample_data):
    opps = sample_data.opportunities
    statuses = Counter(o["status"] for o in opps)
    assert set(statuses) == {"进行中", "赢单", "输单"}
    assert all(n >= 20 for n in statuses.values())
    lost = [o for o in opps if o["status"] == "输单"]
    assert any(o["loss_reason"] for o in lost) and any(not o["loss_reason"] for o in lost)
    stages = {h["stage"] for h in sample_data.stage_history}
    assert {"初步接触", "需求确认", "方案报价", "商务谈判", "赢单", "输单"} <= stages
    assert {"电话", "拜访", "微信", "邮件", "会议"} <= {
        a["activity_type"] for a in sample_data.activities
    }
    assert any(not a["opportunity_id"] for a in sample_data.activities), "account-level touches"
    owners = sample_data.owners
    assert any(o["manager_id"] for o in owners) and any(not o["manager_id"] for o in owners)
    assert len({a["industry"] for a in sample_data.accounts}) >= 5


def test_sample_has_regressions_and_stale_open_deals(sample_data):
    order = {"初步接触": 1, "需求确认": 2, "方案报价": 3, "商务谈判": 4}
    by_opp: dict[str, list] = {}
    for row in sample_data.stage_history:
        by_opp.setdefault(row["opportunity_id"], []).append(row)
    regressions = 0
    for rows in by_opp.values():
        seq = [
            order[r["stage"]]
            for r in sorted(rows, key=lambda r: r["entered_at"])
            if r["stage"] in order
        ]
        regressions += any(b < a for a, b in zip(seq, seq[1:], strict=False))
    assert regressions >= 3

    last_touch: dict[str, str] = {}
    for a in sample_data.activities:
        if a["opportunity_id"]:
            last_touch[a["opportunity_id"]] = max(
                last_touch.get(a["opportunity_id"], ""), a["occurred_at"]
            )
    open_ids = [o["opportunity_id"] for o in sample_data.opportunities if o["status"] == "进行中"]
    stale = [i for i in open_ids if last_touch.get(i, "") < "2025-06-01"]
    assert len(stale) >= 5


def test_sample_history_ends_at_as_of():
    data = generate_sample(50, 1, date(2024, 12, 31))
    assert max(o["created_at"] for o in data.opportunities) <= "2024-12-31 23:59:59"
    assert max(a["occurred_at"] for a in data.activities) <= "2024-12-31 23:59:59"

"""Killed at ingest or dbt: the serving copy stays whole and the runs after recover
(tests/next_day.py: one data folder killed at each step in turn, then run to the end).
The crash points are split over two files so that the two test processes share them."""

from __future__ import annotations

import pytest

from orchestration.crash import CRASH_STEPS
from tests.next_day import check_crash

pytestmark = pytest.mark.e2e
STEPS = list(CRASH_STEPS)[:3]  # ingest:mid_file, ingest:after_load, dbt:mid_build


@pytest.mark.parametrize("step", STEPS)
def test_killed_at_any_step_the_next_run_gives_the_same_marts(step, crashes, reference):
    check_crash(step, crashes, reference)

"""The load scenario, quick: locust below and far above the throttle (reliability/load.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability import load

pytestmark = pytest.mark.slow


def test_load_below_and_above_the_throttle_answers_every_request(tmp_path: Path) -> None:
    section = load.run(quick=True, workdir=tmp_path)

    assert section.passed, section.failures()
    # The table has one row per step, the last one far above the throttle and throttled.
    rows = section.tables[0].rows
    assert [row[0] for row in rows] == [users for users, _ in load.QUICK_STEPS]
    assert "429" in rows[-1][9]

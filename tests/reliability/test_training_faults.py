"""Killed and corrupted training runs resume to the uninterrupted result."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability import training_faults


@pytest.mark.slow
def test_killed_and_truncated_runs_resume_from_the_newest_valid_checkpoint(tmp_path: Path):
    section = training_faults.run(quick=True, workdir=tmp_path)

    assert section.passed, section.failures()
    # The scenario really exercised what it reports: two kills, then a kill and a truncation.
    (table,) = section.tables
    assert [row[1] for row in table.rows][:2] == ["kill", "kill"]
    assert table.rows[2][1].startswith("kill + truncated ckpt-")
    assert table.rows[2][6] == table.rows[2][1].removeprefix("kill + truncated ")


def test_kill_targets_are_reproducible_spread_and_leave_a_checkpoint_to_resume_from():
    import random

    first = training_faults.kill_targets(random.Random(7), 3, total=80, interval=5)  # noqa: S311
    again = training_faults.kill_targets(random.Random(7), 3, total=80, interval=5)  # noqa: S311
    assert first == again
    assert first == sorted(first) and len(set(first)) == 3
    assert all(6 <= step <= 79 for step in first)

"""The fault scenario, quick: four faults under load through the whole stack (reliability/faults/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability import faults

pytestmark = pytest.mark.slow


def test_each_fault_fails_only_the_requests_in_flight_and_service_recovers(tmp_path: Path) -> None:
    section = faults.run(quick=True, workdir=tmp_path)

    assert section.passed, section.failures()
    rows = section.tables[0].rows
    assert len(rows) == len(faults.FAULTS)
    # The slow request and the three the model raised on did fail: the faults were real.
    failed = {row[0]: row[3] for row in rows}
    assert failed[next(n for n in failed if n.startswith("model slow"))] >= 1
    assert failed[next(n for n in failed if n.startswith("model raises"))] >= 3

"""RELIABILITY.md is written from the scenarios' checks and tables, and a failure shows."""

from __future__ import annotations

import json

import pytest

from reliability.__main__ import main
from reliability.report import Section, Table, section_markdown, write_json, write_markdown


def _section(passed: bool) -> Section:
    section = Section(key="load", title="Load", method="Locust at 1, 8 and 32 users.")
    section.tables.append(
        Table("Per step", ["users", "req/s", "statuses"], [[1, 12.345, "200: 10 | 429: 0"]])
    )
    section.check("no 5xx at any step", True, "0 of 120")
    section.check("every request got a response", passed, "" if passed else "3 timed out")
    return section


def test_a_failed_check_fails_its_section_and_shows_in_the_report(tmp_path):
    good, bad = _section(True), _section(False)
    assert good.passed and not bad.passed
    assert bad.failures() == "- every request got a response: 3 timed out"
    text = section_markdown(bad)
    assert text.startswith("## Load: FAIL")
    assert "- **FAIL**: every request got a response (3 timed out)" in text
    assert "| 1 | 12.3 | 200: 10 \\| 429: 0 |" in text  # a pipe in a cell cannot split it

    out = tmp_path / "RELIABILITY.md"
    write_markdown([good, bad], out, quick=True, preamble="Preamble.")
    report = out.read_text()
    assert report.startswith("# Reliability\n\nPreamble.")
    assert "| [Load](#load) | pass |" in report and "| [Load](#load) | **FAIL** |" in report

    write_json([bad], tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved[0]["passed"] is False and saved[0]["checks"][1]["passed"] is False


def test_a_section_without_checks_does_not_pass():
    assert not Section(key="x", title="X", method="").passed


def test_an_unknown_scenario_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "load,chaos"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown scenario(s) chaos" in err and "training_faults" in err

"""RELIABILITY.md is written from the scenarios' checks and tables, and a failure shows."""

from __future__ import annotations

import json

import pytest

from reliability.__main__ import main
from reliability.report import (
    Section,
    Table,
    merge,
    read_json,
    section_markdown,
    write_json,
    write_markdown,
)


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
    write_markdown([good, bad], out, preamble="Preamble.")
    report = out.read_text()
    assert report.startswith("# Reliability\n\nPreamble.")
    assert "| [Load](#load) | pass |" in report and "| [Load](#load) | **FAIL** |" in report
    assert "| not recorded |" in report

    write_json([bad], tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved[0]["passed"] is False and saved[0]["checks"][1]["passed"] is False


def test_a_partial_run_replaces_its_scenarios_and_keeps_the_others(tmp_path):
    old_load, teardown = _section(True), Section(key="teardown", title="Teardown", method="m")
    teardown.check("nothing left", True)
    old_load.measured, teardown.measured = "2026-11-22 02:01 UTC, commit 5a1a12b", "2026-11-22"
    saved = tmp_path / "latest.json"
    write_json([old_load, teardown], saved)

    new_load = _section(False)
    new_load.measured = "2026-12-06 02:46 UTC, commit 37b871b"
    faults = Section(key="faults", title="Faults", method="m")
    report = merge(read_json(saved), [new_load, faults], ("load", "faults", "teardown"))

    assert [s.key for s in report] == ["load", "faults", "teardown"]
    assert report[0].measured.startswith("2026-12-06") and not report[0].passed
    assert report[2].measured == "2026-11-22" and report[2].passed  # kept, as saved
    assert report[2].checks[0].name == "nothing left"


def test_an_unreadable_saved_report_is_refused_before_anything_runs(tmp_path, capsys):
    broken = tmp_path / "latest.json"
    broken.write_text('[{"key": "load"}]')

    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "teardown", "--json", str(broken), "--out", str(tmp_path / "R.md")])
    assert exit_info.value.code == 2
    assert "is not a saved reliability report" in capsys.readouterr().err
    assert broken.read_text() == '[{"key": "load"}]' and not (tmp_path / "R.md").exists()


def test_a_section_without_checks_does_not_pass():
    assert not Section(key="x", title="X", method="").passed


def test_an_unknown_scenario_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "load,chaos"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown scenario(s) chaos" in err and "training_faults" in err


def test_charts_are_drawn_and_published_next_to_the_report(tmp_path):
    from reliability import plots
    from reliability.__main__ import _publish

    steps = [
        {
            "users": users,
            "offered_rps": users * 5.0,
            "seconds": 5.0,
            "statuses": statuses,
            "no_response": 0,
            "p50_ms": 20.0,
            "p99_ms": 80.0,
        }
        for users, statuses in ((1, {200: 25}), (12, {200: 130, 429: 170}))
    ]
    load_png = plots.load_chart(steps, 25, 10, tmp_path / "scratch" / "load.png")
    faults_png = plots.faults_chart(
        [
            {
                "name": "kill runtime API",
                "fault_at": 2.0,
                "recovery_s": 1.5,
                "records": [(1.0, 1.02, 200), (2.1, 2.2, 503), (3.6, 3.62, 200), (2.5, 2.6, 0)],
            }
        ],
        tmp_path / "scratch" / "faults.png",
    )
    for png in (load_png, faults_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.status_colour(429) == plots.THROTTLED
    assert plots.status_colour(0) == plots.NO_ANSWER

    section = _section(True)
    section.figures.append(("Load per step", load_png))
    results, report_dir = tmp_path / "repo" / "reliability" / "results", tmp_path / "repo"
    section.figures = _publish(section, results, report_dir)
    assert (results / "load-load.png").is_file()
    assert "![Load per step](reliability/results/load-load.png)" in section_markdown(section)

"""Each fault's outcome judged (only requests in flight failed, clearly, then recovery) and tabled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from reliability.faults.records import Outcome, Record
from reliability.report import Section, Table


def _failure_kinds(records: list[Record]) -> str:
    kinds = Counter(f"{r.status} {r.error()[0] or r.error()[1][:40]}".strip() for r in records)
    return ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "none"


def evaluate(section: Section, outcomes: list[Outcome]) -> None:
    rows: list[Sequence[Any]] = []
    for o in outcomes:
        rows.append(_row(o))
        _check(section, o)
    section.tables.append(
        Table(
            "Each fault under a steady load: requests sent during the run, those open when the "
            "fault struck, those that failed and how (status and error code), how many failed "
            "without being in flight at the fault, the seconds from the fault until the last "
            "failed request ended (after it, every request succeeded), the slowest successful "
            "request sent after the fault, and what the supervisor restarted",
            [
                "fault",
                "requests",
                "in flight at fault",
                "failed",
                "failures (status code)",
                "failed, not in flight",
                "recovery s",
                "slowest 200 after fault, s",
                "restart",
            ],
            rows,
        )
    )


def _row(o: Outcome) -> list[Any]:
    failed = o.failed
    stray = [r for r in failed if not o.at_fault(r)]
    return [
        o.name,
        len(o.records),
        o.in_flight(),
        len(failed),
        _failure_kinds(failed),
        len(stray),
        o.recovery_s(),
        o.slowest_ok_s(),
        o.restarted or "-",
    ]


def _check(section: Section, o: Outcome) -> None:
    failed = o.failed
    stray = [r for r in failed if not o.at_fault(r)]
    section.check(
        f"{o.name}: only requests in flight at the fault failed",
        not stray,
        (
            f"{len(stray)} failed outside it, e.g. "
            + "; ".join(
                f"sent {r.sent - o.fault_at:+.2f} s, ended {r.ended - o.fault_at:+.2f} s: "
                f"{r.status} {r.body[:150]}"
                for r in stray[:3]
            )
            if stray
            else f"{len(failed)} failed, all in flight at the fault"
            + (
                f" or sent while it was restarting (until {o.outage_until - o.fault_at:.2f} s)"
                if o.outage_until is not None
                else ""
            )
        ),
    )
    unclear = [
        r for r in failed if r.status < 400 or not r.error()[1] or r.error()[1] == r.body[:200]
    ]
    section.check(
        f"{o.name}: each failed request got a clear error (an HTTP error status with a JSON "
        "message)",
        not unclear,
        "; ".join(f"{r.status} {r.body[:150]}" for r in unclear[:3])
        or (_failure_kinds(failed) if failed else "nothing failed"),
    )
    after = o.after_recovery()
    section.check(
        f"{o.name}: service recovered by itself (every request after the last failure "
        "succeeded, at least 10 of them)",
        len(after) >= 10 and all(r.status == 200 for r in after),
        f"{len(after)} requests after {o.recovery_s():.2f} s, "
        f"{sum(r.status == 200 for r in after)} succeeded",
    )
    for name, passed, detail in o.extra_checks:
        section.check(f"{o.name}: {name}", passed, detail)
    if o.notes:
        section.notes.append(f"{o.name}: {o.notes}.")

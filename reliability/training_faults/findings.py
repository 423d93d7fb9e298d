"""One script's outcome as a table of kills and the scenario's checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reliability.report import Section, Table
from reliability.training_faults.exercise import Outcome


@dataclass
class _Kills:
    """Each kill judged: a table row per kill, and whether the resumes and losses were right."""

    rows: list[Sequence[Any]] = field(default_factory=list)
    lost_ok: bool = True
    resume_ok: bool = True
    details: list[str] = field(default_factory=list)


def report(section: Section, outcome: Outcome) -> None:
    kills = _judge_kills(outcome)
    _add_table(section, outcome, kills.rows)
    _add_checks(section, outcome, kills)
    script, attempts = outcome.script, outcome.attempts
    name = script.name
    seconds = sum(a.seconds for a in attempts)
    section.notes.append(
        f"{name}: uninterrupted run {outcome.reference.seconds:.0f} s; the faulted run took "
        f"{len(attempts)} starts and {seconds:.0f} s in all."
    )


def _judge_kills(outcome: Outcome) -> _Kills:
    script, attempts = outcome.script, outcome.attempts
    interval = script.interval
    kills = attempts[:-1]
    judged = _Kills()
    for i, attempt in enumerate(kills):
        nxt = attempts[i + 1]
        corrupt_case = i == len(kills) - 1
        lost = (attempt.killed_at or 0) - (nxt.resumed_from or 0)
        damaged_share = 0
        expected: int | None
        if corrupt_case:
            # The newest checkpoint is gone: its own interval is lost by definition; the rest
            # of the loss (kill step - newest checkpoint) must still be within one interval.
            newest = attempt.newest_on_disk or 0
            # The one before the truncated checkpoint (keep 2 guarantees there is one).
            expected = attempt.on_disk[-2] if len(attempt.on_disk) > 1 else 0
            beyond = (attempt.killed_at or 0) - newest
            damaged_share = newest - (nxt.resumed_from or 0)
            ok = beyond <= interval and newest - (nxt.resumed_from or 0) <= interval
            resumed_ok = nxt.resumed_from == expected and bool(nxt.skipped)
            kind = f"kill + truncated {outcome.truncated[0] if outcome.truncated else '?'}"
        else:
            expected = attempt.newest_on_disk
            ok = lost <= interval
            resumed_ok = nxt.resumed_from == expected and not nxt.skipped
            kind = "kill"
        judged.lost_ok &= ok
        judged.resume_ok &= resumed_ok
        if not ok or not resumed_ok:
            judged.details.append(
                f"kill {attempt.number}: killed at {attempt.killed_at}, newest checkpoint "
                f"{attempt.newest_on_disk}, resumed from {nxt.resumed_from} (expected {expected})"
            )
        judged.rows.append(
            [
                attempt.number,
                kind,
                attempt.target,
                attempt.killed_at,
                attempt.newest_on_disk,
                nxt.resumed_from,
                ", ".join(name for name, _ in nxt.skipped) or "none",
                lost,
                damaged_share,
                interval,
            ]
        )
    return judged


def _add_table(section: Section, outcome: Outcome, rows: list[Sequence[Any]]) -> None:
    script = outcome.script
    interval = script.interval
    section.tables.append(
        Table(
            caption=f"{script.name}: {outcome.total_steps} steps ({script.epochs} epochs), "
            f"a checkpoint every {interval} steps and at each epoch end, kill steps from "
            f"random.Random({outcome.seed})",
            columns=[
                "kill #",
                "fault",
                "target step",
                "step killed at",
                "newest checkpoint on disk",
                "resumed from step",
                "skipped as corrupt",
                "steps lost",
                "of which the damaged checkpoint's",
                "checkpoint interval",
            ],
            rows=rows,
        )
    )


def _add_checks(section: Section, outcome: Outcome, kills_judged: _Kills) -> None:
    script, attempts = outcome.script, outcome.attempts
    interval = script.interval
    kills = attempts[:-1]
    final = attempts[-1]
    rows = kills_judged.rows
    resume_ok, lost_ok, details = kills_judged.resume_ok, kills_judged.lost_ok, kills_judged.details
    name = script.name
    section.check(
        f"{name}: every resumed run finished",
        final.returncode == 0 and all(a.killed_at is not None for a in kills),
        f"{len(kills)} kills, final exit {final.returncode}",
    )
    section.check(
        f"{name}: each resume started from the newest valid checkpoint",
        resume_ok,
        "; ".join(details)
        or f"{len(kills)} resumes, each from the newest checkpoint on disk "
        "(the one before the truncated one in the corrupt case)",
    )
    section.check(
        f"{name}: work lost per kill is at most one checkpoint interval ({interval} steps)",
        lost_ok,
        "steps lost: "
        + ", ".join(str(r[7]) for r in rows)
        + "; in the corrupt case the truncated checkpoint's own interval is lost with it, and "
        "the rest is within one interval",
    )
    nxt = attempts[len(kills)]
    named = outcome.truncated is not None and any(
        n == outcome.truncated[0] and script.state_file in why for n, why in nxt.skipped
    )
    section.check(
        f"{name}: the truncated checkpoint was detected, named in the log and skipped",
        named,
        (f"{outcome.truncated[0]}/{script.state_file} truncated from {outcome.truncated[1]} to "
         f"{outcome.truncated[2]} bytes; log: {nxt.skipped[0][1] if nxt.skipped else 'nothing'}")
        if outcome.truncated else "no truncation",
    )  # fmt: skip
    if script.tolerance == 0:
        section.check(
            f"{name}: final weights, metrics and history are bit-identical to the uninterrupted "
            "run",
            outcome.identical and outcome.metrics_equal and outcome.history_equal,
            f"{outcome.compare_detail}, max |diff| {outcome.max_diff:.3g}; metrics equal "
            f"{outcome.metrics_equal}, history equal {outcome.history_equal}",
        )
    else:
        section.check(
            f"{name}: final weights, metrics and history match the uninterrupted run within "
            f"{script.tolerance:g}",
            outcome.max_diff <= script.tolerance
            and outcome.metrics_equal
            and outcome.history_equal,
            f"{outcome.compare_detail}, max |diff| {outcome.max_diff:.3g} "
            f"({'bit-identical' if outcome.identical else 'not bit-identical'}); metrics within "
            f"tolerance {outcome.metrics_equal}, history {outcome.history_equal}",
        )

"""What a scenario reports: checks (the scenario's pass criteria, each true or false with the
evidence), a table of figures, and notes; and how RELIABILITY.md is written from them."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class Check:
    """One pass criterion, stated as a sentence that is true when it passed."""

    name: str
    passed: bool
    detail: str = ""  # the evidence: counts, the offending responses, ...


@dataclass
class Section:
    key: str  # "load", "faults", "bad_input", "training_faults", "teardown"
    title: str
    method: str  # a paragraph: what was done, how, with which parameters
    checks: list[Check] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # (caption, image file): charts the scenario drew; the runner copies them next to the report.
    figures: list[tuple[str, Path]] = field(default_factory=list)
    seconds: float = 0.0
    # When, where and at which commit it ran (``provenance()``): a report can hold sections from
    # different runs.
    measured: str = ""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks) and bool(self.checks)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(passed), detail))
        return bool(passed)

    def failures(self) -> str:
        """The failed checks with their evidence, for a test's assertion message."""
        return "\n".join(f"- {c.name}: {c.detail}" for c in self.checks if not c.passed)


@dataclass
class Table:
    caption: str
    columns: Sequence[str]
    rows: list[Sequence[Any]]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> str:
    lines = [f"*{table.caption}*", ""] if table.caption else []
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.rows]
    return "\n".join(lines)


def section_markdown(section: Section) -> str:
    verdict = "PASS" if section.passed else "FAIL"
    out = [f"## {section.title}: {verdict}", "", section.method, ""]
    for table in section.tables:
        out += [table_markdown(table), ""]
    for caption, image in section.figures:
        out += [f"![{caption}]({image.as_posix()})", "", f"*{caption}*", ""]
    out += ["Checks:", ""]
    for c in section.checks:
        mark = "pass" if c.passed else "**FAIL**"
        out.append(f"- {mark}: {c.name}" + (f" ({c.detail})" if c.detail else ""))
    out.append("")
    for note in section.notes:
        out += [note, ""]
    return "\n".join(out)


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (git from PATH, as make uses it)
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def provenance(quick: bool) -> str:
    """``2026-12-06 02:46 UTC, Linux x86_64, 2 CPUs, Python 3.11.7, commit 37b871b, full run``."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    run = "quick run (`make reliability-report QUICK=1`)" if quick else "full run"
    return f"{when}, {machine()}, commit {_git_commit()}, {run}"


def write_markdown(sections: list[Section], out: Path, *, preamble: str) -> None:
    head = [
        "# Reliability",
        "",
        preamble.strip(),
        "",
        "Each scenario says when, where and at which commit it was measured: `make reliability-report`"
        " runs them all, `make reliability-report ONLY=load,faults` re-measures those and keeps the"
        " others' last results (`reliability/results/latest.json`).",
        "",
        "| scenario | result | time | measured |",
        "|---|---|---|---|",
    ]
    head += [
        f"| [{s.title}](#{s.title.lower().replace(' ', '-').replace(':', '').replace(',', '')}) "
        f"| {'pass' if s.passed else '**FAIL**'} | {s.seconds:.0f} s "
        f"| {s.measured or 'not recorded'} |"
        for s in sections
    ]
    body = [section_markdown(s) for s in sections]
    out.write_text("\n".join(head) + "\n\n" + "\n".join(body))


def write_json(sections: list[Section], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps([{**asdict(s), "passed": s.passed} for s in sections], indent=1, default=str)
    )


def read_json(path: Path) -> list[Section]:
    """The sections ``write_json`` saved (none if the file does not exist).

    Raises ValueError, naming the file, when it is not what ``write_json`` writes.
    """
    if not path.exists():
        return []
    try:
        saved = json.loads(path.read_text())
        return [
            Section(
                key=d["key"],
                title=d["title"],
                method=d["method"],
                checks=[Check(**c) for c in d["checks"]],
                tables=[Table(**t) for t in d["tables"]],
                notes=list(d["notes"]),
                figures=[(caption, Path(image)) for caption, image in d["figures"]],
                seconds=float(d["seconds"]),
                measured=str(d.get("measured", "")),
            )
            for d in saved
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} is not a saved reliability report ({type(exc).__name__}: {exc}); move it "
            "away or run every scenario"
        ) from exc


def merge(saved: list[Section], fresh: list[Section], order: Sequence[str]) -> list[Section]:
    """``fresh`` sections replace saved ones of the same scenario; the rest are kept."""
    by_key = {s.key: s for s in saved} | {s.key: s for s in fresh}
    rank = {key: i for i, key in enumerate(order)}
    return sorted(by_key.values(), key=lambda s: rank.get(s.key, len(rank)))

"""The doctor's findings and how they print: one block per finding, its fixes below it."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, how it came out, and how to fix it."""

    check: str
    status: Status
    summary: str
    fixes: tuple[str, ...] = ()


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, status: Status, summary: str, *fixes: str) -> None:
        self.findings.append(Finding(check, status, summary, tuple(f for f in fixes if f)))

    @property
    def failed(self) -> bool:
        return any(f.status == "fail" for f in self.findings)

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]


_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
_COLOUR = {"ok": "\033[32m", "warn": "\033[33m", "fail": "\033[31m"}


def render(report: Report, *, title: str, colour: bool = False, columns: int = 100) -> str:
    """The report as text: one block per finding, its fixes (commands, URLs) unwrapped below it."""
    width = max((len(f.check) for f in report.findings), default=10)
    indent = " " * (2 + 4 + 2 + width + 2)
    lines = [title, ""]
    for f in report.findings:
        mark = _MARK[f.status]
        if colour:
            mark = f"{_COLOUR[f.status]}{mark}\033[0m"
        summary = textwrap.wrap(
            f.summary,
            width=max(columns - len(indent), 40),
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines.append(f"  {mark}  {f.check:<{width}}  {summary[0]}")
        lines.extend(indent + more for more in summary[1:])
        for fix in f.fixes:
            lines.append(f"  {'':4}  {'':<{width}}    -> {fix}")
    fails = sum(f.status == "fail" for f in report.findings)
    warns = sum(f.status == "warn" for f in report.findings)
    lines.append("")
    if fails:
        lines.append(
            f"{fails} blocking problem(s), {warns} warning(s): fix the FAIL lines and run "
            "`make doctor` again (SKIP_DOCTOR=1 makes `make deploy` go ahead anyway)."
        )
    elif warns:
        lines.append(f"No blocking problem; {warns} warning(s) above.")
    else:
        lines.append("All checks passed.")
    return "\n".join(lines)

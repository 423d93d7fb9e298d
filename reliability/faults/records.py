"""Every request of a fault's run, and what the run shows: which failed, when it recovered."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# A failed request counts as in flight at the fault if it was sent before the fault and ended
# after it; this much slack covers the clocks of the two threads involved.
IN_FLIGHT_SLACK_S = 0.05


@dataclass
class Record:
    sent: float  # seconds since the run began
    ended: float
    status: int  # 0: no HTTP answer
    body: str
    control: str = ""  # "" for the steady load; the fault's own requests say which

    def error(self) -> tuple[str, str]:
        """(code, message) of an error answer, as the Lambda or API Gateway shaped it."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            return "", self.body[:200]
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            return str(doc["error"].get("code", "")), str(doc["error"].get("message", ""))
        if isinstance(doc, dict) and "message" in doc:
            return "", str(doc["message"])
        return "", self.body[:200]


@dataclass
class Outcome:
    name: str
    records: list[Record]
    fault_at: float  # seconds since the run began
    outage_until: float | None = None  # a restarted process accepting connections again
    restarted: str = ""  # what the supervisor restarted, and how fast
    notes: str = ""
    extra_checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.status != 200]

    def at_fault(self, r: Record) -> bool:
        """Sent before the fault and still open when it struck, or sent while the restarted
        process was not yet back, or one of the fault's own requests."""
        if r.control:
            return True
        if r.sent <= self.fault_at + IN_FLIGHT_SLACK_S and r.ended >= self.fault_at:
            return True
        return self.outage_until is not None and self.fault_at <= r.sent <= self.outage_until

    def in_flight(self) -> int:
        """Requests open when the fault struck (whatever their outcome)."""
        return sum(1 for r in self.records if r.sent <= self.fault_at <= r.ended)

    def slowest_ok_s(self) -> float:
        """The longest successful steady-load request sent after the fault."""
        return max(
            (
                r.ended - r.sent
                for r in self.records
                if r.status == 200 and not r.control and r.sent >= self.fault_at
            ),
            default=0.0,
        )

    def recovery_s(self) -> float:
        """From the fault until the last failed request ended; every request after succeeded."""
        if not self.failed:
            return 0.0
        return max(r.ended for r in self.failed) - self.fault_at

    def after_recovery(self) -> list[Record]:
        last = self.fault_at + self.recovery_s()
        return [r for r in self.records if r.sent > last]

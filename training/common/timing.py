"""Where the time went: data loading vs compute, for --profile's summary and the health report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class TimeBreakdown:
    steps: int = 0
    data_wait_s: float = 0.0
    compute_s: float = 0.0
    samples: int = 0

    def add(self, *, data_wait_s: float, compute_s: float, samples: int) -> None:
        self.steps += 1
        self.data_wait_s += data_wait_s
        self.compute_s += compute_s
        self.samples += samples

    def summary(self) -> dict[str, Any]:
        total = self.data_wait_s + self.compute_s
        return {
            "steps": self.steps,
            "samples": self.samples,
            "data_wait_s": round(self.data_wait_s, 4),
            "compute_s": round(self.compute_s, 4),
            "data_wait_fraction": round(self.data_wait_s / total, 4) if total else None,
            "samples_per_s": round(self.samples / total, 2) if total else None,
        }


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2), encoding="utf-8")

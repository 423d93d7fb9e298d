"""A reference run, then the same run killed at random steps, its newest checkpoint truncated,
and resumed to the end.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reliability.training_faults.attempt import STEP_LINE, Attempt, checkpoints, run_attempt
from reliability.training_faults.scripts import Script

log = logging.getLogger(__name__)


def kill_targets(rng: random.Random, kills: int, total: int, interval: int) -> list[int]:
    """``kills`` steps spread over the run: one random step in each of ``kills`` equal slices of
    [interval + 1, total - 1], so that each resume has a checkpoint to start from."""
    low, high = interval + 1, total - 1
    width = (high - low + 1) / kills
    return [
        rng.randint(int(low + i * width), max(int(low + i * width), int(low + (i + 1) * width) - 1))
        for i in range(kills)
    ]


@dataclass
class Outcome:
    script: Script
    seed: int
    total_steps: int
    reference: Attempt
    attempts: list[Attempt]
    truncated: tuple[str, int, int] | None  # (checkpoint, bytes before, bytes after)
    identical: bool
    max_diff: float
    compare_detail: str
    metrics_equal: bool
    history_equal: bool


def _total_steps(attempt_log: Path) -> tuple[int, int]:
    """(steps per epoch, epochs) from a run's progress lines."""
    for line in attempt_log.read_text().splitlines():
        match = STEP_LINE.search(line)
        if match:
            return int(match[4]), int(match[2])
    raise RuntimeError(f"no progress line in {attempt_log}")


def exercise(script: Script, data: Path, workdir: Path, *, kills: int, seed: int) -> Outcome:
    """Reference run, ``kills`` random SIGKILLs with resumes, a truncated newest checkpoint, and
    the final resume to the end."""
    reference_dir = workdir / "reference"
    reference_dir.mkdir(parents=True)
    reference = run_attempt(script, data, reference_dir, 0, None)
    if reference.returncode != 0:
        raise RuntimeError(
            f"the uninterrupted {script.name} run failed (exit {reference.returncode}):\n"
            f"{reference.log_path.read_text()[-3000:] if reference.log_path else ''}"
        )
    per_epoch, epochs = _total_steps(reference.log_path)  # type: ignore[arg-type]
    total = per_epoch * epochs
    rng = random.Random(seed)  # noqa: S311 (reproducible kill steps, not security)
    # The last target is killed and then its newest checkpoint truncated.
    targets = kill_targets(rng, kills + 1, total, script.interval)
    faulted = workdir / "faulted"
    faulted.mkdir()
    attempts: list[Attempt] = []
    truncated = None
    for number, target in enumerate(targets, start=1):
        attempt = run_attempt(script, data, faulted, number, target)
        attempts.append(attempt)
        if attempt.killed_at is None:
            raise RuntimeError(
                f"attempt {number} of {script.name} was to be killed at step {target} but ended "
                f"with exit {attempt.returncode}:\n{attempt.log_path.read_text()[-3000:]}"  # type: ignore[union-attr]
            )
        log.info(
            "%s: attempt %d resumed from step %s, killed at step %s (target %d)",
            script.name, number, attempt.resumed_from, attempt.killed_at, target,
        )  # fmt: skip
    newest = checkpoints(faulted)[-1]
    state = newest.path / script.state_file
    before = state.stat().st_size
    with open(state, "r+b") as handle:
        handle.truncate(before // 2)
    truncated = (newest.path.name, before, before // 2)
    log.info("%s: truncated %s from %d to %d bytes", script.name, state, before, before // 2)
    final = run_attempt(script, data, faulted, len(targets) + 1, None)
    attempts.append(final)
    if final.returncode != 0:
        raise RuntimeError(
            f"the final resume of {script.name} failed (exit {final.returncode}):\n"
            f"{final.log_path.read_text()[-3000:]}"  # type: ignore[union-attr]
        )
    identical, diff, detail = script.compare(reference_dir / "model", faulted / "model")
    ref_metrics = json.loads((reference_dir / "model" / "metrics.json").read_text())
    got_metrics = json.loads((faulted / "model" / "metrics.json").read_text())
    ref_history = json.loads((reference_dir / "output" / "history.json").read_text())
    got_history = json.loads((faulted / "output" / "history.json").read_text())
    return Outcome(
        script=script,
        seed=seed,
        total_steps=total,
        reference=reference,
        attempts=attempts,
        truncated=truncated,
        identical=identical,
        max_diff=diff,
        compare_detail=detail,
        metrics_equal=_close(ref_metrics, got_metrics, script.tolerance),
        history_equal=_close(ref_history, got_history, script.tolerance),
    )


def _close(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tolerance) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b if tolerance == 0 else abs(a - b) <= tolerance
    return bool(a == b)

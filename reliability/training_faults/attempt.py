"""One start of a training run: a subprocess SIGKILLed once it has logged a given step, and what
its log and checkpoint directory show afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stage import harness
from reliability.training_faults.scripts import Script

REPO = harness.REPO
STEP_LINE = re.compile(r"epoch (\d+)/(\d+) step (\d+)/(\d+)")
RESUMED = re.compile(r"resuming from (ckpt-e\d+-s(\d+))")
SKIPPED = re.compile(r"skipping corrupt checkpoint (ckpt-e\d+-s\d+): (.*)")
ATTEMPT_TIMEOUT_S = 600


@dataclass
class Attempt:  # one start of the run
    number: int
    target: int | None  # the step it was to be killed at (None: run to the end)
    killed_at: int | None = None  # last step it completed (None: it finished)
    resumed_from: int | None = None  # the checkpoint's global step it started from (0: scratch)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    on_disk: list[int] = field(default_factory=list)  # checkpoints' steps after it stopped
    returncode: int | None = None
    seconds: float = 0.0
    log_path: Path | None = None

    @property
    def newest_on_disk(self) -> int | None:
        return self.on_disk[-1] if self.on_disk else None


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SM_") and k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK"}
    }
    env.update(
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
        TF_NUM_INTRAOP_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
    )
    return env


def _outputs(run_dir: Path) -> list[str]:
    return [
        "--model-dir", str(run_dir / "model"),
        "--output-dir", str(run_dir / "output"),
        "--checkpoint-dir", str(run_dir / "ckpt"),
        "--failure-file", str(run_dir / "failure"),
    ]  # fmt: skip


def checkpoints(run_dir: Path) -> list[Any]:
    from training.common.checkpoint import CheckpointManager

    return CheckpointManager(run_dir / "ckpt").list()


def run_attempt(
    script: Script,
    data: Path,
    run_dir: Path,
    number: int,
    target: int | None,
) -> Attempt:
    """One start of the run; SIGKILL once it has logged step ``target`` (global, 1-based)."""
    attempt = Attempt(number, target)
    attempt.log_path = run_dir / f"attempt-{number}.log"
    start = time.monotonic()
    proc = subprocess.Popen(
        _command(script, data, run_dir),
        cwd=REPO,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    text, last_step = _run_until(proc, target, f"attempt {number} of {script.name}")
    attempt.seconds = time.monotonic() - start
    attempt.returncode = proc.returncode
    attempt.log_path.write_text(text)
    if proc.returncode == -signal.SIGKILL:
        attempt.killed_at = last_step
    _read_resume(attempt, text, run_dir)
    return attempt


def _command(script: Script, data: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        str(REPO / "training" / script.path),
        "--data", str(data),
        *script.args,
        "--epochs", str(script.epochs),
        "--checkpoint-every-steps", str(script.interval),
        "--progress", "log",
        "--log-every-steps", "1",
        *_outputs(run_dir),
    ]  # fmt: skip


def _run_until(proc: subprocess.Popen[str], target: int | None, what: str) -> tuple[str, int]:
    """Follow the run's progress lines; SIGKILL it at step ``target``. (Its log, last step.)"""
    lines: list[str] = []
    last_step = [0]
    reached = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            match = STEP_LINE.search(line)
            if match:
                epoch, step, per_epoch = int(match[1]), int(match[3]), int(match[4])
                last_step[0] = (epoch - 1) * per_epoch + step
                if target is not None and last_step[0] >= target:
                    reached.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + ATTEMPT_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if reached.wait(0.01):
                proc.send_signal(signal.SIGKILL)
                break
        else:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
                raise RuntimeError(
                    f"{what} neither finished nor reached step "
                    f"{target} within {ATTEMPT_TIMEOUT_S} s (last step {last_step[0]})"
                )
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=30)
    return "".join(lines), last_step[0]


def _read_resume(attempt: Attempt, text: str, run_dir: Path) -> None:
    """Where the attempt resumed from, what it skipped as corrupt, what it left on disk."""
    match = RESUMED.search(text)
    attempt.resumed_from = int(match[2]) if match else 0
    ckpt_dir = f"{run_dir / 'ckpt'}/"  # shorter evidence: paths relative to the checkpoint dir
    attempt.skipped = [(m[1], m[2].replace(ckpt_dir, "")) for m in SKIPPED.finditer(text)]
    attempt.on_disk = [c.global_step for c in checkpoints(run_dir)]

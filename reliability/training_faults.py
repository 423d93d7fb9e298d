"""Training faults: a real training run SIGKILLed at random steps and resumed, then its newest
checkpoint truncated and resumed again; the result compared with an uninterrupted run.

Each attempt is the same command line (as a spot restart or `training.launch ec2` on a new
instance runs it). The step an attempt died at is the last ``step i/n`` progress line it logged
(``--progress log --log-every-steps 1``; the line is written after the optimizer step and before
that step's checkpoint), and the step it resumed from is the ``resuming from ckpt-e<E>-s<STEP>``
line of the next attempt; damaged checkpoints it skipped are its ``skipping corrupt checkpoint``
warnings.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stage import harness
from reliability.report import Section, Table

log = logging.getLogger(__name__)

REPO = harness.REPO
SEED = 20260509  # of the kill steps; reported
STEP_LINE = re.compile(r"epoch (\d+)/(\d+) step (\d+)/(\d+)")
RESUMED = re.compile(r"resuming from (ckpt-e\d+-s(\d+))")
SKIPPED = re.compile(r"skipping corrupt checkpoint (ckpt-e\d+-s\d+): (.*)")
ATTEMPT_TIMEOUT_S = 600


@dataclass(frozen=True)
class Script:
    """A training script, its arguments for a small run, and how to compare two finished runs."""

    name: str
    path: str  # under training/
    args: tuple[str, ...]
    interval: int  # --checkpoint-every-steps
    epochs: int
    state_file: str  # the checkpoint file the truncation damages
    # (model dir A, model dir B) -> (identical, max abs weight difference, detail)
    compare: Callable[[Path, Path], tuple[bool, float, str]]
    tolerance: float = 0.0  # allowed max abs weight difference (0: bit-identical)


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


def _checkpoints(run_dir: Path) -> list[Any]:
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
    command = [
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
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
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
        deadline = start + ATTEMPT_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if reached.wait(0.01):
                proc.send_signal(signal.SIGKILL)
                break
        else:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
                raise RuntimeError(
                    f"attempt {number} of {script.name} neither finished nor reached step "
                    f"{target} within {ATTEMPT_TIMEOUT_S} s (last step {last_step[0]})"
                )
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=30)
    attempt.seconds = time.monotonic() - start
    attempt.returncode = proc.returncode
    text = "".join(lines)
    attempt.log_path.write_text(text)
    if proc.returncode == -signal.SIGKILL:
        attempt.killed_at = last_step[0]
    match = RESUMED.search(text)
    attempt.resumed_from = int(match[2]) if match else 0
    ckpt_dir = f"{run_dir / 'ckpt'}/"  # shorter evidence: paths relative to the checkpoint dir
    attempt.skipped = [(m[1], m[2].replace(ckpt_dir, "")) for m in SKIPPED.finditer(text)]
    attempt.on_disk = [c.global_step for c in _checkpoints(run_dir)]
    return attempt


def kill_targets(rng: random.Random, kills: int, total: int, interval: int) -> list[int]:
    """``kills`` steps spread over the run: one random step in each of ``kills`` equal slices of
    [interval + 1, total - 1], so that each resume has a checkpoint to start from."""
    low, high = interval + 1, total - 1
    width = (high - low + 1) / kills
    return [
        rng.randint(int(low + i * width), max(int(low + i * width), int(low + (i + 1) * width) - 1))
        for i in range(kills)
    ]


def _torch_compare(a: Path, b: Path) -> tuple[bool, float, str]:
    import torch

    sa = torch.load(a / "model.pth", weights_only=True)
    sb = torch.load(b / "model.pth", weights_only=True)
    if sa.keys() != sb.keys():
        return False, float("inf"), f"different tensors: {sorted(set(sa) ^ set(sb))}"
    diff = max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)
    same = all(torch.equal(sa[k], sb[k]) for k in sa)
    return same, diff, f"{len(sa)} tensors"


def _keras_compare(a: Path, b: Path) -> tuple[bool, float, str]:
    import keras
    import numpy as np

    wa = keras.models.load_model(a / "model.keras").get_weights()
    wb = keras.models.load_model(b / "model.keras").get_weights()
    if len(wa) != len(wb):
        return False, float("inf"), f"{len(wa)} vs {len(wb)} weight arrays"
    diff = max(float(np.max(np.abs(x.astype("float64") - y.astype("float64")))) for x, y in
               zip(wa, wb, strict=True))  # fmt: skip
    same = all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))
    return same, diff, f"{len(wa)} weight arrays"


TORCH = Script(
    name="PyTorch image classifier (small CNN)",
    path="image_classifier_torch.py",
    args=(
        "--arch",
        "small_cnn",
        "--image-size",
        "16",
        "--workers",
        "0",
        "--batch-size",
        "32",
        "--lr",
        "0.003",
    ),  # fmt: skip
    interval=5,
    epochs=2,
    state_file="state.pt",
    compare=_torch_compare,
)

KERAS = Script(
    name="Keras image classifier (MobileNetV2 x0.35)",
    path="image_classifier_keras.py",
    args=(
        "--backbone",
        "mobilenet_v2",
        "--alpha",
        "0.35",
        "--image-size",
        "32",
        "--batch-size",
        "64",
        "--lr",
        "0.003",
        "--augment",
        "false",
    ),  # fmt: skip
    interval=4,
    epochs=1,
    state_file="model.keras",
    compare=_keras_compare,
    # TensorFlow's op determinism is on, but a model restored from .keras re-traces its graph;
    # the integration test allows 1e-6 for the same reason.
    tolerance=1e-6,
)


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
    newest = _checkpoints(faulted)[-1]
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


def report(section: Section, outcome: Outcome) -> None:
    script, attempts = outcome.script, outcome.attempts
    interval = script.interval
    rows: list[list[Any]] = []
    kills = attempts[:-1]
    final = attempts[-1]
    lost_ok, resume_ok, details = True, True, []
    for i, attempt in enumerate(kills):
        nxt = attempts[i + 1]
        corrupt_case = i == len(kills) - 1
        lost = (attempt.killed_at or 0) - (nxt.resumed_from or 0)
        damaged_share = 0
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
        lost_ok &= ok
        resume_ok &= resumed_ok
        if not ok or not resumed_ok:
            details.append(
                f"kill {attempt.number}: killed at {attempt.killed_at}, newest checkpoint "
                f"{attempt.newest_on_disk}, resumed from {nxt.resumed_from} (expected {expected})"
            )
        rows.append(
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
    seconds = sum(a.seconds for a in attempts)
    section.notes.append(
        f"{name}: uninterrupted run {outcome.reference.seconds:.0f} s; the faulted run took "
        f"{len(attempts)} starts and {seconds:.0f} s in all."
    )


def run(quick: bool, workdir: Path) -> Section:
    kills = 2 if quick else 5
    # Each Keras start pays TensorFlow's import and graph tracing (about a minute on 2 cores):
    # fewer kills there.
    scripts = [(TORCH, kills)] if quick else [(TORCH, kills), (KERAS, 2)]
    section = Section(
        key="training_faults",
        title="Training faults",
        method=(
            "A real training script runs as a subprocess (as SageMaker or `training.launch ec2` "
            "runs it) on scikit-learn's digits (PNG files, the data of `make local`), on one CPU "
            "thread (OMP_NUM_THREADS=1), with a checkpoint every N steps and at each epoch end "
            f"(keep 2). An uninterrupted run is the reference. The same command is then started "
            f"and SIGKILLed {kills} times{'' if quick else ' (the Keras run 2 times)'} at random "
            "steps (one random step in each slice of the run, from a seeded random.Random), "
            "resumed each time; after one more kill the "
            "newest checkpoint's state file is truncated to half its size and the run is resumed "
            "to the end. The step killed at is the last `step i/n` progress line the run logged "
            "before it died; the step resumed from is the next start's `resuming from "
            "ckpt-e<E>-s<STEP>` line; a skipped damaged checkpoint is its `skipping corrupt "
            "checkpoint` warning. Checkpoints record each file's size and SHA-256, and a resume "
            "falls back past one that fails them or does not load (training/common/checkpoint.py)."
            + (
                ""
                if quick
                else " The full run also covers the Keras loop (both Keras scripts "
                "share it) with the image classifier."
            )
        ),
    )
    data = harness.digits_data(workdir / "data")
    for script, script_kills in scripts:
        try:
            outcome = exercise(
                script,
                data,
                workdir / script.path.removesuffix(".py"),
                kills=script_kills,
                seed=SEED,
            )
        except RuntimeError as exc:
            section.check(f"{script.name}: the faulted run could be driven to the end", False,
                          str(exc)[-1500:])  # fmt: skip
            continue
        report(section, outcome)
    return section

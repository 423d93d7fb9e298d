"""The training-faults scenario: each script exercised, its findings in one report section."""

from __future__ import annotations

from pathlib import Path

from local_stage import harness
from reliability.report import Section
from reliability.training_faults.exercise import exercise
from reliability.training_faults.findings import report
from reliability.training_faults.scripts import KERAS, TORCH

SEED = 20260509  # of the kill steps; reported


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

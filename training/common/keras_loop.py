"""The Keras training loop both Keras scripts share: spot-safe checkpoints, health checks, curves.

``model.fit`` runs one epoch at a time over a data set the script builds for that epoch (a seeded
shuffle, minus the steps already done when resuming mid-epoch), with a callback that times the
input pipeline, feeds the health monitor, shows progress and checkpoints every N steps. Each
checkpoint is a full ``.keras`` file (weights and optimizer state) plus the loop's own state.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.common import env, serving
from training.common.checkpoint import (
    Checkpoint,
    CheckpointManager,
    check_fingerprint,
    publish_model_dir,
)
from training.common.health import HealthConfig, HealthMonitor
from training.common.metrics import format_metrics
from training.common.plotting import plot_history
from training.common.progress import Progress
from training.common.timing import TimeBreakdown, write_summary

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"


def use_gpus(gpu_count: int | None) -> None:
    """``--gpu-count``: 0 hides the GPUs from TensorFlow (before anything initialises them)."""
    if gpu_count == 0:
        tf.config.set_visible_devices([], "GPU")
    elif gpu_count is not None and gpu_count > 1:
        log.warning("--gpu-count %d: the Keras scripts train on one GPU", gpu_count)


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds, and deterministic TF kernels (reproducible runs)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclass
class KerasRun:
    """What a script hands the loop."""

    args: argparse.Namespace
    build_model: Callable[[], keras.Model]  # a fresh, compiled model (loss + "accuracy")
    # The training batches of `epoch`, starting at step `skip`: (data set, samples per batch).
    train_batches: Callable[[int, int], tuple[tf.data.Dataset, list[int]]]
    valid: tf.data.Dataset
    test: tf.data.Dataset | None
    probe: tuple[Any, Any]  # one batch for gradient-norm checks
    fingerprint: dict[str, Any]
    model_config: dict[str, Any]
    title: str
    history: dict[str, list[float]] = field(
        default_factory=lambda: {
            k: [] for k in ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy")
        }
    )


def _save_model(model: keras.Model, target: Path) -> None:
    """``model.save`` to a temporary name and rename: never a torn ``.keras`` file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.stem}-", suffix=".keras", dir=target.parent)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state(model: keras.Model) -> dict[str, list[int]]:
    """The layers' random-generator states (dropout, augmentation), by variable path.

    ``model.save`` does not keep them (a loaded model restarts its random streams), so a resumed
    run would draw other dropout masks than the uninterrupted one; the checkpoint carries them.
    """
    return {
        v.path: np.asarray(v.numpy()).tolist()
        for v in model.variables
        if "seed_generator_state" in v.path
    }


def set_rng_state(model: keras.Model, state: dict[str, list[int]]) -> None:
    variables = {v.path: v for v in model.variables if "seed_generator_state" in v.path}
    if set(variables) != set(state):
        raise RuntimeError(
            f"checkpoint random states {sorted(state)} do not match the model's {sorted(variables)}"
        )
    for path, value in state.items():
        variables[path].assign(np.asarray(value, dtype=variables[path].dtype))


def gradient_norm_fn(model: keras.Model) -> Callable[[Any, Any], float]:
    """Global L2 norm of the loss gradient on one batch, compiled once per model.

    Inference mode (``training=False``): the probe must not move BatchNorm statistics or draw
    dropout randomness, or checking would change the run it checks.
    """

    @tf.function(reduce_retracing=True)
    def norm(x: Any, y: Any) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=False))
        grads = [g for g in tape.gradient(loss, model.trainable_variables) if g is not None]
        return tf.linalg.global_norm(grads) if grads else tf.constant(0.0)

    return lambda x, y: float(norm(x, y))


class _StepCallback(keras.callbacks.Callback):
    """Per-step bookkeeping inside one epoch's ``fit``."""

    def __init__(self, loop: _Loop, epoch: int, first_step: int, batch_sizes: list[int]) -> None:
        super().__init__()
        self.loop, self.epoch, self.first_step = loop, epoch, first_step
        self.cumulative = np.cumsum(batch_sizes).tolist()
        self.sums = (0.0, 0.0, 0)  # running (loss sum, correct, samples) of this fit call
        self._last_end: float | None = None
        self._begin = 0.0
        self._prev_loss_sum = 0.0
        self.progress = Progress(
            total=loop.steps_per_epoch,
            initial=first_step,
            desc=f"epoch {epoch + 1}/{loop.args.epochs}",
            mode=loop.args.progress,
            log_every=loop.args.log_every_steps,
            enabled=True,
        )

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self._begin = time.perf_counter()
        self._waited = 0.0 if self._last_end is None else self._begin - self._last_end

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        now = time.perf_counter()
        loop, logs = self.loop, logs or {}
        seen = self.cumulative[batch]
        loss_sum = float(logs["loss"]) * seen  # Keras logs running means over this fit call
        self.sums = (loss_sum, float(logs["accuracy"]) * seen, seen)
        size = seen - (self.cumulative[batch - 1] if batch else 0)
        batch_loss = (loss_sum - self._prev_loss_sum) / size
        self._prev_loss_sum = loss_sum
        compute_s = now - self._begin
        loop.timing.add(data_wait_s=self._waited, compute_s=compute_s, samples=size)
        if self._last_end is not None:
            loop.window[0] += self._waited
            loop.window[1] += self._waited + compute_s
        loop.global_step += 1
        if loop.profiling and loop.global_step == loop.profile_start + loop.args.profile_steps:
            tf.profiler.experimental.stop()
            loop.profiling = False
        if loop.health.should_check(loop.global_step):
            loop.health.record_timing(*loop.window)
            loop.window = [0.0, 0.0]
            loop.health.check_step(
                epoch=self.epoch + 1,
                global_step=loop.global_step,
                loss=batch_loss,
                grad_norm=loop.grad_norm(self.model, *loop.run.probe),
            )
        self.progress.update(1, loss=batch_loss)
        done = self.first_step + batch + 1
        every = loop.args.checkpoint_every_steps
        if every and loop.global_step % every == 0 and done < loop.steps_per_epoch:
            loop.save_checkpoint(self.model, self.epoch, done, self.partial_sums())
        # Our own work above is not the input pipeline's: start the wait clock after it.
        self._last_end = time.perf_counter()

    def partial_sums(self) -> list[float]:
        base = self.loop.partial
        return [base[0] + self.sums[0], base[1] + self.sums[1], base[2] + self.sums[2]]


class _Loop:
    def __init__(self, run: KerasRun, steps_per_epoch: int) -> None:
        self.run, self.args = run, run.args
        self.steps_per_epoch = steps_per_epoch
        self.checkpoints = CheckpointManager(
            self.args.checkpoint_dir, keep=self.args.keep_checkpoints
        )
        self.health = HealthMonitor(HealthConfig.from_args(self.args))
        self.timing = TimeBreakdown()
        self.window = [0.0, 0.0]
        self.global_step = 0
        self.partial = [0.0, 0.0, 0.0]
        self.best: dict[str, Any] = {"valid_accuracy": -1.0, "valid_loss": math.inf, "epoch": None}
        self.profiling = False
        self.profile_start = 0
        self._norms: dict[int, Callable[[Any, Any], float]] = {}

    def grad_norm(self, model: keras.Model, x: Any, y: Any) -> float:
        if id(model) not in self._norms:
            self._norms[id(model)] = gradient_norm_fn(model)
        return self._norms[id(model)](x, y)

    def save_checkpoint(
        self, model: keras.Model, epoch: int, step_in_epoch: int, partial: list[float]
    ) -> None:
        self.checkpoints.save(
            epoch=epoch,
            step_in_epoch=step_in_epoch,
            global_step=self.global_step,
            meta={
                "fingerprint": self.run.fingerprint,
                "history": self.run.history,
                "best": self.best,
                "partial": partial,
                "health": self.health.state_dict(),
                "rng": rng_state(model),
            },
            write=lambda folder: model.save(folder / MODEL_FILE),
        )


def train(run: KerasRun) -> dict[str, Any]:
    """Train with checkpoints and health checks; write the model dir and outputs; return metrics."""
    args = run.args
    _, batch_sizes = run.train_batches(0, 0)
    loop = _Loop(run, len(batch_sizes))
    best_path = args.checkpoint_dir / "best.keras"
    start_epoch = start_step = 0
    if not args.resume:
        for old in loop.checkpoints.list():
            shutil.rmtree(old.path, ignore_errors=True)
        best_path.unlink(missing_ok=True)

    def read_checkpoint(checkpoint: Checkpoint) -> keras.Model:
        check_fingerprint(checkpoint.meta["fingerprint"], run.fingerprint, args.checkpoint_dir)
        return keras.models.load_model(checkpoint.path / MODEL_FILE)

    # The newest checkpoint that reads back whole; damaged ones are skipped with a warning.
    found = loop.checkpoints.load_latest(read_checkpoint) if args.resume else None
    if found is not None:
        latest, model = found
        meta = latest.meta
        set_rng_state(model, meta["rng"])
        start_epoch, start_step = meta["epoch"], meta["step_in_epoch"]
        loop.global_step = meta["global_step"]
        run.history, loop.best, loop.partial = meta["history"], meta["best"], meta["partial"]
        loop.health.load_state_dict(meta["health"])
        log.info(
            "resuming from %s: epoch %d, step %d of %d",
            latest.path.name,
            start_epoch + 1,
            start_step,
            loop.steps_per_epoch,
        )
    else:
        model = run.build_model()

    if args.profile:
        tf.profiler.experimental.start(str(args.output_dir / "profile"))
        loop.profiling, loop.profile_start = True, loop.global_step
    for epoch in range(start_epoch, args.epochs):
        first = start_step if epoch == start_epoch else 0
        if epoch != start_epoch:
            loop.partial = [0.0, 0.0, 0.0]
        dataset, sizes = run.train_batches(epoch, first)
        callback = _StepCallback(loop, epoch, first, sizes)
        model.fit(
            dataset,
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=0,
            shuffle=False,  # the data set is already shuffled, per epoch and seed
            callbacks=[callback],
        )
        callback.progress.close()
        loss_sum, correct, count = callback.partial_sums()
        train_loss, train_acc = loss_sum / count, correct / count
        valid = model.evaluate(run.valid, verbose=0, return_dict=True)
        valid_loss, valid_acc = float(valid["loss"]), float(valid["accuracy"])
        for key, value in (
            ("train_loss", train_loss),
            ("train_accuracy", train_acc),
            ("valid_loss", valid_loss),
            ("valid_accuracy", valid_acc),
        ):
            run.history[key].append(value)
        log.info(
            format_metrics(
                {
                    "epoch": epoch + 1,
                    "train_loss": train_loss,
                    "train_accuracy": train_acc,
                    "valid_loss": valid_loss,
                    "valid_accuracy": valid_acc,
                }
            )
        )
        if valid_acc > loop.best["valid_accuracy"] or (
            valid_acc == loop.best["valid_accuracy"] and valid_loss < loop.best["valid_loss"]
        ):
            loop.best = {
                "valid_accuracy": valid_acc,
                "valid_loss": valid_loss,
                "train_accuracy": train_acc,
                "train_loss": train_loss,
                "epoch": epoch + 1,
            }
            # Beside the checkpoints: a replacement spot instance gets that folder back.
            _save_model(model, best_path)
        loop.health.check_epoch(epoch=epoch + 1, train_loss=train_loss, valid_loss=valid_loss)
        loop.partial = [0.0, 0.0, 0.0]
        loop.save_checkpoint(model, epoch + 1, 0, loop.partial)
        loop.health.write_report(
            args.output_dir / "health_report.json", {"time": loop.timing.summary()}
        )
    if loop.profiling:
        tf.profiler.experimental.stop()

    best_model = keras.models.load_model(best_path)
    best = loop.best
    metrics: dict[str, Any] = {
        "best_epoch": best["epoch"],
        "train_loss": best["train_loss"],
        "train_accuracy": best["train_accuracy"],
        "valid_loss": best["valid_loss"],
        "valid_accuracy": best["valid_accuracy"],
    }
    if run.test is not None:
        test = best_model.evaluate(run.test, verbose=0, return_dict=True)
        metrics.update(test_loss=float(test["loss"]), test_accuracy=float(test["accuracy"]))
        log.info(
            format_metrics(
                {"test_loss": metrics["test_loss"], "test_accuracy": metrics["test_accuracy"]}
            )
        )
    _write_outputs(run, best_model, metrics, loop)
    return metrics


def _write_outputs(run: KerasRun, model: keras.Model, metrics: dict[str, Any], loop: _Loop) -> None:
    args = run.args

    def fill(folder: Path) -> None:
        model.save(folder / MODEL_FILE)
        (folder / "model_config.json").write_text(
            json.dumps(run.model_config, indent=2), encoding="utf-8"
        )
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        if args.export:
            serving.publish(folder, framework="tensorflow", name=args.serving_name)

    publish_model_dir(args.model_dir, fill, in_place=env.in_sagemaker())
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(run.history, indent=2), encoding="utf-8")
    plot_history(run.history, out / "training_curves.png", run.title)
    summary = loop.timing.summary()
    loop.health.write_report(out / "health_report.json", {"time": summary})
    if args.profile:
        summary["trace_dir"] = str(out / "profile")
        summary["view_with"] = (
            f"tensorboard --logdir {out / 'profile'} (tensorboard-plugin-profile)"
        )
        write_summary(out / "profile_summary.json", summary)
        log.info(
            "profile: %.0f%% of step time waiting for data, %.0f%% compute; trace in %s",
            100 * (summary["data_wait_fraction"] or 0),
            100 * (1 - (summary["data_wait_fraction"] or 0)),
            out / "profile",
        )
    log.info("model saved to %s; curves, health report in %s", args.model_dir, out)

"""The training loop: epochs of steps, evaluation, best-epoch selection, spot-safe checkpoints.

A :class:`Trainer` holds what one run updates (weights, optimiser, grad scaler, health monitor,
timings) and :class:`RunState`, what a checkpoint carries besides the tensors: where the run is,
its history and its best epoch so far. A run resumed from a checkpoint, mid-epoch included,
continues the same sequence of batches and random numbers as one that was never stopped.
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from training import torch_models
from training.common.checkpoint import CheckpointManager, write_file_atomically
from training.common.health import HealthConfig, HealthMonitor
from training.common.metrics import format_metrics
from training.common.progress import Progress
from training.common.timing import TimeBreakdown
from training.torch_training import checkpoints, data
from training.torch_training.distributed import Dist
from training.torch_training.model import (
    build_autocast,
    build_optimizer,
    cpu_state_dict,
    global_grad_norm,
    learning_rate,
    unwrap,
)

# The entry script's logger: its log lines keep one name whichever module writes them.
log = logging.getLogger("image_classifier_torch")

HISTORY_KEYS = ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy")


def _no_sums() -> list[float]:
    return [0.0, 0.0, 0.0]


@dataclass
class RunState:
    """Where the run is and what it has seen: saved in every checkpoint's meta.json."""

    history: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    best: dict[str, Any] = field(
        default_factory=lambda: {"valid_accuracy": -1.0, "valid_loss": math.inf, "epoch": None}
    )
    # This epoch's (loss sum, correct, count) before the resume point.
    partial: list[float] = field(default_factory=_no_sums)
    start_epoch: int = 0
    start_step: int = 0
    global_step: int = 0


class Trainer:
    """Trains ``model`` (through ``train_model``, its DDP wrapper with several processes)."""

    def __init__(
        self,
        args: argparse.Namespace,
        ctx: Dist,
        splits: data.Splits,
        model: nn.Module,
        train_model: nn.Module,
        *,
        amp: bool,
        channels_last: bool,
    ) -> None:
        self.args, self.ctx, self.splits = args, ctx, splits
        self.model, self.train_model = model, train_model
        self.cuda = ctx.device.type == "cuda"
        self.channels_last = channels_last
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(args, self.params)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp and self.cuda)
        self.autocast = build_autocast(ctx.device, amp)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
        self.train_loader, self.sampler = data.train_loader(splits, args, ctx)
        self.valid_loader = data.eval_loader(splits.valid, args, ctx)
        self.steps_per_epoch = self.sampler.steps_per_epoch()
        self.total_steps = self.steps_per_epoch * args.epochs
        self.checkpoints = CheckpointManager(
            args.checkpoint_dir, keep=args.keep_checkpoints, writer=ctx.main
        )
        self.fingerprint = checkpoints.run_fingerprint(args, splits, ctx.world)
        self.health = HealthMonitor(HealthConfig.from_args(args))
        self.timing = TimeBreakdown()
        self.state = RunState()
        self._window = [0.0, 0.0]  # data wait, step time since the last health check

    # -- checkpoints -----------------------------------------------------------------------------
    def resume_or_start(self) -> None:
        """Continue from the newest checkpoint that reads back whole (``--resume``, damaged ones
        skipped with a warning), or clear an earlier run's checkpoints."""
        args = self.args
        if not args.resume and self.ctx.main:
            checkpoints.clear(self.checkpoints, args.checkpoint_dir)
        if not args.resume:
            return
        read = functools.partial(
            checkpoints.read_state,
            fingerprint=self.fingerprint,
            checkpoint_dir=args.checkpoint_dir,
        )
        found = self.checkpoints.load_latest(read)
        if found is None:
            return
        latest, state = found
        unwrap(self.train_model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if self.cuda and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"])
        meta = latest.meta
        self.state = RunState(
            history=meta["history"],
            best=meta["best"],
            partial=meta["partial"],
            start_epoch=meta["epoch"],
            start_step=meta["step_in_epoch"],
            global_step=meta["global_step"],
        )
        self.health.load_state_dict(meta["health"])
        log.info(
            "resuming from %s: epoch %d, step %d of %d", latest.path.name,
            self.state.start_epoch + 1, self.state.start_step, self.steps_per_epoch,
        )  # fmt: skip

    def save_checkpoint(self, epoch: int, step_in_epoch: int, partial_sums: list[float]) -> None:
        write = functools.partial(
            checkpoints.write_state,
            model=self.train_model,
            optimizer=self.optimizer,
            scaler=self.scaler,
            cuda=self.cuda,
        )
        self.checkpoints.save(
            epoch=epoch,
            step_in_epoch=step_in_epoch,
            global_step=self.state.global_step,
            meta={
                "fingerprint": self.fingerprint,
                "history": self.state.history,
                "best": self.state.best,
                "partial": partial_sums,
                "health": self.health.state_dict(),
            },
            write=write,
        )

    # -- training --------------------------------------------------------------------------------
    def fit(self, profiler: Any) -> None:
        """Every remaining epoch: train, evaluate, keep the best weights, checkpoint."""
        for epoch in range(self.state.start_epoch, self.args.epochs):
            train_loss, train_acc = self.train_epoch(epoch, profiler)
            valid_loss, valid_acc = self.evaluate(self.valid_loader)
            self.end_epoch(epoch, train_loss, train_acc, valid_loss, valid_acc)

    def train_epoch(self, epoch: int, profiler: Any) -> tuple[float, float]:
        """One epoch's remaining steps; ``(mean loss, accuracy)`` over all of its steps."""
        args, ctx, state = self.args, self.ctx, self.state
        resumed = epoch == state.start_epoch
        first_step = state.start_step if resumed else 0
        self.sampler.set_epoch(epoch, first_step)
        self.train_model.train()
        if args.freeze_backbone:
            torch_models.freeze_batchnorm_stats(self.model)
        sums = list(state.partial) if resumed else _no_sums()
        progress = Progress(
            total=self.steps_per_epoch,
            initial=first_step,
            desc=f"epoch {epoch + 1}/{args.epochs}",
            mode=args.progress,
            log_every=args.log_every_steps,
            enabled=ctx.main,
        )
        batches = iter(self.train_loader)
        for step_in_epoch in range(first_step, self.steps_per_epoch):
            loss_value = self.train_step(epoch, step_in_epoch, batches, sums, profiler)
            progress.update(1, loss=loss_value)
            done = step_in_epoch + 1
            if (
                args.checkpoint_every_steps
                and state.global_step % args.checkpoint_every_steps == 0
                and done < self.steps_per_epoch
            ):
                self.save_checkpoint(epoch, done, ctx.all_sum(sums))
        progress.close()
        loss_sum, correct, count = ctx.all_sum(sums)
        return loss_sum / count, correct / count

    def train_step(
        self,
        epoch: int,
        step_in_epoch: int,
        batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
        sums: list[float],
        profiler: Any,
    ) -> float:
        """Load the next batch and optimise on it, timed; the batch's loss."""
        tick = time.perf_counter()
        with torch.profiler.record_function("data_wait"):
            x, y = next(batches)
            x, y = data.to_device(x, y, self.ctx.device, self.channels_last)
        waited = time.perf_counter() - tick
        with torch.profiler.record_function("compute"):
            loss_value, check, grad_norm = self._optimise(x, y, sums)
        if self.cuda and self.args.profile:
            torch.cuda.synchronize()  # honest compute time, only when profiling
        step_s = time.perf_counter() - tick
        self.timing.add(data_wait_s=waited, compute_s=step_s - waited, samples=len(y))
        self.state.global_step += 1
        if step_in_epoch > 0:  # the first batch of an epoch includes worker start-up
            self._window[0] += waited
            self._window[1] += step_s
        if check:
            self._check_health(epoch, loss_value, grad_norm)
        if profiler is not None:
            profiler.step()
        return loss_value

    def _optimise(
        self, x: torch.Tensor, y: torch.Tensor, sums: list[float]
    ) -> tuple[float, bool, float | None]:
        """One optimiser step; adds the batch to ``sums``. ``(loss, health check due, grad norm)``:
        the norm is measured when a check is due or clipping needs it."""
        args = self.args
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(args, self.state.global_step, self.total_steps)
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            logits = self.train_model(x)
            loss = self.criterion(logits.float(), y)
        self.scaler.scale(loss).backward()
        check = self.health.should_check(self.state.global_step + 1)
        grad_norm = None
        if check or args.grad_clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            grad_norm = global_grad_norm(self.model)
            if args.grad_clip_norm > 0:
                nn.utils.clip_grad_norm_(self.params, args.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        loss_value = float(loss.detach())
        sums[0] += loss_value * len(y)
        sums[1] += float((logits.argmax(1) == y).sum())
        sums[2] += len(y)
        return loss_value, check, grad_norm

    def _check_health(self, epoch: int, loss_value: float, grad_norm: float | None) -> None:
        loss_sum, wait_s, total_s = self.ctx.all_sum([loss_value, *self._window])
        self.health.record_timing(wait_s, total_s)
        self.health.check_step(
            epoch=epoch + 1,
            global_step=self.state.global_step,
            loss=loss_sum / self.ctx.world,
            grad_norm=grad_norm,
        )
        self._window = [0.0, 0.0]

    def end_epoch(
        self,
        epoch: int,
        train_loss: float,
        train_acc: float,
        valid_loss: float,
        valid_acc: float,
    ) -> None:
        """Record the epoch, keep its weights if it is the best so far, checkpoint."""
        state = self.state
        epoch_metrics = {
            "train_loss": train_loss,
            "train_accuracy": train_acc,
            "valid_loss": valid_loss,
            "valid_accuracy": valid_acc,
        }
        for key in HISTORY_KEYS:
            state.history[key].append(epoch_metrics[key])
        log.info(format_metrics({"epoch": epoch + 1, **epoch_metrics}))
        best = state.best
        if valid_acc > best["valid_accuracy"] or (
            valid_acc == best["valid_accuracy"] and valid_loss < best["valid_loss"]
        ):
            state.best = {
                "valid_accuracy": valid_acc,
                "valid_loss": valid_loss,
                "train_accuracy": train_acc,
                "train_loss": train_loss,
                "epoch": epoch + 1,
            }
            if self.ctx.main:
                # The best weights live with the checkpoints: a replacement spot instance
                # gets the checkpoint folder back, not the model dir.
                buffer = io.BytesIO()
                torch.save(cpu_state_dict(self.train_model), buffer)
                target = self.args.checkpoint_dir / checkpoints.BEST_FILE
                write_file_atomically(target, buffer.getvalue())
        self.health.check_epoch(epoch=epoch + 1, train_loss=train_loss, valid_loss=valid_loss)
        state.partial = _no_sums()
        self.save_checkpoint(epoch + 1, 0, state.partial)
        if self.ctx.main:
            self.health.write_report(
                self.args.output_dir / "health_report.json", {"time": self.timing.summary()}
            )

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, loader: DataLoader) -> tuple[float, float]:
        """(mean loss, accuracy) over the whole eval set, summed across ranks."""
        model = self.train_model
        model.eval()
        loss_sum = correct = count = 0.0
        with torch.inference_mode():
            for x, y in loader:
                x, y = data.to_device(x, y, self.ctx.device, self.channels_last)
                with self.autocast():
                    logits = model(x)
                    loss = self.criterion(logits.float(), y)
                loss_sum += float(loss) * len(y)
                correct += float((logits.argmax(1) == y).sum())
                count += len(y)
        loss_sum, correct, count = self.ctx.all_sum([loss_sum, correct, count])
        return loss_sum / max(count, 1), correct / max(count, 1)

    def test_best(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Load the best epoch's weights and test them: ``(weights, metrics)`` for the model dir."""
        best_state = torch.load(
            self.args.checkpoint_dir / checkpoints.BEST_FILE,
            map_location=self.ctx.device,
            weights_only=True,
        )
        unwrap(self.train_model).load_state_dict(best_state)
        best = self.state.best
        metrics = {
            "best_epoch": best["epoch"],
            "train_loss": best["train_loss"],
            "train_accuracy": best["train_accuracy"],
            "valid_loss": best["valid_loss"],
            "valid_accuracy": best["valid_accuracy"],
        }
        if self.splits.test is not None:
            test_loader = data.eval_loader(self.splits.test, self.args, self.ctx)
            test_loss, test_acc = self.evaluate(test_loader)
            metrics.update(test_loss=test_loss, test_accuracy=test_acc)
            log.info(format_metrics({"test_loss": test_loss, "test_accuracy": test_acc}))
        return best_state, metrics

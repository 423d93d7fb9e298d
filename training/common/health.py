"""Training-health checks built into the training loop (what SageMaker Debugger's rules did).

The monitor is framework-agnostic: the training loop feeds it numbers (loss, global gradient
norm, time spent waiting for data) and it reports findings:

- ``loss_not_decreasing``: the training loss has not improved for a while;
- ``overfitting``: validation loss rising while training loss falls;
- ``vanishing_gradients`` / ``exploding_gradients``: the global gradient norm out of bounds (or a
  non-finite loss or gradient);
- ``stalled_input_pipeline``: steps spend most of their time waiting for the next batch;
- ``no_pretrained_weights``: a transfer-learning run whose backbone starts from random weights
  without ``--pretrained-weights none`` (found before training; never fatal).

Each finding is logged as a warning once per rule (repeats are counted) and written to a JSON
report; with ``fatal=True`` the first one raises :class:`HealthCheckError`, which stops the run.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RULES: tuple[str, ...] = (
    "loss_not_decreasing",
    "overfitting",
    "vanishing_gradients",
    "exploding_gradients",
    "stalled_input_pipeline",
    "no_pretrained_weights",
)


class HealthCheckError(RuntimeError):
    """A health finding with ``--health-fatal``: the run stops."""


@dataclass(frozen=True)
class HealthConfig:
    every_steps: int = 10
    patience_epochs: int = 2
    exploding_grad_norm: float = 1e3
    vanishing_grad_norm: float = 1e-7
    vanishing_checks: int = 3  # consecutive checks below the bound before it counts
    max_data_wait_fraction: float = 0.5
    min_relative_improvement: float = 0.01  # of the training loss, to count as improving
    window_checks: int = 10  # step-level loss trend: compare the mean of windows of this many
    fatal: bool = False
    # What the backbone started from (common/pretrained.py's record), reported as is.
    pretrained_weights: dict[str, Any] | None = None

    @classmethod
    def from_args(cls, args: Any) -> HealthConfig:
        return cls(
            every_steps=args.health_every_steps,
            patience_epochs=args.health_patience_epochs,
            exploding_grad_norm=args.health_exploding_grad_norm,
            vanishing_grad_norm=args.health_vanishing_grad_norm,
            max_data_wait_fraction=args.health_max_data_wait_fraction,
            fatal=args.health_fatal,
            pretrained_weights=getattr(args, "pretrained_record", None),
        )


@dataclass
class _State:
    findings: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    step_losses: list[float] = field(default_factory=list)  # one per check
    first_window_loss: float | None = None
    vanishing_streak: int = 0
    data_wait_s: float = 0.0
    step_s: float = 0.0
    epoch_train_loss: list[float] = field(default_factory=list)
    epoch_valid_loss: list[float] = field(default_factory=list)
    best_train_loss: float = math.inf
    epochs_since_improvement: int = 0


class HealthMonitor:
    def __init__(self, config: HealthConfig) -> None:
        self.config = config
        self._s = _State()
        warning = (config.pretrained_weights or {}).get("warning")
        if warning:
            # Already logged by the script; a finding, but not a reason to stop (--health-fatal).
            self._s.findings.append(
                {"rule": "no_pretrained_weights", "message": warning, "epoch": None, "step": None}
            )
            self._s.counts["no_pretrained_weights"] = 1

    # -- state for checkpoints --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return asdict(self._s)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._s = _State(**state)

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self._s.findings)

    def should_check(self, global_step: int) -> bool:
        return global_step % self.config.every_steps == 0

    # -- inputs ------------------------------------------------------------------------------
    def record_timing(self, data_wait_s: float, step_s: float) -> None:
        """Every step: time blocked waiting for the batch, and the whole step's wall time."""
        self._s.data_wait_s += data_wait_s
        self._s.step_s += step_s

    def check_step(
        self, *, epoch: int, global_step: int, loss: float, grad_norm: float | None
    ) -> None:
        """Every ``every_steps`` steps: the current loss and global gradient L2 norm."""
        where = {"epoch": epoch, "step": global_step}
        if not math.isfinite(loss):
            self._find("exploding_gradients", f"the training loss is {loss}", value=loss, **where)
        if grad_norm is not None:
            if not math.isfinite(grad_norm) or grad_norm > self.config.exploding_grad_norm:
                self._find(
                    "exploding_gradients",
                    f"global gradient norm {grad_norm:.3g} > {self.config.exploding_grad_norm:g}"
                    " (lower --lr, clip gradients, or check the data's scale)",
                    value=grad_norm,
                    **where,
                )
            if grad_norm < self.config.vanishing_grad_norm:
                self._s.vanishing_streak += 1
                if self._s.vanishing_streak >= self.config.vanishing_checks:
                    self._find(
                        "vanishing_gradients",
                        f"global gradient norm {grad_norm:.3g} < "
                        f"{self.config.vanishing_grad_norm:g} for "
                        f"{self._s.vanishing_streak} checks",
                        value=grad_norm,
                        **where,
                    )
            else:
                self._s.vanishing_streak = 0
        if self._s.step_s > 0:
            fraction = self._s.data_wait_s / self._s.step_s
            if fraction > self.config.max_data_wait_fraction:
                self._find(
                    "stalled_input_pipeline",
                    f"{fraction:.0%} of step time spent waiting for data (more --workers, "
                    "smaller images, or faster storage)",
                    value=fraction,
                    **where,
                )
        self._s.data_wait_s = self._s.step_s = 0.0
        self._loss_trend(loss, where)

    def _loss_trend(self, loss: float, where: dict[str, int]) -> None:
        if not math.isfinite(loss):
            return
        window = self.config.window_checks
        losses = self._s.step_losses
        losses.append(loss)
        if len(losses) == window and self._s.first_window_loss is None:
            self._s.first_window_loss = sum(losses) / window
        if len(losses) >= 2 * window and self._s.first_window_loss is not None:
            recent = sum(losses[-window:]) / window
            first = self._s.first_window_loss
            if recent > first * (1 - self.config.min_relative_improvement):
                self._find(
                    "loss_not_decreasing",
                    f"mean training loss {recent:.4g} over the last {window} checks is not below "
                    f"{first:.4g} of the first {window} (try another --lr)",
                    value=recent,
                    **where,
                )
            del losses[:-window]

    def check_epoch(self, *, epoch: int, train_loss: float, valid_loss: float | None) -> None:
        """After each epoch's validation."""
        s, patience = self._s, self.config.patience_epochs
        s.epoch_train_loss.append(train_loss)
        if valid_loss is not None:
            s.epoch_valid_loss.append(valid_loss)
        where = {"epoch": epoch, "step": None}
        if math.isfinite(train_loss) and train_loss < s.best_train_loss * (
            1 - self.config.min_relative_improvement
        ):
            s.best_train_loss = train_loss
            s.epochs_since_improvement = 0
        else:
            s.epochs_since_improvement += 1
            if s.epochs_since_improvement >= patience:
                self._find(
                    "loss_not_decreasing",
                    f"training loss has not improved for {s.epochs_since_improvement} epochs "
                    f"(best {s.best_train_loss:.4g}, now {train_loss:.4g})",
                    value=train_loss,
                    **where,
                )
        valid, train = s.epoch_valid_loss, s.epoch_train_loss
        if len(valid) > patience and len(train) > patience:
            valid_rising = all(valid[-i] > valid[-i - 1] for i in range(1, patience + 1))
            train_falling = all(train[-i] < train[-i - 1] for i in range(1, patience + 1))
            if valid_rising and train_falling:
                self._find(
                    "overfitting",
                    f"validation loss rose for {patience} epochs ({valid[-patience - 1]:.4g} -> "
                    f"{valid[-1]:.4g}) while training loss fell (more data or augmentation, "
                    "regularisation, or fewer epochs)",
                    value=valid[-1],
                    **where,
                )

    # -- outputs -----------------------------------------------------------------------------
    def _find(self, rule: str, message: str, **details: Any) -> None:
        s = self._s
        s.counts[rule] = s.counts.get(rule, 0) + 1
        if s.counts[rule] == 1:
            s.findings.append({"rule": rule, "message": message, **details})
            log.warning("training health: %s: %s", rule, message)
        if self.config.fatal:
            raise HealthCheckError(f"training health check failed: {rule}: {message}")

    def report(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self._s
        return {
            "ok": not s.findings,
            "findings": s.findings,
            "counts": dict(s.counts),
            "rules_checked": list(RULES),
            "config": asdict(self.config),
            "pretrained_weights": self.config.pretrained_weights,
            **(extra or {}),
        }

    def write_report(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(extra), indent=2, default=str), encoding="utf-8")

"""What a PyTorch checkpoint holds: the settings it must match, and the tensors that resume a run.

The folder layout, atomic writes, rotation and the fallback past a damaged checkpoint are
``common.checkpoint``'s; this module fills a checkpoint folder with ``state.pt`` (weights,
optimiser, grad scaler, RNG states) and reads one back.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.common.checkpoint import Checkpoint, CheckpointManager, check_fingerprint
from training.torch_training.data import Splits
from training.torch_training.model import cpu_state_dict

STATE_FILE = "state.pt"
BEST_FILE = "best.pth"  # the best epoch's weights, beside the checkpoints
_REQUIRED = {"model", "optimizer", "scaler", "rng_cpu"}


def run_fingerprint(args: argparse.Namespace, splits: Splits, world: int) -> dict[str, Any]:
    """The settings a checkpoint must match to be resumed (others, e.g. paths, may change)."""
    return {
        "arch": args.arch,
        "class_names": splits.class_names,
        "n_train": len(splits.train[0]),
        "image_size": args.image_size,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_schedule": args.lr_schedule,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "momentum": args.momentum,
        "label_smoothing": args.label_smoothing,
        "augment": args.augment,
        "freeze_backbone": args.freeze_backbone,
        "pretrained_weights": args.pretrained_record.get("sha256", args.pretrained.source),
        "seed": args.seed,
        "world_size": world,
        "smoke": args.smoke,
    }


def clear(checkpoints: CheckpointManager, checkpoint_dir: Path) -> None:
    """Forget an earlier run's checkpoints and best weights (a run that does not resume)."""
    for old in checkpoints.list():
        shutil.rmtree(old.path, ignore_errors=True)
    (checkpoint_dir / BEST_FILE).unlink(missing_ok=True)


def read_state(
    checkpoint: Checkpoint, *, fingerprint: dict[str, Any], checkpoint_dir: Path
) -> dict[str, Any]:
    """``state.pt`` of a checkpoint taken with the same settings; raises if it is not whole."""
    check_fingerprint(checkpoint.meta["fingerprint"], fingerprint, checkpoint_dir)
    state = torch.load(checkpoint.path / STATE_FILE, map_location="cpu", weights_only=True)
    missing = _REQUIRED - set(state)
    if missing:
        raise ValueError(f"{STATE_FILE} lacks {sorted(missing)}")
    return state


def write_state(
    folder: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    cuda: bool,
) -> None:
    state = {
        "model": cpu_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
    }
    if cuda:
        state["rng_cuda"] = torch.cuda.get_rng_state()
    torch.save(state, folder / STATE_FILE)

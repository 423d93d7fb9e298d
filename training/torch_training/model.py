"""The network and what updates it: architecture, pretrained backbone, DDP, optimiser, precision."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training import torch_models
from training.common import env, pretrained
from training.torch_training.distributed import Dist

# The entry script's logger: its log lines keep one name whichever module writes them.
log = logging.getLogger("image_classifier_torch")


def build_model(
    args: argparse.Namespace, num_classes: int, ctx: Dist, channels_last: bool
) -> tuple[nn.Module, nn.Module]:
    """``(model, train_model)``: the network on ``ctx.device``, and what the loop calls (the same
    module, or its DistributedDataParallel wrapper with several processes).

    Records the pretrained weights used in ``args.pretrained_record`` (the checkpoint fingerprint
    and the model's provenance read it).
    """
    model = torch_models.build_model(args.arch, num_classes)
    if args.pretrained.path is not None:
        load_pretrained(model, args.pretrained.path)
    args.pretrained_record = pretrained.record(
        args.pretrained, arch=args.arch, transfer=args.arch != "small_cnn"
    )
    if args.freeze_backbone:
        frozen = torch_models.freeze_backbone(model)
        log.info("backbone frozen (%d parameters); training the head only", frozen)
    model.to(ctx.device)
    if channels_last:
        # torch's stubs lack Module.to's memory_format keyword (a documented argument).
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    train_model: nn.Module = model
    if ctx.world > 1:
        cuda = ctx.device.type == "cuda"
        train_model = DistributedDataParallel(model, device_ids=[ctx.local_rank] if cuda else None)
    return model, train_model


def build_optimizer(args: argparse.Namespace, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if args.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
        )
    return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)


def load_pretrained(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise env.UsageError(f"--pretrained-weights {path} is not a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise env.UsageError(
            f"--pretrained-weights {path} is not a PyTorch state_dict file: {exc}"
        ) from exc
    for key in ("state_dict", "model"):  # common wrappers around a state_dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise env.UsageError(f"--pretrained-weights {path} does not hold a state_dict")
    try:
        skipped = torch_models.load_backbone_weights(model, state)
    except ValueError as exc:
        raise env.UsageError(f"--pretrained-weights {path}: {exc}") from exc
    log.info("loaded pretrained backbone from %s (new head; skipped %s)", path, skipped)


def build_autocast(device: torch.device, amp: bool) -> Any:
    if not amp:
        return contextlib.nullcontext
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    # Contiguous CPU copies: channels-last strides and CUDA tensors must not leak into model.pth.
    return {k: v.detach().to("cpu").contiguous() for k, v in unwrap(model).state_dict().items()}


def global_grad_norm(model: nn.Module) -> float:
    norms = [p.grad.detach().norm(2) for p in model.parameters() if p.grad is not None]
    if not norms:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack(norms), 2))


def learning_rate(args: argparse.Namespace, global_step: int, total_steps: int) -> float:
    if args.lr_schedule == "constant" or total_steps <= 1:
        return args.lr
    return 0.5 * args.lr * (1 + math.cos(math.pi * min(global_step, total_steps) / total_steps))

"""Train an image classifier (PyTorch): a ResNet with a new head, or a small CNN for the digits.

Runs unchanged locally, on EC2 and as a SageMaker script-mode job (single process, or
DistributedDataParallel under ``torchrun``, gloo on CPU and NCCL on GPU):

    python training/image_classifier_torch.py --data data/digits --arch small_cnn --epochs 5
    torchrun --nproc_per_node 2 training/image_classifier_torch.py --data data/dogs \\
        --arch resnet50 --pretrained-weights "$(python -m training.weights path resnet50)"

Data: an ImageFolder tree (``train/ valid/ test/``, one folder per class). Writes the best epoch's
model to --model-dir (``model.pth``, ``model_config.json``, ``metrics.json``) and the training
curves, health report and profile to --output-dir. Spot-safe: checkpoints every epoch (and every
--checkpoint-every-steps) and resumes from the newest one that reads back whole.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from contracts.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from training import torch_models
from training.common import cli, env, images, pretrained, serving
from training.common.checkpoint import (
    Checkpoint,
    CheckpointManager,
    check_fingerprint,
    publish_model_dir,
    write_file_atomically,
)
from training.common.health import HealthConfig, HealthMonitor
from training.common.metrics import format_metrics
from training.common.plotting import plot_history
from training.common.progress import Progress
from training.common.timing import TimeBreakdown, write_summary

log = logging.getLogger("image_classifier_torch")

STEM = "image_classifier_torch"
DEFAULTS = {"epochs": 10, "batch_size": 64, "lr": 1e-3}
# ImageNet statistics: what torchvision's pretrained weights expect; recorded in model_config.json
# so serving normalises identically.
MEAN, STD = IMAGENET_MEAN, IMAGENET_STD
DEFAULT_IMAGE_SIZE = {"small_cnn": 32}  # the ResNets: 224
SMOKE_STEPS, SMOKE_EVAL_SAMPLES = 3, 64
HOLDOUT_FRACTION = 0.1  # of train, for validation when there is no valid channel
CACHE_BUDGET_MB = 2048  # --cache-images auto: decoded uint8 images, per worker process


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="image_classifier_torch.py", description=__doc__, formatter_class=cli.HelpFormatter
    )
    cli.add_common_arguments(parser, STEM, DEFAULTS)
    model = parser.add_argument_group("model")
    cli.add(model, "--arch", type=cli.text, choices=torch_models.ARCHS, default="resnet50",
            help="architecture (small_cnn: the fast digits default)")  # fmt: skip
    pretrained.add_argument(model, what="a torchvision-format state_dict (.pth) for the backbone")
    cli.add(model, "--freeze-backbone", type=cli.auto_boolean, default=None,
            help="train only the new head; auto (None): frozen when the backbone starts from "
            "pretrained weights")  # fmt: skip
    cli.add(model, "--image-size", type=cli.positive_int, default=None,
            help="square input size in pixels; None: 32 for small_cnn, 224 for the ResNets")  # fmt: skip
    cli.add(model, "--augment", type=cli.text, choices=["auto", "none", "flip", "flip_crop"],
            default="auto", help="training augmentation; auto: none for small_cnn (digits are not "
            "mirror-symmetric), flip_crop for the ResNets")  # fmt: skip
    opt = parser.add_argument_group("optimiser")
    cli.add(opt, "--optimizer", type=cli.text, choices=["adamw", "sgd"], default="adamw",
            help="optimiser")  # fmt: skip
    cli.add(opt, "--weight-decay", type=cli.non_negative_float, default=1e-4, help="weight decay")
    cli.add(opt, "--momentum", type=cli.non_negative_float, default=0.9, help="SGD momentum")
    cli.add(opt, "--lr-schedule", type=cli.text, choices=["cosine", "constant"], default="cosine",
            help="learning rate over the run's steps")  # fmt: skip
    cli.add(opt, "--label-smoothing", type=cli.non_negative_float, default=0.0,
            help="cross-entropy label smoothing")  # fmt: skip
    cli.add(opt, "--grad-clip-norm", type=cli.non_negative_float, default=0.0,
            help="clip the global gradient norm to this (0: no clipping)")  # fmt: skip
    hw = parser.add_argument_group("hardware")
    cli.add(hw, "--device", type=cli.text, choices=["auto", "cpu", "cuda"], default="auto",
            help="auto: CUDA when available (and SM_NUM_GPUS is not 0)")  # fmt: skip
    cli.add(hw, "--amp", type=cli.auto_boolean, default=None,
            help="mixed precision; auto (None): on with a GPU (fp16), off on CPU (bf16 if true)")  # fmt: skip
    cli.add(hw, "--channels-last", type=cli.auto_boolean, default=None,
            help="channels-last memory format; auto (None): on with a GPU")  # fmt: skip
    cli.add(hw, "--cache-images", type=cli.auto_boolean, default=None,
            help="keep decoded training images in memory after the first epoch; auto (None): "
            f"when they fit in {CACHE_BUDGET_MB} MB (times the worker count)")  # fmt: skip
    cli.add(hw, "--workers", type=cli.non_negative_int, default=None,
            help="data-loading worker processes; None: 0 (decode in the main process) on 2 "
            "cores or fewer, else one per core beyond the first, at most 4")  # fmt: skip

    args = parser.parse_args(argv)
    try:
        args.pretrained = pretrained.resolve(args.pretrained_weights)
    except env.UsageError as exc:
        parser.error(str(exc))
    if args.gpu_count is not None:
        wanted = "cpu" if args.gpu_count == 0 else "cuda"
        if args.device not in ("auto", wanted):
            parser.error(f"--gpu-count {args.gpu_count} contradicts --device {args.device}")
        args.device = wanted
    args.freeze_backbone = (
        args.pretrained.path is not None if args.freeze_backbone is None else args.freeze_backbone
    )
    if args.image_size is None:
        args.image_size = DEFAULT_IMAGE_SIZE.get(args.arch, 224)
    if args.augment == "auto":
        args.augment = "none" if args.arch == "small_cnn" else "flip_crop"
    if args.workers is None:
        # On 2 cores a worker process competes with the compute threads, and decoding in the
        # main process measured faster (bench/training_input_pipeline.py).
        cpus = os.cpu_count() or 1
        args.workers = 0 if cpus <= 2 else min(4, cpus - 1)
    if args.smoke:
        args.epochs = 1
    return args


# -- distributed ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Sum ``values`` over all processes (identity with one process)."""
        if self.world == 1:
            return [float(v) for v in values]
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup_distributed(device_flag: str) -> Dist:
    """One process, or one of torchrun's (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT)."""
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    env.require_one_host_unless_distributed(STEM + ".py", distributed="WORLD_SIZE" in os.environ)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    sm_gpus = env.num_gpus_from_env()
    if device_flag == "cuda" and not torch.cuda.is_available():
        raise env.UsageError("--device cuda, but no CUDA GPU is available (use --device auto)")
    use_cuda = device_flag == "cuda" or (
        device_flag == "auto" and torch.cuda.is_available() and sm_gpus != 0
    )
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank, world, local_rank, device)


# -- data ----------------------------------------------------------------------------------------
class ImageFiles(Dataset):
    """Decodes images from files on each access (in DataLoader workers) to uint8 CHW tensors.

    Normalisation happens per batch in the main process (``normalize``): vectorised, on the GPU
    when there is one, and 4x less data crosses from the workers than float32 would.
    Items are requested as ``(index, epoch)``: augmentation randomness is a pure function of
    (seed, epoch, index), so it is the same whatever the worker count or a resume point.
    """

    def __init__(
        self,
        paths: list[Path],
        labels: list[int],
        size: int,
        augment: str,
        seed: int,
        cache: bool = False,
    ) -> None:
        self.paths, self.labels, self.size = paths, labels, size
        self.augment, self.seed = augment, seed
        # Decoded, resized uint8 images by index (augmentation is applied after the cache). Each
        # persistent DataLoader worker fills its own copy during the first epoch.
        self.cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, epoch = key
        pixels = self.cache.get(index) if self.cache is not None else None
        if pixels is None:
            pixels = images.load_rgb(self.paths[index], self.size)
            if self.cache is not None:
                self.cache[index] = pixels
        if self.augment != "none" and epoch >= 0:
            pixels = self._augment(pixels, np.random.default_rng([self.seed, epoch, index]))
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))), self.labels[index]

    def _augment(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        if self.augment == "flip_crop":
            pad = max(1, self.size // 8)
            padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
            top, left = rng.integers(0, 2 * pad + 1, size=2)
            pixels = padded[top : top + self.size, left : left + self.size]
        return pixels


class EpochBatches:
    """Batches of ``(index, epoch)`` for one rank: a fresh seeded shuffle per epoch, sharded.

    ``set_epoch(epoch, start_step)`` before iterating; batches before ``start_step`` are skipped
    without loading their images (mid-epoch resume). Every rank gets the same number of batches
    (the permutation is padded by wrapping), which DDP needs.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        rank: int,
        world: int,
        seed: int,
        max_steps: int | None = None,
    ) -> None:
        self.n, self.batch_size, self.rank, self.world, self.seed = n, batch_size, rank, world, seed
        self.max_steps = max_steps
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    def steps_per_epoch(self) -> int:
        per_rank = math.ceil(self.n / self.world)
        steps = math.ceil(per_rank / self.batch_size)
        return min(steps, self.max_steps) if self.max_steps else steps

    def _batches(self) -> list[list[tuple[int, int]]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        padded = order + order[: (-len(order)) % self.world]
        shard = padded[self.rank :: self.world]
        items = [(i, self.epoch) for i in shard]
        batches = [items[s : s + self.batch_size] for s in range(0, len(items), self.batch_size)]
        return batches[: self.steps_per_epoch()]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self._batches()[self.start_step :])

    def __len__(self) -> int:
        return self.steps_per_epoch() - self.start_step


@dataclass
class Splits:
    class_names: list[str]
    train: tuple[list[Path], list[int]]
    valid: tuple[list[Path], list[int]]
    test: tuple[list[Path], list[int]] | None


def load_splits(args: argparse.Namespace) -> Splits:
    channels = env.resolve_channels(
        args.data, {"train": args.train, "valid": args.valid, "test": args.test}
    )
    train_paths, train_labels, class_names = images.scan(channels["train"])
    if channels["valid"] is not None:
        valid = images.scan(channels["valid"], class_names)[:2]
    else:
        # No valid channel: hold out a fixed share of train so model selection stays honest.
        order = np.random.default_rng(args.seed).permutation(len(train_paths))
        cut = max(1, int(len(order) * HOLDOUT_FRACTION))
        held, kept = sorted(order[:cut]), sorted(order[cut:])
        log.warning(
            "no validation data: holding out %d of %d training images for validation", cut,
            len(order),
        )  # fmt: skip
        valid = ([train_paths[i] for i in held], [train_labels[i] for i in held])
        train_paths = [train_paths[i] for i in kept]
        train_labels = [train_labels[i] for i in kept]
    test = images.scan(channels["test"], class_names)[:2] if channels["test"] else None
    if test is None:
        log.warning("no test data: metrics.json will have train and valid metrics only")
    if args.smoke:
        valid = (valid[0][:SMOKE_EVAL_SAMPLES], valid[1][:SMOKE_EVAL_SAMPLES])
        test = (test[0][:SMOKE_EVAL_SAMPLES], test[1][:SMOKE_EVAL_SAMPLES]) if test else None
    return Splits(class_names, (train_paths, train_labels), valid, test)


def make_loader(
    dataset: Dataset, batch_sampler: Any, args: argparse.Namespace, device: torch.device
) -> DataLoader:
    workers = args.workers
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        pin_memory=device.type == "cuda",
        # Its own generator: a DataLoader otherwise draws its worker seed from the global RNG,
        # which would shift dropout's random stream on a mid-epoch resume.
        generator=torch.Generator().manual_seed(args.seed),
    )


class EvalBatches:
    """This rank's share of an eval set, in order (no padding: sums over ranks are exact)."""

    def __init__(self, n: int, batch_size: int, rank: int, world: int) -> None:
        items = [(i, -1) for i in range(rank, n, world)]
        self.batches = [items[s : s + batch_size] for s in range(0, len(items), batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


# -- training ------------------------------------------------------------------------------------
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


def evaluate(
    model: nn.Module,
    loader: DataLoader,
    criterion: nn.Module,
    ctx: Dist,
    autocast: Any,
    channels_last: bool,
) -> tuple[float, float]:
    """(mean loss, accuracy) over the whole eval set, summed across ranks."""
    model.eval()
    loss_sum = correct = count = 0.0
    with torch.inference_mode():
        for x, y in loader:
            x, y = to_device(x, y, ctx.device, channels_last)
            with autocast():
                logits = model(x)
                loss = criterion(logits.float(), y)
            loss_sum += float(loss) * len(y)
            correct += float((logits.argmax(1) == y).sum())
            count += len(y)
    loss_sum, correct, count = ctx.all_sum([loss_sum, correct, count])
    return loss_sum / max(count, 1), correct / max(count, 1)


_MEAN = torch.tensor(MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(STD).view(1, 3, 1, 1)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float32 ``(x / 255 - mean) / std``: the eval/serving preprocessing contract."""
    mean, std = _MEAN.to(x.device), _STD.to(x.device)
    return (x.to(torch.float32) / 255.0 - mean) / std


def to_device(
    x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    non_blocking = device.type == "cuda"
    x = normalize(x.to(device, non_blocking=non_blocking))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=non_blocking)


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


def profiler_context(args: argparse.Namespace, ctx: Dist) -> Any:
    if not args.profile:
        return contextlib.nullcontext(None)
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    activities = [ProfilerActivity.CPU]
    if ctx.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    return profile(
        activities=activities,
        schedule=schedule(wait=0, warmup=2, active=args.profile_steps, repeat=1),
        on_trace_ready=tensorboard_trace_handler(
            str(args.output_dir / "profile"), worker_name=f"rank{ctx.rank}"
        ),
    )


def main(args: argparse.Namespace) -> int:
    ctx = setup_distributed(args.device)
    try:
        return train(args, ctx)
    finally:
        if ctx.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def train(args: argparse.Namespace, ctx: Dist) -> int:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002 - libraries that use the legacy global RNG
    cuda = ctx.device.type == "cuda"
    amp = cuda if args.amp is None else args.amp
    channels_last = cuda if args.channels_last is None else args.channels_last
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest
    splits = load_splits(args)
    num_classes = len(splits.class_names)
    log.info(
        "%d classes, %d train / %d valid / %s test images; arch %s at %dpx on %s (world %d, "
        "amp %s, channels-last %s, workers %d)", num_classes, len(splits.train[0]),
        len(splits.valid[0]), len(splits.test[0]) if splits.test else "no", args.arch,
        args.image_size, ctx.device, ctx.world, amp, channels_last, args.workers,
    )  # fmt: skip

    # Model.
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
        model.to(memory_format=torch.channels_last)
    train_model: nn.Module = model
    if ctx.world > 1:
        train_model = DistributedDataParallel(model, device_ids=[ctx.local_rank] if cuda else None)
    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and cuda)
    autocast = build_autocast(ctx.device, amp)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)

    # Data.
    cache_mb = len(splits.train[0]) * args.image_size**2 * 3 * max(1, args.workers) / 2**20
    cache = cache_mb <= CACHE_BUDGET_MB if args.cache_images is None else args.cache_images
    log.info("decoded-image cache %s (%.0f MB)", "on" if cache else "off", cache_mb)
    train_set = ImageFiles(*splits.train, args.image_size, args.augment, args.seed, cache=cache)
    sampler = EpochBatches(
        len(train_set),
        args.batch_size,
        rank=ctx.rank,
        world=ctx.world,
        seed=args.seed,
        max_steps=SMOKE_STEPS if args.smoke else None,
    )
    train_loader = make_loader(train_set, sampler, args, ctx.device)

    def eval_loader(split: tuple[list[Path], list[int]]) -> DataLoader:
        dataset = ImageFiles(*split, args.image_size, "none", args.seed)
        batches = EvalBatches(len(dataset), args.batch_size * 2, ctx.rank, ctx.world)
        return make_loader(dataset, batches, args, ctx.device)

    valid_loader = eval_loader(splits.valid)
    steps_per_epoch = sampler.steps_per_epoch()
    total_steps = steps_per_epoch * args.epochs

    # Resume.
    checkpoints = CheckpointManager(
        args.checkpoint_dir, keep=args.keep_checkpoints, writer=ctx.main
    )
    fingerprint = run_fingerprint(args, splits, ctx.world)
    health = HealthMonitor(HealthConfig.from_args(args))
    history: dict[str, list[float]] = {
        k: [] for k in ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy")
    }
    best: dict[str, Any] = {"valid_accuracy": -1.0, "valid_loss": math.inf, "epoch": None}
    start_epoch = start_step = global_step = 0
    partial = [0.0, 0.0, 0.0]  # this epoch's (loss sum, correct, count) before the resume point
    if not args.resume and ctx.main:
        for old in checkpoints.list():
            shutil.rmtree(old.path, ignore_errors=True)
        (args.checkpoint_dir / "best.pth").unlink(missing_ok=True)

    def read_checkpoint(checkpoint: Checkpoint) -> dict[str, Any]:
        check_fingerprint(checkpoint.meta["fingerprint"], fingerprint, args.checkpoint_dir)
        state = torch.load(checkpoint.path / "state.pt", map_location="cpu", weights_only=True)
        missing = {"model", "optimizer", "scaler", "rng_cpu"} - set(state)
        if missing:
            raise ValueError(f"state.pt lacks {sorted(missing)}")
        return state

    # The newest checkpoint that reads back whole; damaged ones are skipped with a warning.
    found = checkpoints.load_latest(read_checkpoint) if args.resume else None
    if found is not None:
        latest, state = found
        unwrap(train_model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if cuda and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"])
        meta = latest.meta
        start_epoch, start_step, global_step = (
            meta["epoch"],
            meta["step_in_epoch"],
            meta["global_step"],
        )
        history, best, partial = meta["history"], meta["best"], meta["partial"]
        health.load_state_dict(meta["health"])
        log.info(
            "resuming from %s: epoch %d, step %d of %d", latest.path.name, start_epoch + 1,
            start_step, steps_per_epoch,
        )  # fmt: skip

    def save_checkpoint(epoch: int, step_in_epoch: int, partial_sums: list[float]) -> None:
        rng_cuda = torch.cuda.get_rng_state() if cuda else None

        def write(folder: Path) -> None:
            state = {
                "model": cpu_state_dict(train_model),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "rng_cpu": torch.get_rng_state(),
            }
            if rng_cuda is not None:
                state["rng_cuda"] = rng_cuda
            torch.save(state, folder / "state.pt")

        checkpoints.save(
            epoch=epoch,
            step_in_epoch=step_in_epoch,
            global_step=global_step,
            meta={
                "fingerprint": fingerprint,
                "history": history,
                "best": best,
                "partial": partial_sums,
                "health": health.state_dict(),
            },
            write=write,
        )

    timing = TimeBreakdown()
    window = [0.0, 0.0]  # data wait, step time since the last health check
    with profiler_context(args, ctx) as profiler:
        for epoch in range(start_epoch, args.epochs):
            first_step = start_step if epoch == start_epoch else 0
            sampler.set_epoch(epoch, first_step)
            train_model.train()
            if args.freeze_backbone:
                torch_models.freeze_batchnorm_stats(model)
            sums = list(partial) if epoch == start_epoch else [0.0, 0.0, 0.0]
            progress = Progress(
                total=steps_per_epoch,
                initial=first_step,
                desc=f"epoch {epoch + 1}/{args.epochs}",
                mode=args.progress,
                log_every=args.log_every_steps,
                enabled=ctx.main,
            )
            batches = iter(train_loader)
            for step_in_epoch in range(first_step, steps_per_epoch):
                tick = time.perf_counter()
                with torch.profiler.record_function("data_wait"):
                    x, y = next(batches)
                    x, y = to_device(x, y, ctx.device, channels_last)
                waited = time.perf_counter() - tick
                with torch.profiler.record_function("compute"):
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate(args, global_step, total_steps)
                    optimizer.zero_grad(set_to_none=True)
                    with autocast():
                        logits = train_model(x)
                        loss = criterion(logits.float(), y)
                    scaler.scale(loss).backward()
                    check = health.should_check(global_step + 1)
                    grad_norm = None
                    if check or args.grad_clip_norm > 0:
                        scaler.unscale_(optimizer)
                        grad_norm = global_grad_norm(model)
                        if args.grad_clip_norm > 0:
                            nn.utils.clip_grad_norm_(params, args.grad_clip_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    loss_value = float(loss.detach())
                    sums[0] += loss_value * len(y)
                    sums[1] += float((logits.argmax(1) == y).sum())
                    sums[2] += len(y)
                if cuda and args.profile:
                    torch.cuda.synchronize()  # honest compute time, only when profiling
                step_s = time.perf_counter() - tick
                timing.add(data_wait_s=waited, compute_s=step_s - waited, samples=len(y))
                global_step += 1
                if step_in_epoch > 0:  # the first batch of an epoch includes worker start-up
                    window[0] += waited
                    window[1] += step_s
                if check:
                    loss_mean, wait_s, total_s = ctx.all_sum([loss_value, *window])
                    health.record_timing(wait_s, total_s)
                    health.check_step(
                        epoch=epoch + 1,
                        global_step=global_step,
                        loss=loss_mean / ctx.world,
                        grad_norm=grad_norm,
                    )
                    window = [0.0, 0.0]
                if profiler is not None:
                    profiler.step()
                progress.update(1, loss=loss_value)
                done = step_in_epoch + 1
                if (
                    args.checkpoint_every_steps
                    and global_step % args.checkpoint_every_steps == 0
                    and done < steps_per_epoch
                ):
                    save_checkpoint(epoch, done, ctx.all_sum(sums))
            progress.close()

            loss_sum, correct, count = ctx.all_sum(sums)
            train_loss, train_acc = loss_sum / count, correct / count
            valid_loss, valid_acc = evaluate(
                train_model, valid_loader, criterion, ctx, autocast, channels_last
            )
            for key, value in (
                ("train_loss", train_loss),
                ("train_accuracy", train_acc),
                ("valid_loss", valid_loss),
                ("valid_accuracy", valid_acc),
            ):
                history[key].append(value)
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
            if valid_acc > best["valid_accuracy"] or (
                valid_acc == best["valid_accuracy"] and valid_loss < best["valid_loss"]
            ):
                best = {
                    "valid_accuracy": valid_acc,
                    "valid_loss": valid_loss,
                    "train_accuracy": train_acc,
                    "train_loss": train_loss,
                    "epoch": epoch + 1,
                }
                if ctx.main:
                    # The best weights live with the checkpoints: a replacement spot instance
                    # gets the checkpoint folder back, not the model dir.
                    buffer = io.BytesIO()
                    torch.save(cpu_state_dict(train_model), buffer)
                    write_file_atomically(args.checkpoint_dir / "best.pth", buffer.getvalue())
            health.check_epoch(epoch=epoch + 1, train_loss=train_loss, valid_loss=valid_loss)
            partial = [0.0, 0.0, 0.0]
            save_checkpoint(epoch + 1, 0, partial)
            if ctx.main:
                health.write_report(
                    args.output_dir / "health_report.json", {"time": timing.summary()}
                )
    ctx.barrier()

    # The best epoch's weights, tested.
    best_state = torch.load(
        args.checkpoint_dir / "best.pth", map_location=ctx.device, weights_only=True
    )
    unwrap(train_model).load_state_dict(best_state)
    metrics = {
        "best_epoch": best["epoch"],
        "train_loss": best["train_loss"],
        "train_accuracy": best["train_accuracy"],
        "valid_loss": best["valid_loss"],
        "valid_accuracy": best["valid_accuracy"],
    }
    if splits.test is not None:
        test_loss, test_acc = evaluate(
            train_model, eval_loader(splits.test), criterion, ctx, autocast, channels_last
        )
        metrics.update(test_loss=test_loss, test_accuracy=test_acc)
        log.info(format_metrics({"test_loss": test_loss, "test_accuracy": test_acc}))
    if ctx.main:
        write_outputs(args, splits, model, best_state, metrics, history, health, timing, profiler)
    log.info("best epoch %s: %s", best["epoch"], json.dumps(metrics))
    # Every rank leaves together: a rank that tore its gloo group down while rank 0 was still
    # writing the outputs was aborted ("terminate called without an active exception", SIGABRT),
    # and torchrun then failed the whole job.
    ctx.barrier()
    return 0


def write_outputs(
    args: argparse.Namespace,
    splits: Splits,
    model: nn.Module,
    best_state: dict[str, torch.Tensor],
    metrics: dict[str, Any],
    history: dict[str, list[float]],
    health: HealthMonitor,
    timing: TimeBreakdown,
    profiler: Any,
) -> None:
    config = {
        "framework": "pytorch",
        "task": "image-classification",
        "arch": args.arch,
        "num_classes": len(splits.class_names),
        "class_names": splits.class_names,
        "image_size": args.image_size,
        "mean": list(MEAN),
        "std": list(STD),
    }

    def fill(folder: Path) -> None:
        torch.save({k: v.to("cpu") for k, v in best_state.items()}, folder / "model.pth")
        (folder / "model_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        if args.export:
            serving.publish(
                folder,
                framework="pytorch",
                name=args.serving_name,
                arch_module=Path(torch_models.__file__),
            )

    publish_model_dir(args.model_dir, fill, in_place=env.in_sagemaker())
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history, indent=2), encoding="utf-8")
    plot_history(
        history, out / "training_curves.png", f"{args.arch} on {len(splits.class_names)} classes"
    )
    health.write_report(out / "health_report.json", {"time": timing.summary()})
    if profiler is not None:
        write_profile_summary(out, timing, profiler)
    log.info("model saved to %s; curves, health report in %s", args.model_dir, out)


def write_profile_summary(out: Path, timing: TimeBreakdown, profiler: Any) -> None:
    summary = timing.summary()
    try:
        averages = profiler.key_averages()
        top = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
        summary["top_ops_self_cpu_ms"] = {
            e.key: round(e.self_cpu_time_total / 1000, 3) for e in top
        }
    except (AssertionError, RuntimeError) as exc:  # too few steps for the profiler's schedule
        summary["top_ops_self_cpu_ms"] = f"unavailable: {exc}"
    summary["trace_dir"] = str(out / "profile")
    summary["view_with"] = f"tensorboard --logdir {out / 'profile'} (torch-tb-profiler plugin)"
    write_summary(out / "profile_summary.json", summary)
    log.info(
        "profile: %.0f%% of step time waiting for data, %.0f%% compute (%d steps, %.1f samples/s);"
        " trace in %s",
        100 * (summary["data_wait_fraction"] or 0),
        100 * (1 - (summary["data_wait_fraction"] or 0)),
        summary["steps"],
        summary["samples_per_s"] or 0,
        out / "profile",
    )


if __name__ == "__main__":
    cli.setup_logging(int(os.environ.get("RANK", "0")))
    sys.exit(cli.run(main, parse_args()))

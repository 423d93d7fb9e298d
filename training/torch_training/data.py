"""Image files to normalised batches: the splits, the datasets, and each rank's share of them.

Decoding happens in DataLoader workers (uint8 CHW tensors); normalisation per batch on the
training device (``to_device``). Which images each rank sees, in which order, and how they are
augmented is a pure function of (seed, epoch, index): the same whatever the worker count or the
point a run resumed from.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from contracts.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from training.common import env, images
from training.torch_training.distributed import Dist

# The entry script's logger: its log lines keep one name whichever module writes them.
log = logging.getLogger("image_classifier_torch")


# ImageNet statistics: what torchvision's pretrained weights expect; recorded in model_config.json
# so serving normalises identically.
MEAN, STD = IMAGENET_MEAN, IMAGENET_STD

SMOKE_STEPS, SMOKE_EVAL_SAMPLES = 3, 64
HOLDOUT_FRACTION = 0.1  # of train, for validation when there is no valid channel
CACHE_BUDGET_MB = 2048  # --cache-images auto: decoded uint8 images, per worker process


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
    train_dir = channels["train"]
    assert train_dir is not None  # resolve_channels raises for a missing required channel
    train_paths, train_labels, class_names = images.scan(train_dir)
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


def train_loader(
    splits: Splits, args: argparse.Namespace, ctx: Dist
) -> tuple[DataLoader, EpochBatches]:
    """This rank's training batches (with their sampler, to set each epoch) and the image cache."""
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
    return make_loader(train_set, sampler, args, ctx.device), sampler


def eval_loader(
    split: tuple[list[Path], list[int]], args: argparse.Namespace, ctx: Dist
) -> DataLoader:
    """This rank's share of an eval split, unaugmented, in batches twice the training size."""
    dataset = ImageFiles(*split, args.image_size, "none", args.seed)
    batches = EvalBatches(len(dataset), args.batch_size * 2, ctx.rank, ctx.world)
    return make_loader(dataset, batches, args, ctx.device)


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

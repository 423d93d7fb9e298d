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

This script parses the flags and runs the steps; the training itself lives in ``torch_training/``
beside it, one module per concern.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

import numpy as np
import torch

from training import torch_models
from training.common import cli, env, pretrained
from training.torch_training import data, outputs
from training.torch_training.distributed import Dist, setup_distributed, teardown_distributed
from training.torch_training.loop import Trainer
from training.torch_training.model import build_model

log = logging.getLogger("image_classifier_torch")

STEM = "image_classifier_torch"
DEFAULTS = {"epochs": 10, "batch_size": 64, "lr": 1e-3}
DEFAULT_IMAGE_SIZE = {"small_cnn": 32}  # the ResNets: 224


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
            f"when they fit in {data.CACHE_BUDGET_MB} MB (times the worker count)")  # fmt: skip
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


def main(args: argparse.Namespace) -> int:
    ctx = setup_distributed(args.device, script=STEM + ".py")
    try:
        return train(args, ctx)
    finally:
        teardown_distributed(ctx)


def train(args: argparse.Namespace, ctx: Dist) -> int:
    """Train, test the best epoch and write the outputs (rank 0); every rank returns together."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002 - libraries that use the legacy global RNG
    cuda = ctx.device.type == "cuda"
    amp = cuda if args.amp is None else args.amp
    channels_last = cuda if args.channels_last is None else args.channels_last
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest
    splits = data.load_splits(args)
    num_classes = len(splits.class_names)
    log.info(
        "%d classes, %d train / %d valid / %s test images; arch %s at %dpx on %s (world %d, "
        "amp %s, channels-last %s, workers %d)", num_classes, len(splits.train[0]),
        len(splits.valid[0]), len(splits.test[0]) if splits.test else "no", args.arch,
        args.image_size, ctx.device, ctx.world, amp, channels_last, args.workers,
    )  # fmt: skip
    model, train_model = build_model(args, num_classes, ctx, channels_last)
    trainer = Trainer(args, ctx, splits, model, train_model, amp=amp, channels_last=channels_last)
    trainer.resume_or_start()
    with outputs.profiler_context(args, ctx) as profiler:
        trainer.fit(profiler)
    ctx.barrier()

    best_state, metrics = trainer.test_best()
    if ctx.main:
        outputs.write_outputs(
            args,
            splits,
            best_state=best_state,
            metrics=metrics,
            history=trainer.state.history,
            health=trainer.health,
            timing=trainer.timing,
            profiler=profiler,
        )
    log.info("best epoch %s: %s", trainer.state.best["epoch"], json.dumps(metrics))
    # Every rank leaves together: a rank that tore its gloo group down while rank 0 was still
    # writing the outputs was aborted ("terminate called without an active exception", SIGABRT),
    # and torchrun then failed the whole job.
    ctx.barrier()
    return 0


if __name__ == "__main__":
    cli.setup_logging(int(os.environ.get("RANK", "0")))
    sys.exit(cli.run(main, parse_args()))

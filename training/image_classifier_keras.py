"""Train an image classifier (Keras): a keras.applications backbone with a new softmax head.

The reference task is malaria cell images (parasitized vs uninfected); any ImageFolder tree works
(``train/ valid/ test/``, one folder per class):

    python training/image_classifier_keras.py --data data/malaria --backbone mobilenet_v2 \\
        --pretrained-weights "$(python -m training.weights path mobilenet_v2)"

The backbone starts from --pretrained-weights (alias --backbone-weights: a Keras application
weights file, include_top=False), else from the job's ``pretrained`` channel, else from random
weights (with a warning, unless --pretrained-weights none); nothing is downloaded here
(``python -m training.weights fetch`` does that). The saved ``model.keras``
takes raw pixels (float32 in [0, 255], shape (S, S, 3), input ``image``) and does its own
preprocessing; its output is the softmax ``probabilities``. Runs unchanged locally, on EC2 and as a
SageMaker job; checkpoints every epoch (and every --checkpoint-every-steps) and resumes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: C++ info noise

import keras
import numpy as np
import tensorflow as tf

from training.common import cli, env, images, keras_loop, pretrained

log = logging.getLogger("image_classifier_keras")

STEM = "image_classifier_keras"
DEFAULTS = {"epochs": 10, "batch_size": 32, "lr": 1e-3}
# Backbone -> (constructor, its preprocessing as layers on raw [0, 255] pixels).
BACKBONES = {
    "mobilenet_v2": (keras.applications.MobileNetV2, lambda: keras.layers.Rescaling(1 / 127.5, -1)),
    # EfficientNet rescales and normalises inside the application model itself.
    "efficientnet_b0": (keras.applications.EfficientNetB0, lambda: keras.layers.Identity()),
}
SMOKE_STEPS, SMOKE_EVAL_SAMPLES = 3, 64
HOLDOUT_FRACTION = 0.1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="image_classifier_keras.py", description=__doc__, formatter_class=cli.HelpFormatter
    )
    cli.add_common_arguments(parser, STEM, DEFAULTS)
    model = parser.add_argument_group("model")
    cli.add(model, "--backbone", type=cli.text, choices=sorted(BACKBONES), default="mobilenet_v2",
            help="keras.applications backbone")  # fmt: skip
    pretrained.add_argument(
        model, what="weights file for the backbone without its top (.h5 / .weights.h5)"
    )
    cli.add(model, "--alpha", type=cli.positive_float, default=1.0,
            help="MobileNetV2 width multiplier (must match --pretrained-weights)")  # fmt: skip
    cli.add(model, "--freeze-backbone", type=cli.auto_boolean, default=None,
            help="train only the head; auto (None): frozen when the backbone starts from "
            "pretrained weights")  # fmt: skip
    cli.add(model, "--image-size", type=cli.positive_int, default=96,
            help="square input size in pixels (at least 32)")  # fmt: skip
    cli.add(model, "--bn-momentum", type=cli.positive_float, default=None,
            help="BatchNorm momentum of a trainable backbone; None keeps the application's "
            "(0.999 for MobileNetV2: its moving statistics need thousands of steps, so "
            "short runs from random weights want e.g. 0.9)")  # fmt: skip
    cli.add(model, "--dropout", type=cli.non_negative_float, default=0.2,
            help="dropout before the head")  # fmt: skip
    cli.add(model, "--augment", type=cli.boolean, default=True,
            help="random flips during training (cells have no orientation)")  # fmt: skip
    cli.add(model, "--workers", type=cli.positive_int, default=None,
            help="parallel image decoders; None: tf.data AUTOTUNE")  # fmt: skip
    args = parser.parse_args(argv)
    if args.image_size < 32:
        parser.error(
            f"--image-size must be at least 32 for keras.applications, got {args.image_size}"
        )
    try:
        args.pretrained = pretrained.resolve(args.pretrained_weights)
    except env.UsageError as exc:
        parser.error(str(exc))
    args.freeze_backbone = (
        args.pretrained.path is not None if args.freeze_backbone is None else args.freeze_backbone
    )
    if args.smoke:
        args.epochs = 1
    return args


def build_model(args: argparse.Namespace, num_classes: int) -> keras.Model:
    constructor, preprocessing = BACKBONES[args.backbone]
    size = args.image_size
    weights = None
    if args.pretrained.path is not None:
        if not args.pretrained.path.is_file():
            raise env.UsageError(f"--pretrained-weights {args.pretrained.path} is not a file")
        weights = str(args.pretrained.path)
    kwargs = {"alpha": args.alpha} if args.backbone == "mobilenet_v2" else {}
    try:
        backbone = constructor(
            input_shape=(size, size, 3), include_top=False, weights=weights, pooling="avg", **kwargs
        )
    except ValueError as exc:
        raise env.UsageError(f"cannot build {args.backbone} with these weights: {exc}") from exc
    backbone.trainable = not args.freeze_backbone
    if args.bn_momentum is not None and not args.freeze_backbone:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = args.bn_momentum
    inputs = keras.Input(shape=(size, size, 3), dtype="float32", name="image")
    x = inputs
    if args.augment:
        x = keras.layers.RandomFlip("horizontal_and_vertical", seed=args.seed, name="augment")(x)
    x = preprocessing()(x)
    # A frozen backbone runs in inference mode, so its BatchNorm statistics stay pretrained.
    x = backbone(x, training=False if args.freeze_backbone else None)
    x = keras.layers.Dropout(args.dropout, seed=args.seed)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name=f"{args.backbone}_classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def image_dataset(
    paths: list[Path], labels: list[int], size: int, batch_size: int, workers: int | None
) -> tf.data.Dataset:
    """Decode with Pillow (the serving contract's resize) in parallel, in order, batched."""

    def load(path: bytes) -> np.ndarray:
        return images.load_rgb(Path(path.decode()), size).astype(np.float32)

    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels = tf.numpy_function(load, [path], tf.float32)
        pixels.set_shape((size, size, 3))
        return pixels, label

    dataset = tf.data.Dataset.from_tensor_slices(
        ([str(p) for p in paths], np.asarray(labels, dtype=np.int64))
    )
    return (
        dataset.map(decode, num_parallel_calls=workers or tf.data.AUTOTUNE, deterministic=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def main(args: argparse.Namespace) -> int:
    env.require_one_host_unless_distributed("image_classifier_keras.py", distributed=False)
    keras_loop.use_gpus(args.gpu_count)
    keras_loop.seed_everything(args.seed)
    channels = env.resolve_channels(
        args.data, {"train": args.train, "valid": args.valid, "test": args.test}
    )
    train_dir = channels["train"]
    if train_dir is None:  # resolve_channels raises first: train is a required channel
        raise env.UsageError("no train data: pass --data DIR holding train/, or --train DIR")
    paths, labels, class_names = images.scan(train_dir)
    if channels["valid"] is not None:
        valid = images.scan(channels["valid"], class_names)[:2]
    else:
        order = np.random.default_rng(args.seed).permutation(len(paths))
        cut = max(1, int(len(order) * HOLDOUT_FRACTION))
        log.warning("no validation data: holding out %d of %d training images", cut, len(order))
        valid = ([paths[i] for i in sorted(order[:cut])], [labels[i] for i in sorted(order[:cut])])
        keep = sorted(order[cut:])
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    test = images.scan(channels["test"], class_names)[:2] if channels["test"] else None
    if test is None:
        log.warning("no test data: metrics.json will have train and valid metrics only")
    if args.smoke:
        valid = (valid[0][:SMOKE_EVAL_SAMPLES], valid[1][:SMOKE_EVAL_SAMPLES])
        test = (test[0][:SMOKE_EVAL_SAMPLES], test[1][:SMOKE_EVAL_SAMPLES]) if test else None
    log.info(
        "%d classes, %d train / %d valid / %s test images; %s at %dpx, backbone %s",
        len(class_names), len(paths), len(valid[0]), len(test[0]) if test else "no",
        args.backbone, args.image_size,
        "frozen" if args.freeze_backbone else "trainable",
    )  # fmt: skip
    size, batch = args.image_size, args.batch_size
    max_steps = SMOKE_STEPS if args.smoke else None
    args.pretrained_record = pretrained.record(args.pretrained, arch=args.backbone, transfer=True)

    def train_batches(epoch: int, skip: int) -> tuple[tf.data.Dataset, list[int]]:
        # The epoch's order is a pure function of (seed, epoch): a resumed run sees the same
        # batches, and skipping done steps skips their files (nothing is decoded).
        order = np.random.default_rng([args.seed, epoch]).permutation(len(paths))
        sizes = [min(batch, len(order) - s) for s in range(0, len(order), batch)][:max_steps]
        order = order[skip * batch : sum(sizes)]
        dataset = image_dataset(
            [paths[i] for i in order], [labels[i] for i in order], size, batch, args.workers
        )
        return dataset, sizes[skip:]

    valid_ds = image_dataset(*valid, size, batch * 2, args.workers)
    probe = next(iter(valid_ds.take(1)))
    run = keras_loop.KerasRun(
        args=args,
        build_model=lambda: build_model(args, len(class_names)),
        train_batches=train_batches,
        valid=valid_ds,
        test=image_dataset(*test, size, batch * 2, args.workers) if test else None,
        probe=(probe[0][:batch], probe[1][:batch]),
        fingerprint={
            "backbone": args.backbone,
            "backbone_weights": args.pretrained_record.get("sha256", args.pretrained.source),
            "alpha": args.alpha,
            "class_names": class_names,
            "n_train": len(paths),
            "image_size": size,
            "epochs": args.epochs,
            "batch_size": batch,
            "lr": args.lr,
            "dropout": args.dropout,
            "bn_momentum": args.bn_momentum,
            "augment": args.augment,
            "freeze_backbone": args.freeze_backbone,
            "seed": args.seed,
            "smoke": args.smoke,
        },
        model_config={
            "framework": "tensorflow",
            "task": "image-classification",
            "class_names": class_names,
            "image_size": size,
            "backbone": args.backbone,
        },
        title=f"{args.backbone} on {len(class_names)} classes",
    )
    metrics = keras_loop.train(run)
    log.info("done: %s", metrics)
    return 0


if __name__ == "__main__":
    cli.setup_logging()
    sys.exit(cli.run(main, parse_args()))

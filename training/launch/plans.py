"""Flags to job plans: the ``train`` and ``tune`` arguments checked and resolved into the
:class:`~training.launch.sagemaker_jobs.TrainPlan` / ``TunePlan`` a job is built from.

Every mistake a flag can carry is a :class:`LaunchError` here, before anything reaches AWS.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from training.launch import settings
from training.launch.models import (
    Categorical,
    Continuous,
    Integer,
    ModelSpec,
    Range,
    get_model,
)
from training.launch.settings import LaunchError

if TYPE_CHECKING:
    from training.launch.sagemaker_jobs import TrainPlan, TunePlan

log = logging.getLogger("training.launch")

_HP_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,255}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+[a-z0-9\-]*\.[a-z0-9]+$")
_SCALINGS = {
    "auto": "Auto",
    "linear": "Linear",
    "log": "Logarithmic",
    "reverse-log": "ReverseLogarithmic",
}
MAX_RUNTIME_LIMIT_S = 28 * 24 * 3600  # SageMaker's ceiling for MaxRuntimeInSeconds


# -- flag parsing helpers -----------------------------------------------------------------------


def _scalar(text: str) -> str | int | float:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_key_values(pairs: Sequence[str], flag: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _HP_KEY.match(key) or value == "":
            raise LaunchError(f"{flag} {pair!r} should look like NAME=VALUE (e.g. {flag} epochs=3)")
        parsed[key] = value
    return parsed


def parse_range(name: str, text: str) -> Range:
    """``continuous:1e-5:1e-2[:log]``, ``integer:3:15[:linear]`` or ``categorical:16,32,64``."""
    kind, _, rest = text.partition(":")
    example = (
        "continuous:MIN:MAX[:log|linear|reverse-log|auto], integer:MIN:MAX[:...] or "
        "categorical:A,B,C"
    )
    if kind == "categorical":
        values = tuple(v for v in rest.split(",") if v)
        if not values:
            raise LaunchError(f"--range {name}={text}: give the values, e.g. categorical:16,32")
        return Categorical(values)
    if kind not in ("continuous", "integer"):
        raise LaunchError(f"--range {name}={text}: the range must be {example}")
    parts = rest.split(":")
    if len(parts) not in (2, 3):
        raise LaunchError(f"--range {name}={text}: the range must be {example}")
    scaling = _SCALINGS.get(parts[2] if len(parts) == 3 else "auto")
    if scaling is None:
        raise LaunchError(f"--range {name}={text}: scaling must be one of {', '.join(_SCALINGS)}")
    number = int if kind == "integer" else float
    try:
        low, high = number(parts[0]), number(parts[1])
    except ValueError:
        raise LaunchError(f"--range {name}={text}: MIN and MAX must be {kind} numbers") from None
    if not low < high:
        raise LaunchError(f"--range {name}={text}: MIN must be below MAX")
    if scaling in ("Logarithmic", "ReverseLogarithmic") and low <= 0:
        raise LaunchError(f"--range {name}={text}: logarithmic scaling needs MIN > 0")
    if kind == "integer":
        return Integer(int(low), int(high), scaling)  # type: ignore[arg-type]
    return Continuous(float(low), float(high), scaling)  # type: ignore[arg-type]


# -- plans --------------------------------------------------------------------------------------


def _channels(args: argparse.Namespace, model: ModelSpec, bucket: str) -> dict[str, str]:
    base = args.data or f"s3://{bucket}/{settings.DATASETS_PREFIX}{model.name}/"
    data_bucket, _ = settings.parse_s3_uri(base, "--data")
    base = base if base.endswith("/") else base + "/"
    channels = {name: f"{base}{name}/" for name in model.channels}
    for name, uri in parse_key_values(args.channel, "--channel").items():
        settings.parse_s3_uri(uri, f"--channel {name}=")
        channels[name] = uri
    if data_bucket != bucket and not args.role:
        log.warning(
            "--data is in bucket %s, but the project's training role can only read %s",
            data_bucket,
            bucket,
        )
    return channels


def check_positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise LaunchError(f"{flag} must be a positive number, got {value}")


def build_train_plan(args: argparse.Namespace, *, tuning: bool = False) -> TrainPlan:
    from training.launch import pretrained, sagemaker_jobs
    from training.launch.source import build_bundle

    model = get_model(args.model)
    target = settings.resolve_target(
        stage=args.stage,
        model=model.name,
        role=args.role,
        bucket=args.bucket,
        region=args.region,
        outputs_file=args.outputs_file,
    )
    for value, flag in (
        (args.instance_count, "--instance-count"),
        (args.volume_size_gb, "--volume-size-gb"),
        (args.max_run_s, "--max-run-s"),
        (args.max_wait_s, "--max-wait-s"),
    ):
        check_positive(value, flag)
    instance_type = args.instance_type or model.instance_type
    if not _INSTANCE_TYPE.match(instance_type):
        raise LaunchError(
            f"--instance-type {instance_type!r} is not a SageMaker instance type like ml.g5.xlarge"
        )
    if args.instance_count > 1:
        if model.framework != "pytorch":
            raise LaunchError(
                f"--instance-count {args.instance_count}: multi-instance training runs torchrun, "
                f"for the PyTorch models; {model.name} is a {model.framework} model: use 1"
            )
        if tuning:
            raise LaunchError(
                "tune runs single-instance trials (the tuning API starts the framework's own "
                "entry point, without torchrun): drop --instance-count"
            )
    max_run_s = args.max_run_s or model.max_run_s
    if max_run_s > MAX_RUNTIME_LIMIT_S:
        raise LaunchError(f"--max-run-s {max_run_s} is above SageMaker's limit (28 days)")
    max_wait_s = None
    if args.spot:
        max_wait_s = args.max_wait_s or 2 * max_run_s
        if max_wait_s < max_run_s:
            raise LaunchError(
                f"--max-wait-s {max_wait_s} must be at least --max-run-s {max_run_s}: it covers "
                "the time spent waiting for spot capacity plus the run itself"
            )
    elif args.max_wait_s is not None:
        raise LaunchError("--max-wait-s only applies to spot jobs: add --spot or drop it")
    hyperparameters: dict[str, str | int | float] = model.job_hyperparameters
    hyperparameters.update({k: _scalar(v) for k, v in parse_key_values(args.hp, "--hp").items()})
    channels = _channels(args, model, target.bucket)
    weights = None
    if pretrained.PRETRAINED_CHANNEL not in channels:  # --channel pretrained=... wins
        weights, extra = pretrained.resolve(
            args.pretrained_weights, model, hyperparameters, target.bucket
        )
        hyperparameters.update(extra)
        if weights is not None:
            channels[pretrained.PRETRAINED_CHANNEL] = weights.s3_uri
    image_uri = args.image_uri or sagemaker_jobs.resolve_image_uri(
        model, target.region, instance_type
    )
    return sagemaker_jobs.TrainPlan(
        model=model,
        stage=args.stage,
        target=target,
        image_uri=image_uri,
        instance_type=instance_type,
        instance_count=args.instance_count,
        volume_size_gb=args.volume_size_gb,
        spot=args.spot,
        max_run_s=max_run_s,
        max_wait_s=max_wait_s,
        hyperparameters=hyperparameters,
        channels=channels,
        source=build_bundle(),
        run_id=sagemaker_jobs.new_run_id(),
        checkpoints=not tuning,
        pretrained=weights,
    )


def build_tune_plan(args: argparse.Namespace) -> TunePlan:
    from training.launch import sagemaker_jobs

    train_plan = build_train_plan(args, tuning=True)
    model = train_plan.model
    ranges: dict[str, Range] = dict(model.tuning_ranges)
    for name, spec in parse_key_values(args.range, "--range").items():
        ranges[name] = parse_range(name, spec)
    check_positive(args.max_jobs, "--max-jobs")
    check_positive(args.max_parallel_jobs, "--max-parallel-jobs")
    check_positive(args.max_tuning_runtime_s, "--max-tuning-runtime-s")
    if args.max_parallel_jobs > args.max_jobs:
        raise LaunchError(
            f"--max-parallel-jobs {args.max_parallel_jobs} is more than --max-jobs {args.max_jobs}"
        )
    if args.strategy == "Hyperband" and args.early_stopping == "Auto":
        # Hyperband stops trials itself; the API rejects it combined with early stopping.
        raise LaunchError(
            "--strategy Hyperband has its own early stopping: add --early-stopping Off"
        )
    return sagemaker_jobs.TunePlan(
        train=train_plan,
        objective_metric=args.objective_metric or model.objective_metric,
        objective_type=args.objective_type or model.objective_type,
        ranges=ranges,
        max_jobs=args.max_jobs,
        max_parallel_jobs=args.max_parallel_jobs,
        strategy=args.strategy,
        early_stopping=args.early_stopping,
        max_runtime_s=args.max_tuning_runtime_s,
    )

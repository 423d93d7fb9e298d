"""``python -m training.launch <train|tune|upload-data|ec2>``: one command per kind of job.

    train        a SageMaker training job (single instance, multi-instance with torchrun, spot)
    tune         a SageMaker hyperparameter tuning job
    upload-data  upload a local data set folder to the project's bucket
    ec2          run a training script on this machine (an EC2 spot instance) against S3

``train`` and ``tune`` take ``--dry-run``: print the complete request (JSON, accepted by ``aws
sagemaker create-training-job --cli-input-json``) without credentials or network.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from training.common.metrics import STANDARD_METRICS
from training.download import FetchError
from training.launch import settings
from training.launch.models import (
    MODELS,
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

EXIT_AWS_ERROR = 1
EXIT_USAGE = 2
_HP_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,255}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+[a-z0-9\-]*\.[a-z0-9]+$")
_SCALINGS = {
    "auto": "Auto",
    "linear": "Linear",
    "log": "Logarithmic",
    "reverse-log": "ReverseLogarithmic",
}
MAX_RUNTIME_LIMIT_S = 28 * 24 * 3600  # SageMaker's ceiling for MaxRuntimeInSeconds


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


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


# -- argument parser ----------------------------------------------------------------------------


def _add_target_flags(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("where (flags win over cdk-outputs.json)")
    target.add_argument(
        "--model", required=True, choices=sorted(MODELS), help="which model (models.py)"
    )
    target.add_argument("--stage", default="dev", choices=settings.STAGES, help="deploy stage")
    target.add_argument(
        "--bucket",
        help="the project bucket; default: BucketName of MlServing-<stage>-<model> in "
        "--outputs-file",
    )
    target.add_argument("--region", help="AWS region; default AWS_REGION or the AWS config file")
    target.add_argument(
        "--outputs-file",
        type=Path,
        default=settings.DEFAULT_OUTPUTS_FILE,
        help="the stack outputs `make deploy` writes",
    )


def _add_job_flags(parser: argparse.ArgumentParser) -> None:
    _add_target_flags(parser)
    parser.add_argument(
        "--role",
        help="SageMaker training role ARN; default: TrainingRoleArn in --outputs-file",
    )
    job = parser.add_argument_group("job")
    job.add_argument(
        "--data",
        help="S3 URI holding one folder per channel (train/, valid/, test/); default "
        f"s3://BUCKET/{settings.DATASETS_PREFIX}MODEL/ (where upload-data puts it)",
    )
    job.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="NAME=S3URI",
        help="set one input channel's S3 URI (repeatable); overrides --data for that channel",
    )
    job.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a hyperparameter, passed to the script as --NAME VALUE (repeatable); "
        "e.g. --hp epochs=3 --hp smoke=true",
    )
    job.add_argument(
        "--pretrained-weights",
        default="auto",
        metavar="auto|none|NAME|S3URI",
        help="backbone weights of a transfer-learning model, passed as the 'pretrained' "
        "channel: auto = the weights of training/common/sources.py for the job's architecture "
        "(fetched, verified and uploaded to s3://BUCKET/training/input/weights/ once); none = "
        "random initialisation on purpose; a name from `python -m training.weights list`; or "
        "an s3:// URI of your own",
    )
    job.add_argument(
        "--instance-type", help="SageMaker instance type; default: the model's (see models.py)"
    )
    job.add_argument(
        "--instance-count",
        type=int,
        default=1,
        help="instances; above 1 runs torchrun across them (PyTorch models)",
    )
    job.add_argument("--volume-size-gb", type=int, default=30, help="EBS volume per instance")
    job.add_argument(
        "--image-uri",
        help="training image; default: the AWS Deep Learning Container for the model's "
        "framework, resolved offline",
    )
    job.add_argument(
        "--max-run-s", type=int, help="stop a job after this many seconds; default: the model's"
    )
    job.add_argument("--spot", action="store_true", help="managed spot training (checkpointed)")
    job.add_argument(
        "--max-wait-s",
        type=int,
        help="with --spot: give up after this many seconds of waiting plus running "
        "(>= --max-run-s); default 2 x --max-run-s",
    )
    job.add_argument(
        "--wait", action="store_true", help="wait for the job and print model_data=S3URI last"
    )
    job.add_argument(
        "--dry-run",
        action="store_true",
        help="print the request as JSON and exit; needs no credentials or network",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.launch", description=__doc__, formatter_class=_Formatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="start a SageMaker training job", formatter_class=_Formatter
    )
    _add_job_flags(train)

    tune = commands.add_parser(
        "tune", help="start a SageMaker hyperparameter tuning job", formatter_class=_Formatter
    )
    _add_job_flags(tune)
    tuning = tune.add_argument_group("tuning")
    tuning.add_argument("--max-jobs", type=int, default=8, help="training jobs in total")
    tuning.add_argument("--max-parallel-jobs", type=int, default=2, help="jobs at a time")
    tuning.add_argument(
        "--strategy", default="Bayesian", choices=("Bayesian", "Random", "Hyperband")
    )
    tuning.add_argument(
        "--early-stopping",
        default="Auto",
        choices=("Auto", "Off"),
        help="let SageMaker stop trials that are unlikely to beat the best one",
    )
    tuning.add_argument(
        "--objective-metric",
        choices=STANDARD_METRICS,
        help="metric to optimise; default: the model's (valid_accuracy)",
    )
    tuning.add_argument(
        "--objective-type", choices=("Maximize", "Minimize"), help="default: the model's"
    )
    tuning.add_argument(
        "--range",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="replace or add a tuned hyperparameter (repeatable): NAME=continuous:MIN:MAX[:log], "
        "NAME=integer:MIN:MAX or NAME=categorical:A,B,C; default: the model's ranges",
    )
    tuning.add_argument(
        "--max-tuning-runtime-s", type=int, help="stop the whole tuning job after this long"
    )

    upload = commands.add_parser(
        "upload-data",
        help="upload a local data set folder to the bucket",
        formatter_class=_Formatter,
    )
    _add_target_flags(upload)
    upload.add_argument("--source", type=Path, required=True, help="local folder, e.g. data/digits")
    upload.add_argument(
        "--prefix",
        help=f"key prefix in the bucket; default {settings.DATASETS_PREFIX}MODEL/ (what train "
        "reads)",
    )
    upload.add_argument("--workers", type=int, default=8, help="parallel uploads")
    upload.add_argument(
        "--dry-run", action="store_true", help="list the keys it would write, offline"
    )

    ec2 = commands.add_parser(
        "ec2",
        help="train on this machine (e.g. an EC2 spot instance) with data and results in S3",
        formatter_class=_Formatter,
        description="Syncs --data down, restores checkpoints from --output, runs the model's "
        "script with local paths, syncs checkpoints up every --checkpoint-sync-s and on SIGTERM "
        "(spot interruption), and uploads the model dir as OUTPUT/model.tar.gz. Arguments after "
        "`--` go to the training script.",
    )
    ec2.add_argument("--model", required=True, choices=sorted(MODELS), help="which model")
    ec2.add_argument("--data", required=True, help="S3 URI of the data set (one folder/channel)")
    ec2.add_argument(
        "--output",
        required=True,
        help="S3 URI for this run: checkpoints/, model.tar.gz and output.tar.gz go under it",
    )
    ec2.add_argument("--region", help="AWS region; default AWS_REGION or the AWS config file")
    ec2.add_argument(
        "--work-dir",
        type=Path,
        default=Path("runs/ec2"),
        help="local folder for data, checkpoints and the model",
    )
    ec2.add_argument(
        "--checkpoint-sync-s",
        type=float,
        default=60.0,
        help="seconds between checkpoint uploads while training",
    )
    ec2.add_argument(
        "--spot-notice-poll-s",
        type=float,
        default=0.0,
        help="poll the EC2 metadata service for a spot interruption notice every this many "
        "seconds and upload checkpoints when one comes (0: off; SIGTERM is handled either way)",
    )
    ec2.add_argument(
        "--pretrained-weights",
        default="auto",
        metavar="auto|none|NAME|PATH",
        help="backbone weights of a transfer-learning model: auto = the weights of "
        "training/common/sources.py for its architecture, fetched into the local cache and "
        "passed as the script's --pretrained-weights; none; a weights name; or a local file",
    )
    ec2.add_argument(
        "--entry-script",
        type=Path,
        help="run this script instead of the model's training/<script>.py",
    )
    return parser


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


def _check_positive(value: int | None, flag: str) -> None:
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
        _check_positive(value, flag)
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
    _check_positive(args.max_jobs, "--max-jobs")
    _check_positive(args.max_parallel_jobs, "--max-parallel-jobs")
    _check_positive(args.max_tuning_runtime_s, "--max-tuning-runtime-s")
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


# -- commands -----------------------------------------------------------------------------------


def _print_json(request: dict) -> None:
    json.dump(request, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def _log_pretrained_dry_run(plan: TrainPlan) -> None:
    if plan.pretrained is not None and plan.pretrained.weights is not None:
        spec = plan.pretrained.weights.download
        log.info(
            "dry run: would fetch %s (%s) and upload it to %s",
            plan.pretrained.weights.name,
            spec.url,
            plan.pretrained.s3_uri,
        )


def cmd_train(args: argparse.Namespace) -> int:
    from training.launch import sagemaker_jobs

    plan = build_train_plan(args)
    if args.dry_run:
        log.info("dry run: would upload the code bundle to %s", plan.source_uri)
        _log_pretrained_dry_run(plan)
        _print_json(sagemaker_jobs.dry_run_training(plan))
        return 0
    result = sagemaker_jobs.run_training(plan, wait=args.wait)
    print(f"job_name={result.job_name}")
    if plan.checkpoint_uri:
        print(f"checkpoints={plan.checkpoint_uri}")
    if not args.wait:
        print(f"model_data={plan.output_path}/{result.job_name}/output/model.tar.gz (when done)")
        return 0
    print(f"status={result.status}")
    if result.status != "Completed" or not result.model_data:
        log.error(
            "training job %s ended %s: see its CloudWatch logs", result.job_name, result.status
        )
        return EXIT_AWS_ERROR
    print(f"model_data={result.model_data}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from training.launch import sagemaker_jobs

    plan = build_tune_plan(args)
    if args.dry_run:
        log.info("dry run: would upload the code bundle to %s", plan.train.source_uri)
        _log_pretrained_dry_run(plan.train)
        _print_json(sagemaker_jobs.dry_run_tuning(plan))
        return 0
    result = sagemaker_jobs.run_tuning(plan, wait=args.wait)
    if not args.wait:
        print(f"tuning_job_name={result.job_name}")
        return 0
    print(f"best_training_job={result.job_name}")
    print(f"status={result.status}")
    if not result.model_data:
        return EXIT_AWS_ERROR
    print(f"model_data={result.model_data}")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    from training.launch import upload

    target = settings.resolve_target(
        stage=args.stage,
        model=args.model,
        role=None,
        bucket=args.bucket,
        region=args.region,
        outputs_file=args.outputs_file,
        need_role=False,
    )
    prefix = args.prefix or f"{settings.DATASETS_PREFIX}{args.model}/"
    _check_positive(args.workers, "--workers")
    uri = upload.upload_folder(
        args.source,
        bucket=target.bucket,
        prefix=prefix,
        region=target.region,
        workers=args.workers,
        dry_run=args.dry_run,
    )
    print(f"data={uri}")
    return 0


def cmd_ec2(args: argparse.Namespace, script_args: list[str]) -> int:
    from training.launch import ec2, pretrained

    model = get_model(args.model)
    weights_args = pretrained.script_args_for_local_run(args.pretrained_weights, model, script_args)
    return ec2.run(
        model=model,
        data_uri=args.data,
        output_uri=args.output,
        region=settings.resolve_region(args.region),
        work_dir=args.work_dir,
        checkpoint_sync_s=args.checkpoint_sync_s,
        spot_notice_poll_s=args.spot_notice_poll_s,
        entry_script=args.entry_script,
        script_args=[*weights_args, *script_args],  # the user's own arguments last: they win
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, script_args = argv[:split], argv[split + 1 :]
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if script_args and args.command != "ec2":
        print(f"error: arguments after -- only apply to ec2; use --hp with {args.command}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "tune":
            return cmd_tune(args)
        if args.command == "upload-data":
            return cmd_upload(args)
        return cmd_ec2(args, script_args)
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FetchError as exc:  # pretrained weights that could not be fetched or verified
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_AWS_ERROR
    except NoCredentialsError:
        print(
            "error: no AWS credentials: run `aws configure` / `aws sso login` or set "
            "AWS_PROFILE (or use --dry-run, which needs none)",
            file=sys.stderr,
        )
        return EXIT_AWS_ERROR
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(
            f"error: AWS rejected {exc.operation_name}: {error.get('Code')}: "
            f"{error.get('Message')}",
            file=sys.stderr,
        )
        return EXIT_AWS_ERROR
    except BotoCoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_AWS_ERROR

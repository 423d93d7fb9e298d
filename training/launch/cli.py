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
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from training.common.metrics import STANDARD_METRICS
from training.download import FetchError
from training.launch import commands, settings
from training.launch.models import MODELS
from training.launch.settings import LaunchError

# The flags and the exit statuses live here (the docstring above is the --help text); what each
# command does is in commands.py, and how train/tune flags become a job plan in plans.py.
log = logging.getLogger("training.launch")

EXIT_AWS_ERROR = commands.EXIT_AWS_ERROR
EXIT_USAGE = 2


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


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
            return commands.train(args)
        if args.command == "tune":
            return commands.tune(args)
        if args.command == "upload-data":
            return commands.upload_data(args)
        return commands.ec2(args, script_args)
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

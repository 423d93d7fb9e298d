"""What each ``python -m training.launch`` command does with its parsed flags (see
:mod:`training.launch.cli` for the flags): start the job or print its request, report the result.

Each returns the process's exit status; mistakes in the flags raise :class:`LaunchError`, which
the command line turns into a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import TYPE_CHECKING

from training.launch import settings
from training.launch.models import get_model
from training.launch.plans import build_train_plan, build_tune_plan, check_positive

if TYPE_CHECKING:
    from training.launch.sagemaker_jobs import TrainPlan

log = logging.getLogger("training.launch")

EXIT_AWS_ERROR = 1


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


def train(args: argparse.Namespace) -> int:
    from training.launch import dry_run, sagemaker_jobs

    plan = build_train_plan(args)
    if args.dry_run:
        log.info("dry run: would upload the code bundle to %s", plan.source_uri)
        _log_pretrained_dry_run(plan)
        _print_json(dry_run.dry_run_training(plan))
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


def tune(args: argparse.Namespace) -> int:
    from training.launch import dry_run, sagemaker_jobs

    plan = build_tune_plan(args)
    if args.dry_run:
        log.info("dry run: would upload the code bundle to %s", plan.train.source_uri)
        _log_pretrained_dry_run(plan.train)
        _print_json(dry_run.dry_run_tuning(plan))
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


def upload_data(args: argparse.Namespace) -> int:
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
    check_positive(args.workers, "--workers")
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


def ec2(args: argparse.Namespace, script_args: list[str]) -> int:
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

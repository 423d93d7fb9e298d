"""SageMaker training and tuning jobs on the SDK 3.x ``ModelTrainer`` / ``HyperparameterTuner``.

Both paths, real and ``--dry-run``, build the *same* SDK objects here (``ModelTrainer`` with
``SourceCode``, ``Compute``, ``StoppingCondition``, ``CheckpointConfig``, ``OutputDataConfig``,
``Torchrun``; ``HyperparameterTuner`` with ``sagemaker.core.parameter`` ranges). The real path hands
them to the SDK, which uploads its drivers and calls CreateTrainingJob /
CreateHyperParameterTuningJob; the dry run (:mod:`training.launch.dry_run`) assembles the request
from them offline.

Constructing the SDK objects makes no AWS call here: the role is an ARN (no ``iam:GetRole``), the
SDK's client-side role check is switched off (see ``_sdk_offline``), the session gets an explicit
config (no config-file or S3 lookups) and an explicit bucket.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from training.common.metrics import STANDARD_METRICS, metric_definitions
from training.launch import settings
from training.launch.models import Categorical, Continuous, Integer, ModelSpec, Range
from training.launch.pretrained import PretrainedInput
from training.launch.settings import LaunchError, Target
from training.launch.source import SourceBundle

if TYPE_CHECKING:  # the SDK takes ~6 s to import: only the commands that need it load it
    import boto3
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer
    from sagemaker.train.tuner import HyperparameterTuner

log = logging.getLogger(__name__)

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# What SDK 3.x users get with an empty defaults file, plus telemetry off: the request printed by a
# dry run must be the request sent, so no settings may come from files the dry run does not show.
SDK_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


@dataclass(frozen=True)
class TrainPlan:
    """Everything one training job needs, resolved and validated; no AWS calls made yet."""

    model: ModelSpec
    stage: str
    target: Target
    image_uri: str
    instance_type: str
    instance_count: int
    volume_size_gb: int
    spot: bool
    max_run_s: int
    max_wait_s: int | None
    hyperparameters: Mapping[str, str | int | float]
    channels: Mapping[str, str]  # channel name -> S3 URI
    source: SourceBundle
    run_id: str
    metric_names: tuple[str, ...] = STANDARD_METRICS
    # Tuning trials share one job definition, so one checkpoint URI: a trial would resume from
    # another trial's checkpoints. Tuning turns them off (an interrupted spot trial restarts).
    checkpoints: bool = True
    # Weights from the sources table to upload before the job (already one of `channels`).
    pretrained: PretrainedInput | None = None

    @property
    def base_job_name(self) -> str:
        return f"{self.model.name}-{self.stage}"

    @property
    def source_uri(self) -> str:
        key = f"{settings.CODE_PREFIX}{self.model.name}/{self.source.file_name}"
        return f"s3://{self.target.bucket}/{key}"

    @property
    def output_path(self) -> str:
        return f"s3://{self.target.bucket}/{settings.OUTPUT_PREFIX.rstrip('/')}"

    @property
    def checkpoint_uri(self) -> str | None:
        # One folder per job: SageMaker restores it onto the replacement instance after a spot
        # interruption; a folder shared between jobs would make one job resume another's run.
        if not (self.spot and self.checkpoints):
            return None
        prefix = f"{settings.CHECKPOINT_PREFIX}{self.model.name}/{self.run_id}/"
        return f"s3://{self.target.bucket}/{prefix}"


@dataclass(frozen=True)
class TunePlan:
    train: TrainPlan
    objective_metric: str
    objective_type: str
    ranges: Mapping[str, Range]
    max_jobs: int
    max_parallel_jobs: int
    strategy: str = "Bayesian"
    early_stopping: str = "Auto"
    max_runtime_s: int | None = None

    @property
    def base_tuning_job_name(self) -> str:
        return self.train.base_job_name


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


def resolve_image_uri(model: ModelSpec, region: str, instance_type: str) -> str:
    """The AWS Deep Learning Container training image, from JSON shipped in sagemaker-core."""
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(
            model.framework,
            region=region,
            version=model.framework_version,
            py_version=model.py_version,
            instance_type=instance_type,
            image_scope="training",
        )
    except ValueError as exc:
        raise LaunchError(
            f"no {model.framework} {model.framework_version} training image for {region} / "
            f"{instance_type} ({exc}): pass --image-uri"
        ) from exc


def metric_definition_dicts(plan: TrainPlan) -> list[dict[str, str]]:
    return metric_definitions(plan.metric_names)


# -- SDK objects --------------------------------------------------------------------------------


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _sdk_region(region: str) -> Iterator[None]:
    """``--region`` for the SDK parts that build clients from the default session (the log
    streamer behind ``wait(logs=True)`` does), not only for those that take our session."""
    with _env(AWS_DEFAULT_REGION=region):
        yield


@contextlib.contextmanager
def _sdk_offline() -> Iterator[None]:
    """Skip the SDK's client-side role check while the SDK objects are built.

    SDK 3.x simulates the role's policies (``iam:SimulatePrincipalPolicy``) when a ``ModelTrainer``
    is built and rejects a role that lacks its smoke-test actions, which include the VPC network
    interface actions (``ec2:CreateNetworkInterface``...). Our role is deliberately narrower (jobs
    run outside a VPC; stacks/training_access.py), so the check would reject a correct role; and a
    dry run must not call IAM at all. tests/infra/test_training_access.py pins what the role may do.
    """
    with _env(SAGEMAKER_VALIDATE_ROLE="false"):
        yield


def make_session(target: Target, boto_session: boto3.Session | None = None) -> Session:
    import boto3
    from sagemaker.core.helper.session_helper import Session

    boto_session = boto_session or boto3.Session(region_name=target.region)
    return Session(
        boto_session=boto_session,
        default_bucket=target.bucket,
        # The SDK stages its driver folder under <default_bucket_prefix>/<base job>/<job>/input/,
        # or under the output path when it finds the role cannot write the default bucket: both
        # inside the output prefix, which the training role can read back.
        default_bucket_prefix=settings.OUTPUT_PREFIX.rstrip("/"),
        sagemaker_config=SDK_CONFIG,
    )


def build_trainer(plan: TrainPlan, session: Session) -> ModelTrainer:
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        MetricDefinition,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
    )
    from sagemaker.train import ModelTrainer
    from sagemaker.train.distributed import Torchrun

    hyperparameters: dict[str, Any] = dict(plan.hyperparameters)
    if plan.spot:
        # The scripts default to /opt/ml/checkpoints inside SageMaker too; saying it keeps the
        # request self-explanatory.
        hyperparameters.setdefault("checkpoint-dir", CHECKPOINT_LOCAL_PATH)
    distributed = None
    if plan.instance_count > 1:
        # One process per GPU on each node (the SDK's default), torchrun across the nodes.
        distributed = Torchrun()
    with _sdk_offline():
        trainer = ModelTrainer(
            sagemaker_session=session,
            role=plan.target.role_arn,
            base_job_name=plan.base_job_name,
            training_image=plan.image_uri,
            source_code=SourceCode(
                source_dir=plan.source_uri, entry_script=plan.model.entry_script
            ),
            distributed=distributed,
            compute=Compute(
                instance_type=plan.instance_type,
                instance_count=plan.instance_count,
                volume_size_in_gb=plan.volume_size_gb,
                enable_managed_spot_training=plan.spot or None,
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=plan.max_run_s,
                max_wait_time_in_seconds=plan.max_wait_s,
            ),
            output_data_config=OutputDataConfig(
                s3_output_path=plan.output_path, compression_type="GZIP"
            ),
            checkpoint_config=(
                CheckpointConfig(s3_uri=plan.checkpoint_uri, local_path=CHECKPOINT_LOCAL_PATH)
                if plan.checkpoint_uri
                else None
            ),
            hyperparameters=hyperparameters,
            environment={},
        )
    trainer.with_metric_definitions(
        [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in metric_definition_dicts(plan)]
    )
    return trainer


def input_data(plan: TrainPlan) -> list[Any]:
    from sagemaker.core.training.configs import InputData

    return [InputData(channel_name=name, data_source=uri) for name, uri in plan.channels.items()]


def _parameter_ranges(ranges: Mapping[str, Range]) -> dict[str, Any]:
    from sagemaker.core.parameter import (
        CategoricalParameter,
        ContinuousParameter,
        IntegerParameter,
    )

    converted: dict[str, Any] = {}
    for name, spec in ranges.items():
        if isinstance(spec, Continuous):
            converted[name] = ContinuousParameter(
                spec.min_value, spec.max_value, scaling_type=spec.scaling
            )
        elif isinstance(spec, Integer):
            converted[name] = IntegerParameter(
                spec.min_value, spec.max_value, scaling_type=spec.scaling
            )
        elif isinstance(spec, Categorical):
            converted[name] = CategoricalParameter(list(spec.values))
    return converted


def build_tuner(plan: TunePlan, trainer: ModelTrainer) -> HyperparameterTuner:
    from sagemaker.train.tuner import HyperparameterTuner

    return HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=plan.objective_metric,
        objective_type=plan.objective_type,
        hyperparameter_ranges=_parameter_ranges(plan.ranges),
        metric_definitions=metric_definition_dicts(plan.train),
        strategy=plan.strategy,
        max_jobs=plan.max_jobs,
        max_parallel_jobs=plan.max_parallel_jobs,
        max_runtime_in_seconds=plan.max_runtime_s,
        early_stopping_type=plan.early_stopping,
        base_tuning_job_name=plan.base_tuning_job_name,
    )


# -- real jobs ----------------------------------------------------------------------------------


def upload_source(plan: TrainPlan, boto_session: boto3.Session) -> None:
    """Upload the code bundle unless an object with the same content hash is already there."""
    from botocore.exceptions import ClientError

    s3 = boto_session.client("s3")
    key = plan.source_uri.removeprefix(f"s3://{plan.target.bucket}/")
    try:
        s3.head_object(Bucket=plan.target.bucket, Key=key)
        log.info("code bundle %s is already in S3", plan.source_uri)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(
        Bucket=plan.target.bucket,
        Key=key,
        Body=plan.source.data,
        ChecksumSHA256=_b64_sha256(plan.source.sha256),
    )
    log.info("uploaded code bundle to %s", plan.source_uri)


def upload_pretrained(plan: TrainPlan, boto_session: boto3.Session) -> None:
    """Fetch (verified, cached) and upload the job's pretrained weights unless already there."""
    if plan.pretrained is not None:
        from training.launch import pretrained

        pretrained.upload(plan.pretrained, boto_session.client("s3"))


def _b64_sha256(hex_digest: str) -> str:
    import base64

    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


@dataclass(frozen=True)
class JobResult:
    job_name: str
    status: str | None
    model_data: str | None


def run_training(
    plan: TrainPlan, *, wait: bool, boto_session: boto3.Session | None = None
) -> JobResult:
    import boto3

    boto_session = boto_session or boto3.Session(region_name=plan.target.region)
    upload_source(plan, boto_session)
    upload_pretrained(plan, boto_session)
    trainer = build_trainer(plan, make_session(plan.target, boto_session))
    with _sdk_offline(), _sdk_region(plan.target.region):
        trainer.train(input_data_config=input_data(plan), wait=wait, logs=wait)
    job = trainer._latest_training_job  # the SDK's documented handle on the job it started
    job_name = job.training_job_name
    if not wait:
        return JobResult(job_name, None, None)
    job.refresh()
    artifacts = getattr(job, "model_artifacts", None)
    model_data = getattr(artifacts, "s3_model_artifacts", None)
    return JobResult(job_name, job.training_job_status, model_data)


def run_tuning(
    plan: TunePlan, *, wait: bool, boto_session: boto3.Session | None = None
) -> JobResult:
    import boto3

    boto_session = boto_session or boto3.Session(region_name=plan.train.target.region)
    upload_source(plan.train, boto_session)
    upload_pretrained(plan.train, boto_session)
    trainer = build_trainer(plan.train, make_session(plan.train.target, boto_session))
    tuner = build_tuner(plan, trainer)
    with _sdk_offline(), _sdk_region(plan.train.target.region):
        tuner.tune(inputs=input_data(plan.train), wait=wait)
    name = tuner.latest_tuning_job.hyper_parameter_tuning_job_name
    if not wait:
        return JobResult(name, None, None)
    best = tuner.best_training_job()
    described = boto_session.client("sagemaker").describe_training_job(TrainingJobName=best)
    return JobResult(
        best, described["TrainingJobStatus"], described["ModelArtifacts"]["S3ModelArtifacts"]
    )

"""``--dry-run``: the CreateTrainingJob / CreateHyperParameterTuningJob request a real run sends,
built offline from the same SDK objects and checked against botocore's sagemaker service model.

The request is assembled from the ``ModelTrainer`` / ``HyperparameterTuner`` that
:mod:`training.launch.sagemaker_jobs` builds, the way the SDK does (``_create_training_job_args``:
same shapes, same ``serialize``) but without the one step that needs AWS, the upload of the SDK's
driver folder, whose S3 location it computes instead. The integration tests compare this request
with the one a real run sends (against moto) field by field, so a change in the SDK cannot make
the dry run lie quietly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from training.launch.sagemaker_jobs import (
    TrainPlan,
    TunePlan,
    build_trainer,
    build_tuner,
    input_data,
    make_session,
)
from training.launch.settings import LaunchError

if TYPE_CHECKING:  # the SDK takes ~6 s to import: only the commands that need it load it
    from sagemaker.train import ModelTrainer
    from sagemaker.train.tuner import HyperparameterTuner


def _staged_uri(trainer: ModelTrainer, bucket: str, key_prefix: str, channel: str) -> str:
    """Where ``ModelTrainer.create_input_data_channel`` uploads a local folder for ``channel``."""
    prefix = f"{key_prefix}/{channel}"
    if trainer.sagemaker_session.default_bucket_prefix:
        prefix = f"{trainer.sagemaker_session.default_bucket_prefix}/{prefix}"
    return f"s3://{bucket}/{prefix}"


def _s3_channel(name: str, uri: str) -> Any:
    from sagemaker.core.training.configs import Channel, DataSource, S3DataSource

    return Channel(
        channel_name=name,
        data_source=DataSource(
            s3_data_source=S3DataSource(
                s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="FullyReplicated"
            )
        ),
        input_mode="File",
    )


def training_request(plan: TrainPlan, trainer: ModelTrainer) -> dict[str, Any]:
    """The CreateTrainingJob request ``trainer.train(input_data(plan))`` sends, built offline."""
    from sagemaker.core.apiutils._boto_functions import to_pascal_case
    from sagemaker.core.shapes import AlgorithmSpecification
    from sagemaker.core.training.constants import (
        DEFAULT_CONTAINER_ARGUMENTS,
        DEFAULT_CONTAINER_ENTRYPOINT,
        SM_CODE,
        SM_DRIVERS,
    )
    from sagemaker.core.utils.utils import serialize
    from sagemaker.train.utils import _get_unique_name, safe_serialize

    job_name = _get_unique_name(trainer.base_job_name)
    key_prefix = f"{trainer.input_s3_key_prefix or trainer.base_job_name}/{job_name}/input"
    channels = [_s3_channel(c.channel_name, c.data_source) for c in input_data(plan)]
    channels.append(_s3_channel(SM_CODE, plan.source_uri))
    drivers_uri = _staged_uri(trainer, plan.target.bucket, key_prefix, SM_DRIVERS)
    channels.append(_s3_channel(SM_DRIVERS, drivers_uri))
    request = {
        "training_job_name": job_name,
        "algorithm_specification": AlgorithmSpecification(
            training_image=trainer.training_image,
            training_input_mode=trainer.training_input_mode,
            container_entrypoint=DEFAULT_CONTAINER_ENTRYPOINT,
            container_arguments=DEFAULT_CONTAINER_ARGUMENTS,
            metric_definitions=trainer._metric_definitions,
        ),
        "hyper_parameters": {k: safe_serialize(v) for k, v in trainer.hyperparameters.items()},
        "input_data_config": channels,
        "resource_config": trainer.compute._to_resource_config(),
        "role_arn": trainer.role,
        "stopping_condition": trainer.stopping_condition,
        "output_data_config": trainer.output_data_config,
        "checkpoint_config": trainer.checkpoint_config,
        "environment": trainer.environment or None,
        "enable_managed_spot_training": trainer.compute.enable_managed_spot_training,
    }
    return serialize({to_pascal_case(k): v for k, v in request.items() if v is not None})


def tuning_request(plan: TunePlan, tuner: HyperparameterTuner) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request ``tuner.tune(...)`` sends, built offline.

    Mirrors ``HyperparameterTuner._build_driver_and_code_channels`` for an S3 ``source_dir`` (no
    code upload; the framework container fetches ``sagemaker_submit_directory``), computing the
    driver folder's staging URI instead of uploading it; the rest is the tuner's own builders.
    """
    from sagemaker.core.training.constants import SM_DRIVERS
    from sagemaker.core.utils.utils import serialize

    trainer = tuner.model_trainer
    key_prefix = f"{trainer.base_job_name or 'tuning'}/tuning-{int(time.time())}/input"
    drivers_uri = _staged_uri(trainer, plan.train.target.bucket, key_prefix, SM_DRIVERS)
    trainer._tuner_channels = [_s3_channel(SM_DRIVERS, drivers_uri)]
    trainer.hyperparameters["sagemaker_program"] = trainer.source_code.entry_script
    trainer.hyperparameters["sagemaker_submit_directory"] = trainer.source_code.source_dir
    tuner._prepare_for_tuning()
    request = {
        "HyperParameterTuningJobName": tuner._current_job_name,
        "HyperParameterTuningJobConfig": tuner._build_tuning_job_config(),
        "TrainingJobDefinition": tuner._build_training_job_definition(input_data(plan.train)),
    }
    return serialize(request)


def validate_request(operation: str, request: Mapping[str, Any]) -> None:
    """Check ``request`` against botocore's sagemaker service model: the real API contract."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
    if report.has_errors():
        raise LaunchError(f"the {operation} request is invalid:\n{report.generate_report()}")


def dry_run_training(plan: TrainPlan) -> dict[str, Any]:
    trainer = build_trainer(plan, make_session(plan.target))
    request = training_request(plan, trainer)
    validate_request("CreateTrainingJob", request)
    return request


def dry_run_tuning(plan: TunePlan) -> dict[str, Any]:
    trainer = build_trainer(plan.train, make_session(plan.train.target))
    request = tuning_request(plan, build_tuner(plan, trainer))
    validate_request("CreateHyperParameterTuningJob", request)
    return request

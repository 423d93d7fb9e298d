"""The real path (SDK ``ModelTrainer`` / ``HyperparameterTuner``) against moto at the AWS boundary.

The request the SDK actually sends is captured from botocore (``provide-client-params`` event on
the boto3 session) and compared field by field with what ``--dry-run`` prints for the same plan:
the dry run must not drift from the SDK. Also: the code bundle and the SDK's drivers land where
the training role can read them, and ``--wait`` yields the model's S3 URI.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tarfile

import boto3
import pytest
from moto import mock_aws

from training.launch import cli, dry_run, plans, sagemaker_jobs, settings

ROLE = "arn:aws:iam::123456789012:role/MlServing-dev-digits-TrainingRole"
BUCKET = "mlserving-dev-digits-bucket"
REGION = "eu-west-1"
TARGET = ["--role", ROLE, "--bucket", BUCKET, "--region", REGION]


@pytest.fixture
def aws(monkeypatch):
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        session.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        sent: dict[str, dict] = {}

        def capture(params, model, **_):
            sent[model.name] = json.loads(json.dumps(params, default=str))

        session.events.register("provide-client-params.sagemaker.*", capture)
        yield session, sent


def normalise(request: dict) -> dict:
    """Blank the parts that differ between two launches by design: timestamps in names."""
    text = json.dumps(request, sort_keys=True)
    text = re.sub(r"digits-dev-\d{14}", "digits-dev-<ts>", text)
    text = re.sub(r"tuning-\d{10}", "tuning-<ts>", text)
    text = re.sub(r"digits-dev-\d{6}-\d{4}(-\d{3})?", "digits-dev-<short-ts>", text)
    return json.loads(text)


def keys(session, prefix: str) -> list[str]:
    listing = session.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_training_job_sends_what_the_dry_run_prints(aws) -> None:
    session, sent = aws
    plan = plans.build_train_plan(
        cli.build_parser().parse_args(["train", "--model", "digits", *TARGET, "--spot"])
    )
    dry = dry_run.dry_run_training(plan)

    result = sagemaker_jobs.run_training(plan, wait=True, boto_session=session)

    real = sent["CreateTrainingJob"]
    assert normalise(real) == normalise(dry)
    assert result.status == "Completed"
    assert result.model_data == (
        f"s3://{BUCKET}/training/jobs/{real['TrainingJobName']}/output/model.tar.gz"
    )
    # the code bundle is the training/ folder, without the launcher, under the read-only prefix
    code_key = plan.source_uri.removeprefix(f"s3://{BUCKET}/")
    assert code_key.startswith(settings.DATA_PREFIX)
    body = session.client("s3").get_object(Bucket=BUCKET, Key=code_key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        names = tar.getnames()
    assert "image_classifier_torch.py" in names and "training/common/metrics.py" in names
    assert not [n for n in names if n.startswith("launch/") or "__pycache__" in n]
    # the SDK staged its drivers inside the output prefix, which the role can read back
    drivers = keys(session, settings.OUTPUT_PREFIX)
    assert any(k.endswith("/input/sm_drivers/sm_train.sh") for k in drivers)


def test_second_launch_of_unchanged_code_uploads_no_new_bundle(aws) -> None:
    session, _ = aws
    args = cli.build_parser().parse_args(["train", "--model", "digits", *TARGET])
    first = plans.build_train_plan(args)
    sagemaker_jobs.run_training(first, wait=False, boto_session=session)
    second = plans.build_train_plan(args)
    assert second.source_uri == first.source_uri  # content-addressed
    sagemaker_jobs.run_training(second, wait=False, boto_session=session)
    assert keys(session, settings.CODE_PREFIX) == [first.source_uri.split(f"{BUCKET}/")[1]]


def test_tuning_job_sends_what_the_dry_run_prints_and_finds_the_best_model(aws) -> None:
    session, sent = aws
    plan = plans.build_tune_plan(
        cli.build_parser().parse_args(
            ["tune", "--model", "digits", *TARGET, "--max-jobs", "4", "--early-stopping", "Off"]
        )
    )
    dry = dry_run.dry_run_tuning(copy.deepcopy(plan))
    # moto's tuning job names a fixed best training job; make it exist, as SageMaker would
    sagemaker = session.client("sagemaker")
    sagemaker.create_training_job(
        TrainingJobName="FakeTrainingJobName",
        AlgorithmSpecification={"TrainingImage": plan.train.image_uri, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": plan.train.output_path},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )

    result = sagemaker_jobs.run_tuning(plan, wait=True, boto_session=session)

    assert normalise(sent["CreateHyperParameterTuningJob"]) == normalise(dry)
    assert result.job_name == "FakeTrainingJobName"
    assert result.model_data == (
        f"s3://{BUCKET}/training/jobs/FakeTrainingJobName/output/model.tar.gz"
    )


def test_cli_train_wait_prints_model_data_last(aws, capsys, monkeypatch) -> None:
    session, _ = aws
    monkeypatch.setattr(boto3, "Session", lambda **kw: session)  # the moto-backed session
    assert cli.main(["train", "--model", "digits", *TARGET, "--wait"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith(f"model_data=s3://{BUCKET}/training/jobs/digits-dev-")
    assert lines[-1].endswith("/output/model.tar.gz")

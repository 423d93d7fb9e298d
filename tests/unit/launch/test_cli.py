"""The launcher's command line in-process: more dry-run shapes, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.launch import cli
from training.launch.models import Categorical, Continuous, Integer
from training.launch.plans import parse_range

ROLE = "arn:aws:iam::123456789012:role/MlServing-dev-digits-TrainingRole"
BUCKET = "mlserving-dev-digits-bucket"
TARGET = ["--role", ROLE, "--bucket", BUCKET, "--region", "eu-west-1"]


@pytest.fixture(autouse=True)
def no_aws_env(monkeypatch, tmp_path):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)  # no cdk-outputs.json here unless a test writes one


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keras_model_uses_the_tensorflow_image_and_its_channels(capsys) -> None:
    code, out, _ = run(capsys, "train", "--model", "sentiment", *TARGET, "--dry-run")
    assert code == 0
    request = json.loads(out)
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-training:2.21-cpu-py312"
    )
    assert "EnableManagedSpotTraining" not in request and "CheckpointConfig" not in request
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == [
        "train", "valid", "test", "code", "sm_drivers",
    ]  # fmt: skip


def test_role_and_bucket_come_from_cdk_outputs(capsys, tmp_path: Path) -> None:
    (tmp_path / "cdk-outputs.json").write_text(
        json.dumps({"MlServing-prod-digits": {"TrainingRoleArn": ROLE, "BucketName": BUCKET}})
    )
    code, out, err = run(
        capsys, "train", "--model", "digits", "--stage", "prod", "--region", "eu-west-1",
        "--image-uri", "example.com/img:1", "--channel", f"test=s3://{BUCKET}/holdout/",
        "--dry-run",
    )  # fmt: skip
    assert code == 0, err
    request = json.loads(out)
    assert request["RoleArn"] == ROLE
    assert request["OutputDataConfig"]["S3OutputPath"] == f"s3://{BUCKET}/training/jobs"
    assert request["AlgorithmSpecification"]["TrainingImage"] == "example.com/img:1"
    assert request["TrainingJobName"].startswith("digits-prod-")
    test_channel = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "test")
    assert test_channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{BUCKET}/holdout/"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # missing configuration: say which flag, or to deploy first
        (["train", "--model", "digits", "--region", "eu-west-1", "--dry-run"],
         "no role and no bucket for MlServing-dev-digits (cdk-outputs.json does not exist): pass "
         "--role <training role ARN> and --bucket <bucket name>, or run `make deploy STAGE=dev "
         "MODEL=digits` first"),
        (["train", "--model", "digits", "--bucket", BUCKET, "--region", "eu-west-1", "--dry-run"],
         "no role for MlServing-dev-digits"),
        (["train", "--model", "digits", "--role", ROLE, "--bucket", BUCKET, "--dry-run"],
         "no AWS region: pass --region"),
        (["train", "--model", "digits", "--role", "my-role", "--bucket", BUCKET,
          "--region", "eu-west-1", "--dry-run"], "is not an IAM role ARN"),
        (["train", "--model", "digits", "--role", ROLE, "--bucket", "s3://b",
          "--region", "eu-west-1", "--dry-run"], "is not an S3 bucket name"),
        # job settings
        (["train", "--model", "sentiment", *TARGET, "--instance-count", "2", "--dry-run"],
         "multi-instance training runs torchrun, for the PyTorch models"),
        (["train", "--model", "digits", *TARGET, "--spot", "--max-run-s", "3600",
          "--max-wait-s", "600", "--dry-run"], "--max-wait-s 600 must be at least --max-run-s"),
        (["train", "--model", "digits", *TARGET, "--max-wait-s", "600", "--dry-run"],
         "--max-wait-s only applies to spot jobs"),
        (["train", "--model", "digits", *TARGET, "--instance-type", "m5.large", "--dry-run"],
         "is not a SageMaker instance type"),
        (["train", "--model", "digits", *TARGET, "--hp", "epochs", "--dry-run"],
         "--hp 'epochs' should look like NAME=VALUE"),
        (["train", "--model", "digits", *TARGET, "--data", "bucket/data", "--dry-run"],
         "--data 'bucket/data' is not an S3 URI"),
        (["train", "--model", "digits", *TARGET, "--instance-count", "0", "--dry-run"],
         "--instance-count must be a positive number"),
        # tuning settings
        (["tune", "--model", "digits", *TARGET, "--max-jobs", "2", "--max-parallel-jobs", "4",
          "--dry-run"], "--max-parallel-jobs 4 is more than --max-jobs 2"),
        (["tune", "--model", "digits", *TARGET, "--instance-count", "2", "--dry-run"],
         "tune runs single-instance trials"),
        (["tune", "--model", "digits", *TARGET, "--strategy", "Hyperband", "--dry-run"],
         "add --early-stopping Off"),
        (["tune", "--model", "digits", *TARGET, "--range", "lr=continuous:0:1:log", "--dry-run"],
         "logarithmic scaling needs MIN > 0"),
        (["train", "--model", "digits", *TARGET, "--dry-run", "--", "--epochs", "3"],
         "arguments after -- only apply to ec2"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line(capsys, args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_outputs_file_without_this_stack_says_so(capsys, tmp_path: Path) -> None:
    (tmp_path / "cdk-outputs.json").write_text(json.dumps({"MlServing-dev-sentiment": {}}))
    code, _, err = run(capsys, "train", "--model", "digits", "--region", "eu-west-1", "--dry-run")
    assert code == 2
    assert "cdk-outputs.json has no MlServing-dev-digits outputs" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("continuous:1e-5:1e-2:log", Continuous(1e-5, 1e-2, "Logarithmic")),
        ("integer:3:15", Integer(3, 15, "Auto")),
        ("integer:3:15:linear", Integer(3, 15, "Linear")),
        ("categorical:16,32,64", Categorical(("16", "32", "64"))),
    ],
)
def test_range_specs(text: str, expected) -> None:
    assert parse_range("x", text) == expected


def test_unknown_model_is_rejected_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--model", "cats", *TARGET, "--dry-run"])
    assert exc.value.code == 2
    assert "invalid choice: 'cats'" in capsys.readouterr().err


def test_help_states_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--volume-size-gb VOLUME_SIZE_GB" in out and "(default: 30)" in out
    assert "--stage {dev,prod}" in out and "(default: dev)" in out

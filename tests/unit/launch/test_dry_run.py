"""``train``/``tune --dry-run``: the complete request, offline, valid against botocore's model.

Each dry run happens in a child process with no credentials, no AWS config, the instance metadata
service disabled, and a socket guard (tests/unit/launch/no_network.py) that makes any connect to a
non-loopback address fail the run. The printed JSON is then checked against botocore's sagemaker
service model (the real API contract) and for the settings a user relies on.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from training.common.metrics import format_metrics, metric_definitions

ROOT = Path(__file__).resolve().parents[3]
GUARD_DIR = Path(__file__).parent / "guard"
ROLE = "arn:aws:iam::123456789012:role/MlServing-dev-digits-TrainingRole"
BUCKET = "mlserving-dev-digits-bucket"
TARGET = ["--role", ROLE, "--bucket", BUCKET, "--region", "eu-west-1"]


def launch(*args: str, tmp_path: Path, extra_env: dict[str, str] | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        # sitecustomize.py in GUARD_DIR installs the socket guard before anything else runs
        PYTHONPATH=str(GUARD_DIR),
        **(extra_env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "training.launch", *args],
        cwd=tmp_path if "--outputs-file" in args else ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def request_of(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    assert "network access attempted" not in result.stderr
    return json.loads(result.stdout)


def assert_valid(operation: str, request: dict) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.fixture(scope="module")
def spot_multi_instance(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("spot")
    result = launch(
        "train", "--model", "digits", *TARGET, "--spot", "--instance-count", "2",
        "--instance-type", "ml.g5.2xlarge", "--max-run-s", "1800", "--hp", "epochs=3",
        "--dry-run", tmp_path=tmp_path,
    )  # fmt: skip
    return request_of(result)


def channels(request: dict) -> dict[str, str]:
    return {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in request["InputDataConfig"]
    }


def test_spot_multi_instance_training_request(spot_multi_instance: dict) -> None:
    request = spot_multi_instance
    assert_valid("CreateTrainingJob", request)
    assert request["RoleArn"] == ROLE
    assert request["ResourceConfig"] == {
        "InstanceType": "ml.g5.2xlarge",
        "InstanceCount": 2,
        "VolumeSizeInGB": 30,
    }
    # spot: managed spot on, wait covers the run (default 2x), checkpoints in a per-job folder
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 1800,
        "MaxWaitTimeInSeconds": 3600,
    }
    checkpoint = request["CheckpointConfig"]
    assert checkpoint["LocalPath"] == "/opt/ml/checkpoints"
    assert re.fullmatch(
        rf"s3://{BUCKET}/training/checkpoints/digits/\d{{8}}-\d{{6}}-[0-9a-f]{{4}}/",
        checkpoint["S3Uri"],
    )
    assert request["HyperParameters"] == {
        "serving-name": "digits",  # the model's name in the serving layout the job writes
        "arch": "small_cnn",
        "epochs": "3",  # --hp overrides the model default (10)
        "batch-size": "64",
        "lr": "0.001",
        "checkpoint-dir": "/opt/ml/checkpoints",
    }
    # the GPU image for a GPU instance, resolved offline
    assert request["AlgorithmSpecification"]["TrainingImage"] == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.10-gpu-py313"
    )
    assert request["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{BUCKET}/training/jobs",
        "CompressionType": "GZIP",
    }
    data = f"s3://{BUCKET}/training/input/datasets/digits"
    found = channels(request)
    assert {k: found[k] for k in ("train", "valid", "test")} == {
        "train": f"{data}/train/",
        "valid": f"{data}/valid/",
        "test": f"{data}/test/",
    }
    assert re.fullmatch(
        rf"s3://{BUCKET}/training/input/code/digits/sourcedir-[0-9a-f]{{16}}\.tar\.gz",
        found["code"],
    )
    assert found["sm_drivers"].startswith(f"s3://{BUCKET}/training/jobs/digits-dev/digits-dev-")
    assert request["TrainingJobName"].startswith("digits-dev-")


def test_multi_instance_runs_the_torchrun_driver(spot_multi_instance: dict) -> None:
    # SDK 3.x runs sm_train.sh from the drivers channel; with Torchrun that script starts torchrun
    # across the instances (the driver choice travels in the staged distributed.json)
    spec = spot_multi_instance["AlgorithmSpecification"]
    assert spec["ContainerEntrypoint"] == ["/bin/bash"]
    assert spec["ContainerArguments"][-1].endswith("/opt/ml/input/data/sm_drivers/sm_train.sh")


def test_metric_definitions_are_the_shared_ones_and_parse_real_log_lines(
    spot_multi_instance: dict,
) -> None:
    sent = spot_multi_instance["AlgorithmSpecification"]["MetricDefinitions"]
    assert sent == metric_definitions()
    line = "2026-01-01 INFO train: " + format_metrics(
        {"epoch": 3, "train_loss": 0.4125, "valid_accuracy": 0.9712, "valid_loss": 1.5e-05}
    )
    parsed = {d["Name"]: re.search(d["Regex"], line) for d in sent}
    assert float(parsed["epoch"].group(1)) == 3
    assert float(parsed["valid_accuracy"].group(1)) == pytest.approx(0.9712)
    assert float(parsed["valid_loss"].group(1)) == pytest.approx(1.5e-05)
    assert parsed["test_accuracy"] is None  # not in this line: no value, not a wrong one


def test_tuning_request(tmp_path: Path) -> None:
    result = launch(
        "tune", "--model", "digits", *TARGET, "--max-jobs", "6", "--max-parallel-jobs", "3",
        "--range", "lr=continuous:0.0005:0.05:log", "--range", "momentum=continuous:0.8:0.99",
        "--range", "epochs=integer:2:8", "--range", "optimizer=categorical:adamw,sgd",
        "--spot", "--dry-run", tmp_path=tmp_path,
    )  # fmt: skip
    request = request_of(result)
    assert_valid("CreateHyperParameterTuningJob", request)
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "valid_accuracy",
    }
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 3}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    ranges = config["ParameterRanges"]
    assert sorted(ranges["ContinuousParameterRanges"], key=lambda r: r["Name"]) == [
        {"Name": "lr", "MinValue": "0.0005", "MaxValue": "0.05", "ScalingType": "Logarithmic"},
        {"Name": "momentum", "MinValue": "0.8", "MaxValue": "0.99", "ScalingType": "Auto"},
    ]
    assert ranges["IntegerParameterRanges"] == [
        {"Name": "epochs", "MinValue": "2", "MaxValue": "8", "ScalingType": "Auto"}
    ]
    assert {r["Name"]: r["Values"] for r in ranges["CategoricalParameterRanges"]} == {
        "batch-size": ["32", "64", "128"],  # the model's default range is kept
        "optimizer": ["adamw", "sgd"],
    }
    definition = request["TrainingJobDefinition"]
    # the objective is one of the metrics the job's regexes extract
    names = {d["Name"] for d in definition["AlgorithmSpecification"]["MetricDefinitions"]}
    assert "valid_accuracy" in names
    # tuned hyperparameters are not static; the framework container runs the script from S3
    static = definition["StaticHyperParameters"]
    assert static["arch"] == "small_cnn"
    assert not {"lr", "epochs", "batch-size"} & set(static)
    assert static["sagemaker_program"] == "image_classifier_torch.py"
    assert static["sagemaker_submit_directory"] == channels_code_uri(static)
    assert definition["EnableManagedSpotTraining"] is True
    # trials share one definition: no shared checkpoint folder for them to resume each other from
    assert "CheckpointConfig" not in definition
    assert set(channels(definition)) == {"train", "valid", "test", "sm_drivers"}
    assert len(request["HyperParameterTuningJobName"]) <= 32


def channels_code_uri(static: dict) -> str:
    uri = static["sagemaker_submit_directory"]
    assert re.fullmatch(
        rf"s3://{BUCKET}/training/input/code/digits/sourcedir-[0-9a-f]{{16}}\.tar\.gz", uri
    )
    return uri


def test_the_socket_guard_catches_a_connect(tmp_path: Path) -> None:
    # the proof above is only as good as the guard: it must fire on a real connect attempt
    code = "import socket; socket.create_connection(('192.0.2.1', 443), timeout=2)"
    env = {**os.environ, "PYTHONPATH": str(GUARD_DIR)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "network access attempted" in result.stderr


def test_the_job_bundle_carries_what_publishing_the_serving_layout_reads():
    """A job ends by exporting its model (model_export), which reads the serving image's package
    list from container_contract/data/: the bundle must carry it, and none of training's local data."""
    from training.launch.source import bundle_members

    names = {name for name, _ in bundle_members()}
    assert "container_contract/data/ray_serve_image_packages.txt" in names
    assert "model_export/publish.py" in names and "image_classifier_torch.py" in names
    assert "training/common/serving.py" in names and "container_contract/tfs.py" in names
    assert not [
        n
        for n in names
        if n.startswith(("training/data/", "training/runs/", "training/launch/", "local_stage/"))
    ]

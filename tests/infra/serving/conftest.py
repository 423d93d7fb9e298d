"""Synthesize each stack variant once per test session and share its template."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import app as cdk_app

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
REGION = "us-east-1"
S3_MODEL = "s3://my-models-bucket/digits/v3/model.tar.gz"
# Dev scales to zero by default (cdk.json); fixtures that test the always-on endpoint pin it.
ALWAYS_ON = {"capacity_mode": "always_on", "min_instances": 1}


def project_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def synth(overrides: dict) -> tuple[cdk_app.ServingStack, Template]:
    """Build the app as `cdk synth -c ...` would; Template.from_stack fails on any nag finding."""
    app = cdk.App(context={**project_context(), "account": ACCOUNT, "region": REGION})
    stack = cdk_app.build_app(app, overrides=dict(overrides))
    return stack, Template.from_stack(stack)


def write_artifact(folder: Path, manifest: dict) -> Path:
    """A small but real model.tar.gz with its manifest beside it, as `make artifacts` lays out."""
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / "model.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    tarball.write_bytes(gzip.compress(buffer.getvalue()))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return tarball


@pytest.fixture(scope="session")
def dev() -> tuple[cdk_app.ServingStack, Template]:
    """Dev stage pinned always-on, PyTorch model from an existing S3 artifact, API-key auth."""
    return synth(
        {
            **ALWAYS_ON,
            "stage": "dev",
            "model_data_url": S3_MODEL,
            "framework": "pytorch",
            "framework_version": "1.4",
        }
    )


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk_app.ServingStack, Template]:
    """Prod stage, a local TensorFlow artifact (CDK asset), a client role, CORS, a quota, and
    alarms e-mailed."""
    tarball = write_artifact(
        tmp_path_factory.mktemp("artifacts") / "sentiment",
        {
            "framework": "tensorflow",
            "framework_version": "2.19",
            "content_type": "application/json",
        },
    )
    return synth(
        {
            "stage": "prod",
            "model": "sentiment",
            "artifact_path": str(tarball),
            "client_role_principal": "arn:aws:iam::210987654321:role/batch-scorer",
            "cors_allow_origin": "https://app.example.com",
            "quota_per_day": 10000,
            "container_env": {"SAGEMAKER_TFS_ENABLE_BATCHING": "true"},
            "alarm_email": "oncall@example.com",
        }
    )


@pytest.fixture(scope="session")
def iam_auth() -> tuple[cdk_app.ServingStack, Template]:
    """Dev stage with IAM (SigV4) auth on the API and a client role in another account, on a
    GPU instance (always-on: scale to zero sizes copies for CPU families only)."""
    return synth(
        {
            **ALWAYS_ON,
            "stage": "dev",
            "model_data_url": S3_MODEL,
            "framework": "pytorch",
            "framework_version": "1.4",
            "api_auth": "iam",
            "client_role_principal": "210987654321",
            "instance_type": "ml.g5.xlarge",
        }
    )


@pytest.fixture(scope="session")
def dev_scale_to_zero() -> tuple[cdk_app.ServingStack, Template]:
    """Dev stage as cdk.json configures it (capacity_mode scale_to_zero), with two schedules."""
    return synth(
        {
            "stage": "dev",
            "model_data_url": S3_MODEL,
            "framework": "pytorch",
            "framework_version": "1.4",
            "scaling_schedules": json.dumps(
                [
                    {
                        "name": "nights",
                        "schedule": "cron(0 20 ? * MON-FRI *)",
                        "timezone": "Europe/Berlin",
                        "min_capacity": 0,
                        "max_capacity": 0,
                    },
                    {
                        "name": "mornings",
                        "schedule": "cron(0 7 ? * MON-FRI *)",
                        "timezone": "Europe/Berlin",
                        "min_capacity": 0,
                        "max_capacity": 2,
                    },
                ]
            ),
        }
    )

"""Before a real job the launcher fetches the model's weights (verified) and uploads them once to
the key its ``pretrained`` channel reads (S3 through moto, the publisher through a local server)."""

from __future__ import annotations

import dataclasses
import hashlib
import os

import boto3
import pytest
from moto import mock_aws

from training.common import sources
from training.common.sources import Download
from training.download import ChecksumError
from training.launch import cli, plans, pretrained, sagemaker_jobs

ROLE = "arn:aws:iam::123456789012:role/MlServing-dev-dog-breeds-TrainingRole"
BUCKET = "mlserving-dev-dog-breeds-bucket"
BODY = os.urandom(200_000)
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def s3(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_weights_are_fetched_verified_and_uploaded_once(s3, server, monkeypatch) -> None:
    # Given the publisher (a local server) and the table pinned to what it serves
    original = sources.WEIGHTS["resnet50"]
    server.behaviour.files["/resnet50.pth"] = BODY
    spec = Download(url=server.url("/resnet50.pth"), file_name=original.download.file_name,
                    size=len(BODY), sha256=SHA)  # fmt: skip
    monkeypatch.setitem(sources.WEIGHTS, "resnet50", dataclasses.replace(original, download=spec))
    args = cli.build_parser().parse_args(
        ["train", "--model", "dog-breeds", "--role", ROLE, "--bucket", BUCKET,
         "--region", "us-east-1"]
    )  # fmt: skip
    plan = plans.build_train_plan(args)

    # When the launcher prepares the job
    sagemaker_jobs.upload_pretrained(plan, boto3.Session(region_name="us-east-1"))

    # Then the channel's object holds the verified bytes, with their digest recorded
    key = "training/input/weights/resnet50/resnet50-11ad3fa6.pth"
    assert plan.channels["pretrained"] == f"s3://{BUCKET}/{key}"
    obj = s3.get_object(Bucket=BUCKET, Key=key)
    assert obj["Body"].read() == BODY
    assert obj["Metadata"] == {"sha256": SHA}
    # and a second job neither downloads nor uploads again
    requests = len(server.behaviour.requests)
    assert pretrained.upload(plan.pretrained, s3) is False
    assert len(server.behaviour.requests) == requests == 1


def test_weights_that_fail_verification_stop_the_launch(s3, server, monkeypatch, capsys) -> None:
    original = sources.WEIGHTS["resnet50"]
    server.behaviour.files["/resnet50.pth"] = BODY
    spec = Download(url=server.url("/resnet50.pth"), file_name=original.download.file_name,
                    sha256="0" * 64)  # fmt: skip
    monkeypatch.setitem(sources.WEIGHTS, "resnet50", dataclasses.replace(original, download=spec))
    args = cli.build_parser().parse_args(
        ["train", "--model", "dog-breeds", "--role", ROLE, "--bucket", BUCKET,
         "--region", "us-east-1"]
    )  # fmt: skip
    plan = plans.build_train_plan(args)
    with pytest.raises(ChecksumError, match="does not match the pinned 0000"):
        sagemaker_jobs.upload_pretrained(plan, boto3.Session(region_name="us-east-1"))
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0

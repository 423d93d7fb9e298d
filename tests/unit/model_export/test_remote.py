"""Reading an S3 artifact's manifest at deploy time (moto stands in for S3)."""

from __future__ import annotations

import json
import os

import boto3
import pytest
from moto import mock_aws

from model_export.__main__ import main
from model_export.errors import ExportError
from model_export.remote import cdk_context, read_manifest, smoke_case

BUCKET = "mlserving-dev-bucket"
MANIFEST = {
    "framework": "tensorflow",
    "framework_version": "2.20",
    "py_version": "py312",
    "content_type": "application/json",
    "name": "sentiment",
}


@pytest.fixture
def s3(monkeypatch, tar_of):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.tar_of = tar_of
        yield client


def put(client, key: str, files: dict[str, bytes]) -> str:
    client.put_object(Bucket=BUCKET, Key=key, Body=client.tar_of(files))
    return f"s3://{BUCKET}/{key}"


def test_a_jobs_artifact_gives_the_context_that_picks_its_container(s3, capsys):
    # Given a job's model.tar.gz as SageMaker tars the model dir ("./" names, weights first)
    url = put(
        s3,
        "training/jobs/sentiment-1/output/model.tar.gz",
        {
            "./model.keras": b"k" * 4096,
            "./sentiment/1/saved_model.pb": b"pb",
            "./manifest.json": json.dumps(MANIFEST).encode(),
            "./metrics.json": b"{}",
        },
    )

    # When the deploy reads it
    manifest = read_manifest(url, s3)

    # Then the framework and container come from the manifest, as CDK context
    assert manifest["name"] == "sentiment"
    assert cdk_context(manifest) == [
        "-c", "framework=tensorflow",
        "-c", "framework_version=2.20",
        "-c", "py_version=py312",
        "-c", "endpoint_content_type=application/json",
    ]  # fmt: skip
    assert main(["context", url]) == 0
    assert capsys.readouterr().out.strip() == (
        "-c framework=tensorflow -c framework_version=2.20 -c py_version=py312 "
        "-c endpoint_content_type=application/json"
    )


def test_the_manifests_example_is_a_smoke_case_the_smoke_test_reads(s3, tmp_path):
    import importlib.util
    import sys
    from pathlib import Path

    example = {
        "content_type": "application/json",
        "body": {"instances": ["@air great crew"]},
        "expected": {"labels": ["positive"], "probabilities": [[0.1, 0.2, 0.7]]},
    }
    url = put(
        s3,
        "jobs/s/output/model.tar.gz",
        {"manifest.json": json.dumps({**MANIFEST, "example": example}).encode()},
    )
    case_file = tmp_path / "case.json"
    assert main(["context", url, "--smoke-case", str(case_file)]) == 0
    root = Path(__file__).resolve().parents[3]
    spec = importlib.util.spec_from_file_location(
        "smoke_test", root / ".github/scripts/smoke_test.py"
    )
    assert spec and spec.loader
    smoke = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = smoke
    spec.loader.exec_module(smoke)
    (prediction,) = smoke.load_case(case_file)
    assert json.loads(prediction.body) == {"instances": ["@air great crew"]}
    assert (prediction.content_type, prediction.path, prediction.equals) == (
        "application/json",
        "predictions.0.label",
        "positive",
    )


@pytest.mark.parametrize("example", [None, "a string", {"body": {}}])
def test_a_manifest_without_a_usable_example_gives_no_smoke_case(example):
    manifest = {**MANIFEST, "example": example} if example is not None else MANIFEST
    with pytest.raises(ExportError, match="manifest.json has no usable example request"):
        smoke_case(manifest, f"s3://{BUCKET}/jobs/s/output/model.tar.gz")


def test_a_missing_artifact_is_a_clear_error(s3, capsys):
    url = f"s3://{BUCKET}/training/jobs/not-finished/output/model.tar.gz"
    with pytest.raises(ExportError, match="no model artifact at .*not-finished.*NoSuchKey"):
        read_manifest(url, s3)
    assert main(["context", url]) == 2
    assert "error: no model artifact at" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"model.pth": b"w", "model_config.json": b"{}"}, "has no manifest.json"),
        ({"manifest.json": b"{not json"}, "not valid JSON"),
        ({"manifest.json": json.dumps({**MANIFEST, "framework": None}).encode()}, "framework"),
        (
            {"manifest.json": json.dumps({**MANIFEST, "py_version": "py3; rm -rf /"}).encode()},
            "py_version",
        ),
    ],
)
def test_unusable_artifacts_are_refused_with_the_reason(s3, files, message):
    url = put(s3, "artifacts/model.tar.gz", files)
    with pytest.raises(ExportError, match=message):
        read_manifest(url, s3)


def test_not_a_tarball_or_not_an_s3_url(s3):
    s3.put_object(Bucket=BUCKET, Key="junk.tar.gz", Body=b"plain text")
    with pytest.raises(ExportError, match="not a readable .tar.gz"):
        read_manifest(f"s3://{BUCKET}/junk.tar.gz", s3)
    with pytest.raises(ExportError, match="not an s3://"):
        read_manifest("https://example.com/model.tar.gz", s3)

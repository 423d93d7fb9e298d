"""The EC2 runner against a local S3 (moto server): data down, checkpoints up, SIGTERM, resume.

The runner runs as a real process (``python -m training.launch ec2``), so its signal handling is the
real thing; the training script is tests/integration/launch/fake_train.py, which follows the
scripts' checkpoint contract and takes fractions of a second per "epoch".
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[3]
FAKE_SCRIPT = Path(__file__).with_name("fake_train.py")
BUCKET = "runner-bucket"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    server = ThreadedMotoServer(ip_address="localhost", port=port)
    server.start()
    yield f"http://localhost:{port}"
    server.stop()


@pytest.fixture
def env(s3_endpoint, tmp_path):
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONPATH"
    }
    environment.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=s3_endpoint,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    return environment


@pytest.fixture
def s3(env):
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    existing = {b["Name"] for b in client.list_buckets()["Buckets"]}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    for key, body in {
        "data/digits/train/0/a.png": b"a",
        "data/digits/train/1/b.png": b"bb",
        "data/digits/valid/0/c.png": b"c",
    }.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return client


def _runner(env, work: Path, run: str, *script_args: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "training.launch", "ec2",
        "--model", "digits",
        "--data", f"s3://{BUCKET}/data/digits",
        "--output", f"s3://{BUCKET}/runs/{run}",
        "--work-dir", str(work),
        "--checkpoint-sync-s", "0.2",
        "--entry-script", str(FAKE_SCRIPT),
        "--", *script_args,
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _remote_epoch(s3, run: str) -> int:
    try:
        body = s3.get_object(Bucket=BUCKET, Key=f"runs/{run}/checkpoints/latest.json")["Body"]
    except s3.exceptions.NoSuchKey:
        return 0
    return json.loads(body.read())["epoch"]


def _keys(s3, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def test_interrupted_run_is_resumed_from_its_checkpoints_on_a_new_machine(env, s3, tmp_path):
    # Given a long run on "instance 1" that has checkpointed a few epochs
    first = _runner(env, tmp_path / "instance-1", "r1", "--epochs", "200", "--step-s", "0.1")
    deadline = time.monotonic() + 60
    while _remote_epoch(s3, "r1") < 3:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no checkpoint reached S3 within 60 s"
        time.sleep(0.1)

    # When the instance is reclaimed (the OS sends SIGTERM)
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)

    # Then the runner stops the script, uploads its last checkpoints and reports the interruption
    assert first.returncode == 128 + signal.SIGTERM, stderr
    saved_epoch = _remote_epoch(s3, "r1")
    assert saved_epoch >= 3
    local_latest = json.loads((tmp_path / "instance-1/checkpoints/latest.json").read_text())
    assert local_latest["epoch"] == saved_epoch  # the final sync caught up with the script
    checkpoint_keys = _keys(s3, "runs/r1/checkpoints/")
    # pruned checkpoints are pruned in S3 too: at most the newest two epoch files remain
    assert len([k for k in checkpoint_keys if k.endswith(".bin")]) <= 2
    assert f"runs/r1/checkpoints/epoch-{saved_epoch}.bin" in checkpoint_keys
    assert "runs/r1/model.tar.gz" not in _keys(s3, "runs/r1/")

    # When a fresh instance (empty work dir) runs the same command to the end
    second = _runner(
        env, tmp_path / "instance-2", "r1", "--epochs", str(saved_epoch + 2), "--step-s", "0"
    )
    stdout, stderr = second.communicate(timeout=120)

    # Then the script resumed where the first instance stopped, and the model is in S3
    assert second.returncode == 0, stderr
    assert stdout.strip().splitlines()[-1] == f"model_data=s3://{BUCKET}/runs/r1/model.tar.gz"
    archive = s3.get_object(Bucket=BUCKET, Key="runs/r1/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        assert tar.getnames() == ["model.json"]  # files at the archive root, like SageMaker
        model = json.loads(tar.extractfile("model.json").read())
    assert model["started_from"] == saved_epoch
    assert model["train_files"] == ["a.png", "b.png"]  # the train channel was synced down
    assert "runs/r1/output.tar.gz" in _keys(s3, "runs/r1/")
    assert _remote_epoch(s3, "r1") == saved_epoch + 2


def test_failed_script_keeps_its_checkpoints_and_uploads_no_model(env, s3, tmp_path):
    # Given a script that fails
    runner = _runner(env, tmp_path / "w", "r2", "--fail", "true")
    _, stderr = runner.communicate(timeout=120)

    # Then the runner exits with the script's code and says why, and no model is uploaded
    assert runner.returncode == 3
    assert "asked to fail" in stderr
    assert "runs/r2/model.tar.gz" not in _keys(s3, "runs/r2/")


def test_missing_data_is_a_clear_error(env, s3, tmp_path):
    command = [
        sys.executable, "-m", "training.launch", "ec2", "--model", "digits",
        "--data", f"s3://{BUCKET}/no/such/prefix", "--output", f"s3://{BUCKET}/runs/r3",
        "--work-dir", str(tmp_path / "w"), "--entry-script", str(FAKE_SCRIPT),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "no data under --data" in result.stderr
    assert "Traceback" not in result.stderr

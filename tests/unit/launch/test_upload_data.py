"""``upload-data``: the key layout ``train`` reads, and re-runs that upload only what changed."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from training.launch import cli, plans

BUCKET = "mlserving-dev-digits-bucket"


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


def make_dataset(root: Path) -> None:
    for relative, body in {
        "train/0/1.png": b"one",
        "train/1/2.png": b"two",
        "valid/0/3.png": b"three",
        "test/1/4.png": b"four",
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(body)


def all_keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def upload(capsys, source: Path, *extra: str) -> tuple[int, str]:
    code = cli.main(
        ["upload-data", "--model", "digits", "--bucket", BUCKET, "--region", "us-east-1",
         "--source", str(source), *extra]
    )  # fmt: skip
    return code, capsys.readouterr().out


def test_folder_layout_becomes_the_key_layout_train_reads(s3, tmp_path, capsys) -> None:
    make_dataset(tmp_path / "digits")
    code, out = upload(capsys, tmp_path / "digits")
    assert code == 0
    prefix = "training/input/datasets/digits/"
    assert all_keys(s3) == [
        f"{prefix}test/1/4.png",
        f"{prefix}train/0/1.png",
        f"{prefix}train/1/2.png",
        f"{prefix}valid/0/3.png",
    ]
    assert out.strip().splitlines()[-1] == f"data=s3://{BUCKET}/{prefix}"
    # ...which is the default --data of `train`: its channels point at these folders
    plan_args = cli.build_parser().parse_args(
        ["train", "--model", "digits", "--role", "arn:aws:iam::123456789012:role/r",
         "--bucket", BUCKET, "--region", "us-east-1"]
    )  # fmt: skip
    assert plans._channels(plan_args, plans.get_model("digits"), BUCKET)["valid"] == (
        f"s3://{BUCKET}/{prefix}valid/"
    )


def test_rerun_uploads_only_changed_files(s3, tmp_path, capsys, caplog) -> None:
    make_dataset(tmp_path / "digits")
    upload(capsys, tmp_path / "digits")
    (tmp_path / "digits/train/0/1.png").write_bytes(b"ONE, changed")
    caplog.set_level("INFO")
    upload(capsys, tmp_path / "digits")
    assert "uploaded 1 file(s)" in caplog.text and "(3 unchanged)" in caplog.text
    body = s3.get_object(Bucket=BUCKET, Key="training/input/datasets/digits/train/0/1.png")["Body"]
    assert body.read() == b"ONE, changed"


def test_dry_run_lists_keys_and_writes_nothing(s3, tmp_path, capsys) -> None:
    make_dataset(tmp_path / "digits")
    code, out = upload(capsys, tmp_path / "digits", "--dry-run", "--prefix", "custom/x")
    assert code == 0
    assert f"s3://{BUCKET}/custom/x/train/0/1.png" in out
    assert all_keys(s3) == []


def test_missing_source_folder_is_a_clear_error(s3, tmp_path, capsys) -> None:
    code = cli.main(
        ["upload-data", "--model", "digits", "--bucket", BUCKET, "--region", "us-east-1",
         "--source", str(tmp_path / "nope")]
    )  # fmt: skip
    assert code == 2
    assert "is not a folder" in capsys.readouterr().err


def test_missing_bucket_says_which_flag_or_deploy(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = cli.main(
        ["upload-data", "--model", "digits", "--region", "us-east-1", "--source", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "pass --bucket <bucket name>, or run `make deploy STAGE=dev MODEL=digits`" in err

"""``python -m training.datasets fetch``: small archives shaped like the real ones, served over
HTTP from a local server, become the train/valid/test layout the training scripts read."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.integration.fetch import archives
from training import datasets
from training.common import sources
from training.common.sources import Download
from training.launch import cli as launch_cli

ROOT = Path(__file__).resolve().parents[3]


def serve(monkeypatch, server, name: str, files: dict[str, bytes], **pins) -> None:
    """Serve ``files`` and point the table's entry for ``name`` at them, pinned to their bytes."""
    downloads = []
    for file_name, body in files.items():
        server.behaviour.files[f"/{file_name}"] = body
        downloads.append(
            Download(
                url=server.url(f"/{file_name}"),
                file_name=file_name,
                size=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
                **pins,
            )  # fmt: skip
        )
    monkeypatch.setitem(
        sources.DATASETS, name,
        dataclasses.replace(sources.DATASETS[name], downloads=tuple(downloads)),
    )  # fmt: skip


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = datasets.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def listing(root: Path) -> dict[str, dict[str, int]]:
    return json.loads((root / "dataset.json").read_text())["counts"]


def test_dog_breeds_use_the_official_split_and_readable_breed_names(
    server, monkeypatch, capsys, tmp_path
) -> None:
    serve(monkeypatch, server, "dog-breeds", archives.stanford_dogs())
    out = tmp_path / "dogs"
    code, stdout, _ = run(capsys, "fetch", "dog-breeds", "--out", str(out))
    assert code == 0, stdout
    assert f"data={out}" in stdout
    assert f"upload-data --model dog-breeds --source {out}" in stdout
    breeds = {"Chihuahua", "Japanese_spaniel", "Shih-Tzu"}
    counts = listing(out)
    # the publisher's test list is the test split; valid is 10% of its train list
    assert counts["test"] == {b: archives.DOGS_TEST_PER_BREED for b in breeds}
    assert counts["valid"] == {b: 1 for b in breeds}
    assert counts["train"] == {b: 7 for b in breeds}
    assert sorted(p.name for p in (out / "test" / "Chihuahua").iterdir()) == [
        f"n02085620_{i}.jpg" for i in range(archives.DOGS_TEST_PER_BREED)
    ]


@pytest.mark.slow
def test_the_training_script_trains_on_what_fetch_wrote(server, monkeypatch, capsys, tmp_path):
    serve(monkeypatch, server, "malaria", archives.malaria_cells())
    out = tmp_path / "malaria"
    assert run(capsys, "fetch", "malaria", "--out", str(out))[0] == 0
    result = subprocess.run(
        [sys.executable, str(ROOT / "training" / "image_classifier_torch.py"),
         "--data", str(out), "--arch", "small_cnn", "--smoke", "--workers", "0",
         "--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "output"),
         "--checkpoint-dir", str(tmp_path / "ckpt"), "--progress", "log"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((tmp_path / "model" / "model_config.json").read_text())
    assert config["class_names"] == ["Parasitized", "Uninfected"]


def test_malaria_is_split_by_class_and_skips_non_images(server, monkeypatch, capsys, tmp_path):
    serve(monkeypatch, server, "malaria", archives.malaria_cells(per_class=10))
    out = tmp_path / "malaria"
    assert run(capsys, "fetch", "malaria", "--out", str(out))[0] == 0
    counts = listing(out)
    assert counts == {
        "train": {"Parasitized": 8, "Uninfected": 8},
        "valid": {"Parasitized": 1, "Uninfected": 1},
        "test": {"Parasitized": 1, "Uninfected": 1},
    }
    assert not list(out.rglob("Thumbs.db"))
    # Fixed split: another machine (another output folder) gets the same files in each split.
    again = tmp_path / "again"
    assert run(capsys, "fetch", "malaria", "--out", str(again))[0] == 0
    for split in ("train", "valid", "test"):
        assert sorted(p.name for p in (out / split).rglob("*.png")) == sorted(
            p.name for p in (again / split).rglob("*.png")
        )


def test_airline_tweets_become_utf8_csvs_with_the_scripts_columns(
    server, monkeypatch, capsys, tmp_path, caplog
) -> None:
    serve(monkeypatch, server, "airline-sentiment", archives.airline_csv(per_label=10))
    monkeypatch.chdir(tmp_path)
    # the model's name works too, and the default output is data/<model>
    assert run(capsys, "fetch", "sentiment")[0] == 0
    out = tmp_path / "data" / "sentiment"
    rows = {}
    for split in ("train", "valid", "test"):
        with open(out / split / "tweets.csv", newline="", encoding="utf-8") as handle:
            rows[split] = list(csv.DictReader(handle))
    assert [len(rows[s]) for s in ("train", "valid", "test")] == [
        24,
        3,
        3,
    ]  # unlabelled row dropped
    first = rows["train"][0]
    assert set(first) == {"tweet_id", "airline", "airline_sentiment", "text"}
    assert "caf\u00e9" in first["text"] and first["text"].endswith('"quoted"\nline two')
    assert {r["airline_sentiment"] for r in rows["test"]} == {"negative", "neutral", "positive"}
    ids = [r["tweet_id"] for s in rows.values() for r in s]
    assert len(ids) == len(set(ids)) == 30


def test_a_dropped_download_resumes_and_a_second_run_does_nothing(
    server, monkeypatch, capsys, tmp_path, caplog
) -> None:
    files = archives.malaria_cells()
    serve(monkeypatch, server, "malaria", files)
    server.behaviour.drop_after["/cell_images.zip"] = len(files["cell_images.zip"]) // 3
    out = tmp_path / "malaria"
    assert run(capsys, "fetch", "malaria", "--out", str(out))[0] == 0
    assert [r[1] for r in server.behaviour.requests] == [
        None, f"bytes={len(files['cell_images.zip']) // 3}-",
    ]  # fmt: skip
    marker = out / "train" / "Parasitized" / "mine.txt"
    marker.write_text("a file the user added")
    caplog.set_level("INFO")
    assert run(capsys, "fetch", "malaria", "--out", str(out))[0] == 0
    assert "already prepared from the same files" in caplog.text
    assert len(server.behaviour.requests) == 2  # the cached archive was used
    assert marker.exists()  # and nothing was rewritten
    # --force rewrites the splits from the cached archive
    assert run(capsys, "fetch", "malaria", "--out", str(out), "--force")[0] == 0
    assert not marker.exists() and len(server.behaviour.requests) == 2


def test_checksum_mismatch_writes_no_data(server, monkeypatch, capsys, tmp_path) -> None:
    serve(monkeypatch, server, "malaria", archives.malaria_cells())
    spec = sources.DATASETS["malaria"].downloads[0]
    monkeypatch.setitem(
        sources.DATASETS,
        "malaria",
        dataclasses.replace(
            sources.DATASETS["malaria"], downloads=(dataclasses.replace(spec, sha256="ab" * 32),)
        ),
    )
    code, _, err = run(capsys, "fetch", "malaria", "--out", str(tmp_path / "malaria"))
    assert code == 1
    assert "cell_images.zip: SHA-256" in err and f"does not match the pinned {'ab' * 32}" in err
    assert not (tmp_path / "malaria").exists()


def test_an_archive_of_the_wrong_shape_is_a_clear_error(server, monkeypatch, capsys, tmp_path):
    serve(monkeypatch, server, "malaria", {"cell_images.zip": archives.airline_csv()[
        "Airline-Sentiment-2-w-AA.csv"]})  # fmt: skip
    code, _, err = run(capsys, "fetch", "malaria", "--out", str(tmp_path / "m"))
    assert code == 1 and "cannot unpack malaria" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists() and not (tmp_path / ".m.partial").exists()


def test_unknown_names_network_failures_and_bad_fractions(server, monkeypatch, capsys, tmp_path):
    code, _, err = run(capsys, "fetch", "cifar10")
    assert code == 2
    assert "unknown data set 'cifar10': choose one of airline-sentiment, dog-breeds, malaria" in err
    code, _, err = run(capsys, "fetch", "malaria", "--valid-fraction", "0.7")
    assert code == 2 and "--valid-fraction must be at least 0 and below 0.5" in err
    serve(monkeypatch, server, "malaria", archives.malaria_cells())
    server.behaviour.status["/cell_images.zip"] = 503
    code, _, err = run(capsys, "fetch", "malaria", "--out", str(tmp_path / "m"))
    assert code == 1 and "cell_images.zip: HTTP 503" in err


def test_fetched_data_uploads_to_the_keys_train_reads(server, monkeypatch, capsys, tmp_path):
    serve(monkeypatch, server, "airline-sentiment", archives.airline_csv())
    out = tmp_path / "sentiment"
    assert run(capsys, "fetch", "airline-sentiment", "--out", str(out))[0] == 0
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.chdir(tmp_path)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="mlserving-dev-sentiment-bucket")
        code = launch_cli.main(["upload-data", "--model", "sentiment", "--bucket",
                                "mlserving-dev-sentiment-bucket", "--region", "us-east-1",
                                "--source", str(out)])  # fmt: skip
        assert code == 0
        keys = sorted(o["Key"] for o in s3.list_objects_v2(
            Bucket="mlserving-dev-sentiment-bucket")["Contents"])  # fmt: skip
    prefix = "training/input/datasets/sentiment/"
    assert keys == [f"{prefix}dataset.json", f"{prefix}test/tweets.csv",
                    f"{prefix}train/tweets.csv", f"{prefix}valid/tweets.csv"]  # fmt: skip

"""From a training job to a live (local) endpoint with no manual step, for every reference model.

Each model is trained the way its SageMaker job trains it: the launcher's source bundle unpacked
on its own (no repository on the path), the launcher's hyperparameters for the model (default
flags otherwise; ``smoke`` because the data is smoke-sized), SageMaker's ``SM_*`` variables.
Its model dir is tarred as SageMaker tars ``/opt/ml/model`` and uploaded to S3 (moto's server),
where the job would leave it. Then, as ``make deploy MODEL_DATA_URL=<that URI>`` does: the
artifact's manifest is read from S3 (``python -m model_export context``), the real CDK app is
synthesized with ``model_data_url`` and what the manifest says, and the local stage serves that
S3 object through the real API, Lambda and model server. The answer must be the trained model's.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from local_stage.cli import free_port
from reliability import harness
from training.launch.models import MODELS
from training.launch.source import build_bundle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "mlserving-dev-e2e"
COLOURS = {"blue": (40, 40, 200), "green": (40, 200, 40), "red": (200, 40, 40)}
WORDS = {
    "negative": ["delayed", "lost", "rude", "worst", "cancelled"],
    "neutral": ["flight", "seat", "today", "gate", "plane"],
    "positive": ["great", "love", "awesome", "thanks", "friendly"],
}


def image_folders(root: Path, per_class: int = 6, size: int = 40) -> Path:
    """The reference image layout: train/ valid/ test/, one folder of PNGs per class."""
    rng = np.random.default_rng(0)
    for split in ("train", "valid", "test"):
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                noise = rng.normal(0, 40, size=(size, size, 3))
                pixels = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def tweets(root: Path, rows: int = 120) -> Path:
    """The airline tweets CSV's columns (text, airline_sentiment) in the train channel."""
    rng = np.random.default_rng(0)
    (root / "train").mkdir(parents=True)
    with open(root / "train" / "tweets.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["tweet_id", "airline_sentiment", "text"])
        writer.writeheader()
        for i in range(rows):
            label = list(WORDS)[i % 3]
            words = " ".join(rng.choice(WORDS[label], size=4))
            writer.writerow({"tweet_id": i, "airline_sentiment": label, "text": f"@air {words}"})
    return root


def run_job(model: str, data: Path, work: Path) -> Path:
    """The model's SageMaker job, locally: its source bundle, hyperparameters and SM_* env."""
    spec = MODELS[model]
    source = work / "source"
    with tarfile.open(fileobj=io.BytesIO(build_bundle().data), mode="r:gz") as tar:
        tar.extractall(source, filter="data")
    model_dir = work / "opt_ml_model"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SM_") and k not in ("PYTHONPATH", "RANK", "WORLD_SIZE")
    }
    env.update(
        SM_MODEL_DIR=str(model_dir),
        SM_OUTPUT_DATA_DIR=str(work / "output"),
        PYTHONUNBUFFERED="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        OMP_NUM_THREADS="1",
        **{f"SM_CHANNEL_{c.upper()}": str(data / c) for c in spec.channels},
    )
    args = [a for k, v in spec.job_hyperparameters.items() for a in (f"--{k}", str(v))]
    result = subprocess.run(
        [sys.executable, spec.entry_script, *args, "--smoke", "true",
         "--checkpoint-dir", str(work / "checkpoints"), "--progress", "log"],
        cwd=source, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert "serving layout written to" in result.stderr
    return model_dir


def sagemaker_tarball(model_dir: Path, out: Path) -> Path:
    """``model.tar.gz`` as SageMaker makes it of /opt/ml/model: the folder's contents."""
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(model_dir).as_posix())
    return out


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                                            "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                            "AWS_PROFILE", "AWS_SESSION_TOKEN")}  # fmt: skip
    os.environ.update(
        AWS_ENDPOINT_URL_S3=f"http://localhost:{port}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.parametrize("model", ["digits", "sentiment", "malaria", "dog-breeds"])
def test_a_jobs_own_artifact_deploys_with_only_its_s3_uri_and_answers(model, s3, tmp_path):
    from model_export.remote import cdk_context, read_manifest

    # Given smoke-sized data in the reference layout, trained as the model's job trains it
    data = tweets(tmp_path / "data") if model == "sentiment" else image_folders(tmp_path / "data")
    model_dir = run_job(model, data, tmp_path / "job")
    key = f"training/jobs/{model}-e2e/output/model.tar.gz"
    s3.upload_file(str(sagemaker_tarball(model_dir, tmp_path / "model.tar.gz")), BUCKET, key)
    url = f"s3://{BUCKET}/{key}"

    # When it is deployed with its S3 URI and nothing else (the manifest read from S3 first)
    words = cdk_context(read_manifest(url))
    context = dict(w.split("=", 1) for w in words[1::2])
    assert context["framework"] == MODELS[model].framework
    app_dir = harness.synth(
        tmp_path / "cdk.out", {"model": model, "model_data_url": url, **context}
    )
    template = json.loads((app_dir / f"MlServing-dev-{model}.template.json").read_text())
    (sm_model,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"
    ]
    assert sm_model["Properties"]["PrimaryContainer"]["ModelDataUrl"] == url

    # Then the local stage serves that S3 object, and the API answers as the trained model does
    manifest = json.loads((model_dir / "manifest.json").read_text())
    example = manifest["example"]
    with harness.start_stage(app_dir, tmp_path / "run", stack=f"MlServing-dev-{model}") as stage:
        headers = {"x-api-key": stage.key}
        answer = requests.post(
            stage.url + "/predict", json=example["body"], headers=headers, timeout=60
        )
        assert answer.status_code == 200, answer.text
        (prediction,) = answer.json()["predictions"]
        assert [prediction["label"]] == example["expected"]["labels"]
        names = manifest["class_names"]
        got = [prediction["probabilities"][n] for n in names]
        np.testing.assert_allclose(got, example["expected"]["probabilities"][0], atol=1e-4)
        # ... and to the request a client sends: raw image bytes, or one text as text/plain
        if model == "sentiment":
            raw = requests.post(
                stage.url + "/predict",
                data=b"@air great crew, love it",
                headers={**headers, "Content-Type": "text/plain"},
                timeout=60,
            )
        else:
            png = next((data / "test" / "red").glob("*.png")).read_bytes()
            raw = requests.post(
                stage.url + "/predict",
                data=png,
                headers={**headers, "Content-Type": "image/png"},
                timeout=60,
            )
        assert raw.status_code == 200, raw.text
        assert raw.json()["predictions"][0]["label"] in names

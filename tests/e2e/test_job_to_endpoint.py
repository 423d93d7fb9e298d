"""From a training job to a live (local) endpoint with no manual step, for every reference model.

The data comes the way a user gets it: ``python -m training.datasets fetch <name>`` downloads
archives shaped like the publishers' (made by the tests, served over HTTP on this machine, pinned
by their checksums) and writes the train/valid/test layout; digits is scikit-learn's bundled set.
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

import dataclasses
import hashlib
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

from container_contract.ports import free_port
from local_stage import harness
from tests.integration.fetch import archives
from tests.integration.fetch.file_server import FileServer
from training import datasets
from training.common import sources
from training.launch.models import MODELS
from training.launch.source import build_bundle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "mlserving-dev-e2e"
# The data set fetch downloads for each model, and the archives that stand in for its publisher's.
FETCHED = {
    "sentiment": ("airline-sentiment", lambda: archives.airline_csv(per_label=40)),
    "malaria": ("malaria", lambda: archives.malaria_cells(per_class=20)),
    "dog-breeds": ("dog-breeds", archives.stanford_dogs),
}


def fetched_data(model: str, out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``python -m training.datasets fetch`` of the model's data set, from a local server."""
    if model == "digits":
        return harness.digits_data(out)
    name, make_files = FETCHED[model]
    with FileServer() as server:
        downloads = []
        for file_name, body in make_files().items():
            server.behaviour.files[f"/{file_name}"] = body
            downloads.append(
                dataclasses.replace(
                    next(d for d in sources.DATASETS[name].downloads if d.file_name == file_name),
                    url=server.url(f"/{file_name}"),
                    size=len(body),
                    sha256=hashlib.sha256(body).hexdigest(),
                    sha256_prefix=None,
                    md5=None,
                )
            )
        monkeypatch.setitem(
            sources.DATASETS,
            name,
            dataclasses.replace(sources.DATASETS[name], downloads=tuple(downloads)),
        )
        monkeypatch.setenv("ML_SERVING_CACHE_DIR", str(out.parent / "cache"))
        assert datasets.main(["fetch", name, "--out", str(out), "--no-progress"]) == 0
    return out


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
def test_a_jobs_own_artifact_deploys_with_only_its_s3_uri_and_answers(
    model, s3, tmp_path, monkeypatch
):
    from model_export.remote import cdk_context, read_manifest

    # Given the model's data set, fetched, and trained on as the model's job trains it
    data = fetched_data(model, tmp_path / "data", monkeypatch)
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
            image = sorted(p for p in (data / "test").rglob("*") if p.suffix in (".png", ".jpg"))[0]
            content_type = "image/png" if image.suffix == ".png" else "image/jpeg"
            raw = requests.post(
                stage.url + "/predict",
                data=image.read_bytes(),
                headers={**headers, "Content-Type": content_type},
                timeout=60,
            )
        assert raw.status_code == 200, raw.text
        assert raw.json()["predictions"][0]["label"] in names

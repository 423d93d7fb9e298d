"""`make deploy` ships an artifact as it is: it never builds or trains, so prod gets the bytes dev
was tested with. Run against the real Makefile in a scratch folder laid out like a fresh CI
checkout (the environments already installed, no runs/ folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = [
    "requirements.txt",
    "requirements-ml.txt",
    "requirements-dev.txt",
    "lambda_src/requirements.txt",
    "pyproject.toml",
    "package.json",
    "package-lock.json",
]
TRAINING_MARKERS = ("image_classifier_torch.py", "prepare_digits.py", "model_export pytorch")

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs GNU make")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in REQUIREMENTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("", encoding="utf-8")
    old = time.time() - 60
    for name in REQUIREMENTS:
        os.utime(tmp_path / name, (old, old))
    (tmp_path / ".stamps").mkdir()
    for stamp in ("python", "node"):  # installed after the requirements: up to date
        (tmp_path / ".stamps" / stamp).touch()
    return tmp_path


def make(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MAKE), "--no-print-directory", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
    )


def test_deploy_of_a_downloaded_artifact_does_not_train(checkout):
    # Given CI's deploy job: the artifact the build job made, and no trained model dir
    artifact = checkout / "artifacts" / "digits" / "model.tar.gz"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"tarball")

    # When make plans the deploy
    plan = make(checkout, "-n", "deploy", "STAGE=prod", "MODEL=digits")

    # Then it runs cdk deploy and nothing that builds or trains
    assert plan.returncode == 0, plan.stderr
    assert "cdk deploy" in plan.stdout
    assert not [m for m in TRAINING_MARKERS if m in plan.stdout], plan.stdout


def test_deploy_of_an_s3_artifact_reads_its_manifest_and_does_not_train(checkout):
    url = "s3://my-bucket/training/jobs/digits-1/output/model.tar.gz"
    plan = make(checkout, "-n", "deploy", f"MODEL_DATA_URL={url}")
    assert plan.returncode == 0, plan.stderr
    assert f"model_export context {url}" in plan.stdout
    assert f"-c model_data_url={url}" in plan.stdout
    assert not [m for m in TRAINING_MARKERS if m in plan.stdout], plan.stdout
    # The launcher's or workflow's context, when given, replaces the S3 read
    given = make(
        checkout,
        "-n",
        "deploy",
        f"MODEL_DATA_URL={url}",
        "ARTIFACT_CONTEXT=-c framework=pytorch -c framework_version=1.4",
    )
    assert "model_export context" not in given.stdout
    assert 'context="-c framework=pytorch -c framework_version=1.4"' in given.stdout


def test_deploy_without_an_artifact_is_a_clear_error(checkout):
    result = make(checkout, "deploy", "MODEL=sentiment")
    assert result.returncode != 0
    assert "artifacts/sentiment/model.tar.gz not found" in result.stderr
    assert "make deploy never builds or trains" in result.stderr
    assert "MODEL_DATA_URL=s3://" in result.stderr
    assert not (checkout / "runs").exists() and not (checkout / "data").exists()

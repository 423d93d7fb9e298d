"""The whole local stage, started once per session with a real digits model.

Real data path (reliability/harness.py): ``training/prepare_digits.py`` writes scikit-learn's
handwritten digits as PNG files; a small CNN is trained on them with the serving preprocessing,
exported by ``model_export`` into the PyTorch container's layout, synthesized by the real CDK app
and served from that cloud assembly with the real ``lambda_src/`` handler. Every process is
stopped (Ctrl-C, as a person would) and checked gone at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from reliability import harness


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harness.digits_data(tmp_path_factory.mktemp("digits") / "data")


@pytest.fixture(scope="session")
def digits_assembly(digits_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model_export.pytorch_export import export_pytorch

    base = tmp_path_factory.mktemp("stack")
    trained = harness.train_digits(digits_data, base / "trained")
    result = export_pytorch(trained, name="digits", out_dir=base / "artifacts")
    return harness.synth(
        base / "cdk.out", {**harness.DIGITS_CONTEXT, "artifact_path": str(result.tarball)}
    )


@pytest.fixture(scope="session")
def stage(digits_assembly: Path, digits_data: Path, tmp_path_factory: pytest.TempPathFactory):
    sample = sorted((digits_data / "test" / "7").glob("*.png"))[0]
    with harness.start_stage(
        digits_assembly, tmp_path_factory.mktemp("run"), sample=sample
    ) as running:
        yield running


@pytest.fixture
def http():
    session = requests.Session()
    yield session
    session.close()

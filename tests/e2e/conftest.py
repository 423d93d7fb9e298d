"""The whole local stage, started once per session with a real digits model.

Real data path (local_stage/harness.py): ``training/prepare_digits.py`` writes scikit-learn's
handwritten digits as PNG files; a small CNN is trained on them with the serving preprocessing,
exported by ``model_export`` for AWS's Ray Serve container, synthesized by the real CDK app
and served from that cloud assembly (real Ray Serve behind the container's adapter) with the
real ``lambda_src/`` handler. Every process is
stopped (Ctrl-C, as a person would) and checked gone at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from local_stage import harness


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harness.digits_data(tmp_path_factory.mktemp("digits") / "data")


# The shared stage's throttle is far above what the tests send, so no test's answer depends on
# how many requests the tests before it made; the throttle itself is tested on a stage of its own
# (test_throttle.py).
UNTHROTTLED = {"throttle_rate_limit": "5000", "throttle_burst_limit": "5000"}


@pytest.fixture(scope="session")
def digits_artifact(digits_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits model trained on the data set and exported: its ``model.tar.gz``."""
    from model_export.pytorch_export import export_pytorch

    base = tmp_path_factory.mktemp("model")
    trained = harness.train_digits(digits_data, base / "trained")
    return export_pytorch(
        trained, name="digits", out_dir=base / "artifacts", serve=harness.DIGITS_SERVE
    ).tarball


@pytest.fixture(scope="session")
def digits_assembly(digits_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harness.synth(
        tmp_path_factory.mktemp("stack") / "cdk.out",
        {**harness.DIGITS_CONTEXT, **UNTHROTTLED, "artifact_path": str(digits_artifact)},
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

"""`make deploy` prints the estimate for the same -c arguments before it deploys, and a failed
estimate does not stop the deploy; `make cost` takes the stage, model, region and COMPARE."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs GNU make")


def plan(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "AWS_"))}
    result = subprocess.run(
        [str(MAKE), "--no-print-directory", "-n", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_deploy_prints_the_estimate_before_cdk_deploy_and_goes_on_if_it_fails():
    out = plan(
        "deploy",
        "STAGE=prod",
        "MODEL=digits",
        "MODEL_DATA_URL=s3://b/m.tar.gz",
        "ARTIFACT_CONTEXT=-c framework=pytorch",
    )
    assert "python -m cost $context -c stage=prod -c model=digits" in out
    assert out.index("python -m cost") < out.index("cdk deploy")
    assert '|| echo "warning: no cost estimate' in out


def test_make_cost_passes_stage_model_region_and_compare():
    out = plan("cost", "STAGE=prod", "MODEL=dog-breeds", "REGION=eu-west-1", "COMPARE=1")
    assert "-m cost -c stage=prod -c model=dog-breeds" in out
    assert "--region eu-west-1" in out and "--compare" in out
    assert "--compare dev,prod" in plan("cost", "COMPARE=dev,prod")

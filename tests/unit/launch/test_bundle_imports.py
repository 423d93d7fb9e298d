"""The job's source bundle imports its code under the names it has in a checkout."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from contracts.models import model_names
from training.launch.models import MODELS
from training.launch.source import build_bundle


def test_an_entry_script_of_the_bundle_imports_the_training_package_from_the_bundle(tmp_path):
    """SageMaker runs ``python <entry_script>`` from the bundle's root; ``-S`` leaves out
    site-packages (and so the checkout's editable install): only the bundle can answer."""
    with tarfile.open(fileobj=io.BytesIO(build_bundle().data), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    probe = tmp_path / "training" / "weights.py"
    assert probe.is_file() and (tmp_path / "weights.py").is_file()

    result = subprocess.run(
        [sys.executable, "-S", "weights.py", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "fetch" in result.stdout


def test_every_model_cdk_json_declares_has_a_training_recipe_and_no_other():
    assert set(MODELS) == set(model_names())


def test_an_unreadable_registry_names_the_file_and_the_key(tmp_path: Path):
    broken = tmp_path / "cdk.json"
    broken.write_text(json.dumps({"context": {}}))

    with pytest.raises(RuntimeError, match=r"cdk\.json \(context\.ml-serving\.models\)"):
        model_names(broken)

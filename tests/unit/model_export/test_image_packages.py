"""A PyTorch artifact's code must run in AWS's Ray Serve image: Python 3.13 and its packages."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from container_contract.image_packages import (
    PACKAGES_FILE,
    image_packages,
    unknown_imports,
    unmet_requirements,
)
from model_export.errors import ExportError
from model_export.pytorch_export import SERVE_APP, SERVING_SCRIPT
from model_export.serve_config import ServeSettings

REPO = Path(__file__).resolve().parents[3]


def test_the_package_list_is_the_images_and_cites_its_source():
    packages = image_packages()
    header = PACKAGES_FILE.read_text().splitlines()[:4]

    assert any(
        "aws/deep-learning-containers" in line and "pyproject.toml" in line for line in header
    )
    assert packages["ray"].version == "2.57.0"
    assert packages["torch"].version == "2.10.0"
    assert packages["pillow"].imports == ("PIL",)


def test_imports_outside_the_image_are_named_with_file_and_line(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "helpers.py").write_text("X = 1\n")
    (code / "inference.py").write_text(
        "import json\nimport numpy as np\nfrom PIL import Image\nimport helpers\nfrom . import x\n"
        "import jsonschema\nimport imghdr\nfrom sagemaker_inference import errors\n"
    )

    problems = unknown_imports(code)

    assert problems == [
        "inference.py:6: imports 'jsonschema'",
        "inference.py:7: imports 'imghdr'",  # removed from the standard library in 3.13
        "inference.py:8: imports 'sagemaker_inference'",  # the retired toolkit
    ]


def test_requirements_are_met_only_by_what_the_image_ships_at_its_versions():
    text = "numpy==2.5.2\npillow>=11  # comment\n\nnumpy<2\nrequests-toolbelt\n-i https://x\n"

    assert unmet_requirements(text) == [
        "'numpy<2' (the image has numpy==2.5.2)",
        "'requests-toolbelt' (not in the image)",
        "'-i https://x' (pip options need a package index)",
    ]


def test_the_projects_serving_code_imports_only_what_the_image_ships(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    for src, name in (
        (SERVE_APP, "serve_app.py"),
        (SERVING_SCRIPT, "inference.py"),
        (REPO / "training" / "torch_models.py", "torch_models.py"),
    ):
        shutil.copyfile(src, code / name)

    assert unknown_imports(code) == []


def test_the_serving_code_compiles_on_python_3_13(tmp_path):
    # Given the interpreter the image runs (pyenv's, when installed), the files byte-compile.
    env = {**os.environ, "PYENV_VERSION": "3.13.0"}
    python313 = shutil.which("python3.13")
    if python313 is None:
        pytest.skip("python3.13 is not installed")
    try:
        probe = subprocess.run(
            [python313, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    except FileNotFoundError:
        pytest.skip("python3.13 is not installed")
    if probe.stdout.strip() != "True":
        pytest.skip(f"python3.13 does not run here: {probe.stderr[-200:]}")
    files = [SERVE_APP, SERVING_SCRIPT, REPO / "training" / "torch_models.py"]
    result = subprocess.run(
        [python313, "-m", "py_compile", *map(str, files)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPYCACHEPREFIX": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_serve_settings_that_cannot_work_are_refused():
    with pytest.raises(ExportError, match="max_ongoing_requests=4 is below max_batch_size=16"):
        ServeSettings(max_ongoing_requests=4)
    with pytest.raises(ExportError, match="replicas=0 must be at least 1"):
        ServeSettings(replicas=0)

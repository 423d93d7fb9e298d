"""Shared, expensive fixtures: tiny trained models and the artifacts exported from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_export.tarball import safe_extract
from tests.support import model_dirs as fixtures
from tests.support.tarballs import make_tar


@pytest.fixture(scope="session")
def torch_model(tmp_path_factory) -> tuple[Path, Path]:
    """(model_dir, arch_module) for a tiny trained PyTorch classifier."""
    return fixtures.write_torch_model_dir(tmp_path_factory.mktemp("torch_model"))


@pytest.fixture(scope="session")
def torch_artifact(torch_model, tmp_path_factory):
    """The PyTorch export with every option on (ONNX, torch.export), unpacked beside it."""
    from model_export.pytorch_export import export_pytorch

    model_dir, arch = torch_model
    out = tmp_path_factory.mktemp("torch_artifact")
    result = export_pytorch(
        model_dir,
        name="digits",
        version=3,
        out_dir=out,
        arch_module=arch,
        torch_export=True,
        onnx=True,
    )
    unpacked = out / "unpacked"
    safe_extract(result.tarball, unpacked)
    return result, unpacked


@pytest.fixture(scope="session")
def keras_image_model(tmp_path_factory) -> Path:
    return fixtures.write_keras_image_model_dir(
        tmp_path_factory.mktemp("keras_image") / "model", legacy=True
    )


@pytest.fixture(scope="session")
def keras_text_model(tmp_path_factory) -> Path:
    return fixtures.write_keras_text_model_dir(tmp_path_factory.mktemp("keras_text") / "model")


@pytest.fixture(scope="session")
def keras_image_artifact(keras_image_model, tmp_path_factory):
    from model_export.keras_export import export_keras

    out = tmp_path_factory.mktemp("keras_image_artifact")
    result = export_keras(keras_image_model, name="cells", out_dir=out, tflite=True)
    unpacked = out / "unpacked"
    safe_extract(result.tarball, unpacked)
    return result, unpacked


@pytest.fixture(scope="session")
def keras_text_artifact(keras_text_model, tmp_path_factory):
    from model_export.keras_export import export_keras

    out = tmp_path_factory.mktemp("keras_text_artifact")
    result = export_keras(keras_text_model, name="sentiment", out_dir=out)
    unpacked = out / "unpacked"
    safe_extract(result.tarball, unpacked)
    return result, unpacked


@pytest.fixture
def tar_of():
    """``make_tar`` as a fixture (test modules cannot import conftest under importlib mode)."""
    return make_tar

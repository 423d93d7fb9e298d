"""A trained model dir made deployable in place: the exporter's layout beside the training files,
all of it one verified artifact."""

from __future__ import annotations

import shutil

import pytest

from model_export.errors import ExportError
from model_export.publish import publish_serving_layout
from model_export.verify import verify_dir


def test_a_model_dir_becomes_the_serving_layout_with_its_training_files_listed(
    torch_model, tmp_path
):
    # Given a trained PyTorch model dir as training leaves it
    trained, arch = torch_model
    model_dir = tmp_path / "model"
    shutil.copytree(trained, model_dir)
    weights = (model_dir / "model.pth").read_bytes()

    # When it is published in place
    manifest = publish_serving_layout(
        model_dir, framework="pytorch", name="digits", arch_module=arch
    )

    # Then it holds the exporter's layout, the weights untouched, every file listed and hashed
    assert (model_dir / "code" / "inference.py").is_file()
    assert (model_dir / "code" / "torch_models.py").read_bytes() == arch.read_bytes()
    assert (model_dir / "model.pth").read_bytes() == weights
    assert {"metrics.json", "model.pth", "model_config.json", "code/inference.py"} <= set(
        manifest["files"]
    )
    assert verify_dir(model_dir).ok
    # ... and a training file changed afterwards is caught like any other
    (model_dir / "metrics.json").write_text('{"test_accuracy": 1.0}')
    report = verify_dir(model_dir)
    assert any("metrics.json: sha256 differs" in e for e in report.errors)


def test_unknown_framework_or_unexportable_dir_is_an_export_error(torch_model, tmp_path):
    with pytest.raises(ExportError, match="not pytorch or tensorflow"):
        publish_serving_layout(torch_model[0], framework="jax", name="m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="model_config.json"):
        publish_serving_layout(tmp_path / "empty", framework="pytorch", name="m")

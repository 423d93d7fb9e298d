"""A PyTorch artifact's code must run in AWS's Ray Serve image: what an export of a real model
checks and records (the checks on their own: tests/unit/model_export/test_image_packages.py)."""

from __future__ import annotations

import pytest
import yaml

from model_export.errors import ExportError
from model_export.pytorch_export import SERVE_APP, export_pytorch
from model_export.serve_config import ServeSettings, settings_from_config


def test_export_refuses_an_architecture_module_the_image_cannot_import(torch_model, tmp_path):
    model_dir, arch = torch_model
    needy = tmp_path / "torch_models.py"
    needy.write_text("import jsonschema  # installed here, not in the image\n" + arch.read_text())

    with pytest.raises(ExportError) as error:
        export_pytorch(model_dir, name="digits", out_dir=tmp_path / "out", arch_module=needy)

    message = str(error.value)
    assert "torch_models.py:1: imports 'jsonschema'" in message
    assert "network isolation" in message
    assert not (tmp_path / "out" / "model.tar.gz").exists()


def test_the_artifact_carries_a_serve_config_with_the_settings_and_the_manifest_records_them(
    torch_artifact,
):
    result, unpacked = torch_artifact
    document = yaml.safe_load((unpacked / "config.yaml").read_text())
    (app,) = document["applications"]

    assert app["import_path"] == "serve_app:app" and app["route_prefix"] == "/"
    assert settings_from_config(document) == ServeSettings()
    assert result.manifest["serve"]["max_batch_size"] == ServeSettings().max_batch_size
    assert (unpacked / "code" / "serve_app.py").read_bytes() == SERVE_APP.read_bytes()
    weights = result.manifest["weights"]
    assert weights["format"] == "state_dict" and weights["serving_torch"] == "2.10.0"
    assert weights["saved_with_torch"].count(".") == 2  # e.g. 2.13.0
    assert result.manifest["container"]["image_family"] == "ray-serve"
    assert result.manifest["framework_version"] == "1.4"

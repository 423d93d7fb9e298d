"""A tiny PyTorch artifact for AWS's Ray Serve container that can be told to fail, hang or crash.

The fault-injection scenarios (and the local stage's tests) serve it: ``inference.py`` beside
this file is its handler module (the SageMaker PyTorch toolkit's ``model_fn``/``input_fn``/
``predict_fn``/``output_fn``), the weights are a seeded ``Linear(4, 3)``, and the project's Ray
Serve application and a ``config.yaml`` come with it as ``model_export pytorch`` writes them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from model_export.pytorch_export import SERVE_APP
from model_export.serve_config import CONFIG_NAME, ServeSettings

INFERENCE_PY = Path(__file__).with_name("inference.py")


def add_ray_serve_app(model_dir: Path, settings: ServeSettings | None = None) -> Path:
    """Put the project's Ray Serve application and a ``config.yaml`` into an unpacked artifact,
    as ``model_export pytorch`` does (default: one replica, batches of up to 8)."""
    settings = settings or ServeSettings(replicas=1, max_batch_size=8, batch_wait_ms=20.0)
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SERVE_APP, model_dir / "code" / "serve_app.py")
    (model_dir / CONFIG_NAME).write_text(settings.config_yaml(), encoding="utf-8")
    return model_dir


def build_torch_artifact(
    model_dir: Path, *, seed: int = 0, settings: ServeSettings | None = None
) -> Path:
    """The artifact, unpacked into ``model_dir`` (pack it with model_export.tarball)."""
    import torch

    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    fc = torch.nn.Linear(4, 3)
    torch.save({"fc.weight": fc.weight.data, "fc.bias": fc.bias.data}, model_dir / "model.pth")
    (model_dir / "code").mkdir(exist_ok=True)
    shutil.copyfile(INFERENCE_PY, model_dir / "code" / "inference.py")
    return add_ray_serve_app(model_dir, settings)

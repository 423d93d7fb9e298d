"""The training scripts the scenario kills, their small-run arguments, and how to compare two
finished runs' weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Script:
    """A training script, its arguments for a small run, and how to compare two finished runs."""

    name: str
    path: str  # under training/
    args: tuple[str, ...]
    interval: int  # --checkpoint-every-steps
    epochs: int
    state_file: str  # the checkpoint file the truncation damages
    # (model dir A, model dir B) -> (identical, max abs weight difference, detail)
    compare: Callable[[Path, Path], tuple[bool, float, str]]
    tolerance: float = 0.0  # allowed max abs weight difference (0: bit-identical)


def _torch_compare(a: Path, b: Path) -> tuple[bool, float, str]:
    import torch

    sa = torch.load(a / "model.pth", weights_only=True)
    sb = torch.load(b / "model.pth", weights_only=True)
    if sa.keys() != sb.keys():
        return False, float("inf"), f"different tensors: {sorted(set(sa) ^ set(sb))}"
    diff = max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)
    same = all(torch.equal(sa[k], sb[k]) for k in sa)
    return same, diff, f"{len(sa)} tensors"


def _keras_compare(a: Path, b: Path) -> tuple[bool, float, str]:
    import keras
    import numpy as np

    wa = keras.models.load_model(a / "model.keras").get_weights()
    wb = keras.models.load_model(b / "model.keras").get_weights()
    if len(wa) != len(wb):
        return False, float("inf"), f"{len(wa)} vs {len(wb)} weight arrays"
    diff = max(float(np.max(np.abs(x.astype("float64") - y.astype("float64")))) for x, y in
               zip(wa, wb, strict=True))  # fmt: skip
    same = all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))
    return same, diff, f"{len(wa)} weight arrays"


TORCH = Script(
    name="PyTorch image classifier (small CNN)",
    path="image_classifier_torch.py",
    args=(
        "--arch",
        "small_cnn",
        "--image-size",
        "16",
        "--workers",
        "0",
        "--batch-size",
        "32",
        "--lr",
        "0.003",
    ),  # fmt: skip
    interval=5,
    epochs=2,
    state_file="state.pt",
    compare=_torch_compare,
)

KERAS = Script(
    name="Keras image classifier (MobileNetV2 x0.35)",
    path="image_classifier_keras.py",
    args=(
        "--backbone",
        "mobilenet_v2",
        "--alpha",
        "0.35",
        "--image-size",
        "32",
        "--batch-size",
        "64",
        "--lr",
        "0.003",
        "--augment",
        "false",
    ),  # fmt: skip
    interval=4,
    epochs=1,
    state_file="model.keras",
    compare=_keras_compare,
    # TensorFlow's op determinism is on, but a model restored from .keras re-traces its graph;
    # the integration test allows 1e-6 for the same reason.
    tolerance=1e-6,
)

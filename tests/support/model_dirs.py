"""Tiny trained-model folders in the contract's layout, for the export and serving tests.

They stand in for what ``training/`` writes, so tests can export and serve real artifacts in
seconds without running a training script. Weights are random but fixed by ``seed``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from contracts.preprocessing import IMAGENET_MEAN, IMAGENET_STD

# Same contract as training/torch_models.py (build_model(arch, num_classes), torch + stdlib only),
# copied beside the model as the architecture module an export packs.
TINY_TORCH_MODELS = Path(__file__).parent / "model_sources" / "tiny_torch_models.py"

DIGIT_NAMES = ("zero", "one", "two")


def write_torch_model_dir(
    root: Path,
    *,
    image_size: int = 8,
    class_names: Sequence[str] = DIGIT_NAMES,
    seed: int = 0,
) -> tuple[Path, Path]:
    """``root/model`` (model.pth, model_config.json, metrics.json) and ``root/torch_models.py``."""
    import importlib.util

    import torch

    root.mkdir(parents=True, exist_ok=True)
    arch_path = root / "torch_models.py"
    shutil.copyfile(TINY_TORCH_MODELS, arch_path)
    spec = importlib.util.spec_from_file_location(f"_tiny_torch_models_{seed}", arch_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(seed)
    model = module.build_model("tiny_cnn", len(class_names))
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 1.5)
    model_dir = root / "model"
    model_dir.mkdir(exist_ok=True)
    torch.save(model.state_dict(), model_dir / "model.pth")
    config = {
        "framework": "pytorch",
        "task": "image-classification",
        "arch": "tiny_cnn",
        "num_classes": len(class_names),
        "class_names": list(class_names),
        "image_size": image_size,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }
    (model_dir / "model_config.json").write_text(json.dumps(config), encoding="utf-8")
    (model_dir / "metrics.json").write_text(
        json.dumps({"test_accuracy": 0.5, "test_loss": 1.1}), encoding="utf-8"
    )
    return model_dir, arch_path


def write_keras_image_model_dir(
    model_dir: Path,
    *,
    image_size: int = 8,
    class_names: Sequence[str] = ("parasitized", "uninfected"),
    seed: int = 0,
    legacy: bool = False,
    training_layers: bool = False,
) -> Path:
    """A Keras image classifier: input ``image`` [S, S, 3] in [0, 255], output ``probabilities``.

    ``legacy=True`` also writes ``model.json`` + ``model.weights.h5`` (the older export path).
    ``training_layers=True`` adds the layers that act only in training (seeded augmentation,
    noise, dropout), as the training scripts' flags can.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if training_layers:
        x = keras.layers.RandomFlip("horizontal_and_vertical", seed=seed)(x)
        x = keras.layers.RandomRotation(0.2, seed=seed)(x)
        x = keras.layers.RandomZoom(0.1, seed=seed)(x)
        x = keras.layers.RandomContrast(0.2, seed=seed)(x)
        x = keras.layers.GaussianNoise(0.5, seed=seed)(x)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    if training_layers:
        x = keras.layers.SpatialDropout2D(0.3, seed=seed)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if training_layers:
        x = keras.layers.Dropout(0.5, seed=seed)(x)
    outputs = keras.layers.Dense(len(class_names), activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save(model_dir / "model.keras")
    if legacy:
        (model_dir / "model.json").write_text(model.to_json(), encoding="utf-8")
        model.save_weights(model_dir / "model.weights.h5")
    config = {
        "framework": "tensorflow",
        "task": "image-classification",
        "class_names": list(class_names),
        "image_size": image_size,
        "backbone": "tiny",
    }
    (model_dir / "model_config.json").write_text(json.dumps(config), encoding="utf-8")
    (model_dir / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}), encoding="utf-8")
    return model_dir


def write_keras_text_model_dir(
    model_dir: Path,
    *,
    class_names: Sequence[str] = ("negative", "neutral", "positive"),
    seed: int = 0,
) -> Path:
    """A Keras text classifier with TextVectorization inside: input ``text`` (strings)."""
    import keras

    keras.utils.set_random_seed(seed)
    vectorize = keras.layers.TextVectorization(max_tokens=64, output_sequence_length=8)
    vectorize.adapt(["the flight was late", "great crew and friendly staff", "lost my bag"])
    inputs = keras.Input((), dtype="string", name="text")
    x = keras.layers.Embedding(64, 8)(vectorize(inputs))
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(len(class_names), activation="softmax", name="probabilities")(x)
    model_dir.mkdir(parents=True, exist_ok=True)
    keras.Model(inputs, outputs).save(model_dir / "model.keras")
    config = {
        "framework": "tensorflow",
        "task": "text-classification",
        "class_names": list(class_names),
    }
    (model_dir / "model_config.json").write_text(json.dumps(config), encoding="utf-8")
    (model_dir / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}), encoding="utf-8")
    return model_dir

"""The models the launcher knows: entry script, framework, defaults and tuning space per model.

One table, so ``train``, ``tune`` and ``ec2`` launch a model the same way. Framework versions are
ones the installed ``sagemaker-core`` resolves to an AWS Deep Learning Container *training* image
offline (``sagemaker.core.image_uris``; its JSON tables list PyTorch up to 2.10 and TensorFlow up to
2.21): the newest of each, so the container is as close as it gets to the local torch 2.13 /
TensorFlow 2.21 the scripts are tested with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from contracts.frameworks import TRAINING
from contracts.models import model_names

Framework = Literal["pytorch", "tensorflow"]
Scaling = Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]

# The channels the scripts read (``SM_CHANNEL_TRAIN`` ...; training/common/env.py).
IMAGE_CHANNELS: tuple[str, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class Continuous:
    min_value: float
    max_value: float
    scaling: Scaling = "Auto"


@dataclass(frozen=True)
class Integer:
    min_value: int
    max_value: int
    scaling: Scaling = "Auto"


@dataclass(frozen=True)
class Categorical:
    values: tuple[str, ...]


Range = Continuous | Integer | Categorical


@dataclass(frozen=True)
class ModelSpec:
    name: str
    entry_script: str  # relative to training/ (the SageMaker source_dir)
    framework: Framework
    framework_version: str
    py_version: str
    instance_type: str  # default SageMaker instance type
    hyperparameters: Mapping[str, str | int | float]
    channels: tuple[str, ...]
    tuning_ranges: Mapping[str, Range]
    objective_metric: str = "valid_accuracy"
    objective_type: Literal["Maximize", "Minimize"] = "Maximize"
    max_run_s: int = 3600
    description: str = ""
    # Transfer learning: the hyperparameter naming the architecture, and the script's default
    # for it; the launcher passes the matching weights of training/common/sources.py.
    backbone_hyperparameter: str | None = None
    backbone_default: str | None = None

    @property
    def job_hyperparameters(self) -> dict[str, str | int | float]:
        """What every job of this model gets: its defaults, and its name for the serving layout
        the script writes into the model dir (TF Serving's model name)."""
        return {"serving-name": self.name, **self.hyperparameters}


_TORCH = {"framework": "pytorch", **TRAINING["pytorch"]}
_TF = {"framework": "tensorflow", **TRAINING["tensorflow"]}

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="digits",
            entry_script="image_classifier_torch.py",
            **_TORCH,  # type: ignore[arg-type]
            instance_type="ml.m5.xlarge",
            hyperparameters={"arch": "small_cnn", "epochs": 10, "batch-size": 64, "lr": 0.001},
            channels=IMAGE_CHANNELS,
            tuning_ranges={
                "lr": Continuous(1e-4, 1e-1, "Logarithmic"),
                "batch-size": Categorical(("32", "64", "128")),
                "epochs": Integer(5, 20),
            },
            max_run_s=3600,
            description="PyTorch small CNN on scikit-learn's handwritten digits (the default)",
            backbone_hyperparameter="arch",
            backbone_default="resnet50",
        ),
        ModelSpec(
            name="dog-breeds",
            entry_script="image_classifier_torch.py",
            **_TORCH,  # type: ignore[arg-type]
            instance_type="ml.g5.xlarge",
            hyperparameters={"arch": "resnet50", "epochs": 10, "batch-size": 32, "lr": 0.001},
            channels=IMAGE_CHANNELS,
            tuning_ranges={
                "lr": Continuous(1e-5, 1e-2, "Logarithmic"),
                "batch-size": Categorical(("16", "32", "64")),
                "arch": Categorical(("resnet18", "resnet34", "resnet50")),
            },
            max_run_s=4 * 3600,
            description="PyTorch ResNet transfer learning on the dog-breed images",
            backbone_hyperparameter="arch",
            backbone_default="resnet50",
        ),
        ModelSpec(
            name="malaria",
            entry_script="image_classifier_keras.py",
            **_TF,  # type: ignore[arg-type]
            instance_type="ml.g5.xlarge",
            hyperparameters={"epochs": 10, "batch-size": 32, "lr": 0.001},
            channels=IMAGE_CHANNELS,
            tuning_ranges={
                "lr": Continuous(1e-5, 1e-2, "Logarithmic"),
                "batch-size": Categorical(("16", "32", "64")),
            },
            max_run_s=2 * 3600,
            description="Keras image classifier on the malaria cell images",
            backbone_hyperparameter="backbone",
            backbone_default="mobilenet_v2",
        ),
        ModelSpec(
            name="sentiment",
            entry_script="sentiment_lstm_keras.py",
            **_TF,  # type: ignore[arg-type]
            instance_type="ml.m5.xlarge",
            hyperparameters={"epochs": 10, "batch-size": 64, "lr": 0.001},
            # python -m training.datasets fetch airline-sentiment writes all three splits.
            channels=IMAGE_CHANNELS,
            tuning_ranges={
                "lr": Continuous(1e-4, 1e-2, "Logarithmic"),
                "batch-size": Categorical(("32", "64", "128")),
                "epochs": Integer(3, 15),
            },
            max_run_s=3600,
            description="Keras LSTM on the airline tweets CSV (text, airline_sentiment)",
        ),
    )
}


class UnknownModelError(ValueError):
    pass


def _check_registry() -> None:
    """cdk.json is the registry of models: this table must name exactly its models."""
    declared = set(model_names())
    if set(MODELS) != declared:
        raise RuntimeError(
            f"training/launch/models.py and cdk.json disagree on the models: only here "
            f"{sorted(set(MODELS) - declared)}, only in cdk.json {sorted(declared - set(MODELS))}. "
            "Add the model to both (cdk.json: its stack settings; here: how to train it)."
        )


_check_registry()


def get_model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownModelError(f"unknown model {name!r}: choose one of {known}") from None

"""Small serving artifacts for the local stage's and model_export's tests.

The PyTorch one that can be told to fail is the reliability suite's (reliability.fault_model);
these are the others. Handler modules are real files beside this one, copied into artifacts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from reliability.fault_model import add_ray_serve_app

# Long enough for a cold Ray Serve replica or TF Serving model load on a busy 2-core machine.
HTTP_TIMEOUT_S = 60
TF_HANDLERS = Path(__file__).parent / "tf_handlers" / "inference.py"


def build_torchscript_artifact(model_dir: Path, *, seed: int = 0) -> Path:
    """A PyTorch artifact without inference.py: the toolkit's default handlers serve TorchScript."""
    import torch

    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch.jit.save(torch.jit.script(model.eval()), str(model_dir / "model.pt"))
    return add_ray_serve_app(model_dir)


def build_tf_artifact(model_dir: Path, *, with_handlers: bool = False, seed: int = 0) -> Path:
    """A TF Serving artifact: a Keras model with input ``x`` (None, 4) → ``probabilities``;
    ``with_handlers`` adds ``code/inference.py`` (tf_handlers/inference.py)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(4,), name="x")
    outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(inputs)
    model = keras.Model(inputs, outputs)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.export(str(model_dir / "1"), verbose=False)
    if with_handlers:
        (model_dir / "code").mkdir(exist_ok=True)
        shutil.copyfile(TF_HANDLERS, model_dir / "code" / "inference.py")
    return model_dir

"""PyTorch trained model dir -> ``model.tar.gz`` for AWS's Ray Serve serving container.

Tarball layout (unpacked into ``/opt/ml/model``)::

    config.yaml             Ray Serve's applications config (``serve run`` reads it)
    model.pth               the state_dict, byte for byte as training saved it
    model_config.json       arch, classes, image size, mean/std (read by model_fn)
    code/serve_app.py       the Ray Serve application: SageMaker PyTorch's handler contract
    code/inference.py       model_fn / input_fn / predict_fn / output_fn
    code/torch_models.py    the architecture (build_model)
    model.pt2               optional: a torch.export program (batch dimension dynamic)
    manifest.json

The container ships Python 3.13 and a fixed set of packages and runs with network isolation, so
every ``code/`` file is checked against that list (``image_packages``) and refused otherwise.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from container_contract.handler import import_script
from container_contract.image_packages import image_packages, unknown_imports
from contracts.frameworks import SERVING
from model_export import manifest as manifest_lib
from model_export.common import (
    ExportResult,
    check_class_names,
    check_name_version,
    copy_file,
    finish,
    python_version,
    read_json,
    read_metrics,
)
from model_export.errors import ExportError
from model_export.preprocess import example_png, torch_eval_input
from model_export.serve_config import CONFIG_NAME, ServeSettings

log = logging.getLogger(__name__)

SERVING_SCRIPT = Path(__file__).parent / "serving" / "pytorch_inference.py"
SERVE_APP = Path(__file__).parent / "serving" / "ray_serve_app.py"
REQUEST_TYPES = ["application/json", "image/jpeg", "image/png", "application/x-npy"]
RESPONSE_TYPES = ["application/json", "application/x-npy"]


def default_arch_module() -> Path:
    """The project's architectures, ``training/torch_models.py``, found by its import name.

    By import name, not by a path relative to the working directory: ``python -m model_export``
    works from any folder of a checkout (``pip install -e .``) and inside a training job, whose
    bundle carries the ``training`` package (training/launch/source.py).
    """
    spec = importlib.util.find_spec("training.torch_models")
    if spec is None or spec.origin is None:
        raise ExportError(
            "training.torch_models is not importable: install the project (make install), or "
            "pass --arch-module <the .py file defining build_model(arch, num_classes)>"
        )
    return Path(spec.origin)


def load_arch_module(path: Path) -> ModuleType:
    if not path.is_file():
        raise ExportError(
            f"architecture module {path} not found; pass --arch-module <path to the "
            "torch_models.py that defines build_model(arch, num_classes)>"
        )
    try:
        # Under a name unique to its path, as the serving containers' scripts are imported.
        module = import_script(path, search_paths=())
    except Exception as exc:
        raise ExportError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(module, "build_model", None)):
        raise ExportError(f"{path} does not define build_model(arch, num_classes)")
    return module


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "model_config.json"
    config = read_json(path, "training writes it beside model.pth (arch, class_names, ...)")
    if not isinstance(config, dict):
        raise ExportError(f"{path} must hold a JSON object")
    if config.get("framework", "pytorch") != "pytorch":
        raise ExportError(
            f"{path} says framework {config.get('framework')!r}; use `python -m model_export "
            "keras` for TensorFlow models"
        )
    missing = [
        k
        for k in ("arch", "num_classes", "class_names", "image_size", "mean", "std")
        if k not in config
    ]
    if missing:
        raise ExportError(f"{path} lacks {', '.join(missing)} (see the model-dir contract)")
    names = check_class_names(config, path)
    if config["num_classes"] != len(names):
        raise ExportError(
            f"{path}: num_classes is {config['num_classes']} but class_names has {len(names)}"
        )
    if not isinstance(config["image_size"], int) or config["image_size"] < 1:
        raise ExportError(f"{path}: image_size must be a positive integer")
    for key in ("mean", "std"):
        values = config[key]
        if not (
            isinstance(values, list)
            and len(values) == 3
            and all(isinstance(v, int | float) for v in values)
        ):
            raise ExportError(f"{path}: {key} must be three numbers (r, g, b)")
    if any(v == 0 for v in config["std"]):
        raise ExportError(f"{path}: std must not contain 0")
    return config


def load_original(model_dir: Path, config: dict[str, Any], arch_module: ModuleType):
    """The trained model as training left it: build_model + model.pth, strict key match."""
    import torch

    weights = model_dir / "model.pth"
    if not weights.is_file():
        raise ExportError(f"{weights} is missing: training saves the best epoch's state_dict there")
    try:
        model = arch_module.build_model(config["arch"], int(config["num_classes"]))
    except ValueError as exc:
        raise ExportError(f"build_model({config['arch']!r}, ...) failed: {exc}") from exc
    try:
        state_dict = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExportError(f"{weights} is not a loadable state_dict: {exc}") from exc
    if not isinstance(state_dict, dict):
        raise ExportError(f"{weights} holds a {type(state_dict).__name__}, not a state_dict")
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when strict=False
        first = str(exc).strip().splitlines()[1:2] or [str(exc)]
        raise ExportError(
            f"{weights} does not fit arch {config['arch']!r} built by the architecture module: "
            f"{first[0].strip()}; is it the torch_models.py training used?"
        ) from exc
    if result.missing_keys or result.unexpected_keys:
        raise ExportError(
            f"{weights} does not fit arch {config['arch']!r}: missing keys "
            f"{result.missing_keys[:5]}, unexpected keys {result.unexpected_keys[:5]}; is "
            "model_config.json's arch (or --arch-module) the one training used?"
        )
    return model.eval()


def probabilities(model, batch: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(batch)), dim=1).numpy()


def export_pytorch(
    model_dir: Path,
    *,
    name: str,
    version: int = 1,
    out_dir: Path | None = None,
    arch_module: Path | None = None,
    example_image: Path | None = None,
    torch_export: bool = False,
    onnx: bool = False,
    atol: float = manifest_lib.DEFAULT_ATOL,
    serve: ServeSettings | None = None,
) -> ExportResult:
    """Write ``<out_dir>/model.tar.gz`` and ``<out_dir>/manifest.json`` (+ ``model.onnx``).

    ``serve``: the Ray Serve deployment settings written to ``config.yaml`` (default
    ``ServeSettings()``).
    """
    check_name_version(name, version)
    serve = serve or ServeSettings()
    if not model_dir.is_dir():
        raise ExportError(f"--model-dir {model_dir} is not a directory")
    import torch

    out_dir = out_dir or Path("artifacts") / name
    config = read_config(model_dir)
    metrics = read_metrics(model_dir)
    arch_module = arch_module or default_arch_module()
    module = load_arch_module(arch_module)
    model = load_original(model_dir, config, module)
    size = int(config["image_size"])
    class_names = [str(n) for n in config["class_names"]]

    png = example_png(size, example_image)
    batch = torch_eval_input(png, size, config["mean"], config["std"])[np.newaxis]
    expected = probabilities(model, batch)
    example = {
        "content_type": "application/json",
        "accept": "application/json",
        "body": {"instances": [{"b64": base64.b64encode(png).decode("ascii")}]},
        "expected": {
            "labels": [class_names[int(i)] for i in expected.argmax(axis=1)],
            "probabilities": expected.tolist(),
        },
        "tolerance": {"atol": atol},
    }
    serving = SERVING["pytorch"]
    manifest: dict[str, Any] = {
        "schema_version": manifest_lib.SCHEMA_VERSION,
        "name": name,
        "version": version,
        "framework": "pytorch",
        "framework_version": serving["framework_version"],
        "py_version": serving["py_version"],
        "container": {
            "image_family": serving["image_family"],
            "image_repository": serving["image_repository"],
            "model_server": serving["model_server"],
            "env": manifest_lib.container_env("pytorch", name),
        },
        "serve": {"config": CONFIG_NAME, **serve.as_dict()},
        "weights": weights_info(config),
        "content_type": "application/json",
        "accept": "application/json",
        "request_content_types": REQUEST_TYPES,
        "response_content_types": RESPONSE_TYPES,
        "task": "image-classification",
        "class_names": class_names,
        "input": {
            "application/json": '{"instances": [{"b64": "<base64 JPEG/PNG>"} | '
            f"<3x{size}x{size} preprocessed float array>, ...]}}",
            "image/jpeg | image/png": "the raw bytes of one image",
            "application/x-npy": f"float32 [n, 3, {size}, {size}] or [3, {size}, {size}], "
            "preprocessed",
            "preprocessing": f"RGB, bilinear resize to {size}x{size}, /255, "
            f"(x - {config['mean']}) / {config['std']}, channels first",
            "json_schema": manifest_lib.request_schema("image-classification"),
            "tensor": {"name": "input", "dtype": "float32", "shape": [None, 3, size, size]},
        },
        "output": {
            "application/json": '{"predictions": [{"label": str, "probability": float, '
            '"probabilities": {class_name: float}}]}',
            "application/x-npy": f"float32 [n, {len(class_names)}] class probabilities",
            "json_schema": manifest_lib.response_schema(class_names),
            "tensor": {
                "name": "probabilities",
                "dtype": "float32",
                "shape": [None, len(class_names)],
            },
        },
        "example": example,
        "training": {"metrics": metrics, "model_config": config},
        "exported_with": {"python": python_version(), "torch": torch.__version__},
        "files": {},
    }
    edge: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="model_export_") as tmp:
        staging = Path(tmp) / "artifact"
        copy_file(model_dir / "model.pth", staging / "model.pth")
        copy_file(model_dir / "model_config.json", staging / "model_config.json")
        copy_file(SERVING_SCRIPT, staging / "code" / "inference.py")
        copy_file(arch_module, staging / "code" / "torch_models.py")
        copy_file(SERVE_APP, staging / "code" / "serve_app.py")
        (staging / CONFIG_NAME).write_text(serve.config_yaml(), encoding="utf-8")
        check_code_runs_in_image(staging / "code")
        if torch_export:
            diff = write_torch_export(model, batch, staging / "model.pt2", atol)
            manifest["torch_export"] = {"path": "model.pt2", "max_abs_diff": diff, "atol": atol}
        out = out_dir
        if onnx:
            from model_export.edge import export_onnx

            out.mkdir(parents=True, exist_ok=True)
            edge["onnx"] = export_onnx(model, batch, out / "model.onnx", atol)
        return finish(staging=staging, out_dir=out, manifest=manifest, edge=edge)


def weights_info(config: dict[str, Any]) -> dict[str, Any]:
    """The weights' format and the torch that saved them (training records it, else this one)."""
    import torch

    saved_with = config.get("torch_version")
    serving_torch = image_packages()["torch"].version
    return {
        "format": "state_dict",
        "path": "model.pth",
        "saved_with_torch": str(saved_with or torch.__version__).split("+")[0],
        "saved_with_source": "model_config.json" if saved_with else "the exporting environment",
        "serving_torch": serving_torch,
    }


def check_code_runs_in_image(code_dir: Path) -> None:
    """Refuse code the serving image cannot import: it runs with network isolation, no pip."""
    problems = unknown_imports(code_dir)
    if problems:
        raise ExportError(
            "the artifact's code/ imports what AWS's Ray Serve image (Python 3.13) does not ship, "
            "and the endpoint runs with network isolation, so nothing can be installed at start-"
            "up: " + "; ".join(problems) + ". Vendor the module into code/ (pure Python) or use "
            "one of the packages listed in container_contract/data/ray_serve_image_packages.txt."
        )


def write_torch_export(model, batch: np.ndarray, path: Path, atol: float) -> float:
    """Save a ``torch.export`` program with a dynamic batch dimension; return its parity gap."""
    import torch

    # torch.export specialises sizes 0 and 1, so trace with a batch of 2.
    sample = torch.from_numpy(np.repeat(batch, 2, axis=0))
    batch_dim = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(model, (sample,), dynamic_shapes=({0: batch_dim},))
    torch.export.save(program, str(path))
    reloaded = torch.export.load(str(path)).module()
    check = torch.from_numpy(np.concatenate([batch] * 3))
    with torch.inference_mode():
        diff = float(
            (torch.softmax(reloaded(check), 1) - torch.softmax(model(check), 1)).abs().max()
        )
    if not diff <= atol:
        raise ExportError(f"the torch.export program differs from the model by {diff} > {atol}")
    log.info("torch.export program: max |delta p| %.2e", diff)
    return diff

"""``python -m model_export verify``: prove an artifact loads and answers like the original model.

Steps: unpack safely; check the layout against the serving container's rules and the manifest and
every file's sha256 (``model_export.artifact_checks``: each problem a sentence saying what is
wrong and how to fix it); load the artifact through ``model_export.containers`` (the container's
own handler contract); send the manifest's example request; compare labels and probabilities with
the original model's (recorded at export time) within ``atol``. A PyTorch artifact then also runs in real Ray Serve
from its ``config.yaml`` behind the container's adapter (``container_contract.ray_serve``), and the
example goes through ``POST /invocations`` there too (``ray_serve=True``, the CLI's default).

Like the container, this imports and runs the artifact's ``code/inference.py``: verify only
artifacts whose code you would deploy. Unpacking itself is safe (no path traversal, no links).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from model_export import manifest as manifest_lib
from model_export.artifact_checks import (
    Report,
    check_files,
    check_pytorch_layout,
    check_tensorflow_layout,
)
from model_export.errors import ExportError
from model_export.tarball import safe_extract, sha256_file

log = logging.getLogger(__name__)


def original_probabilities(
    root: Path, manifest: dict[str, Any], model_dir: Path, arch_module: Path | None
):
    """The original (trained) model's probabilities for the manifest's example, recomputed."""
    import base64

    import numpy as np

    from model_export.preprocess import decode_rgb, torch_eval_input

    instances = manifest["example"]["body"]["instances"]
    if manifest["framework"] == "pytorch":
        from model_export import pytorch_export

        config = pytorch_export.read_config(model_dir)
        module = pytorch_export.load_arch_module(arch_module or root / "code" / "torch_models.py")
        model = pytorch_export.load_original(model_dir, config, module)
        size, mean, std = config["image_size"], config["mean"], config["std"]
        batch = np.stack(
            [torch_eval_input(base64.b64decode(i["b64"]), size, mean, std) for i in instances]
        )
        return pytorch_export.probabilities(model, batch)
    import tensorflow as tf

    from model_export import keras_export

    config = keras_export.read_config(model_dir)
    model = keras_export.load_keras_model(model_dir, None, None)
    if config["task"] == "text-classification":
        inputs = np.array(instances, dtype=object)
    else:
        size = keras_export._image_size(model, config)
        inputs = np.stack([decode_rgb(base64.b64decode(i["b64"]), size) for i in instances])
    return np.asarray(model(tf.constant(inputs), training=False), dtype=np.float64)


def run_example(
    root: Path,
    manifest: dict[str, Any],
    report: Report,
    atol: float | None,
    original: Any = None,
) -> None:
    import numpy as np

    from model_export.containers import load

    example = manifest["example"]
    container = load(root)
    body = json.dumps(example["body"]).encode("utf-8")
    response = container.invoke(body, example["content_type"], example["accept"])
    if response.status != 200:
        report.errors.append(
            f"the example request failed with HTTP {response.status}: "
            f"{response.body.decode('utf-8', 'replace')[:500]}"
        )
        return
    try:
        predictions = response.json()["predictions"]
        labels = [p["label"] for p in predictions]
        names = manifest["class_names"]
        # Our handlers answer {name: p}; a bare TF Serving reply (no handler) a list by index.
        got = np.array(
            [
                [p["probabilities"][n] for n in names]
                if isinstance(p["probabilities"], dict)
                else p["probabilities"]
                for p in predictions
            ],
            dtype=np.float64,
        )
    except (ValueError, KeyError, TypeError) as exc:
        report.errors.append(f"the example response is not the documented JSON ({exc})")
        return
    expected = example["expected"]
    want = np.asarray(expected["probabilities"], dtype=np.float64)
    tolerance = atol if atol is not None else float(example["tolerance"]["atol"])
    if original is not None:
        # The manifest's record is what we compare with; check it against the model itself.
        gap = (
            float(np.abs(np.asarray(original) - want).max())
            if original.shape == want.shape
            else None
        )
        if gap is None or not gap <= tolerance:
            report.errors.append(
                "the manifest's expected answer is not what the original model in --model-dir "
                f"gives (max |delta p| {gap}); the artifact was exported from another model"
            )
            want = np.asarray(original, dtype=np.float64)
        else:
            report.notes.append(
                f"the original model in --model-dir agrees (max |delta p| {gap:.2e})"
            )
    if got.shape != want.shape:
        report.errors.append(f"the example answer has shape {got.shape}, expected {want.shape}")
        return
    diff = float(np.abs(got - want).max())
    report.max_abs_diff = diff
    if labels != expected["labels"]:
        report.errors.append(
            f"labels {labels} differ from the original model's {expected['labels']}"
        )
    if not diff <= tolerance:
        report.errors.append(
            f"probabilities differ from the original model's by {diff:.3g} > atol {tolerance}"
        )
    else:
        report.notes.append(
            f"example request: labels {labels} match; max |delta p| {diff:.2e} <= atol {tolerance}"
        )


def run_example_in_ray_serve(root: Path, manifest: dict[str, Any], report: Report) -> None:
    """The manifest's example through real Ray Serve and the adapter: the same answer?"""
    import numpy as np

    from container_contract.errors import ContainerError
    from container_contract.ray_serve import RayContainer

    example = manifest["example"]
    body = json.dumps(example["body"]).encode("utf-8")
    try:
        with RayContainer(root) as container:
            headers = {"Content-Type": example["content_type"], "Accept": example["accept"]}
            status, answer, _ = container.request("POST", "/invocations", body, headers)
            started_s = container.started_s
    except (ContainerError, OSError) as exc:
        report.errors.append(f"the artifact does not start in Ray Serve: {exc}")
        return
    if status != 200:
        report.errors.append(
            f"in Ray Serve the example request failed with HTTP {status}: "
            f"{answer.decode('utf-8', 'replace')[:500]}"
        )
        return
    try:
        predictions = json.loads(answer)["predictions"]
        names = manifest["class_names"]
        got = np.array([[p["probabilities"][n] for n in names] for p in predictions])
        labels = [p["label"] for p in predictions]
    except (ValueError, KeyError, TypeError) as exc:
        report.errors.append(
            f"in Ray Serve the example response is not the documented JSON ({exc})"
        )
        return
    want = np.asarray(example["expected"]["probabilities"], dtype=np.float64)
    tolerance = float(example["tolerance"]["atol"])
    diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    if labels != example["expected"]["labels"] or not diff <= tolerance:
        report.errors.append(
            f"in Ray Serve the example answered labels {labels} (max |delta p| {diff:.3g}); the "
            f"original model's are {example['expected']['labels']} (atol {tolerance})"
        )
    else:
        report.notes.append(
            f"Ray Serve (config.yaml, adapter /invocations): labels {labels} match; max |delta p| "
            f"{diff:.2e}; first answer {started_s:.1f} s after start"
        )


def verify_dir(
    root: Path,
    atol: float | None = None,
    model_dir: Path | None = None,
    arch_module: Path | None = None,
    ray_serve: bool = False,
) -> Report:
    report = Report()
    manifest_path = root / manifest_lib.MANIFEST_NAME
    manifest: Any = None
    if not manifest_path.is_file():
        report.errors.append(
            "manifest.json is missing from the tarball; export it with `python -m model_export`"
        )
    else:
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            report.errors.append(f"manifest.json is not valid JSON: {exc}")
        else:
            report.errors.extend(manifest_lib.validate(manifest))
            if report.errors:
                manifest = None
    framework = manifest["framework"] if manifest else None
    if framework is None:
        framework = "tensorflow" if any(root.rglob("saved_model.pb")) else "pytorch"
    if framework == "tensorflow":
        check_tensorflow_layout(root, report)
    else:
        check_pytorch_layout(root, report)
    if manifest is not None:
        check_files(root, manifest, report)
    if report.ok and manifest is not None:
        try:
            original = None
            if model_dir is not None:
                original = original_probabilities(root, manifest, model_dir, arch_module)
            run_example(root, manifest, report, atol, original)
        except ExportError as exc:
            report.errors.append(str(exc))
    if ray_serve and report.ok and manifest is not None and framework == "pytorch":
        run_example_in_ray_serve(root, manifest, report)
    return report


def verify(
    path: Path,
    atol: float | None = None,
    model_dir: Path | None = None,
    arch_module: Path | None = None,
    *,
    ray_serve: bool = False,
) -> Report:
    """Verify a ``model.tar.gz`` (or an already unpacked artifact folder).

    With ``model_dir`` (the trained model folder) the original model is loaded again and its
    answer to the example replaces the one recorded in the manifest at export time.
    """
    if model_dir is not None and not model_dir.is_dir():
        raise ExportError(f"--model-dir {model_dir} is not a directory")
    if path.is_dir():
        return verify_dir(path, atol, model_dir, arch_module, ray_serve)
    if not path.is_file():
        raise ExportError(f"{path} does not exist")
    with tempfile.TemporaryDirectory(prefix="model_verify_") as tmp:
        root = Path(tmp) / "model"
        safe_extract(path, root)
        report = verify_dir(root, atol, model_dir, arch_module, ray_serve)
    beside = path.with_name(manifest_lib.MANIFEST_NAME)
    if beside.is_file():
        try:
            recorded = json.loads(beside.read_text(encoding="utf-8")).get("artifact", {})
        except ValueError:
            recorded = {}
        if recorded.get("sha256") and recorded["sha256"] != sha256_file(path):
            report.errors.append(
                f"{path.name}'s sha256 differs from {beside}: the manifest beside it belongs to "
                "another export; re-run the export"
            )
    return report

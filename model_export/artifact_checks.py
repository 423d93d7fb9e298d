"""What the serving container requires of an artifact's layout and files, checked before loading it.

Each problem is a sentence saying what is wrong and how to fix it: the container's layout rules
(PyTorch's Ray Serve image, TF Serving's), the imports its ``code/`` may make, and every file
against the manifest's sha256.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_export import manifest as manifest_lib
from model_export.tarball import list_files, sha256_file

# What a TF Serving container's script may import besides its own code/ modules (PyTorch
# artifacts are checked against the Ray Serve image's package list, image_packages).
_ALLOWED_IMPORTS = {"tensorflow": {"falcon"}}


@dataclass
class Report:
    """What verifying an artifact found: errors fail it, warnings and notes are reported."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_abs_diff: float | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def _imports(script: Path) -> set[str]:
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _check_imports(root: Path, script: Path, framework: str, report: Report) -> None:
    local = {p.stem for p in (root / "code").glob("*.py")} | {"__future__"}
    if (root / "code" / "lib").is_dir():
        local |= {p.name.removesuffix(".py") for p in (root / "code" / "lib").iterdir()}
    allowed = _ALLOWED_IMPORTS[framework] | set(sys.stdlib_module_names) | local
    foreign = sorted(_imports(script) - allowed)
    if foreign and not (root / "code" / "requirements.txt").is_file():
        report.errors.append(
            f"code/{script.name} imports {', '.join(foreign)}, which the {framework} serving "
            "container does not have; ship them in code/lib/ or list them in code/requirements.txt"
        )


def check_pytorch_layout(root: Path, report: Report) -> None:
    from container_contract.image_packages import unknown_imports, unmet_requirements

    files = set(list_files(root))
    if "config.yaml" not in files:
        report.errors.append(
            "config.yaml is missing from the root: AWS's Ray Serve container runs `serve run "
            "/opt/ml/model/config.yaml` (or needs SM_RAYSERVE_APP); re-export with "
            "`python -m model_export pytorch`"
        )
    weights = [f for f in files if Path(f).name in ("model.pth", "model.pt")]
    if not any(f in ("model.pth", "model.pt") for f in files):
        if weights:
            report.errors.append(
                f"{weights[0]} is inside a folder; the PyTorch container unpacks the tarball into "
                "/opt/ml/model and looks for model.pth/model.pt at its root: tar the folder's "
                "contents, not the folder"
            )
        else:
            report.errors.append("no model.pth or model.pt at the root of the tarball")
    if "inference.py" in files and "code/inference.py" not in files:
        report.errors.append(
            "inference.py is at the root; the PyTorch container imports it only from "
            "code/inference.py"
        )
    script = root / "code" / "inference.py"
    if not script.is_file():
        if "model.pt" not in files:
            report.errors.append(
                "code/inference.py is missing and there is no TorchScript model.pt: the "
                "container's default model_fn loads only TorchScript, so a state_dict "
                "(model.pth) needs code/inference.py with a model_fn"
            )
        return
    defined = _defined_functions(script, report)
    if defined is None:
        return
    if "transform_fn" in defined and defined & {"input_fn", "predict_fn", "output_fn"}:
        report.errors.append(
            "code/inference.py defines transform_fn together with input_fn/predict_fn/output_fn; "
            "the toolkit refuses the mix (keep one form)"
        )
    if "model_fn" not in defined and "model.pt" not in files:
        report.errors.append("code/inference.py has no model_fn, and no TorchScript model.pt")
    for problem in unknown_imports(root / "code"):
        report.errors.append(
            f"code/{problem}, which AWS's Ray Serve image (Python 3.13) does not ship; the "
            "endpoint runs with network isolation, so vendor it into code/"
        )
    requirements = root / "code" / "requirements.txt"
    if requirements.is_file():
        for line in unmet_requirements(requirements.read_text(encoding="utf-8")):
            report.errors.append(
                f"code/requirements.txt asks for {line}: the container's start-up pip install "
                "fails under the endpoint's network isolation"
            )


def check_tensorflow_layout(root: Path, report: Report) -> None:
    from model_export.containers import find_saved_models

    pbs = sorted(p.relative_to(root).as_posix() for p in root.rglob("saved_model.pb"))
    if not pbs:
        report.errors.append("no saved_model.pb anywhere in the tarball: not a SavedModel")
        return
    for pb in pbs:
        parent = Path(pb).parent
        if str(parent) == ".":
            report.errors.append(
                "saved_model.pb is at the root; the TF Serving container only finds it under a "
                "numbered version folder: put the SavedModel in <name>/1/"
            )
        elif not parent.name.isdigit():
            report.errors.append(
                f"{pb}: its folder {parent.name!r} is not a number; the TF Serving container "
                f"only loads SavedModels in numbered version folders: move it to {parent}/1/"
            )
        elif not (root / parent / "variables").is_dir():
            report.warnings.append(f"{parent}/ has no variables/ folder")
    models = find_saved_models(root)
    if len(models) > 1:
        report.warnings.append(
            f"{len(models)} models ({', '.join(sorted(models))}); the container's default is "
            "whichever its directory walk finds first: set SAGEMAKER_TFS_DEFAULT_MODEL_NAME"
        )
    code = root / "code"
    if (root / "inference.py").is_file() and not (code / "inference.py").is_file():
        report.errors.append(
            "inference.py is at the root; the TF Serving container only runs code/inference.py"
        )
    script = code / "inference.py"
    if script.is_file():
        defined = _defined_functions(script, report)
        if defined is None:
            return
        if "handler" not in defined and not {"input_handler", "output_handler"} <= defined:
            present = sorted(defined & {"input_handler", "output_handler"})
            report.errors.append(
                "code/inference.py must define handler(data, context) or both input_handler and "
                f"output_handler (it defines {present or 'neither'}); the container raises "
                "NotImplementedError on every request otherwise"
            )
        _check_imports(root, script, "tensorflow", report)


def check_files(root: Path, manifest: dict[str, Any], report: Report) -> None:
    listed = manifest["files"]
    present = set(list_files(root)) - {manifest_lib.MANIFEST_NAME}
    for rel in sorted(set(listed) - present):
        report.errors.append(f"{rel} is listed in manifest.json but missing from the tarball")
    for rel in sorted(present - set(listed)):
        report.errors.append(f"{rel} is in the tarball but not in manifest.json (added later?)")
    for rel in sorted(set(listed) & present):
        if sha256_file(root / rel) != listed[rel]["sha256"]:
            report.errors.append(
                f"{rel}: sha256 differs from manifest.json (modified after export)"
            )


def _defined_functions(script: Path, report: Report) -> set[str] | None:
    """The top-level functions ``script`` defines; None (and an error) if it does not parse."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except SyntaxError as exc:
        report.errors.append(f"code/{script.name} does not parse: {exc}")
        return None
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}

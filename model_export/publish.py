"""Turn a trained model dir into a deployable one in place: the serving layout beside the
training files, so the ``model.tar.gz`` a SageMaker job makes of it is what the endpoint loads.

Training scripts call :func:`publish_serving_layout` at the end of a run. It exports with the same
public functions as ``python -m model_export`` (so the layout is the exporter's, whatever it is),
unpacks the artifact into the model dir, lists the training files that stay there (``model.keras``,
``metrics.json`` ...) in ``manifest.json`` with their sha256 (so ``verify`` and its integrity check
accept the folder, and the job's tarball, as they are), then verifies the folder against the
original model the way ``python -m model_export verify --model-dir`` does.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from model_export import manifest as manifest_lib
from model_export.common import TARBALL_NAME
from model_export.errors import ExportError
from model_export.tarball import list_files, safe_extract, sha256_file

log = logging.getLogger(__name__)


def publish_serving_layout(
    model_dir: Path,
    *,
    framework: str,
    name: str,
    arch_module: Path | None = None,
) -> dict:
    """Export ``model_dir`` into itself and verify it; return the manifest. Raises ExportError."""
    with tempfile.TemporaryDirectory(prefix="model_publish_") as tmp:
        out = Path(tmp) / "export"
        if framework == "pytorch":
            from model_export.pytorch_export import export_pytorch

            export_pytorch(model_dir, name=name, out_dir=out, arch_module=arch_module)
        elif framework == "tensorflow":
            from model_export.keras_export import export_keras

            export_keras(model_dir, name=name, out_dir=out)
        else:
            raise ExportError(f"framework {framework!r} is not pytorch or tensorflow")
        unpacked = Path(tmp) / "unpacked"
        safe_extract(out / TARBALL_NAME, unpacked)
        inside = json.loads((unpacked / manifest_lib.MANIFEST_NAME).read_text(encoding="utf-8"))
        for rel in list_files(unpacked):
            target = model_dir / rel
            same = target.is_file() and sha256_file(target) == inside["files"][rel]["sha256"]
            if same:
                continue  # a training file the layout carries as it is (model.pth)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(unpacked / rel, target)
    # The training files stay beside the layout (export and verify read them); listed and hashed
    # like the rest, so the folder passes the integrity check as one artifact.
    for rel in list_files(model_dir):
        if rel != manifest_lib.MANIFEST_NAME and rel not in inside["files"]:
            path = model_dir / rel
            inside["files"][rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    inside["files"] = dict(sorted(inside["files"].items()))
    manifest_lib.write(model_dir / manifest_lib.MANIFEST_NAME, inside)

    from model_export.verify import verify_dir

    report = verify_dir(model_dir, None, model_dir, arch_module)
    for line in report.warnings:
        log.warning("serving layout: %s", line)
    if not report.ok:
        raise ExportError(
            f"the serving layout in {model_dir} failed verification: " + "; ".join(report.errors)
        )
    log.info(
        "serving layout written to %s (%s %s, model name %s): the job's model.tar.gz deploys as is",
        model_dir,
        inside["framework"],
        inside["framework_version"],
        name,
    )
    return inside

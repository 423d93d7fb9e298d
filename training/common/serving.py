"""The end of every training run: the model dir becomes the serving layout (``model_export``).

A SageMaker job uploads the model dir as ``model.tar.gz``; with the serving layout in it, that
file is what the endpoint loads (``make deploy MODEL_DATA_URL=<the job's model.tar.gz>``). The
layout comes from ``model_export``'s own functions, never a copy of them: the launcher ships the
``model_export`` package (and the ``local_stage`` handlers it verifies with) in the job's source;
run from a checkout, it is imported from the repository root.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServingExportError(RuntimeError):
    """The trained model could not be exported or verified as a serving artifact."""


def _make_importable() -> None:
    if importlib.util.find_spec("model_export") is not None:
        return
    if (REPO_ROOT / "model_export").is_dir():
        sys.path.append(str(REPO_ROOT))
        return
    raise ServingExportError(
        "the model_export package is not importable: run the script from a checkout of the "
        "project, or launch it with `python -m training.launch` (which ships model_export), "
        "or pass --export false and export later with `python -m model_export`"
    )


def publish(model_dir: Path, *, framework: str, name: str, arch_module: Path | None = None) -> dict:
    """Write and verify the serving layout in ``model_dir``; return its manifest."""
    _make_importable()
    from model_export.errors import ExportError
    from model_export.publish import publish_serving_layout

    try:
        return publish_serving_layout(
            model_dir, framework=framework, name=name, arch_module=arch_module
        )
    except ExportError as exc:
        raise ServingExportError(
            f"the trained model is saved in {model_dir}, but exporting it for serving failed: {exc}"
        ) from exc

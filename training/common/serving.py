"""The end of every training run: the model dir becomes the serving layout (``model_export``).

A SageMaker job uploads the model dir as ``model.tar.gz``; with the serving layout in it, that
file is what the endpoint loads (``make deploy MODEL_DATA_URL=<the job's model.tar.gz>``). The
layout comes from ``model_export``'s own functions, never a copy of them: in a checkout it is
installed (``pip install -e .``); in a job the launcher ships it in the source bundle
(training/launch/source.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class ServingExportError(RuntimeError):
    """The trained model could not be exported or verified as a serving artifact."""


def publish(model_dir: Path, *, framework: str, name: str, arch_module: Path | None = None) -> dict:
    """Write and verify the serving layout in ``model_dir``; return its manifest."""
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

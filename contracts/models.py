"""The registry of models: their names, read from ``cdk.json`` (context ``ml-serving.models``).

``cdk.json`` is the one source: the CDK app reads each model's stack settings from it
(stacks/config.py), and the launcher's table of how to train each model
(training/launch/models.py) must name exactly the same models, which it checks on import.
Standard library only: a plain JSON read, no CDK.
"""

from __future__ import annotations

import json
from pathlib import Path

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
CONTEXT_KEY = "ml-serving"


def model_names(cdk_json: Path = CDK_JSON) -> tuple[str, ...]:
    """The models ``cdk.json`` declares, in its order."""
    try:
        context = json.loads(cdk_json.read_text())["context"][CONTEXT_KEY]
        return tuple(context["models"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"cannot read the model registry from {cdk_json} (context.{CONTEXT_KEY}.models): "
            f"{exc}. Run from a checkout of the project, where cdk.json declares the models."
        ) from exc

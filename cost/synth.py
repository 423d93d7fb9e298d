"""Synthesize the serving stacks in-process, as tests/infra and account_setup do: no AWS calls.

The estimate does not depend on where the model artifact comes from, so a stage whose local
artifact is not built yet is synthesized from a placeholder S3 artifact (as `cdk destroy` does).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER_ACCOUNT = "123456789012"
PLACEHOLDER_ARTIFACT = {
    "model_data_url": "s3://artifact-not-needed-for-cost/model.tar.gz",
    "framework": "pytorch",
    "framework_version": "1.4",
}


def project_context(cdk_json: Path = ROOT / "cdk.json") -> dict[str, Any]:
    return dict(json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {}))


def _with_artifact(overrides: dict[str, Any], model: str) -> dict[str, Any]:
    if overrides.get("model_data_url") or overrides.get("artifact_path"):
        return overrides
    if (ROOT / "artifacts" / model / "model.tar.gz").is_file():
        return overrides
    return {**overrides, **PLACEHOLDER_ARTIFACT}


def synthesize(
    stages: Sequence[str], model: str, region: str, overrides: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each stage's template for ``model``, keyed by stage; ``overrides`` are the `-c` keys."""
    import aws_cdk as cdk  # the CDK app's deps: imported only when synthesizing

    import app as cdk_app

    context = project_context()
    account = str(overrides.get("account") or PLACEHOLDER_ACCOUNT)
    rest = {k: v for k, v in overrides.items() if k not in ("account", "region")}
    with tempfile.TemporaryDirectory(prefix="cost-synth-") as outdir:
        app = cdk.App(context={**context, "account": account, "region": region}, outdir=outdir)
        names = {}
        for stage in stages:
            stack = cdk_app.build_app(
                app, overrides=_with_artifact({**rest, "stage": stage, "model": model}, model)
            )
            names[stack.stack_name] = stage
        assembly = app.synth()
        return {
            names[s.stack_name]: dict(s.template) for s in assembly.stacks if s.stack_name in names
        }

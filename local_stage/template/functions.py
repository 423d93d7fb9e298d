"""The Lambda functions the REST API integrates with: handler, runtime, code asset, environment,
limits, provisioned concurrency of the alias the API calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_stage.errors import LocalStageError
from local_stage.template.intrinsics import Resolver, find_asset, of_type, refs, to_int
from local_stage.template.specs import FunctionSpec


def _provisioned_concurrency(resources: dict[str, Any], function_id: str) -> int:
    """The provisioned environments of the function's aliases (the API calls the alias)."""
    total = 0
    for alias in of_type(resources, "AWS::Lambda::Alias").values():
        props = alias.get("Properties", {})
        if function_id in refs(props.get("FunctionName")):
            config = props.get("ProvisionedConcurrencyConfig") or {}
            total += to_int(
                config.get("ProvisionedConcurrentExecutions", 0), "ProvisionedConcurrency"
            )
    return total


def read_function(
    app_dir: Path, assets: dict[str, Any], logical_id: str, resources: dict[str, Any], r: Resolver
) -> FunctionSpec:
    fn = resources[logical_id]
    props = fn.get("Properties", {})
    handler = props.get("Handler")
    if not isinstance(handler, str) or "." not in handler:
        raise LocalStageError(f"Lambda function {logical_id} has no module.function Handler")
    runtime = str(props.get("Runtime", ""))
    if not runtime.startswith("python"):
        raise LocalStageError(
            f"Lambda function {logical_id} runs {runtime or 'a container image'}; the local stage "
            "runs Python functions"
        )
    asset_path = fn.get("Metadata", {}).get("aws:asset:path")
    if asset_path:
        code_dir = app_dir / asset_path
    else:
        code = props.get("Code", {})
        if "ZipFile" in code:
            raise LocalStageError(f"Lambda function {logical_id} has inline code (ZipFile)")
        code_dir = find_asset(app_dir, assets, json.dumps(code), f"function {logical_id}'s Code")
    if not code_dir.is_dir():
        raise LocalStageError(f"the function's code asset {code_dir} is missing: run `make synth`")
    variables = (props.get("Environment") or {}).get("Variables") or {}
    env = {k: str(r.resolve(v)) for k, v in variables.items()}
    return FunctionSpec(
        logical_id=logical_id,
        handler=handler,
        runtime=runtime,
        code_dir=code_dir,
        environment=env,
        timeout_s=float(props.get("Timeout", 3)),
        memory_mb=to_int(props.get("MemorySize", 128), "MemorySize"),
        provisioned_concurrency=_provisioned_concurrency(resources, logical_id),
    )


def integration_function(resources: dict[str, Any], uri: Any) -> str | None:
    """Follow an integration URI's references (alias → function, version → function)."""
    for ref in refs(uri):
        res = resources.get(ref, {})
        kind = res.get("Type")
        if kind == "AWS::Lambda::Function":
            return ref
        if kind in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            targets = refs(res.get("Properties", {}).get("FunctionName"))
            for t in targets:
                if resources.get(t, {}).get("Type") == "AWS::Lambda::Function":
                    return t
    return None

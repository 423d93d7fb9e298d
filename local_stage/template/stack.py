"""``load_stack``: the whole stack as the local stage runs it, from ``cdk.out``."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from local_stage.errors import LocalStageError
from local_stage.template.api import read_api
from local_stage.template.endpoint import read_endpoint
from local_stage.template.intrinsics import Resolver
from local_stage.template.specs import DEFAULT_REGION, LOCAL_ACCOUNT, StackSpec

log = logging.getLogger("local_stage.template")


def list_stacks(app_dir: Path) -> list[str]:
    return sorted(p.name.removesuffix(".template.json") for p in app_dir.glob("*.template.json"))


def load_stack(app_dir: Path, stack_name: str) -> StackSpec:
    app_dir = Path(app_dir)
    template_path = app_dir / f"{stack_name}.template.json"
    if not template_path.is_file():
        stacks = list_stacks(app_dir) if app_dir.is_dir() else []
        hint = f"stacks there: {', '.join(stacks)}" if stacks else "run `make synth` first"
        raise LocalStageError(f"{template_path} not found ({hint})")
    try:
        template = json.loads(template_path.read_text())
    except ValueError as exc:
        raise LocalStageError(f"{template_path} is not valid JSON: {exc}") from exc
    assets_path = app_dir / f"{stack_name}.assets.json"
    assets = json.loads(assets_path.read_text()) if assets_path.is_file() else {}
    region, account = _environment(app_dir, stack_name)
    resolver = Resolver(template, stack_name, region, account)
    resources = resolver.resources

    endpoint = read_endpoint(app_dir, assets, resources, resolver, stack_name)
    api = read_api(app_dir, assets, resources, resolver)
    if resolver.unresolved:
        log.info(
            "references with no local meaning, given placeholder values: %s",
            ", ".join(sorted(set(resolver.unresolved))),
        )
    return StackSpec(
        stack_name=stack_name,
        template_path=template_path,
        region=region,
        account=account,
        endpoint=endpoint,
        api=api,
        unresolved=tuple(sorted(set(resolver.unresolved))),
    )


def _environment(app_dir: Path, stack_name: str) -> tuple[str, str]:
    """The stack's region and account from manifest.json (``aws://account/region``)."""
    manifest_path = app_dir / "manifest.json"
    region, account = DEFAULT_REGION, LOCAL_ACCOUNT
    if manifest_path.is_file():
        try:
            artifacts = json.loads(manifest_path.read_text()).get("artifacts", {})
        except ValueError:
            artifacts = {}
        env = artifacts.get(stack_name, {}).get("environment", "")
        match = re.fullmatch(r"aws://([^/]+)/(.+)", env)
        if match:
            if match.group(1) != "unknown-account":
                account = match.group(1)
            if match.group(2) != "unknown-region":
                region = match.group(2)
    return region, account

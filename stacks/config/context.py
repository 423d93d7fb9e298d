"""The serving configuration built from cdk.json's context and `cdk -c key=value` overrides."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_origin

from contracts.naming import STAGES
from stacks.config.errors import ConfigError, bad
from stacks.config.model import ServingConfig, _validated

CONTEXT_ROOT = "ml-serving"

# Keys that come from elsewhere (stage/model selection and the CDK environment), not the blocks.
_NOT_IN_BLOCKS = ("stage", "model", "account", "region")


def allowed_keys() -> list[str]:
    return sorted(k for k in ServingConfig.model_fields if k not in _NOT_IN_BLOCKS)


def _coerce(key: str, raw: Any) -> Any:
    """A string from `cdk -c key=value` (or cdk.json) as the JSON value the key's type takes.

    A string that does not parse is passed on unchanged: the model then names the type it needs.
    """
    annotation = ServingConfig.model_fields[key].annotation
    if not isinstance(raw, str) or annotation is str or get_origin(annotation) is Literal:
        return raw
    text = raw.strip()
    if annotation is bool:
        return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
            text.lower(), raw
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return raw


def _merge_block(target: dict[str, Any], block: Any, where: str) -> None:
    if block is None:
        return
    if not isinstance(block, dict):
        raise ConfigError(f"'{where}' in cdk.json context must be an object of config keys")
    for key, value in block.items():
        if key not in allowed_keys():
            near = difflib.get_close_matches(key, allowed_keys(), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ConfigError(
                f"unknown config key '{key}' in {where}{hint}; allowed keys: "
                f"{', '.join(allowed_keys())}"
            )
        target[key] = _coerce(key, value)


def build_config(
    context: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    account: str = "",
    region: str = "",
) -> ServingConfig:
    """Build the config from the `ml-serving` context block plus flat `-c key=value` overrides.

    ``context`` is the value of the `ml-serving` key of cdk.json's context: `{"defaults": {...},
    "stages": {"dev": {...}, "prod": {...}}, "models": {"digits": {...}}}`. ``overrides`` holds the
    other context keys (`stage`, `model` and any config key given with `-c`).
    """
    overrides = dict(overrides or {})
    stage = str(overrides.pop("stage", context.get("default_stage", "dev")))
    model = str(overrides.pop("model", context.get("default_model", "digits")))
    if stage not in STAGES:
        raise bad("stage", stage, f"must be one of {', '.join(STAGES)}")
    unknown_top = set(context) - {"defaults", "stages", "models", "default_stage", "default_model"}
    if unknown_top:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown_top)} in the '{CONTEXT_ROOT}' context block; allowed: "
            "defaults, stages, models, default_stage, default_model"
        )
    values: dict[str, Any] = {}
    _merge_block(values, context.get("defaults"), "defaults")
    _merge_block(values, (context.get("stages") or {}).get(stage), f"stages.{stage}")
    _merge_block(values, (context.get("models") or {}).get(model), f"models.{model}")
    _merge_block(values, overrides, "-c overrides")
    return _validated(
        {**values, "stage": stage, "model": model, "account": account, "region": region}
    )


def parse_context(pairs: Iterable[str]) -> dict[str, str]:
    """``-c key=value`` arguments, as the CDK CLI takes them."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"-c takes key=value, got {pair!r}")
        context[key] = value
    return context

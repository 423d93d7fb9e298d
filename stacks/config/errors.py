"""Configuration errors in the project's words: one ``ConfigError`` naming the key, the bad value
and what is allowed, whether a rule of ours or pydantic found the problem."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo


class ConfigError(ValueError):
    """A configuration key is missing, unknown or has a bad value."""


def bad(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"config key '{key}' has bad value {value!r}: {allowed}")


def require(ok: bool, key: str, value: Any, rule: str = "", **values: Any) -> None:
    """Raise the ConfigError of ``RULES[rule or key]`` (formatted with ``values``) unless ok."""
    if not ok:
        raise bad(key, value, RULES[rule or key].format(**values))


# What the rules that span keys allow.
RULES = {
    "framework": "must name the framework (pytorch or tensorflow) when model_data_url is set: "
    "synth reads no S3 object. `make deploy MODEL_DATA_URL=...` reads it from the artifact's "
    "manifest first; with the CDK CLI, add $(python -m model_export context <url>)",
    "framework_version": "must name the serving container version (e.g. 2.6) when model_data_url "
    "is set; `python -m model_export context <url>` reads it from the artifact's manifest",
    "model_data_prefix": "must be an s3://bucket/folder/ URI ending in / that model_data_url lies "
    "under",
    "max_instances": "must be at least 1 and at least min_instances ({min_instances})",
    "min_instances_zero": "must be 0 with capacity_mode scale_to_zero (the floor it scales in "
    "to); keep a stage warm with capacity_mode always_on or a scaling_schedules entry instead",
    "min_instances_on": "must be at least 1 with capacity_mode always_on (a production variant "
    "cannot have 0 instances); set capacity_mode scale_to_zero to let it go to 0",
    "initial_instance_count": "must lie between max(1, min_instances) ({low}) and max_instances "
    "({max_instances})",
    "schedule_name": "must be unique among the stage's schedules",
    "min_capacity": "must be at least 1 with capacity_mode always_on",
    "max_capacity": "must be at least min_capacity ({low}) and {floor}",
}


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_BOUNDS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}


def _field_info(
    loc: tuple[int | str, ...], model: type[BaseModel], item: type[BaseModel]
) -> FieldInfo:
    names = [part for part in loc if isinstance(part, str)]
    owner = item if names[0] == "scaling_schedules" and len(names) > 1 else model
    return owner.model_fields[names[-1]]


def _key(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _expected(annotation: Any, item: type[BaseModel]) -> str:
    if annotation in _EXPECTED:
        return _EXPECTED[annotation]
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(get_args(annotation))
    if get_origin(annotation) is tuple:
        return "a JSON list of " + (
            "schedule objects" if get_args(annotation)[0] is item else "strings"
        )
    return "a JSON object of string values"


def _allowed(error: Any, info: FieldInfo, item: type[BaseModel]) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "string_pattern_mismatch":
        return f"must be {info.description}"
    if kind in ("model_type", "model_attributes_type"):
        return "must be a JSON object"
    if kind.endswith("_type") or kind == "literal_error":
        return f"must be {_expected(info.annotation, item)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bounds = {k: getattr(m, k) for m in info.metadata for k in _BOUNDS if hasattr(m, k)}
        span = (
            f"from {bounds['ge']} to {bounds['le']}"
            if bounds.keys() == {"ge", "le"}
            else " and ".join(f"{_BOUNDS[k]} {v}" for k, v in bounds.items())
        )
        why = f" ({info.description})" if info.description else ""
        return f"must be {_expected(info.annotation, item)} {span}{why}"
    return f"must be valid: {error['msg']}"


def config_error(
    error: ValidationError, model: type[BaseModel], item: type[BaseModel]
) -> ConfigError:
    """One ConfigError for every problem pydantic found, one line each."""
    lines: list[str] = []
    unknown: dict[tuple[int | str, ...], list[str]] = {}
    for problem in error.errors(include_url=False):
        loc, ctx = problem["loc"], problem.get("ctx", {})
        if isinstance(ctx.get("error"), ConfigError):
            lines.append(str(ctx["error"]))
        elif problem["type"] == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
        elif problem["type"] == "missing":
            lines.append(
                f"{_key(loc[:-1])} lacks '{loc[-1]}' (it needs name, schedule, min_capacity and "
                "max_capacity; timezone is optional)"
                if loc[0] == "scaling_schedules"
                else f"config key '{_key(loc)}' is required"
            )
        else:
            lines.append(
                str(
                    bad(
                        _key(loc),
                        problem["input"],
                        _allowed(problem, _field_info(loc, model, item), item),
                    )
                )
            )
    for parent, keys in unknown.items():
        fields = item.model_fields if parent else model.model_fields
        lines.append(
            f"unknown key(s) {sorted(keys)} in {_key(parent) or 'the config'}; allowed: "
            f"{', '.join(sorted(fields))}"
        )
    return ConfigError("\n".join(lines))

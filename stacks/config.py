"""The one typed, frozen, validated configuration of a deployment.

`app.py` builds a :class:`ServingConfig` once from `cdk.json` context and passes it down; constructs
take typed keyword-only arguments and never read context themselves.

Precedence, lowest first: the `defaults` block, the stage's block (`stages.<stage>`), the model's
block (`models.<model>`), then flat `cdk -c key=value` overrides. Every key is declared once below
(type, default, bounds, description) and validated by pydantic; a wrong key or value raises
:class:`ConfigError` naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from contracts.naming import STAGES, stack_name
from stacks.instance_types import copy_resources

CONTEXT_ROOT = "ml-serving"

# Instance families with NVMe instance storage: SageMaker rejects a KmsKeyId on their endpoint
# configs because the volume is hardware-encrypted already.
_INSTANCE_STORAGE_FAMILIES = re.compile(
    r"^ml\.(?:[a-z]+\d+[a-z]*d[a-z]*|g4dn|g5|g6|g6e|gr6|p3dn|p4d|p4de|p5|p5e|p5en|trn1|trn1n|"
    r"trn2|inf2)\.",
)
# Application Auto Scaling's schedule expressions (PutScheduledAction's Schedule).
_SCHEDULE = (
    r"^(?:at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)"
    r"|rate\([1-9]\d* (?:minute|minutes|hour|hours|day|days)\)"
    r"|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$"
)
_S3 = r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]"


class ConfigError(ValueError):
    """A configuration key is missing, unknown or has a bad value."""


def volume_kms_supported(instance_type: str) -> bool:
    """Whether an endpoint on ``instance_type`` accepts a KMS key for its storage volume."""
    return not _INSTANCE_STORAGE_FAMILIES.match(instance_type)


def _bad(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"config key '{key}' has bad value {value!r}: {allowed}")


def _text(pattern: str, allowed: str, default: str | None = "") -> Any:
    """A string key matching ``pattern``; the empty default means "not set" and is allowed too."""
    if default is None:  # required, or an item of a list or object
        return Field(pattern=rf"^(?:{pattern})$", description=allowed or None)
    optional = "?" if default == "" else ""
    return Field(default, pattern=rf"^(?:{pattern}){optional}$", description=allowed)


def _require(ok: bool, key: str, value: Any, rule: str = "", **values: Any) -> None:
    """Raise the ConfigError of ``_RULES[rule or key]`` (formatted with ``values``) unless ok."""
    if not ok:
        raise _bad(key, value, _RULES[rule or key].format(**values))


# What the rules that span keys allow.
_RULES = {
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


# Strict: a bool is no integer and "3" no number (build_config turns `-c` strings into JSON values
# first); extra keys are errors; the regexes use lookaheads, which pydantic's Rust engine lacks.
_MODEL_CONFIG = ConfigDict(strict=True, extra="forbid", frozen=True, regex_engine="python-re")


class ScalingSchedule(BaseModel):
    """A scheduled action on the endpoint's scalable target (PutScheduledAction)."""

    model_config = _MODEL_CONFIG

    name: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,64}$", description="1-64 letters, digits, '.', '_' or '-'"
    )
    schedule: str = Field(
        pattern=_SCHEDULE,
        description="an Application Auto Scaling schedule: cron(min hour day month weekday "
        "year), e.g. cron(0 19 ? * MON-FRI *), rate(N minutes|hours|days) or "
        "at(yyyy-mm-ddThh:mm:ss)",
    )
    timezone: str = Field("", description="IANA time zone of the schedule (empty: UTC)")
    min_capacity: int = Field(ge=0, le=100, description="instances (or copies) from then on")
    max_capacity: int = Field(ge=0, le=100, description="instances (or copies) from then on")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            if value:
                ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Berlin") from None
        return value


class ServingConfig(BaseModel):
    """Everything a user tunes about one deployed model in one stage. See README "Configuration"."""

    model_config = _MODEL_CONFIG

    stage: Literal["dev", "prod"]
    # The stack name feeds the endpoint name (63 characters, letters, digits and hyphens). No "--"
    # and no trailing hyphen: "mlserving-<stage>-<model>--" starts this stack's endpoint names and
    # no other stack's (the gateway may invoke exactly those).
    model: str = _text(
        r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,29}",
        "1-30 lower-case letters, digits or single hyphens, starting with a letter and not ending "
        "with a hyphen",
        default=None,
    )
    account: str = _text(r"\d{12}", "a 12-digit AWS account id")
    region: str = _text(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region name such as us-east-1")

    # --- model artifact and serving container ---------------------------------------------------
    artifact_path: str = Field("", description="default: artifacts/<model>/model.tar.gz")
    model_data_url: str = _text(
        rf"{_S3}/.+\.tar\.gz", "an s3://bucket/key.tar.gz URI of a model artifact"
    )
    # Default: see model_versions_url.
    model_data_prefix: str = _text(
        rf"{_S3}/(.+/)?", "an s3://bucket/folder/ URI ending in / that model_data_url lies under"
    )
    # "auto" takes framework, version and content type from the artifact's manifest.json.
    framework: Literal["auto", "pytorch", "tensorflow"] = "auto"
    framework_version: str = "auto"
    py_version: str = "py312"
    image_uri: str = _text(
        r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+[:@].+",
        "an ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>",
    )
    container_env: Mapping[Annotated[str, _text(r"[A-Za-z_][A-Za-z0-9_]*", "", None)], str] = Field(
        default_factory=dict, description="environment variable names and string values"
    )
    endpoint_content_type: str = "auto"
    # PyTorch (AWS's Ray Serve container): the Ray Serve settings the artifact's config.yaml must
    # have been exported with. Serve reads them from the artifact, so a mismatch fails synth with
    # the re-export command.
    model_timeout_s: int = Field(
        60,
        ge=1,
        le=60,
        description="RAYSERVE_BACKEND_TIMEOUT; SageMaker ends an invocation at 60 s",
    )
    serve_replicas: int = Field(0, ge=0, description="0: as exported")
    serve_cpus_per_replica: float = Field(0.0, ge=0, description="0: as exported")
    serve_max_ongoing_requests: int = Field(0, ge=0, description="0: as exported")
    serve_max_batch_size: int = Field(0, ge=0, description="0: as exported")
    serve_batch_wait_ms: float = -1.0  # -1: as exported

    # --- endpoint -------------------------------------------------------------------------------
    instance_type: str = _text(
        r"ml\.[a-z0-9]+\.[a-z0-9]+", "a SageMaker instance type such as ml.m5.large", "ml.m5.large"
    )
    initial_instance_count: int = 1
    volume_kms: bool = True
    container_startup_timeout_s: int = Field(600, ge=60, le=3600)

    # --- autoscaling ----------------------------------------------------------------------------
    # always_on: a production variant with min_instances..max_instances instances. scale_to_zero:
    # the model is an inference component whose copy count (one copy per instance) goes to 0
    # when idle and back on the first request (min_instances must be 0). README "Scale to zero".
    capacity_mode: Literal["always_on", "scale_to_zero"] = "always_on"
    cold_start_retry_after_s: int = Field(
        60,
        ge=1,
        le=3600,
        description="what the API's 503 tells a caller to wait while capacity comes back from zero",
    )
    scaling_schedules: tuple[ScalingSchedule, ...] = ()
    min_instances: int = Field(1, ge=0, le=100)
    max_instances: int = Field(2, le=100)  # the lower bound depends on min_instances
    target_invocations_per_instance: int = Field(
        70, ge=1, le=100_000, description="per minute (SageMakerVariantInvocationsPerInstance)"
    )
    scale_in_cooldown_s: int = Field(300, ge=0, le=3600)
    scale_out_cooldown_s: int = Field(60, ge=0, le=3600)

    # --- Lambda ---------------------------------------------------------------------------------
    lambda_memory_mb: int = Field(512, ge=128, le=10_240)
    lambda_timeout_s: int = Field(
        29, ge=1, le=29, description="API Gateway gives up on the integration after 29 s"
    )
    provisioned_concurrency: int = Field(0, ge=0, le=1000)
    # Reserve lambda_reserved_concurrency of the account's Lambda concurrency for the gateway
    # (and cap it there). Off where the account's quota leaves no room (new accounts: 10 in all).
    reserve_lambda_concurrency: bool = True
    powertools_layer_version: int = Field(27, ge=1, le=10_000)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- API ------------------------------------------------------------------------------------
    api_auth: Literal["api_key", "iam"] = "api_key"
    throttle_rate_limit: float = Field(
        50.0, gt=0, le=10_000, description="requests per second, steady state (account limit)"
    )
    throttle_burst_limit: int = Field(100, gt=0, le=5_000, description="the account limit")
    quota_per_day: int = Field(0, ge=0, le=100_000_000, description="0: no daily quota")
    cors_allow_origin: str = _text(
        r"\*|https?://[A-Za-z0-9.\-]+(:\d+)?",
        "empty (CORS off), * or an origin like https://app.example.com",
    )
    binary_media_types: tuple[Annotated[str, _text(r"[a-z]+/[a-z0-9.+*\-]+", "", None)], ...] = (
        Field(
            ("image/png", "image/jpeg", "application/x-npy"),
            description="a list of media types such as image/png",
        )
    )

    # --- access for callers outside the API -----------------------------------------------------
    client_role_principal: str = _text(
        r"\d{12}|arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)",
        "a 12-digit account id or an IAM role/user ARN (may assume the client role)",
    )

    # --- storage, logs, alarms ------------------------------------------------------------------
    retain_data: bool = False  # prod: True (bucket, keys and logs survive `cdk destroy`)
    noncurrent_version_expiration_days: int = Field(30, ge=1, le=3650)
    log_retention_days: int = Field(30, ge=1, le=3653)
    alarm_email: str = _text(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address")
    latency_alarm_p99_ms: int = Field(1000, ge=1, le=60_000)

    # --- derived ---------------------------------------------------------------------------------
    @property
    def stack_name(self) -> str:
        return stack_name(self.stage, self.model)

    @property
    def model_versions_url(self) -> str:
        """What the endpoint's role may read when model_data_url is set: every version's folder.

        A blue/green rollback, or CloudFormation rolling a failed update back, starts the
        previous model again while the role already has the new policy; it must still read the
        previous artifact. Default: the folder above the artifact's folder (s3://b/digits/v3/
        model.tar.gz -> s3://b/digits/), at least the artifact's own folder.
        """
        if self.model_data_prefix:
            return self.model_data_prefix
        bucket_and_key = self.model_data_url.removeprefix("s3://")
        bucket, _, key = bucket_and_key.partition("/")
        folders = key.split("/")[:-1]
        if not folders:
            return self.model_data_url
        kept = folders[:-1] or folders
        return f"s3://{bucket}/{'/'.join(kept)}/"

    @property
    def lambda_reserved_concurrency(self) -> int | None:
        """The gateway Lambda's reserved concurrency, sized from the API's throttle.

        The stage's burst is how many requests API Gateway lets in at once, so how many the
        Lambda may have to run at once. Never below twice the provisioned concurrency: while the
        alias moves to a new version, both versions may hold theirs.
        """
        if not self.reserve_lambda_concurrency:
            return None
        return max(self.throttle_burst_limit, 2 * self.provisioned_concurrency)

    @property
    def serve_settings(self) -> dict[str, int | float | None]:
        """The serve_* keys, None where config leaves them to the artifact."""
        return {
            "serve_replicas": self.serve_replicas or None,
            "serve_cpus_per_replica": self.serve_cpus_per_replica or None,
            "serve_max_ongoing_requests": self.serve_max_ongoing_requests or None,
            "serve_max_batch_size": self.serve_max_batch_size or None,
            "serve_batch_wait_ms": None
            if self.serve_batch_wait_ms < 0
            else self.serve_batch_wait_ms,
        }

    @property
    def resolved_artifact_path(self) -> Path:
        return Path(self.artifact_path or f"artifacts/{self.model}/model.tar.gz")

    def replace(self, **changes: Any) -> ServingConfig:
        """A copy with ``changes``, validated again (pydantic's model_copy does not validate)."""
        return _validated({**dict(self), **changes})

    # --- validation beyond one key's type and bounds --------------------------------------------
    @field_validator("binary_media_types", "scaling_schedules", mode="before")
    @classmethod
    def _list_as_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("serve_batch_wait_ms")
    @classmethod
    def _batch_wait(cls, value: float) -> float:
        if not (value == -1 or 0 <= value <= 1000):
            raise ValueError("must be -1 (as exported) or 0-1000 milliseconds")
        return value

    @model_validator(mode="after")
    def _cross_key_rules(self) -> ServingConfig:
        url, low, high = self.model_data_url, self.min_instances, self.max_instances
        zero = self.capacity_mode == "scale_to_zero"
        _require(not url or self.framework != "auto", "framework", "auto")
        _require(not url or self.framework_version != "auto", "framework_version", "auto")
        _require(
            url.startswith(self.model_data_prefix), "model_data_prefix", self.model_data_prefix
        )
        _require(high >= max(1, low), "max_instances", high, min_instances=low)
        if zero:
            try:
                copy_resources(self.instance_type)
            except ValueError as err:
                raise ConfigError(f"instance_type={self.instance_type!r}: {err}") from err
        _require(low == 0 or not zero, "min_instances", low, "min_instances_zero")
        _require(low >= 1 or zero, "min_instances", low, "min_instances_on")
        count = self.initial_instance_count
        _require(
            max(1, low) <= count <= high,
            "initial_instance_count",
            count,
            low=max(1, low),
            max_instances=high,
        )
        names: set[str] = set()
        for i, entry in enumerate(self.scaling_schedules):
            key, low, floor = f"scaling_schedules[{i}]", entry.min_capacity, 0 if zero else 1
            _require(entry.name not in names, f"{key}.name", entry.name, "schedule_name")
            names.add(entry.name)
            _require(low >= floor, f"{key}.min_capacity", low, "min_capacity")
            _require(
                entry.max_capacity >= max(low, floor),
                f"{key}.max_capacity",
                entry.max_capacity,
                "max_capacity",
                low=low,
                floor=floor,
            )
        return self


# --- pydantic's errors, in the project's words ------------------------------------------------------

_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_BOUNDS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}


def _field_info(loc: tuple[int | str, ...]) -> FieldInfo:
    names = [part for part in loc if isinstance(part, str)]
    model = ScalingSchedule if names[0] == "scaling_schedules" and len(names) > 1 else ServingConfig
    return model.model_fields[names[-1]]


def _key(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _expected(annotation: Any) -> str:
    if annotation in _EXPECTED:
        return _EXPECTED[annotation]
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(get_args(annotation))
    if get_origin(annotation) is tuple:
        item = get_args(annotation)[0]
        return "a JSON list of " + ("schedule objects" if item is ScalingSchedule else "strings")
    return "a JSON object of string values"


def _allowed(error: Any, info: FieldInfo) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "string_pattern_mismatch":
        return f"must be {info.description}"
    if kind in ("model_type", "model_attributes_type"):
        return "must be a JSON object"
    if kind.endswith("_type") or kind == "literal_error":
        return f"must be {_expected(info.annotation)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bounds = {k: getattr(m, k) for m in info.metadata for k in _BOUNDS if hasattr(m, k)}
        span = (
            f"from {bounds['ge']} to {bounds['le']}"
            if bounds.keys() == {"ge", "le"}
            else " and ".join(f"{_BOUNDS[k]} {v}" for k, v in bounds.items())
        )
        why = f" ({info.description})" if info.description else ""
        return f"must be {_expected(info.annotation)} {span}{why}"
    return f"must be valid: {error['msg']}"


def _config_error(error: ValidationError) -> ConfigError:
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
                str(_bad(_key(loc), problem["input"], _allowed(problem, _field_info(loc))))
            )
    for parent, keys in unknown.items():
        fields = ScalingSchedule.model_fields if parent else ServingConfig.model_fields
        lines.append(
            f"unknown key(s) {sorted(keys)} in {_key(parent) or 'the config'}; allowed: "
            f"{', '.join(sorted(fields))}"
        )
    return ConfigError("\n".join(lines))


def _validated(values: Mapping[str, Any]) -> ServingConfig:
    try:
        return ServingConfig.model_validate(values)
    except ValidationError as error:
        raise _config_error(error) from None


# --- building from context ---------------------------------------------------------------------------

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
        raise _bad("stage", stage, f"must be one of {', '.join(STAGES)}")
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

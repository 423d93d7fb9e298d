"""The one typed, frozen, validated configuration of a deployment.

`app.py` builds a :class:`ServingConfig` once from `cdk.json` context and passes it down; constructs
take typed keyword-only arguments and never read context themselves.

Precedence, lowest first: the `defaults` block, the stage's block (`stages.<stage>`), the model's
block (`models.<model>`), then flat `cdk -c key=value` overrides. Every key is validated; a wrong key
or value raises :class:`ConfigError` naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.naming import STAGES, stack_name
from stacks.instance_types import copy_resources

CONTEXT_ROOT = "ml-serving"
FRAMEWORKS = ("pytorch", "tensorflow")
API_AUTH_MODES = ("api_key", "iam")

# Instance families with NVMe instance storage: SageMaker rejects a KmsKeyId on their endpoint
# configs because the volume is hardware-encrypted already.
_INSTANCE_STORAGE_FAMILIES = re.compile(
    r"^ml\.(?:[a-z]+\d+[a-z]*d[a-z]*|g4dn|g5|g6|g6e|gr6|p3dn|p4d|p4de|p5|p5e|p5en|trn1|trn1n|"
    r"trn2|inf2)\.",
)


class ConfigError(ValueError):
    """A configuration key is missing, unknown or has a bad value."""


def volume_kms_supported(instance_type: str) -> bool:
    """Whether an endpoint on ``instance_type`` accepts a KMS key for its storage volume."""
    return not _INSTANCE_STORAGE_FAMILIES.match(instance_type)


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    """Everything a user tunes about one deployed model in one stage. See README "Configuration"."""

    stage: Literal["dev", "prod"]
    model: str
    account: str = ""
    region: str = ""

    # --- model artifact and serving container ---------------------------------------------------
    # `artifacts/<model>/model.tar.gz` (made by `make artifacts`) unless model_data_url is set.
    artifact_path: str = ""
    model_data_url: str = ""
    # The S3 folder holding every version of the model (default: see model_versions_url).
    model_data_prefix: str = ""
    # "auto" takes framework, version and content type from the artifact's manifest.json.
    framework: Literal["auto", "pytorch", "tensorflow"] = "auto"
    framework_version: str = "auto"
    py_version: str = "py312"
    image_uri: str = ""
    container_env: Mapping[str, str] = field(default_factory=dict)
    endpoint_content_type: str = "auto"
    # PyTorch (AWS's Ray Serve container): the adapter's limit on one call into Serve
    # (RAYSERVE_BACKEND_TIMEOUT; SageMaker allows an invocation 60 s), and the Ray Serve settings
    # the artifact's config.yaml must have been exported with (0, or -1 for the batch wait: take
    # whatever the artifact says). Serve reads them from the artifact, so a mismatch fails synth
    # with the re-export command.
    model_timeout_s: int = 60
    serve_replicas: int = 0
    serve_cpus_per_replica: float = 0.0
    serve_max_ongoing_requests: int = 0
    serve_max_batch_size: int = 0
    serve_batch_wait_ms: float = -1.0

    # --- endpoint -------------------------------------------------------------------------------
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    volume_kms: bool = True
    container_startup_timeout_s: int = 600

    # --- autoscaling ----------------------------------------------------------------------------
    # always_on: a production variant with min_instances..max_instances instances. scale_to_zero:
    # the model is an inference component whose copy count (one copy per instance) goes to 0
    # when idle and back on the first request (min_instances must be 0). README "Scale to zero".
    capacity_mode: Literal["always_on", "scale_to_zero"] = "always_on"
    # What the API's 503 tells a caller to wait while capacity comes back from zero (seconds).
    cold_start_retry_after_s: int = 60
    # Scheduled actions on the scalable target: [{"name", "schedule" (cron(...), rate(...) or
    # at(...)), "timezone" (IANA, optional), "min_capacity", "max_capacity"}].
    scaling_schedules: tuple[Mapping[str, Any], ...] = ()
    min_instances: int = 1
    max_instances: int = 2
    target_invocations_per_instance: int = 70  # per minute, SageMakerVariantInvocationsPerInstance
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60

    # --- Lambda ---------------------------------------------------------------------------------
    lambda_memory_mb: int = 512
    lambda_timeout_s: int = 29
    provisioned_concurrency: int = 0
    # Reserve lambda_reserved_concurrency of the account's Lambda concurrency for the gateway
    # (and cap it there). Off where the account's quota leaves no room (new accounts: 10 in all).
    reserve_lambda_concurrency: bool = True
    powertools_layer_version: int = 27
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- API ------------------------------------------------------------------------------------
    api_auth: Literal["api_key", "iam"] = "api_key"
    throttle_rate_limit: float = 50.0  # requests per second, steady state
    throttle_burst_limit: int = 100
    quota_per_day: int = 0  # 0: no daily quota on the API key's usage plan
    cors_allow_origin: str = ""
    binary_media_types: tuple[str, ...] = ("image/png", "image/jpeg", "application/x-npy")

    # --- access for callers outside the API -----------------------------------------------------
    client_role_principal: str = ""  # an account id or IAM ARN allowed to assume the client role

    # --- storage, logs, alarms ------------------------------------------------------------------
    retain_data: bool = False  # prod: True (bucket, keys and logs survive `cdk destroy`)
    noncurrent_version_expiration_days: int = 30
    log_retention_days: int = 30
    alarm_email: str = ""
    latency_alarm_p99_ms: int = 1000

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

    def __post_init__(self) -> None:
        for spec in _VALIDATORS:
            spec(self)


# --- validation ------------------------------------------------------------------------------------


def _check(key: str, ok: bool, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}' has bad value {value!r}: {allowed}")


def _literal_choices(name: str) -> tuple[str, ...] | None:
    hint = _hints()[name]
    return tuple(get_args(hint)) if get_origin(hint) is Literal else None


@functools.cache
def _hints() -> dict[str, Any]:
    return get_type_hints(ServingConfig)


def _int_range(key: str, low: int, high: int) -> Callable[[ServingConfig], None]:
    def check(cfg: ServingConfig) -> None:
        value = getattr(cfg, key)
        _check(key, low <= value <= high, value, f"must be an integer from {low} to {high}")

    return check


def _validate_literals(cfg: ServingConfig) -> None:
    for f in dataclasses.fields(cfg):
        choices = _literal_choices(f.name)
        if choices is not None:
            value = getattr(cfg, f.name)
            _check(f.name, value in choices, value, f"must be one of {', '.join(choices)}")


def _validate_names(cfg: ServingConfig) -> None:
    # The stack name feeds the endpoint name (63 characters, letters, digits and hyphens).
    # No "--" and no trailing hyphen: "mlserving-<stage>-<model>--" starts this stack's endpoint
    # names and no other stack's (the gateway may invoke exactly those).
    _check(
        "model",
        bool(re.fullmatch(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,29}", cfg.model)),
        cfg.model,
        "must be 1-30 lower-case letters, digits or single hyphens, starting with a letter and "
        "not ending with a hyphen",
    )
    if cfg.account:
        _check(
            "account",
            bool(re.fullmatch(r"\d{12}", cfg.account)),
            cfg.account,
            "must be a 12-digit AWS account id",
        )
    if cfg.region:
        _check(
            "region",
            bool(re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", cfg.region)),
            cfg.region,
            "must be an AWS region name such as us-east-1",
        )


def _validate_artifact(cfg: ServingConfig) -> None:
    if cfg.model_data_url:
        _check(
            "model_data_url",
            bool(
                re.fullmatch(
                    r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+\.tar\.gz", cfg.model_data_url
                )
            ),
            cfg.model_data_url,
            "must be an s3://bucket/key.tar.gz URI of a model artifact",
        )
        _check(
            "framework",
            cfg.framework != "auto",
            cfg.framework,
            "must name the framework (pytorch or tensorflow) when model_data_url is set: synth "
            "reads no S3 object. `make deploy MODEL_DATA_URL=...` reads it from the artifact's "
            "manifest first; with the CDK CLI, add $(python -m model_export context <url>)",
        )
        _check(
            "framework_version",
            cfg.framework_version != "auto",
            cfg.framework_version,
            "must name the serving container version (e.g. 2.6) when model_data_url is set; "
            "`python -m model_export context <url>` reads it from the artifact's manifest",
        )
    if cfg.model_data_prefix:
        _check(
            "model_data_prefix",
            bool(
                re.fullmatch(
                    r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/(.+/)?", cfg.model_data_prefix
                )
            )
            and cfg.model_data_url.startswith(cfg.model_data_prefix),
            cfg.model_data_prefix,
            "must be an s3://bucket/folder/ URI ending in / that model_data_url lies under",
        )
    if cfg.image_uri:
        _check(
            "image_uri",
            bool(
                re.fullmatch(
                    r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+[:@].+",
                    cfg.image_uri,
                )
            ),
            cfg.image_uri,
            "must be an ECR image URI: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>",
        )
    for key, value in cfg.container_env.items():
        _check(
            "container_env",
            bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)) and isinstance(value, str),
            {key: value},
            "must map environment variable names to string values",
        )


def _validate_capacity(cfg: ServingConfig) -> None:
    _check(
        "instance_type",
        bool(re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", cfg.instance_type)),
        cfg.instance_type,
        "must be a SageMaker instance type such as ml.m5.large",
    )
    _check(
        "max_instances",
        cfg.max_instances >= max(1, cfg.min_instances),
        cfg.max_instances,
        f"must be at least 1 and at least min_instances ({cfg.min_instances})",
    )
    if cfg.capacity_mode == "scale_to_zero":
        try:
            copy_resources(cfg.instance_type)
        except ValueError as err:
            raise ConfigError(f"instance_type={cfg.instance_type!r}: {err}") from err
        _check(
            "min_instances",
            cfg.min_instances == 0,
            cfg.min_instances,
            "must be 0 with capacity_mode scale_to_zero (the floor it scales in to); keep a "
            "stage warm with capacity_mode always_on or a scaling_schedules entry instead",
        )
    else:
        _check(
            "min_instances",
            cfg.min_instances >= 1,
            cfg.min_instances,
            "must be at least 1 with capacity_mode always_on (a production variant cannot have "
            "0 instances); set capacity_mode scale_to_zero to let it go to 0",
        )
    _check(
        "initial_instance_count",
        max(1, cfg.min_instances) <= cfg.initial_instance_count <= cfg.max_instances,
        cfg.initial_instance_count,
        f"must lie between max(1, min_instances) ({max(1, cfg.min_instances)}) and max_instances "
        f"({cfg.max_instances})",
    )
    _check(
        "throttle_rate_limit",
        0 < cfg.throttle_rate_limit <= 10_000,
        cfg.throttle_rate_limit,
        "must be a positive number of requests per second, at most 10000 (the account limit)",
    )
    _check(
        "throttle_burst_limit",
        0 < cfg.throttle_burst_limit <= 5_000,
        cfg.throttle_burst_limit,
        "must be a positive integer, at most 5000 (the account limit)",
    )
    _check(
        "model_timeout_s",
        1 <= cfg.model_timeout_s <= 60,
        cfg.model_timeout_s,
        "must be 1-60 seconds: SageMaker ends an invocation after 60 s",
    )
    for key in ("serve_replicas", "serve_max_ongoing_requests", "serve_max_batch_size"):
        _check(key, getattr(cfg, key) >= 0, getattr(cfg, key), "must be 0 (as exported) or more")
    _check(
        "serve_cpus_per_replica",
        cfg.serve_cpus_per_replica >= 0,
        cfg.serve_cpus_per_replica,
        "must be 0 (as exported) or a positive number of CPUs",
    )
    _check(
        "serve_batch_wait_ms",
        cfg.serve_batch_wait_ms == -1 or 0 <= cfg.serve_batch_wait_ms <= 1000,
        cfg.serve_batch_wait_ms,
        "must be -1 (as exported) or 0-1000 milliseconds",
    )
    _check(
        "lambda_timeout_s",
        1 <= cfg.lambda_timeout_s <= 29,
        cfg.lambda_timeout_s,
        "must be 1-29 seconds: API Gateway gives up on the integration after 29 s",
    )


_SCHEDULE_KEYS = {"name", "schedule", "timezone", "min_capacity", "max_capacity"}
# Application Auto Scaling's schedule expressions (PutScheduledAction's Schedule).
_SCHEDULE_RE = re.compile(
    r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)"
    r"|rate\([1-9]\d* (?:minute|minutes|hour|hours|day|days)\)"
    r"|cron\(\S+ \S+ \S+ \S+ \S+ \S+\)"
)


def _validate_schedules(cfg: ServingConfig) -> None:
    names: set[str] = set()
    floor = 0 if cfg.capacity_mode == "scale_to_zero" else 1
    for i, entry in enumerate(cfg.scaling_schedules):
        where = f"scaling_schedules[{i}]"

        def bad(what: str, value: Any, allowed: str, where: str = where) -> None:
            raise ConfigError(f"config key '{where}.{what}' has bad value {value!r}: {allowed}")

        if not isinstance(entry, Mapping):
            raise ConfigError(f"config key '{where}' has bad value {entry!r}: must be an object")
        unknown = set(entry) - _SCHEDULE_KEYS
        if unknown:
            raise ConfigError(
                f"unknown key(s) {sorted(unknown)} in {where}; allowed: "
                f"{', '.join(sorted(_SCHEDULE_KEYS))}"
            )
        for key in ("name", "schedule", "min_capacity", "max_capacity"):
            if key not in entry:
                raise ConfigError(
                    f"{where} lacks '{key}' (it needs name, schedule, "
                    "min_capacity and max_capacity; timezone is optional)"
                )
        name = entry["name"]
        if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name)):
            bad("name", name, "must be 1-64 letters, digits, '.', '_' or '-'")
        if name in names:
            bad("name", name, "must be unique among the stage's schedules")
        names.add(name)
        schedule = entry["schedule"]
        if not (isinstance(schedule, str) and _SCHEDULE_RE.fullmatch(schedule)):
            bad(
                "schedule",
                schedule,
                "must be an Application Auto Scaling schedule: cron(min hour day month weekday "
                "year), e.g. cron(0 19 ? * MON-FRI *), rate(N minutes|hours|days) or "
                "at(yyyy-mm-ddThh:mm:ss)",
            )
        timezone = entry.get("timezone")
        if timezone is not None:
            try:
                ZoneInfo(str(timezone))
            except (ZoneInfoNotFoundError, ValueError):
                bad("timezone", timezone, "must be an IANA time zone such as Europe/Berlin")
        low, high = entry["min_capacity"], entry["max_capacity"]
        for key, value in (("min_capacity", low), ("max_capacity", high)):
            if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100):
                bad(key, value, "must be an integer from 0 to 100")
        if low < floor:
            bad("min_capacity", low, "must be at least 1 with capacity_mode always_on")
        if high < max(low, floor):
            bad("max_capacity", high, f"must be at least min_capacity ({low}) and {floor}")


def _validate_api(cfg: ServingConfig) -> None:
    if cfg.cors_allow_origin:
        _check(
            "cors_allow_origin",
            cfg.cors_allow_origin == "*"
            or bool(re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:\d+)?", cfg.cors_allow_origin)),
            cfg.cors_allow_origin,
            "must be empty (CORS off), * or an origin like https://app.example.com",
        )
    for media_type in cfg.binary_media_types:
        _check(
            "binary_media_types",
            bool(re.fullmatch(r"[a-z]+/[a-z0-9.+*\-]+", media_type)),
            media_type,
            "must be a list of media types such as image/png",
        )
    if cfg.client_role_principal:
        _check(
            "client_role_principal",
            bool(
                re.fullmatch(
                    r"\d{12}|arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)",
                    cfg.client_role_principal,
                )
            ),
            cfg.client_role_principal,
            "must be a 12-digit account id or an IAM role/user ARN",
        )
    if cfg.alarm_email:
        _check(
            "alarm_email",
            bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", cfg.alarm_email)),
            cfg.alarm_email,
            "must be an email address",
        )


_VALIDATORS: tuple[Callable[[ServingConfig], None], ...] = (
    _validate_literals,
    _validate_names,
    _validate_artifact,
    _validate_capacity,
    _validate_api,
    _validate_schedules,
    _int_range("container_startup_timeout_s", 60, 3600),
    _int_range("cold_start_retry_after_s", 1, 3600),
    _int_range("min_instances", 0, 100),
    _int_range("max_instances", 1, 100),
    _int_range("target_invocations_per_instance", 1, 100_000),
    _int_range("scale_in_cooldown_s", 0, 3600),
    _int_range("scale_out_cooldown_s", 0, 3600),
    _int_range("lambda_memory_mb", 128, 10_240),
    _int_range("provisioned_concurrency", 0, 1000),
    _int_range("powertools_layer_version", 1, 10_000),
    _int_range("quota_per_day", 0, 100_000_000),
    _int_range("noncurrent_version_expiration_days", 1, 3650),
    _int_range("log_retention_days", 1, 3653),
    _int_range("latency_alarm_p99_ms", 1, 60_000),
)

# --- building from context ---------------------------------------------------------------------------

_FIELDS = {f.name: f for f in dataclasses.fields(ServingConfig)}
# Keys that come from elsewhere (stage/model selection and the CDK environment), not the blocks.
_SELECTORS = ("stage", "model")


def _coerce(key: str, raw: Any) -> Any:
    """Turn a context value (JSON from cdk.json, or a string from `cdk -c`) into the field's type."""
    hint = str(ServingConfig.__annotations__[key])
    if key == "scaling_schedules":
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raw = None
        _check(key, isinstance(raw, list), raw, "must be a JSON list of schedule objects")
        return tuple(raw)
    structured = hint in ("int", "float", "bool") or hint.startswith(("tuple", "Mapping"))
    if isinstance(raw, str) and structured:
        text = raw.strip()
        if hint == "bool":
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ConfigError(f"config key '{key}' has bad value {raw!r}: must be true or false")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            expected = (
                "a JSON list"
                if hint.startswith("tuple")
                else ("a JSON object" if hint.startswith("Mapping") else f"a number ({hint})")
            )
            raise ConfigError(
                f"config key '{key}' has bad value {raw!r}: must be {expected}"
            ) from None
    if hint == "bool":
        _check(key, isinstance(raw, bool), raw, "must be true or false")
    elif hint == "int":
        _check(key, isinstance(raw, int) and not isinstance(raw, bool), raw, "must be an integer")
    elif hint == "float":
        _check(
            key,
            isinstance(raw, (int, float)) and not isinstance(raw, bool),
            raw,
            "must be a number",
        )
        raw = float(raw)
    elif hint.startswith("tuple"):
        _check(
            key,
            isinstance(raw, list) and all(isinstance(v, str) for v in raw),
            raw,
            "must be a list of strings",
        )
        raw = tuple(raw)
    elif hint.startswith("Mapping"):
        _check(key, isinstance(raw, dict), raw, "must be an object of string values")
        raw = {str(k): v for k, v in raw.items()}
    else:
        _check(key, isinstance(raw, str), raw, "must be a string")
    return raw


def _merge_block(target: dict[str, Any], block: Any, where: str) -> None:
    if block is None:
        return
    if not isinstance(block, dict):
        raise ConfigError(f"'{where}' in cdk.json context must be an object of config keys")
    for key, value in block.items():
        if key not in _FIELDS or key in _SELECTORS or key in ("account", "region"):
            raise ConfigError(
                f"unknown config key '{key}' in {where}; allowed keys: {', '.join(allowed_keys())}"
            )
        target[key] = _coerce(key, value)


def allowed_keys() -> list[str]:
    return sorted(k for k in _FIELDS if k not in _SELECTORS and k not in ("account", "region"))


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
        raise ConfigError(
            f"config key 'stage' has bad value {stage!r}: must be one of {', '.join(STAGES)}"
        )
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
    try:
        return ServingConfig(stage=stage, model=model, account=account, region=region, **values)  # type: ignore[arg-type]
    except TypeError as exc:  # pragma: no cover - _merge_block already rejects unknown keys
        raise ConfigError(str(exc)) from exc

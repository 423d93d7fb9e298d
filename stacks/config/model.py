"""The serving configuration's keys: each declared once with its type, default, bounds and
description, and the rules that span keys. See ``stacks.config`` for how it is built."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.naming import stack_name
from stacks.config.errors import ConfigError, config_error, require
from stacks.instance_types import copy_resources

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


def volume_kms_supported(instance_type: str) -> bool:
    """Whether an endpoint on ``instance_type`` accepts a KMS key for its storage volume."""
    return not _INSTANCE_STORAGE_FAMILIES.match(instance_type)


def _text(pattern: str, allowed: str, default: str | None = "") -> Any:
    """A string key matching ``pattern``; the empty default means "not set" and is allowed too."""
    if default is None:  # required, or an item of a list or object
        return Field(pattern=rf"^(?:{pattern})$", description=allowed or None)
    optional = "?" if default == "" else ""
    return Field(default, pattern=rf"^(?:{pattern}){optional}$", description=allowed)


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
        require(not url or self.framework != "auto", "framework", "auto")
        require(not url or self.framework_version != "auto", "framework_version", "auto")
        require(url.startswith(self.model_data_prefix), "model_data_prefix", self.model_data_prefix)
        require(high >= max(1, low), "max_instances", high, min_instances=low)
        if zero:
            try:
                copy_resources(self.instance_type)
            except ValueError as err:
                raise ConfigError(f"instance_type={self.instance_type!r}: {err}") from err
        require(low == 0 or not zero, "min_instances", low, "min_instances_zero")
        require(low >= 1 or zero, "min_instances", low, "min_instances_on")
        count = self.initial_instance_count
        require(
            max(1, low) <= count <= high,
            "initial_instance_count",
            count,
            low=max(1, low),
            max_instances=high,
        )
        names: set[str] = set()
        for i, entry in enumerate(self.scaling_schedules):
            key, low, floor = f"scaling_schedules[{i}]", entry.min_capacity, 0 if zero else 1
            require(entry.name not in names, f"{key}.name", entry.name, "schedule_name")
            names.add(entry.name)
            require(low >= floor, f"{key}.min_capacity", low, "min_capacity")
            require(
                entry.max_capacity >= max(low, floor),
                f"{key}.max_capacity",
                entry.max_capacity,
                "max_capacity",
                low=low,
                floor=floor,
            )
        return self


def _validated(values: Mapping[str, Any]) -> ServingConfig:
    try:
        return ServingConfig.model_validate(values)
    except ValidationError as error:
        raise config_error(error, ServingConfig, ScalingSchedule) from None

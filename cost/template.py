"""What a synthesized serving template costs money for, read by resource type and properties.

Logical IDs are never used: they are CDK's hashes and change with the constructs. Both capacity
modes are read:

- always on: an EndpointConfig variant with ModelName, InstanceType and InitialInstanceCount, and a
  scalable target on ``sagemaker:variant:DesiredInstanceCount`` (Min/MaxCapacity are instances);
- scale to zero: a variant with ManagedInstanceScaling (Min/MaxInstanceCount, the minimum may be
  0) and no ModelName, an InferenceComponent, and a scalable target on
  ``sagemaker:inference-component:DesiredCopyCount`` (Min/MaxCapacity are copies; one copy per
  instance here, so an idle component at 0 copies leaves 0 instances).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
# A standard-resolution alarm is priced per metric it evaluates; a period under 60 s is high
# resolution (3x, https://aws.amazon.com/cloudwatch/pricing/).
HIGH_RESOLUTION_PERIOD_S = 60


class TemplateError(ValueError):
    """The template lacks a resource the estimate needs, or has a shape it cannot price."""


@dataclass(frozen=True)
class Schedule:
    schedule: str
    min_capacity: int | None
    max_capacity: int | None


@dataclass(frozen=True)
class TemplateFacts:
    """The cost drivers of one serving stack."""

    capacity_mode: str  # "always_on" or "scale_to_zero"
    instance_type: str
    min_instances: int
    max_instances: int
    lambda_memory_mb: int
    lambda_architecture: str  # x86_64 or arm64
    provisioned_concurrency: int
    kms_keys: int
    alarm_metrics: int  # standard-resolution alarm metrics
    high_resolution_alarm_metrics: int
    alarms: int
    dashboards: int
    buckets: int
    log_groups: int
    lambda_tracing: bool
    api_tracing: bool
    api_access_logs: bool
    api_execution_logging: str  # OFF, ERROR or INFO
    schedules: tuple[Schedule, ...] = field(default_factory=tuple)


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        r.get("Properties") or {}
        for r in (template.get("Resources") or {}).values()
        if r.get("Type") == kind
    ]


def _one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found = _resources(template, kind)
    if len(found) != 1:
        raise TemplateError(
            f"expected exactly one {kind} in the template, found {len(found)}: the cost reader "
            "prices one serving stack (one endpoint, one gateway function) at a time"
        )
    return found[0]


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TemplateError(f"{what} is {value!r}, not a literal number the estimate can use")
    try:
        return int(value)
    except ValueError:
        raise TemplateError(f"{what} is {value!r}, not a number") from None


def _ref_id(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def _gateway_function(template: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The function the API calls: the one an alias points to (CDK's custom-resource providers,
    e.g. S3 auto-delete, have none), with the alias's provisioned concurrency."""
    resources = template.get("Resources") or {}
    functions = {k: r for k, r in resources.items() if r.get("Type") == "AWS::Lambda::Function"}
    aliases = _resources(template, "AWS::Lambda::Alias")
    aliased = [(_ref_id(a.get("FunctionName")), a) for a in aliases]
    aliased = [(fid, a) for fid, a in aliased if fid in functions]
    if len(aliased) == 1:
        fid, alias = aliased[0]
        pc = (alias.get("ProvisionedConcurrencyConfig") or {}).get(
            "ProvisionedConcurrentExecutions"
        )
        return functions[fid].get("Properties") or {}, _int(pc or 0, "provisioned concurrency")
    # No alias: the function no custom resource uses as its ServiceToken.
    providers = {
        _ref_id((r.get("Properties") or {}).get("ServiceToken"))
        for r in resources.values()
        if str(r.get("Type", "")).startswith("Custom::")
    }
    candidates = [r.get("Properties") or {} for k, r in functions.items() if k not in providers]
    if len(candidates) != 1:
        raise TemplateError(
            f"cannot tell the gateway function apart: {len(candidates)} Lambda functions are "
            "neither behind an alias nor a custom-resource provider"
        )
    return candidates[0], 0


def _alarm_metrics(alarm: dict[str, Any]) -> int:
    metrics = alarm.get("Metrics")
    if metrics:  # metric math: each MetricStat is a priced metric, expressions are free
        return sum(1 for m in metrics if "MetricStat" in m)
    return 1


def _alarm_is_high_resolution(alarm: dict[str, Any]) -> bool:
    periods = [alarm.get("Period")] + [
        (m.get("MetricStat") or {}).get("Period") for m in alarm.get("Metrics") or []
    ]
    return any(isinstance(p, int) and p < HIGH_RESOLUTION_PERIOD_S for p in periods)


def _capacity(template: dict[str, Any]) -> tuple[str, str, int, int]:
    config = _one(template, "AWS::SageMaker::EndpointConfig")
    variants = config.get("ProductionVariants") or []
    if len(variants) != 1:
        raise TemplateError(f"expected one production variant, found {len(variants)}")
    variant = variants[0]
    if "ServerlessConfig" in variant:
        raise TemplateError("serverless inference variants are not priced by this estimate")
    instance_type = variant.get("InstanceType")
    if not isinstance(instance_type, str):
        raise TemplateError(f"the production variant's InstanceType is {instance_type!r}")
    initial = _int(variant.get("InitialInstanceCount", 1), "InitialInstanceCount")
    targets = {
        t.get("ScalableDimension"): t
        for t in _resources(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    }
    managed = variant.get("ManagedInstanceScaling") or {}
    if COMPONENT_DIMENSION in targets or managed.get("Status") == "ENABLED":
        target = targets.get(COMPONENT_DIMENSION, {})
        managed_min = _int(managed.get("MinInstanceCount", 0), "MinInstanceCount")
        managed_max = _int(managed.get("MaxInstanceCount", initial), "MaxInstanceCount")
        copies_min = _int(target.get("MinCapacity", managed_min), "copy MinCapacity")
        copies_max = _int(target.get("MaxCapacity", managed_max), "copy MaxCapacity")
        # One copy per instance: the copies need that many instances, within managed scaling's
        # bounds.
        low = max(managed_min, min(copies_min, managed_max))
        high = max(low, min(managed_max, max(copies_max, 1)))
        return "scale_to_zero", instance_type, low, high
    variant_target = targets.get(VARIANT_DIMENSION)
    if variant_target is None:
        return "always_on", instance_type, initial, initial
    low = _int(variant_target.get("MinCapacity"), "MinCapacity")
    high = _int(variant_target.get("MaxCapacity"), "MaxCapacity")
    return "always_on", instance_type, low, high


def _schedules(template: dict[str, Any]) -> tuple[Schedule, ...]:
    found = []
    for target in _resources(template, "AWS::ApplicationAutoScaling::ScalableTarget"):
        for action in target.get("ScheduledActions") or []:
            bounds = action.get("ScalableTargetAction") or {}
            low, high = bounds.get("MinCapacity"), bounds.get("MaxCapacity")
            found.append(
                Schedule(
                    schedule=str(action.get("Schedule", "?")),
                    min_capacity=None if low is None else _int(low, "scheduled MinCapacity"),
                    max_capacity=None if high is None else _int(high, "scheduled MaxCapacity"),
                )
            )
    return tuple(found)


def read_template(template: dict[str, Any]) -> TemplateFacts:
    mode, instance_type, low, high = _capacity(template)
    function, provisioned = _gateway_function(template)
    architectures = function.get("Architectures") or ["x86_64"]
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    high_res = [a for a in alarms if _alarm_is_high_resolution(a)]
    stages = _resources(template, "AWS::ApiGateway::Stage")
    method_settings = [m for s in stages for m in s.get("MethodSettings") or []]
    levels = {str(m.get("LoggingLevel", "OFF")).upper() for m in method_settings}
    return TemplateFacts(
        capacity_mode=mode,
        instance_type=instance_type,
        min_instances=low,
        max_instances=high,
        lambda_memory_mb=_int(function.get("MemorySize", 128), "Lambda MemorySize"),
        lambda_architecture=str(architectures[0]),
        provisioned_concurrency=provisioned,
        kms_keys=len(_resources(template, "AWS::KMS::Key")),
        alarm_metrics=sum(_alarm_metrics(a) for a in alarms if a not in high_res),
        high_resolution_alarm_metrics=sum(_alarm_metrics(a) for a in high_res),
        alarms=len(alarms),
        dashboards=len(_resources(template, "AWS::CloudWatch::Dashboard")),
        buckets=len(_resources(template, "AWS::S3::Bucket")),
        log_groups=len(_resources(template, "AWS::Logs::LogGroup")),
        lambda_tracing=(function.get("TracingConfig") or {}).get("Mode") == "Active",
        api_tracing=any(s.get("TracingEnabled") for s in stages),
        api_access_logs=any(s.get("AccessLogSetting") for s in stages),
        api_execution_logging="INFO"
        if "INFO" in levels
        else "ERROR"
        if "ERROR" in levels
        else "OFF",
        schedules=_schedules(template),
    )

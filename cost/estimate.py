"""The arithmetic: a stack's itemised monthly cost when idle, and its cost per million predictions.

Idle means deployed and receiving no requests: what the stack costs just for existing (instances
at the configured minimum, provisioned concurrency, keys, alarms, the dashboard, stored data).
Per million predictions is the marginal cost of serving them: instance time at the throughput
bench measured, Lambda requests and billed duration, API Gateway requests, X-Ray traces, log
bytes. No free tier is subtracted: the estimate prices one stage as if the account had nothing
else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cost.bench import Figure, Throughput
from cost.prices import RegionPrices
from cost.template import TemplateFacts

MILLION = 1_000_000
GB_BYTES = 1024**3
# Log bytes one prediction writes, by where (assumptions: the platform's START/END/REPORT lines
# and one structured line from the handler; the access log's JSON format; an INFO execution log
# is about a dozen lines; one access line from the model server).
LAMBDA_LOG_BYTES = 600
API_ACCESS_LOG_BYTES = 300
API_INFO_LOG_BYTES = 2000
ENDPOINT_LOG_BYTES = 200
# Stored in the stack's bucket when nothing says otherwise (the model artifact, a few test sets).
DEFAULT_S3_GB = 1.0


@dataclass(frozen=True)
class Item:
    name: str
    idle_monthly_usd: float
    per_million_usd: float
    inputs: str  # the arithmetic's inputs, in words


@dataclass(frozen=True)
class Estimate:
    stage: str
    model: str
    region: str
    capacity_mode: str
    instance_type: str
    min_instances: int
    max_instances: int
    max_instances_monthly_usd: float  # the endpoint running at its maximum all month
    items: tuple[Item, ...]
    sources: dict[str, str]  # price key -> "price, source, entered_on"
    figures: dict[str, dict[str, Any]]  # per-prediction inputs and where they came from
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def idle_monthly_usd(self) -> float:
        return sum(i.idle_monthly_usd for i in self.items)

    @property
    def per_million_usd(self) -> float:
        return sum(i.per_million_usd for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["idle_monthly_usd"] = self.idle_monthly_usd
        out["per_million_usd"] = self.per_million_usd
        return out


def instance_rps(throughput: Throughput, vcpus: int) -> float:
    """One instance's predictions per second: bench's rate per CPU times the instance's vCPUs
    (bench ran on CPUs; the model server uses every core of a CPU instance)."""
    return throughput.rps.value / throughput.cpus * vcpus


def estimate(
    facts: TemplateFacts,
    prices: RegionPrices,
    *,
    stage: str,
    model: str,
    throughput: Throughput,
    handler_ms: Figure,
    overhead_ms: Figure,
    s3_gb: float = DEFAULT_S3_GB,
) -> Estimate:
    hours = prices.hours_per_month
    seconds = hours * 3600
    used: dict[str, str] = {}
    items: list[Item] = []
    notes: list[str] = []

    def price(key: str) -> float:
        p = prices[key]
        used[key] = f"{p.describe()} ({p.source}, entered {p.entered_on})"
        return p.per_unit_usd

    # SageMaker instances.
    hourly_price = prices.instance(facts.instance_type)
    hourly = hourly_price.per_unit_usd
    used[facts.instance_type] = (
        f"{hourly_price.describe()} ({hourly_price.source}, entered {hourly_price.entered_on})"
        + (f"; {hourly_price.note}" if hourly_price.note else "")
    )
    if hourly_price.note:
        notes.append(f"{facts.instance_type} in {prices.region}: {hourly_price.note}")
    vcpus = prices.vcpus(facts.instance_type)
    rps = instance_rps(throughput, vcpus)
    instance_hours_per_million = MILLION / rps / 3600
    items.append(
        Item(
            "SageMaker instances",
            facts.min_instances * hourly * hours,
            instance_hours_per_million * hourly,
            f"idle: {facts.min_instances} x {facts.instance_type} x ${hourly:g}/h x {hours:g} h; "
            f"per 1M: 1M / {rps:,.0f} req/s ({throughput.rps.value:,.0f} req/s on "
            f"{throughput.cpus} bench CPUs x {vcpus} vCPUs) = {instance_hours_per_million:.3f} "
            "instance-h",
        )
    )
    if prices.is_gpu(facts.instance_type):
        notes.append(
            f"{facts.instance_type} is a GPU instance; bench measured CPUs only, so its "
            "per-prediction figure (CPU throughput scaled by vCPUs) is a guess"
        )
    if not throughput.rps.measured:
        notes.append(f"model {model}: no throughput measured; {throughput.rps.source}")

    # Lambda: provisioned concurrency while idle, requests and billed duration per prediction.
    arch = "arm64" if facts.lambda_architecture == "arm64" else "x86_64"
    memory_gb = facts.lambda_memory_mb / 1024
    pc = facts.provisioned_concurrency
    items.append(
        Item(
            "Lambda provisioned concurrency",
            pc * memory_gb * seconds * price(f"lambda_provisioned_concurrency_{arch}"),
            0.0,
            f"{pc} x {memory_gb:g} GB x {seconds:,.0f} s",
        )
    )
    duration_ms = handler_ms.value + throughput.model_ms.value + overhead_ms.value
    billed_ms = math.ceil(duration_ms)  # Lambda bills duration in 1 ms steps
    duration_key = f"lambda_provisioned_duration_{arch}" if pc else f"lambda_duration_{arch}"
    lambda_per_million = MILLION * price("lambda_requests") + (
        MILLION * billed_ms / 1000 * memory_gb * price(duration_key)
    )
    items.append(
        Item(
            "Lambda requests + duration",
            0.0,
            lambda_per_million,
            f"1M x {billed_ms} ms billed ({handler_ms.value:.1f} handler + "
            f"{throughput.model_ms.value:.1f} model + {overhead_ms.value:.0f} SageMaker) x "
            f"{memory_gb:g} GB" + (" at the provisioned-concurrency rate" if pc else ""),
        )
    )

    items.append(
        Item("API Gateway (REST)", 0.0, MILLION * price("apigateway_rest_requests"), "1M requests")
    )
    if facts.lambda_tracing or facts.api_tracing:
        items.append(
            Item(
                "X-Ray traces",
                0.0,
                MILLION * price("xray_traces"),
                "1M traces: X-Ray's default rule records 1 request/s + 5% of the rest, so every one below 1 req/s",
            )
        )

    items.append(Item("KMS keys", facts.kms_keys * price("kms_key"), 0.0, f"{facts.kms_keys} keys"))

    log_bytes = LAMBDA_LOG_BYTES + ENDPOINT_LOG_BYTES
    log_bytes += API_ACCESS_LOG_BYTES if facts.api_access_logs else 0
    log_bytes += API_INFO_LOG_BYTES if facts.api_execution_logging == "INFO" else 0
    log_gb = MILLION * log_bytes / GB_BYTES
    items.append(
        Item(
            "CloudWatch Logs",
            0.0,
            log_gb * (price("logs_ingestion") + price("logs_storage")),
            f"{log_bytes} B/request (assumed) = {log_gb:.2f} GB per 1M, ingested and stored a "
            "month",
        )
    )
    alarm_usd = (facts.alarm_metrics + 3 * facts.high_resolution_alarm_metrics) * price(
        "alarm_metric"
    )
    items.append(
        Item(
            "CloudWatch alarms",
            alarm_usd,
            0.0,
            f"{facts.alarms} alarms, {facts.alarm_metrics} metrics"
            + (
                f" + {facts.high_resolution_alarm_metrics} high-resolution (x3)"
                if facts.high_resolution_alarm_metrics
                else ""
            ),
        )
    )
    items.append(
        Item(
            "CloudWatch dashboard",
            facts.dashboards * price("dashboard"),
            0.0,
            f"{facts.dashboards} dashboard(s)",
        )
    )
    items.append(
        Item("S3 storage", s3_gb * price("s3_standard_storage"), 0.0, f"{s3_gb:g} GB (assumed)")
    )

    if facts.capacity_mode == "scale_to_zero" and facts.min_instances == 0:
        notes.append(
            "scale to zero: idle runs no instance; the first request after idle waits for one "
            "to start (503 + Retry-After meanwhile)"
        )
    for s in facts.schedules:
        notes.append(
            f"scheduled action {s.schedule}: min {s.min_capacity}, max {s.max_capacity} "
            "(the idle figure uses the target's standing minimum)"
        )
    figures = {
        name: asdict(fig)
        for name, fig in (
            ("bench_rps", throughput.rps),
            ("model_ms", throughput.model_ms),
            ("handler_ms", handler_ms),
            ("sagemaker_overhead_ms", overhead_ms),
        )
    }
    figures["bench_cpus"] = {
        "value": throughput.cpus,
        "source": "the run's config",
        "measured": True,
    }
    return Estimate(
        stage=stage,
        model=model,
        region=prices.region,
        capacity_mode=facts.capacity_mode,
        instance_type=facts.instance_type,
        min_instances=facts.min_instances,
        max_instances=facts.max_instances,
        max_instances_monthly_usd=facts.max_instances * hourly * hours,
        items=tuple(items),
        sources=used,
        figures=figures,
        notes=tuple(notes),
    )

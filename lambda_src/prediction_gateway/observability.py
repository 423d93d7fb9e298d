"""One structured log line and the metrics of each request; never the payload itself."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from .config import Config
from .payloads import Invocation


@dataclass
class RequestRecord:
    """What one request did, filled in as it goes (one per request, never shared)."""

    request_id: str
    lambda_request_id: str | None
    start_s: float = field(default_factory=time.perf_counter)
    route: str = ""
    method: str = ""
    status: int | None = None
    error_code: str | None = None
    endpoint_ms: float | None = None
    invocation: Invocation | None = None


class Observer:
    """Logs and metrics of one execution environment (its first request is its cold start)."""

    def __init__(self, config: Config, logger: Any, metrics: Any) -> None:
        self.config = config
        self.logger = logger
        self.metrics = metrics
        self.cold_start = True

    def observe(self, record: RequestRecord) -> None:
        latency_ms = (time.perf_counter() - record.start_s) * 1000.0
        invocation = record.invocation
        try:
            self.logger.info(
                "request",
                extra={
                    "request_id": record.request_id,
                    "lambda_request_id": record.lambda_request_id,
                    "route": record.route,
                    "method": record.method,
                    "status": record.status,
                    "error_code": record.error_code,
                    "latency_ms": round(latency_ms, 3),
                    "endpoint_ms": (
                        None if record.endpoint_ms is None else round(record.endpoint_ms, 3)
                    ),
                    "payload_bytes": None if invocation is None else len(invocation.body),
                    "inputs": None if invocation is None else invocation.input_count,
                    "input_shape": None if invocation is None else invocation.shape,
                    "cold_start": self.cold_start,
                },
            )
            if self.cold_start:
                self.metrics.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
            self.metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
            if record.endpoint_ms is not None:
                self.metrics.add_metric(
                    name="EndpointLatency", unit=MetricUnit.Milliseconds, value=record.endpoint_ms
                )
            if record.error_code is not None:
                self.metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
                with single_metric(
                    name="ErrorsByCode",
                    unit=MetricUnit.Count,
                    value=1,
                    namespace=self.config.metrics_namespace,
                    default_dimensions={"service": self.config.service_name},
                ) as metric:
                    metric.add_dimension(name="ErrorCode", value=record.error_code)
            self.metrics.flush_metrics()
        except Exception:  # observability must never turn a good answer into a failure
            self.logger.exception("could not emit logs/metrics")
        finally:
            self.cold_start = False

"""The cost arithmetic against a hand-worked example.

Prices (round numbers, not AWS's): ml.m5.large $0.10/h with 2 vCPUs; 730 h a month (2,628,000 s);
Lambda $0.20 per 1M requests, provisioned concurrency $0.000004 per GB-s, duration on it
$0.00001 per GB-s; API Gateway $3.50 per 1M; X-Ray $5.00 per 1M; KMS $1 per key-month; logs $0.50
per GB ingested + $0.03 per GB-month; $0.10 per alarm metric; $3 per dashboard; S3 $0.023 per GB.
Template (ALWAYS_ON in templates.py): 1..4 instances, 1024 MB Lambda with 2 provisioned, 2 KMS
keys, alarms on 3 metrics, 1 dashboard, access logs on, execution logs ERROR, tracing on.
Bench: 1,000 req/s on 2 CPUs, model 3.0 ms; handler 2.5 ms; SageMaker overhead 10 ms; 1 GB in S3.

Idle, per month:
  instances      1 x $0.10 x 730                      = $73.00
  provisioned    2 x 1 GB x 2,628,000 s x $0.000004   = $21.024
  KMS            2 x $1                               = $2.00
  alarms         3 x $0.10                            = $0.30
  dashboard      1 x $3                               = $3.00
  S3             1 GB x $0.023                        = $0.023
  total                                               = $99.347
Per million predictions:
  instances      1M / (1,000 / 2 CPUs x 2 vCPUs = 1,000 req/s) = 1,000 s = 0.27778 h
                 x $0.10                              = $0.027778
  Lambda         1M x $0.20/1M = $0.20; 2.5 + 3.0 + 10 = 15.5 ms, billed 16 ms:
                 1M x 0.016 s x 1 GB x $0.00001 = $0.16   → $0.36
  API Gateway                                         = $3.50
  X-Ray                                               = $5.00
  logs           600 Lambda + 200 endpoint + 300 access = 1,100 B; 1M x 1,100 / 2^30
                 = 1.024455 GB x ($0.50 + $0.03)      = $0.542961
  total                                               = $9.430739
Endpoint at its maximum: 4 x $0.10 x 730              = $292.00
"""

from __future__ import annotations

import copy

import pytest

from cost.bench import Figure, Throughput
from cost.estimate import estimate
from cost.prices import load_table, region_prices
from cost.template import read_template
from tests.support.cost_templates import ALWAYS_ON, SCALE_TO_ZERO, template


def round_prices():
    table = copy.deepcopy(load_table())
    block = table["regions"]["us-east-1"]

    def put(key: str, usd: float, quantity: float = 1) -> None:
        block[key] = {**block[key], "usd": usd, "quantity": quantity}

    block["sagemaker_instance"]["ml.m5.large"]["usd"] = 0.10
    put("lambda_requests", 0.20, 1_000_000)
    put("lambda_provisioned_concurrency_x86_64", 0.000004)
    put("lambda_provisioned_duration_x86_64", 0.00001)
    put("apigateway_rest_requests", 3.50, 1_000_000)
    put("xray_traces", 5.00, 1_000_000)
    put("kms_key", 1.00)
    put("logs_ingestion", 0.50)
    put("logs_storage", 0.03)
    put("alarm_metric", 0.10)
    put("dashboard", 3.00)
    put("s3_standard_storage", 0.023)
    table["hours_per_month"] = 730
    return region_prices("us-east-1", table)


THROUGHPUT = Throughput(
    rps=Figure(1000.0, "test", True), cpus=2, model_ms=Figure(3.0, "test", True)
)


def run(shape):
    return estimate(
        read_template(template(shape)),
        round_prices(),
        stage="prod",
        model="digits",
        throughput=THROUGHPUT,
        handler_ms=Figure(2.5, "test", True),
        overhead_ms=Figure(10.0, "test", False),
        s3_gb=1.0,
    )


def items(est):
    return {i.name: (i.idle_monthly_usd, i.per_million_usd) for i in est.items}


def test_the_hand_worked_example():
    est = run(ALWAYS_ON)
    got = items(est)
    assert got["SageMaker instances"] == pytest.approx((73.0, 0.027778), abs=1e-6)
    assert got["Lambda provisioned concurrency"] == pytest.approx((21.024, 0.0))
    assert got["Lambda requests + duration"] == pytest.approx((0.0, 0.36))
    assert got["API Gateway (REST)"] == pytest.approx((0.0, 3.50))
    assert got["X-Ray traces"] == pytest.approx((0.0, 5.00))
    assert got["KMS keys"] == pytest.approx((2.0, 0.0))
    assert got["CloudWatch Logs"] == pytest.approx((0.0, 0.542961), abs=1e-6)
    assert got["CloudWatch alarms"] == pytest.approx((0.30, 0.0))
    assert got["CloudWatch dashboard"] == pytest.approx((3.0, 0.0))
    assert got["S3 storage"] == pytest.approx((0.023, 0.0))
    assert est.idle_monthly_usd == pytest.approx(99.347)
    assert est.per_million_usd == pytest.approx(9.430739, abs=1e-6)
    assert est.max_instances_monthly_usd == pytest.approx(292.0)


def test_scale_to_zero_idles_without_instance_cost_but_keeps_the_per_prediction_cost():
    idle, per_million = items(run(SCALE_TO_ZERO))["SageMaker instances"]
    assert idle == 0.0
    assert per_million == pytest.approx(0.027778, abs=1e-6)
    est = run(SCALE_TO_ZERO)
    assert est.idle_monthly_usd == pytest.approx(99.347 - 73.0)
    assert any("cron(0 8 ? * MON-FRI *)" in n for n in est.notes)
    assert est.max_instances_monthly_usd == pytest.approx(3 * 0.10 * 730)


def test_without_provisioned_concurrency_duration_is_billed_at_the_on_demand_rate():
    shape = copy.deepcopy(ALWAYS_ON)
    doc = template(shape)
    del doc["Resources"]["Alias"]["Properties"]["ProvisionedConcurrencyConfig"]
    prices = round_prices()
    est = estimate(
        read_template(doc),
        prices,
        stage="dev",
        model="digits",
        throughput=THROUGHPUT,
        handler_ms=Figure(2.5, "test", True),
        overhead_ms=Figure(10.0, "test", False),
    )
    on_demand = prices["lambda_duration_x86_64"].per_unit_usd
    got = items(est)
    assert got["Lambda provisioned concurrency"] == (0.0, 0.0)
    assert got["Lambda requests + duration"][1] == pytest.approx(
        0.20 + 1_000_000 * 0.016 * 1 * on_demand
    )


def test_every_price_used_is_listed_with_its_source():
    est = run(ALWAYS_ON)
    assert "ml.m5.large" in est.sources
    assert all("https://aws.amazon.com/" in text for text in est.sources.values())


def test_the_comparison_and_the_chart_show_every_stage(tmp_path):
    from cost import render

    dev, prod = run(SCALE_TO_ZERO), run(ALWAYS_ON)
    dev = type(dev)(**{**dev.__dict__, "stage": "dev"})
    text = render.comparison([dev, prod])
    assert "dev idle/mo" in text and "prod per 1M" in text
    assert "$26.35" in text and "$99.35" in text  # the idle totals worked out above
    png = render.chart([dev, prod], tmp_path / "cost.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""The template reader on both capacity modes, by resource type and properties only."""

from __future__ import annotations

import pytest

from cost.template import TemplateError, read_template
from tests.support.cost_templates import ALWAYS_ON, SCALE_TO_ZERO, template


def test_always_on_reads_instances_from_the_variant_scalable_target():
    facts = read_template(template(ALWAYS_ON))
    assert facts.capacity_mode == "always_on"
    assert facts.instance_type == "ml.m5.large"
    assert (facts.min_instances, facts.max_instances) == (1, 4)
    assert facts.schedules == ()


def test_scale_to_zero_idles_at_zero_instances():
    facts = read_template(template(SCALE_TO_ZERO))
    assert facts.capacity_mode == "scale_to_zero"
    assert (facts.min_instances, facts.max_instances) == (0, 3)
    [schedule] = facts.schedules
    assert schedule.schedule == "cron(0 8 ? * MON-FRI *)"
    assert (schedule.min_capacity, schedule.max_capacity) == (1, 3)


def test_the_gateway_function_is_the_aliased_one_not_the_custom_resource_provider():
    facts = read_template(template(ALWAYS_ON))
    assert facts.lambda_memory_mb == 1024  # the provider has 128
    assert facts.provisioned_concurrency == 2
    assert facts.lambda_tracing and facts.api_tracing and facts.api_access_logs
    assert facts.api_execution_logging == "ERROR"


def test_without_an_alias_the_function_no_custom_resource_uses_is_the_gateway():
    doc = template(ALWAYS_ON)
    del doc["Resources"]["Alias"]
    facts = read_template(doc)
    assert facts.lambda_memory_mb == 1024
    assert facts.provisioned_concurrency == 0


def test_counts_keys_alarm_metrics_dashboards():
    facts = read_template(template(ALWAYS_ON))
    assert facts.kms_keys == 2
    assert facts.alarms == 2
    assert facts.alarm_metrics == 3  # one plain alarm + two MetricStats behind an expression
    assert facts.high_resolution_alarm_metrics == 0
    assert facts.dashboards == 1


def test_high_resolution_alarms_are_counted_apart():
    doc = template(ALWAYS_ON)
    doc["Resources"]["LatencyAlarm"]["Properties"]["Period"] = 10
    facts = read_template(doc)
    assert (facts.alarm_metrics, facts.high_resolution_alarm_metrics) == (2, 1)


def test_a_template_without_an_endpoint_is_a_clear_error():
    doc = template(ALWAYS_ON)
    del doc["Resources"]["Config"]
    with pytest.raises(TemplateError, match="exactly one AWS::SageMaker::EndpointConfig"):
        read_template(doc)


def test_an_unresolved_capacity_is_a_clear_error():
    doc = template(ALWAYS_ON)
    doc["Resources"]["Target"]["Properties"]["MinCapacity"] = {"Ref": "MinParam"}
    with pytest.raises(TemplateError, match="MinCapacity"):
        read_template(doc)

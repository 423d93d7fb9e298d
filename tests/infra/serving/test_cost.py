"""The cost reader on the real synthesized templates: what it reads matches the config."""

from __future__ import annotations

import pytest

from cost import bench
from cost.estimate import estimate
from cost.prices import region_prices
from cost.template import read_template


@pytest.mark.parametrize("variant", ["dev", "prod", "iam_auth"])
def test_the_reader_reads_the_synthesized_template(request, variant):
    stack, template = request.getfixturevalue(variant)
    config = stack.config
    facts = read_template(template.to_json())
    assert facts.instance_type == config.instance_type
    assert facts.lambda_memory_mb == config.lambda_memory_mb
    assert facts.provisioned_concurrency == config.provisioned_concurrency
    assert facts.max_instances == config.max_instances
    if facts.capacity_mode == "always_on":
        assert facts.min_instances == config.min_instances
    else:
        assert facts.min_instances == 0
    assert facts.kms_keys == len(template.find_resources("AWS::KMS::Key"))
    assert facts.alarms == len(template.find_resources("AWS::CloudWatch::Alarm")) > 0
    assert facts.dashboards == 1


def test_prod_pays_for_provisioned_concurrency_and_dev_does_not(dev, prod):
    prices = region_prices("us-east-1")
    throughput = bench.serving_throughput("digits")

    def idle(variant):
        facts = read_template(variant[1].to_json())
        est = estimate(
            facts,
            prices,
            stage="x",
            model="digits",
            throughput=throughput,
            handler_ms=bench.handler_ms(),
            overhead_ms=bench.sagemaker_overhead_ms(),
        )
        return {i.name: i.idle_monthly_usd for i in est.items}

    assert idle(dev)["Lambda provisioned concurrency"] == 0.0
    assert idle(prod)["Lambda provisioned concurrency"] > 0.0
    assert idle(prod)["SageMaker instances"] > 0.0

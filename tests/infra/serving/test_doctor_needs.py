"""`make doctor` computes what a stage needs from the config alone; the templates must agree.

When a construct changes what the stack reserves or requires, these fail until the doctor's
arithmetic follows, so the pre-deploy check never passes a deploy that will fail.
"""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from account_setup import doctor


def _template_reservation(template: Template) -> int:
    """What the template's functions take from the unreserved pool: max(reserved, provisioned)."""
    functions = template.find_resources("AWS::Lambda::Function")
    aliases = template.find_resources("AWS::Lambda::Alias")
    provisioned = sum(
        a["Properties"]
        .get("ProvisionedConcurrencyConfig", {})
        .get("ProvisionedConcurrentExecutions", 0)
        for a in aliases.values()
    )
    reserved = sum(
        f["Properties"].get("ReservedConcurrentExecutions", 0) for f in functions.values()
    )
    return max(reserved, provisioned)


@pytest.mark.parametrize("variant", ["dev", "prod", "iam_auth"])
def test_the_doctors_lambda_reservation_matches_the_template(
    variant: str, request: pytest.FixtureRequest
):
    stack, template = request.getfixturevalue(variant)
    assert doctor.lambda_reservation(stack.config) == _template_reservation(template)


def test_prod_reserves_concurrency_so_the_check_has_something_to_check(prod):
    stack, template = prod
    reservation = _template_reservation(template)
    assert reservation == stack.config.lambda_reserved_concurrency
    assert reservation >= stack.config.provisioned_concurrency > 0


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_the_endpoint_need_matches_the_templates_variant_and_scaling(
    variant: str, request: pytest.FixtureRequest
):
    stack, template = request.getfixturevalue(variant)
    need = doctor.EndpointNeed.of(stack.config)
    (config,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    (variant_props,) = config["Properties"]["ProductionVariants"]
    (target,) = template.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert variant_props["InstanceType"] == need.instance_type
    assert variant_props["InitialInstanceCount"] == need.create
    assert need.update_at_peak == 2 * target["Properties"]["MaxCapacity"]
    assert need.update_at_rest == 2 * max(
        target["Properties"]["MinCapacity"], variant_props["InitialInstanceCount"]
    )


def test_the_minimum_bootstrap_version_is_the_templates_own_rule(dev):
    # The synthesizer's rule fails a deploy when the SSM parameter holds one of these versions.
    _, template = dev
    rule = template.to_json()["Rules"]["CheckBootstrapVersion"]
    (assertion,) = rule["Assertions"]
    refused = assertion["Assert"]["Fn::Not"][0]["Fn::Contains"][0]
    assert refused == [str(v) for v in range(1, doctor.MIN_BOOTSTRAP_VERSION)]
    assert cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER == doctor.DEFAULT_QUALIFIER

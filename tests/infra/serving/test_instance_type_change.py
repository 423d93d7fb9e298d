"""Changing the instance type deploys in one step, read from two synthesized templates.

SageMaker refuses UpdateEndpoint when it would change the instance type of a variant registered
for autoscaling ("Update endpoints that use auto scaling", SageMaker developer guide). The stack
names the endpoint after its instance type, so CloudFormation replaces the endpoint and its
scalable target (create-only properties change) instead of updating them in place. Which
properties are create-only comes from the CloudFormation resource schemas cfn-lint ships.
"""

from __future__ import annotations

import json

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.infra.serving.conftest import ALWAYS_ON, REGION, S3_MODEL, synth

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DEV = {"stage": "dev", "framework": "pytorch", "framework_version": "1.4", **ALWAYS_ON}


@pytest.fixture(scope="module")
def bigger_instances():
    """The dev stack of the `dev` fixture, with another instance type."""
    return synth({**DEV, "model_data_url": S3_MODEL, "instance_type": "ml.c5.xlarge"})


@pytest.fixture(scope="module")
def next_model_version():
    """The dev stack of the `dev` fixture, serving the model's next version."""
    return synth({**DEV, "model_data_url": "s3://my-models-bucket/digits/v4/model.tar.gz"})


def _create_only(kind: str) -> list[str]:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, kind).schema
    return [p.removeprefix("/properties/") for p in schema.get("createOnlyProperties", [])]


def replaced(before: dict, after: dict) -> set[str]:
    """Logical ids CloudFormation would replace going from ``before`` to ``after``."""
    out = set()
    for logical_id, old in before["Resources"].items():
        new = after["Resources"].get(logical_id)
        if new is None or new["Type"] != old["Type"]:
            continue
        for prop in _create_only(old["Type"]):
            if json.dumps(old.get("Properties", {}).get(prop), sort_keys=True) != json.dumps(
                new.get("Properties", {}).get(prop), sort_keys=True
            ):
                out.add(logical_id)
    return out


def _one(template: dict, kind: str) -> tuple[str, dict]:
    (found,) = [(k, r) for k, r in template["Resources"].items() if r["Type"] == kind]
    return found


def test_a_new_instance_type_replaces_the_endpoint_and_its_scalable_target(dev, bigger_instances):
    before, after = dev[1].to_json(), bigger_instances[1].to_json()
    endpoint_id, old_endpoint = _one(before, "AWS::SageMaker::Endpoint")
    _, new_endpoint = _one(after, "AWS::SageMaker::Endpoint")
    target_id, old_target = _one(before, "AWS::ApplicationAutoScaling::ScalableTarget")
    _, new_target = _one(after, "AWS::ApplicationAutoScaling::ScalableTarget")
    config_id, _ = _one(before, "AWS::SageMaker::EndpointConfig")
    assert old_endpoint["Properties"]["EndpointName"] == "mlserving-dev-digits--m5-large"
    assert new_endpoint["Properties"]["EndpointName"] == "mlserving-dev-digits--c5-xlarge"
    # No UpdateEndpoint with a new instance type on an autoscaled variant: the endpoint is a new
    # one (registered anew for autoscaling), and the old one with its target goes afterwards.
    assert {endpoint_id, target_id, config_id} <= replaced(before, after)
    assert new_target["Properties"]["ResourceId"] == (
        "endpoint/mlserving-dev-digits--c5-xlarge/variant/AllTraffic"
    )
    assert new_target["DependsOn"] == [endpoint_id]
    assert old_target["Properties"]["ResourceId"] != new_target["Properties"]["ResourceId"]


def test_the_gateway_can_call_old_and_new_endpoint_while_it_moves(dev, bigger_instances):
    # The function's new version (new ENDPOINT_NAME) goes live only when the alias moves; until
    # then the live version calls the old endpoint. One invoke grant covers both.
    for (_, template), name in (
        (dev, "mlserving-dev-digits--m5-large"),
        (bigger_instances, "mlserving-dev-digits--c5-xlarge"),
    ):
        everything = template.to_json()
        (function,) = [
            r
            for r in everything["Resources"].values()
            if r["Type"] == "AWS::Lambda::Function"
            and r["Properties"].get("Handler") == "prediction_gateway.handler.lambda_handler"
        ]
        assert function["Properties"]["Environment"]["Variables"]["ENDPOINT_NAME"] == name
        role = everything["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]
        (invoke,) = [
            s
            for p in role["Properties"]["Policies"]
            for s in p["PolicyDocument"]["Statement"]
            if s["Sid"] == "InvokeThisEndpoint"
        ]
        pattern = invoke["Resource"]
        assert (
            pattern == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlserving-dev-digits--*"
        )
        for endpoint in ("mlserving-dev-digits--m5-large", "mlserving-dev-digits--c5-xlarge"):
            assert f"endpoint/{endpoint}".startswith(pattern.split(":", 5)[5].rstrip("*"))


def test_a_new_model_version_updates_the_endpoint_in_place_with_rollback(dev, next_model_version):
    before, after = dev[1].to_json(), next_model_version[1].to_json()
    endpoint_id, old_endpoint = _one(before, "AWS::SageMaker::Endpoint")
    _, new_endpoint = _one(after, "AWS::SageMaker::Endpoint")
    target_id, _ = _one(before, "AWS::ApplicationAutoScaling::ScalableTarget")
    model_id, _ = _one(before, "AWS::SageMaker::Model")
    # Same name: UpdateEndpoint, blue/green with the rollback alarm, autoscaling registered
    # throughout (SageMaker allows a model change on an autoscaled variant).
    assert new_endpoint["Properties"]["EndpointName"] == old_endpoint["Properties"]["EndpointName"]
    changed = replaced(before, after)
    assert model_id in changed
    assert endpoint_id not in changed and target_id not in changed
    assert "AutoRollbackConfiguration" in new_endpoint["Properties"]["DeploymentConfig"]

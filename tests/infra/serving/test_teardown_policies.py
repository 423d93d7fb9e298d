"""What `cdk destroy` deletes per stage: dev leaves nothing behind, prod keeps its data.

The same promise is checked over the real app by `python -m reliability --only teardown`
(docs/teardown.md lists what no template can own).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Match

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DATA_TYPES = ("AWS::S3::Bucket", "AWS::Logs::LogGroup", "AWS::KMS::Key")
# Kept in every stage on purpose: API Gateway's account-wide CloudWatch logging role setting.
ACCOUNT_LEVEL = "AWS::ApiGateway::Account"


def resources(template) -> dict:
    return template.to_json()["Resources"]


def test_dev_deletes_every_bucket_log_group_and_key_and_empties_the_buckets(dev):
    _, template = dev
    data = {k: r for k, r in resources(template).items() if r["Type"] in DATA_TYPES}
    assert len([r for r in data.values() if r["Type"] == "AWS::S3::Bucket"]) == 2
    for name, resource in data.items():
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == (
            "Delete",
            "Delete",
        ), name
    emptied = {
        r["Properties"]["BucketName"]["Ref"]
        for r in template.find_resources("Custom::S3AutoDeleteObjects").values()
    }
    assert emptied == set(template.find_resources("AWS::S3::Bucket"))
    # The key goes after the shortest waiting period KMS allows.
    template.has_resource_properties("AWS::KMS::Key", {"PendingWindowInDays": 7})


def test_prod_retains_every_bucket_log_group_and_key_and_never_empties_a_bucket(prod):
    _, template = prod
    data = {k: r for k, r in resources(template).items() if r["Type"] in DATA_TYPES}
    assert {r["Type"] for r in data.values()} == set(DATA_TYPES)
    for name, resource in data.items():
        # Kept on destroy and on replacement, but removed when the first create rolls back: a
        # plain Retain left them behind, and the endpoint's log group (a fixed name) then made
        # every retry fail with "already exists".
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == (
            "RetainExceptOnCreate",
            "Retain",
        ), name
    assert template.find_resources("Custom::S3AutoDeleteObjects") == {}
    assert len(template.find_resources("AWS::Lambda::Function")) == 1, "only the gateway Lambda"


def test_nothing_else_is_retained_in_either_stage_but_the_account_logging_role(dev, prod):
    for _, template in (dev, prod):
        everything = resources(template)
        account_roles = {
            r["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
            for r in everything.values()
            if r["Type"] == ACCOUNT_LEVEL
        }
        retained = {
            name
            for name, r in everything.items()
            if r["Type"] not in DATA_TYPES and r.get("DeletionPolicy", "Delete") != "Delete"
        }
        accounts = {n for n, r in everything.items() if r["Type"] == ACCOUNT_LEVEL}
        assert retained == accounts | account_roles
        for name in retained:
            assert everything[name]["DeletionPolicy"] == "Retain", name
        # The endpoint (billed per instance hour) is always deleted.
        for name, r in everything.items():
            if r["Type"].startswith("AWS::SageMaker::"):
                assert r.get("DeletionPolicy", "Delete") == "Delete", name


@pytest.mark.parametrize(
    ("fixture", "policy"), [("dev", "Delete"), ("prod", "RetainExceptOnCreate")]
)
def test_api_execution_logs_are_the_stacks_and_outlive_the_stage(request, fixture, policy):
    _, template = request.getfixturevalue(fixture)
    (api,) = template.find_resources("AWS::ApiGateway::RestApi")
    groups = template.find_resources(
        "AWS::Logs::LogGroup",
        {
            "Properties": {
                "LogGroupName": {
                    "Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": api}, f"/{fixture}"]]
                },
                "RetentionInDays": Match.any_value(),
            },
            "DeletionPolicy": policy,
        },
    )
    assert len(groups) == 1, "API Gateway would create the execution log group itself"
    (group,) = groups
    (stage,) = template.find_resources("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["MethodSettings"][0]["LoggingLevel"] == "ERROR"
    # Deleted after the stage (its only writer), so no late error log re-creates it.
    assert group in stage["DependsOn"]


def test_dev_bucket_emptier_logs_to_a_declared_group_it_cannot_recreate(dev):
    _, template = dev
    everything = resources(template)
    (handler_id,) = [
        k
        for k, r in everything.items()
        if r["Type"] == "AWS::Lambda::Function" and "AutoDeleteObjects" in k
    ]
    handler = everything[handler_id]
    group_id = handler["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    group = everything[group_id]
    assert group["Type"] == "AWS::Logs::LogGroup" and group["DeletionPolicy"] == "Delete"
    assert "RetentionInDays" in group["Properties"]
    role = everything[handler["Properties"]["Role"]["Fn::GetAtt"][0]]
    assert "ManagedPolicyArns" not in role["Properties"], "no AWSLambdaBasicExecutionRole"
    (policy,) = role["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::GetAtt": [group_id, "Arn"]},
        }
    ]
    # The emptiers run on destroy through the handler, which depends on the group: the group
    # is deleted only after they have run.
    for custom in template.find_resources("Custom::S3AutoDeleteObjects").values():
        assert custom["Properties"]["ServiceToken"] == {"Fn::GetAtt": [handler_id, "Arn"]}


def test_prod_redeploy_after_destroy_adopts_or_renames_every_retained_resource(prod):
    # Given what a prod destroy keeps, when the stack is deployed again, then no retained
    # resource blocks the create: one whose name the template fixes is adopted by
    # `cdk deploy --import-existing-resources` (CloudFormation's auto-import needs a static
    # name holding the type's primary identifier, and DeletionPolicy Retain or
    # RetainExceptOnCreate); every other one has a name CloudFormation generates, or one derived
    # from a resource the new create makes anew, so the new one sits beside it.
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    _, template = prod
    everything = resources(template)
    adopted, renamed = set(), set()
    for name, resource in everything.items():
        if resource.get("DeletionPolicy", "Delete") == "Delete":
            continue
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource["Type"]).schema
        identifiers = [p.removeprefix("/properties/") for p in schema["primaryIdentifier"]]
        values = [resource["Properties"].get(i) for i in identifiers]
        if all(isinstance(v, str) for v in values):
            assert resource["DeletionPolicy"] in ("Retain", "RetainExceptOnCreate"), name
            adopted.add(name)
        elif all(v is None for v in values):
            renamed.add(name)  # named by CloudFormation
        else:
            refs = {ref["Ref"] for ref in _refs(values)}
            assert refs and all(
                everything[r].get("DeletionPolicy", "Delete") == "Delete" for r in refs
            ), name
            renamed.add(name)
    # The endpoint's log group is the one with a fixed name (SageMaker writes to it by name).
    assert {everything[n]["Properties"]["LogGroupName"] for n in adopted} == {
        "/aws/sagemaker/Endpoints/mlserving-prod-sentiment--m5-large"
    }
    assert len(renamed) >= 8
    makefile = (Path(__file__).resolve().parents[3] / "Makefile").read_text()
    deploy = makefile.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    assert "--import-existing-resources" in deploy


def _refs(value) -> list[dict]:
    if isinstance(value, dict):
        if "Ref" in value:
            return [value]
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []

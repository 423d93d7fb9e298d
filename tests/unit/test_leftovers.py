"""The destroy workflow's list of what may outlive a stack (.github/scripts/leftovers.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "leftovers.py"

# Shaped like `get-template --query TemplateBody` and `describe-stack-resources` output for a
# prod serving stack: a retained data bucket and key, a deleted log bucket, the gateway Lambda and
# the endpoint (whose physical id is its lower-cased ARN).
TEMPLATE = {
    "Resources": {
        "DataBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
        "LogBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Delete"},
        "DataKey": {"Type": "AWS::KMS::Key", "DeletionPolicy": "RetainExceptOnCreate"},
        "ApiLogs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain"},
        "Table": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Snapshot"},
        "Gateway": {"Type": "AWS::Lambda::Function"},
        "Endpoint": {"Type": "AWS::SageMaker::Endpoint"},
        "Role": {"Type": "AWS::IAM::Role"},
    }
}
RESOURCES = {
    "StackResources": [
        {"LogicalResourceId": "DataBucket", "PhysicalResourceId": "mlserving-prod-data-abc"},
        {"LogicalResourceId": "LogBucket", "PhysicalResourceId": "mlserving-prod-logs-abc"},
        {
            "LogicalResourceId": "DataKey",
            "PhysicalResourceId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        },
        {"LogicalResourceId": "ApiLogs", "PhysicalResourceId": "MlServing-prod-digits-ApiLogs-X"},
        {"LogicalResourceId": "Table", "PhysicalResourceId": "table-1"},
        {"LogicalResourceId": "Gateway", "PhysicalResourceId": "MlServing-prod-digits-Gateway-Y"},
        {
            "LogicalResourceId": "Endpoint",
            "PhysicalResourceId": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/endpoint-z",
        },
        {"LogicalResourceId": "Role", "PhysicalResourceId": "MlServing-prod-digits-Role-W"},
    ]
}


def run(tmp_path: Path, template: object, resources: object) -> subprocess.CompletedProcess:
    (tmp_path / "template.json").write_text(json.dumps(template))
    (tmp_path / "resources.json").write_text(json.dumps(resources))
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--template",
            str(tmp_path / "template.json"),
            "--resources",
            str(tmp_path / "resources.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_lists_retained_resources_and_run_time_log_groups(tmp_path):
    result = run(tmp_path, TEMPLATE, RESOURCES)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t")[:2] for line in result.stdout.splitlines()]
    assert rows == [
        ["s3-bucket", "mlserving-prod-data-abc"],
        ["kms-key", "1234abcd-12ab-34cd-56ef-1234567890ab"],
        ["log-group", "MlServing-prod-digits-ApiLogs-X"],
        ["other", "table-1"],
        ["log-group", "/aws/lambda/MlServing-prod-digits-Gateway-Y"],
        ["log-group-nocase", "/aws/sagemaker/Endpoints/endpoint-z"],
    ]
    # Deleted with the stack: not listed.
    assert "mlserving-prod-logs-abc" not in result.stdout
    assert "Role-W" not in result.stdout
    assert "DataBucket: Retain" in result.stdout


def test_a_stack_that_keeps_nothing_and_runs_nothing_lists_nothing(tmp_path):
    template = {"Resources": {"LogBucket": TEMPLATE["Resources"]["LogBucket"]}}
    assert run(tmp_path, template, RESOURCES).stdout == ""


def test_a_template_handed_over_as_a_json_string_is_read_too(tmp_path):
    result = run(tmp_path, json.dumps(TEMPLATE), RESOURCES)
    assert result.returncode == 0
    assert "mlserving-prod-data-abc" in result.stdout


def test_unreadable_input_exits_2_with_the_reason(tmp_path):
    result = run(tmp_path, "Resources:\n  A: {}\n", RESOURCES)
    assert result.returncode == 2
    assert "YAML is not supported" in result.stderr

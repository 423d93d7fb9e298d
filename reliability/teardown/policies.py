"""Each stateful or billable resource of a template against the stage's removal promise."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Resource types that hold data: what "dev leaves nothing, prod keeps the data" is about.
DATA_TYPES = {
    "AWS::S3::Bucket": "objects",
    "AWS::Logs::LogGroup": "log events",
    "AWS::KMS::Key": "the key (data encrypted with it is unreadable without it)",
    "AWS::DynamoDB::Table": "items",
    "AWS::DynamoDB::GlobalTable": "items",
    "AWS::SecretsManager::Secret": "a secret",
    "AWS::ECR::Repository": "images",
    "AWS::EFS::FileSystem": "files",
    "AWS::RDS::DBInstance": "a database",
    "AWS::RDS::DBCluster": "a database",
    "AWS::SQS::Queue": "messages",
    "AWS::Kinesis::Stream": "records",
    "AWS::Backup::BackupVault": "backups",
    "AWS::SageMaker::ModelPackageGroup": "model versions",
    "AWS::SageMaker::FeatureGroup": "features",
}
# Resource types that cost money (or hold configuration someone depends on) while they exist:
# deleted by every destroy, whatever the stage.
COST_TYPES = {
    "AWS::SageMaker::Endpoint": "instances billed per hour",
    "AWS::SageMaker::EndpointConfig": "configuration",
    "AWS::SageMaker::Model": "configuration",
    "AWS::Lambda::Function": "code, environment",
    "AWS::Lambda::Alias": "provisioned concurrency, billed per hour when set",
    "AWS::ApiGateway::RestApi": "the API",
    "AWS::ApiGateway::ApiKey": "an API key value",
    "AWS::ApiGateway::UsagePlan": "quotas",
    "AWS::SNS::Topic": "subscriptions",
    "AWS::CloudWatch::Alarm": "billed per alarm and month",
    "AWS::CloudWatch::Dashboard": "billed per dashboard and month",
    "AWS::ApplicationAutoScaling::ScalableTarget": "scaling state",
    "AWS::IAM::Role": "permissions",
}
# Retained on purpose in every stage: API Gateway's account-level CloudWatch role setting is
# shared by every REST API in the account and region, so CDK retains it (the app sets
# cloud_watch_role_removal_policy=RETAIN) rather than break the other APIs' logging.
ACCOUNT_LEVEL = "AWS::ApiGateway::Account"
# Prod's data: retained on delete and on replacement, but deleted when the stack's first create
# rolls back, so a failed create can be retried (a plain Retain leaves those resources behind,
# and the ones with fixed names collide with the retry).
RETAIN_EXCEPT_ON_CREATE = "RetainExceptOnCreate"


@dataclass
class Row:
    logical_id: str
    kind: str
    deletion: str  # DeletionPolicy, "Delete (default)" when absent
    replace: str
    auto_delete: str  # buckets: "yes"/"no"; others "-"
    verdict: str
    ok: bool


def load_template(assembly: Path) -> dict[str, Any]:
    (path,) = assembly.glob("MlServing-*.template.json")
    return json.loads(path.read_text())


def _policy(resource: dict[str, Any], key: str) -> str:
    return resource.get(key, "Delete (default)")


def _deleted(value: str) -> bool:
    return value in ("Delete", "Delete (default)")


def refs(value: Any) -> set[str]:
    """Logical ids that ``value`` points at (Ref, Fn::GetAtt), anywhere inside it."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        for item in value.values():
            found |= refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= refs(item)
    return found


def classify(template: dict[str, Any], stage: str) -> list[Row]:
    """One row per data-holding or money-costing resource, and per retained resource."""
    resources: dict[str, dict[str, Any]] = template["Resources"]
    auto_deleted = {
        ref
        for r in resources.values()
        if r["Type"] == "Custom::S3AutoDeleteObjects"
        for ref in refs(r["Properties"].get("BucketName"))
    }
    account_roles = {
        ref
        for r in resources.values()
        if r["Type"] == ACCOUNT_LEVEL
        for ref in refs(r["Properties"].get("CloudWatchRoleArn"))
    }
    rows = []
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        deletion, replace = (
            _policy(resource, "DeletionPolicy"),
            _policy(resource, "UpdateReplacePolicy"),
        )
        retained = not _deleted(deletion)
        bucket = kind == "AWS::S3::Bucket"
        auto = ("yes" if logical_id in auto_deleted else "no") if bucket else "-"
        if kind == ACCOUNT_LEVEL or logical_id in account_roles:
            ok = deletion == "Retain"
            verdict = (
                "retained by design: account-level API Gateway logging setting"
                if ok
                else "expected Retain (account-level, shared with other APIs)"
            )
        elif kind in DATA_TYPES:
            if stage == "dev":
                ok = _deleted(deletion) and _deleted(replace) and (not bucket or auto == "yes")
                verdict = (
                    f"deleted (holds {DATA_TYPES[kind]})"
                    if ok
                    else "LEFT BEHIND: dev must delete it"
                    + (" (and empty it: auto-delete off)" if bucket and auto != "yes" else "")
                )
            else:
                kept = not _deleted(deletion) and replace == "Retain" and auto != "yes"
                ok = kept and deletion == RETAIN_EXCEPT_ON_CREATE
                if ok:
                    verdict = (
                        f"retained (holds {DATA_TYPES[kind]}); deleted if the first create fails"
                    )
                elif kept:
                    verdict = (
                        f"DeletionPolicy {deletion}: a failed first create leaves it behind (use "
                        f"{RETAIN_EXCEPT_ON_CREATE})"
                    )
                else:
                    verdict = "DATA LOST: prod must retain it" + (
                        " (auto-delete empties it)" if auto == "yes" else ""
                    )
        elif kind in COST_TYPES or retained:
            ok = not retained
            verdict = (
                "deleted" if ok else f"LEFT BEHIND: retained {kind} ({COST_TYPES.get(kind, '')})"
            )
        else:
            continue
        rows.append(Row(logical_id, kind, deletion, replace, auto, verdict, ok))
    return rows

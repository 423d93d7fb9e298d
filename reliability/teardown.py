"""Teardown: what `cdk destroy` deletes and what it leaves, read from the synthesized templates.

The real app is synthesized for stage dev and stage prod (``harness.synth``, offline). Every
resource that holds data (buckets, log groups, keys, ...) must follow the stage's promise: dev
deletes it (and empties buckets first, or CloudFormation cannot delete them), prod retains it.
Everything that costs money while it exists (the endpoint, provisioned concurrency, alarms, the
dashboard) must be deleted in both stages. Prod retains its data with RetainExceptOnCreate, so a
first create that fails and rolls back leaves nothing that would block the retry. Resources AWS creates on its own for the stack's
resources (log groups of Lambda functions, of the endpoint, of API Gateway execution logging) must
be declared by the stack, or they outlive it; what no template can own is listed separately.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.naming import STAGES
from local_stage import harness
from reliability.report import Section, Table

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
MODEL_DATA_URL = "s3://my-models-bucket/digits/v1/model.tar.gz"


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


def _refs(value: Any) -> set[str]:
    """Logical ids that ``value`` points at (Ref, Fn::GetAtt), anywhere inside it."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".")[0])
        for item in value.values():
            found |= _refs(item)
    elif isinstance(value, list):
        for item in value:
            found |= _refs(item)
    return found


def classify(template: dict[str, Any], stage: str) -> list[Row]:
    """One row per data-holding or money-costing resource, and per retained resource."""
    resources: dict[str, dict[str, Any]] = template["Resources"]
    auto_deleted = {
        ref
        for r in resources.values()
        if r["Type"] == "Custom::S3AutoDeleteObjects"
        for ref in _refs(r["Properties"].get("BucketName"))
    }
    account_roles = {
        ref
        for r in resources.values()
        if r["Type"] == ACCOUNT_LEVEL
        for ref in _refs(r["Properties"].get("CloudWatchRoleArn"))
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


@dataclass
class ServiceLogs:
    """A log group an AWS service creates for one of the stack's resources."""

    what: str
    owned: bool
    detail: str


def _log_groups(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: r for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}


def _name_mentions(log_group: dict[str, Any], *needles: str) -> bool:
    text = json.dumps(log_group.get("Properties", {}).get("LogGroupName", ""))
    return all(n in text for n in needles)


def service_log_groups(template: dict[str, Any]) -> list[ServiceLogs]:
    """Each log group a service would create for this stack, and whether the stack declares it."""
    resources = template["Resources"]
    groups = _log_groups(resources)
    found = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            target = _refs(props.get("LoggingConfig", {}).get("LogGroup"))
            owned = bool(target & set(groups)) or any(
                _name_mentions(g, "/aws/lambda/", logical_id) for g in groups.values()
            )
            found.append(
                ServiceLogs(
                    f"Lambda {logical_id}: /aws/lambda/<function name>",
                    owned,
                    f"logs to declared {', '.join(sorted(target & set(groups)))}"
                    if owned
                    else "no declared log group: Lambda creates one on first invocation, "
                    "never expiring, and destroy leaves it",
                )
            )
        elif resource["Type"] == "AWS::SageMaker::Endpoint":
            name = props.get("EndpointName", "")
            owned = isinstance(name, str) and any(
                _name_mentions(g, f"/aws/sagemaker/Endpoints/{name}") for g in groups.values()
            )
            found.append(
                ServiceLogs(
                    f"SageMaker endpoint {logical_id}: /aws/sagemaker/Endpoints/{name}",
                    owned,
                    "declared by the stack"
                    if owned
                    else "SageMaker creates it when the endpoint starts; destroy leaves it",
                )
            )
        elif resource["Type"] == "AWS::ApiGateway::Stage":
            levels = {m.get("LoggingLevel", "OFF") for m in props.get("MethodSettings", [])}
            if levels <= {"OFF"}:
                continue
            api = next(iter(_refs(props.get("RestApiId"))), "")
            owned = any(
                _name_mentions(g, "API-Gateway-Execution-Logs_", api) for g in groups.values()
            )
            found.append(
                ServiceLogs(
                    f"API Gateway stage {props.get('StageName')} execution logs "
                    f"(level {', '.join(sorted(levels - {'OFF'}))}): "
                    "API-Gateway-Execution-Logs_<api id>/<stage>",
                    owned,
                    "declared by the stack"
                    if owned
                    else "API Gateway creates it on the first logged request; destroy leaves it",
                )
            )
    return found


def asset_files(assembly: Path) -> list[tuple[str, int]]:
    """The files CDK uploads to the bootstrap bucket for this stack (never deleted by destroy)."""
    (manifest,) = assembly.glob("MlServing-*.assets.json")
    files = json.loads(manifest.read_text()).get("files", {})
    out = []
    for asset in files.values():
        source = assembly / asset["source"]["path"]
        size = (
            sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
            if source.is_dir()
            else source.stat().st_size
        )
        out.append((asset["source"]["path"], size))
    return out


def termination_protection(assembly: Path) -> bool:
    manifest = json.loads((assembly / "manifest.json").read_text())
    (stack,) = [
        a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"
    ]
    return bool(stack.get("properties", {}).get("terminationProtection", False))


def _synth(workdir: Path, stage: str) -> Path:
    return harness.synth(
        workdir / f"cdk.out-{stage}",
        {
            "stage": stage,
            "model_data_url": MODEL_DATA_URL,
            "framework": "pytorch",
            "framework_version": "1.4",
        },
    )


OUTSIDE_TEMPLATE = [
    (
        "CDK assets in the bootstrap bucket (cdk-hnb659fds-assets-<account>-<region>)",
        "the Lambda code, the CDK providers' code and, for a local artifact, model.tar.gz; "
        "shared by every CDK app in the account: `cdk gc` (or a lifecycle rule) removes unused ones",
    ),
    (
        "API Gateway's account-level CloudWatch role (AWS::ApiGateway::Account and its IAM role)",
        "retained by design in both stages: one setting per account and region, shared by every "
        "REST API there; delete it by hand only when no API logs to CloudWatch",
    ),
    (
        "SageMaker training jobs, tuning jobs and their log group /aws/sagemaker/TrainingJobs",
        "created by `python -m training.launch`, not by the stack; job records cannot be deleted "
        "and cost nothing; the log group is shared by every training job in the region "
        "(delete it, or set its retention, by hand)",
    ),
    (
        "Objects written into the bucket by training jobs and uploads",
        "dev: deleted with the bucket (auto-delete empties every version); prod: kept",
    ),
    (
        "KMS keys: the stack's and the endpoint volume's (dev)",
        "scheduled for deletion with a 7-day waiting period (the shortest KMS allows), then gone",
    ),
    (
        "CloudWatch metrics (AWS/SageMaker, AWS/Lambda, AWS/ApiGateway, the MlServing namespace) "
        "and X-Ray traces",
        "cannot be deleted; metrics expire after 15 months, traces after 30 days; no charge",
    ),
    (
        "EC2 spot training (`training.launch ec2`)",
        "the instance, its spot request and instance profile are not the stack's: stop them "
        "yourself; its checkpoints live under the bucket's training/ prefixes",
    ),
]


def run(quick: bool, workdir: Path) -> Section:
    section = Section(
        key="teardown",
        title="Teardown",
        method=(
            "The real CDK app (app.py with cdk.json's context) is synthesized offline for stage "
            "dev and stage prod with the digits model (from an S3 URL, so no local artifact is "
            "needed), and every resource of each template is read: DeletionPolicy, "
            "UpdateReplacePolicy, and for buckets whether a Custom::S3AutoDeleteObjects resource "
            "empties them (CloudFormation cannot delete a bucket with objects in it). Data "
            "resources (buckets, log groups, KMS keys, and any table, secret, repository, queue "
            "or file system) must be deleted in dev and retained in prod (DeletionPolicy "
            "RetainExceptOnCreate, so a failed first create leaves nothing behind; "
            "UpdateReplacePolicy Retain), "
            "without auto-delete; resources that cost money or hold configuration (endpoint, "
            "Lambda and its provisioned concurrency, API, alarms, dashboard, roles) must be "
            "deleted in both. Each Lambda function, the SageMaker endpoint and each API stage "
            "with execution logging gets a log group from AWS unless the stack declares it; "
            "each must be declared. This reads templates; it does not deploy. "
            + ("" if quick else "(Quick and full runs check the same two templates.)")
        ),
    )
    for stage in STAGES:
        assembly = _synth(workdir, stage)
        template = load_template(assembly)
        rows = classify(template, stage)
        section.tables.append(
            Table(
                caption=f"Stage {stage}: stateful and billable resources",
                columns=[
                    "resource",
                    "type",
                    "DeletionPolicy",
                    "UpdateReplacePolicy",
                    "auto-delete",
                    "verdict",
                ],
                rows=[
                    [r.logical_id, r.kind, r.deletion, r.replace, r.auto_delete, r.verdict]
                    for r in rows
                ],
            )
        )
        data_rows = [r for r in rows if r.kind in DATA_TYPES]
        bad_data = [f"{r.logical_id} ({r.kind}): {r.verdict}" for r in data_rows if not r.ok]
        kinds = sorted({r.kind for r in data_rows})
        promise = (
            "deletes every data resource on destroy (buckets emptied first)"
            if stage == "dev"
            else "retains every data resource (RetainExceptOnCreate on delete, Retain on "
            "replacement, no auto-delete), and a failed first create leaves none behind"
        )
        section.check(
            f"{stage}: the template {promise}",
            bool(data_rows) and not bad_data,
            "; ".join(bad_data)
            or f"{len(data_rows)} data resources ({', '.join(kinds)}) as promised",
        )
        others = [r for r in rows if r.kind not in DATA_TYPES]
        bad_other = [f"{r.logical_id} ({r.kind}): {r.verdict}" for r in others if not r.ok]
        by_design = [r.logical_id for r in others if r.ok and r.verdict.startswith("retained")]
        section.check(
            f"{stage}: nothing that costs money is retained (only the account-level API Gateway "
            "logging setting, by design)",
            bool(others) and not bad_other,
            "; ".join(bad_other)
            or f"{len(others) - len(by_design)} billable/config resources deleted; retained by "
            f"design: {', '.join(by_design) or 'none'}",
        )
        service = service_log_groups(template)
        unowned = [f"{s.what}: {s.detail}" for s in service if not s.owned]
        section.check(
            f"{stage}: every log group AWS would create for the stack's resources is declared "
            "by the stack (and so follows its removal policy)",
            bool(service) and not unowned,
            "; ".join(unowned) or "; ".join(f"{s.what}: {s.detail}" for s in service),
        )
        protected = termination_protection(assembly)
        section.check(
            f"{stage}: termination protection is "
            + ("on (a destroy needs a deliberate extra step)" if stage == "prod" else "off"),
            protected == (stage == "prod"),
            f"terminationProtection {protected} in the cloud assembly",
        )
        assets = asset_files(assembly)
        section.notes.append(
            f"Stage {stage}: {len(assets)} CDK asset(s) in the bootstrap bucket outlive the stack "
            f"({', '.join(f'{path} {size / 1024:.0f} KiB' for path, size in assets)})."
        )
    section.tables.append(
        Table(
            caption="Left behind by any destroy, whatever the template (docs/teardown.md)",
            columns=["what", "why and what to do"],
            rows=[list(item) for item in OUTSIDE_TEMPLATE],
        )
    )
    return section

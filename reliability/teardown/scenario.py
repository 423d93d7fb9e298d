"""The teardown scenario: dev and prod synthesized, each template and assembly checked."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.naming import STAGES
from local_stage import harness
from reliability.report import Section, Table
from reliability.teardown.policies import DATA_TYPES, classify, load_template
from reliability.teardown.service_logs import service_log_groups

MODEL_DATA_URL = "s3://my-models-bucket/digits/v1/model.tar.gz"


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
        _check_stage(section, workdir, stage)
    section.tables.append(
        Table(
            caption="Left behind by any destroy, whatever the template (docs/teardown.md)",
            columns=["what", "why and what to do"],
            rows=[list(item) for item in OUTSIDE_TEMPLATE],
        )
    )
    return section


def _check_stage(section: Section, workdir: Path, stage: str) -> None:
    """One stage's template: its resources tabled, its removal promises and log groups checked."""
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
        "; ".join(bad_data) or f"{len(data_rows)} data resources ({', '.join(kinds)}) as promised",
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

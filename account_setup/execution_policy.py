"""The CloudFormation execution role's permissions: exactly what this project's stacks create.

`cdk bootstrap` gives the role CloudFormation deploys with AdministratorAccess unless told
otherwise, and everyone who may deploy (the GitHub deploy role included) may pass that role. These
managed policies replace it:

    make bootstrap        # = python -m account_setup.execution_policy apply, then
                          #   cdk bootstrap --cloudformation-execution-policies <the ARNs it printed>

The documents live beside this file in ``cdk-execution-policy/`` and are generated, not written by
hand: for every resource type in every synthesized stack (each stage and model, and GitHubOidc) they
allow the actions CloudFormation's own resource handler for that type declares it needs (the
resource provider schemas cfn-lint ships), less the actions of features these stacks do not use
(``EXCLUDED``), plus what the templates need beyond their resources (``EXTRAS``). IAM, S3, Lambda
invocation and SSM are scoped to this project's names; actions are never wildcards.

    python -m account_setup.execution_policy generate   # after changing the stacks (needs the dev tools)

tests/infra/test_execution_policy.py fails when a stack gains a resource type the documents do not
cover, or when the committed documents differ from what ``generate`` writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from contracts.naming import STACK_PREFIX

POLICY_DIR = Path(__file__).resolve().parent / "cdk-execution-policy"
POLICY_NAME_PREFIX = "MlServingCdkExecution-"
# IAM's limit for a managed policy document, counted without whitespace.
MAX_POLICY_CHARS = 6144
# A role holds at most 10 managed policies by default; leave room for ones the owner adds.
MAX_POLICIES = 4

# Physical names CloudFormation generates start with the stack name (lower-cased for buckets).
SERVING_PREFIX = STACK_PREFIX
GITHUB_STACK_PREFIX = "GitHubOidc-"
GITHUB_OIDC_PROVIDER = "token.actions.githubusercontent.com"
# Application Auto Scaling creates this service-linked role the first time an endpoint variant is
# registered in the account (AWS::ApplicationAutoScaling::ScalableTarget's handler may create it).
AUTOSCALING_SLR_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"

# Actions a handler lists for features these stacks never configure; each reason says which.
EXCLUDED: dict[str, str] = {
    "s3tables:": "S3 Tables (bucket metadata tables) are not configured",
    "s3:CreateBucketMetadataTableConfiguration": "bucket metadata tables are not configured",
    "s3:DeleteBucketMetadataTableConfiguration": "bucket metadata tables are not configured",
    "s3:UpdateBucketMetadata": "bucket metadata tables are not configured",
    "s3:REST.PUT.OBJECT": "not an IAM action (listed by AWS::Logs::LogGroup's schema)",
    "s3files:": "Lambda file-system mounts are not used",
    "elasticfilesystem:": "Lambda file-system mounts are not used",
    "firehose:": "no log delivery to Firehose",
    "logs:CreateLogDelivery": "no vended log delivery is configured",
    "codedeploy:": "the Lambda alias has no CodeDeploy traffic shifting",
    "lambda:PassCapacityProvider": "Lambda managed-instance capacity providers are not used",
    "iam:PutUserPolicy": "the stacks attach policies to roles only, never to users",
    "iam:DeleteUserPolicy": "the stacks attach policies to roles only, never to users",
    "iam:GetUserPolicy": "the stacks attach policies to roles only, never to users",
    "iam:PutGroupPolicy": "the stacks attach policies to roles only, never to groups",
    "iam:DeleteGroupPolicy": "the stacks attach policies to roles only, never to groups",
    "iam:GetGroupPolicy": "the stacks attach policies to roles only, never to groups",
}

# Needs of a template beyond its resources' handlers.
CUSTOM_RESOURCE_ACTIONS = ("lambda:InvokeFunction",)  # CloudFormation invokes the provider
SSM_PARAMETER_ACTIONS = ("ssm:GetParameters",)  # resolves AWS::SSM::Parameter::Value<...>
EXTRAS = (*CUSTOM_RESOURCE_ACTIONS, *SSM_PARAMETER_ACTIONS)

# Every resource of the serving stacks carries this tag (app.py); destructive KMS calls need it.
PROJECT_TAG = ("project", "ml-serving")
KMS_DESTRUCTIVE = {"kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"}
# Lambda actions whose resource is not a function of the stack (layers are AWS's, e.g. Powertools).
LAMBDA_UNSCOPED = {"lambda:GetLayerVersion", "lambda:GetCodeSigningConfig"}
IAM_ATTACH = {"iam:AttachRolePolicy", "iam:DetachRolePolicy"}
# S3 actions on objects rather than buckets (their resource is bucket/key).
S3_OBJECT_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:PutObjectAcl"}
HANDLERS = ("create", "read", "update", "delete")


def is_excluded(action: str) -> bool:
    """Whether ``action`` falls under an EXCLUDED key (each key is an action or action prefix)."""
    return any(action.startswith(key) for key in EXCLUDED)


def resource_types(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Every resource type in the templates, with the stacks that use it."""
    found: dict[str, set[str]] = {}
    for stack, template in templates.items():
        for resource in template.get("Resources", {}).values():
            found.setdefault(str(resource["Type"]), set()).add(stack)
    return found


def handler_permissions(resource_type: str, region: str = "us-east-1") -> set[str]:
    """What CloudFormation's handler for ``resource_type`` declares it needs (create to delete)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # dev tooling: only to generate and test

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    handlers = schema.get("handlers", {})
    return {p for h in HANDLERS for p in handlers.get(h, {}).get("permissions", [])}


def required_actions(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Each action the templates need, with the resource types (or template features) needing it."""
    needed: dict[str, set[str]] = {}
    for resource_type in sorted(resource_types(templates)):
        if (
            resource_type.startswith("Custom::")
            or resource_type == "AWS::CloudFormation::CustomResource"
        ):
            actions: Iterable[str] = CUSTOM_RESOURCE_ACTIONS
        else:
            actions = (a for a in handler_permissions(resource_type) if not is_excluded(a))
        for action in actions:
            needed.setdefault(action, set()).add(resource_type)
    for template in templates.values():
        if any(
            str(p.get("Type", "")).startswith("AWS::SSM::Parameter::Value")
            for p in template.get("Parameters", {}).values()
        ):
            for action in SSM_PARAMETER_ACTIONS:
                needed.setdefault(action, set()).add("SSM parameter types (BootstrapVersion)")
    return needed


def passed_role_services(templates: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The services the templates' roles trust: the only ones CloudFormation may pass them to."""
    services: set[str] = set()
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            trust = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            for statement in trust:
                service = statement.get("Principal", {}).get("Service", [])
                services.update([service] if isinstance(service, str) else service)
    return sorted(services)


def attached_managed_policies(templates: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The managed policies the templates attach to roles, as ARNs in the `aws` partition."""
    arns: set[str] = set()
    for template in templates.values():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            for arn in resource["Properties"].get("ManagedPolicyArns", []):
                arns.add(_render_partition(arn))
    return sorted(arns)


def _render_partition(value: Any) -> str:
    """An ARN from a template, with CDK's partition token written as `aws`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return str(sep).join(_render_partition(p) for p in parts)
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    raise ValueError(f"cannot render {value!r} as an ARN: name the policy by a plain ARN")


def _statement(sid: str, actions: Iterable[str], resources: Sequence[str], **extra: Any) -> dict:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": list(resources) if len(resources) > 1 else resources[0],
    }
    statement.update(extra)
    return statement


def statements(templates: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The policy's statements: scoped ones for IAM, S3, Lambda invocation and SSM, then by service."""
    actions = set(required_actions(templates))
    stack_roles = [
        f"arn:aws:iam::*:role/{SERVING_PREFIX}*",
        f"arn:aws:iam::*:role/{GITHUB_STACK_PREFIX}*",
    ]
    out: list[dict[str, Any]] = []

    def take(predicate: Any) -> list[str]:
        chosen = sorted(a for a in actions if predicate(a))
        actions.difference_update(chosen)
        return chosen

    if passrole := take(lambda a: a == "iam:PassRole"):
        out.append(
            _statement(
                "PassStackRolesToTheirServices",
                passrole,
                [f"arn:aws:iam::*:role/{SERVING_PREFIX}*"],
                Condition={
                    "StringEquals": {"iam:PassedToService": passed_role_services(templates)}
                },
            )
        )
    if slr := take(lambda a: a == "iam:CreateServiceLinkedRole"):
        out.append(
            _statement(
                "CreateTheEndpointAutoscalingServiceLinkedRole",
                slr,
                [f"arn:aws:iam::*:role/aws-service-role/{AUTOSCALING_SLR_SERVICE}/*"],
                Condition={"StringEquals": {"iam:AWSServiceName": AUTOSCALING_SLR_SERVICE}},
            )
        )
    if oidc := take(lambda a: a.startswith("iam:") and "OpenIDConnectProvider" in a):
        out.append(
            _statement(
                "ManageTheGitHubOidcProvider",
                oidc,
                [f"arn:aws:iam::*:oidc-provider/{GITHUB_OIDC_PROVIDER}"],
            )
        )
    if attach := take(lambda a: a in IAM_ATTACH):
        # Only the AWS managed policies the templates name: never AdministratorAccess.
        out.append(
            _statement(
                "AttachOnlyTheManagedPoliciesTheStacksUse",
                attach,
                stack_roles,
                Condition={"ArnEquals": {"iam:PolicyARN": attached_managed_policies(templates)}},
            )
        )
    if roles := take(lambda a: a.startswith("iam:")):
        out.append(_statement("ManageTheStacksRoles", roles, stack_roles))
    if ssm := take(lambda a: a.startswith("ssm:")):
        out.append(
            _statement(
                "ReadTheCdkBootstrapVersion",
                ssm,
                ["arn:aws:ssm:*:*:parameter/cdk-bootstrap/*/version"],
            )
        )
    if invoke := take(lambda a: a == "lambda:InvokeFunction"):
        out.append(
            _statement(
                "InvokeTheStacksCustomResourceProviders",
                invoke,
                [f"arn:aws:lambda:*:*:function:{SERVING_PREFIX}*"],
            )
        )
    if objects := take(lambda a: a in S3_OBJECT_ACTIONS):
        out.append(
            _statement(
                "ObjectsInTheStacksAndCdkAssetBuckets",
                objects,
                [
                    f"arn:aws:s3:::{SERVING_PREFIX.lower()}*/*",
                    "arn:aws:s3:::cdk-*-assets-*/*",
                ],
            )
        )
    if functions := take(lambda a: a.startswith("lambda:") and a not in LAMBDA_UNSCOPED):
        out.append(
            _statement(
                "ManageTheStacksFunctions",
                functions,
                [f"arn:aws:lambda:*:*:function:{SERVING_PREFIX}*"],
            )
        )
    if destroy_keys := take(lambda a: a in KMS_DESTRUCTIVE):
        tag, value = PROJECT_TAG
        out.append(
            _statement(
                "ChangeOrDeleteOnlyTheProjectsKeys",
                destroy_keys,
                ["*"],
                Condition={"StringEquals": {f"aws:ResourceTag/{tag}": value}},
            )
        )
    if buckets := take(lambda a: a.startswith("s3:")):
        out.append(
            _statement(
                "ManageTheStacksBuckets", buckets, [f"arn:aws:s3:::{SERVING_PREFIX.lower()}*"]
            )
        )
    # Everything else: names CloudFormation generates or that exist only after creation (keys,
    # endpoints, APIs). The actions stay exact.
    for service in sorted({a.split(":", 1)[0] for a in actions}):
        chosen = take(lambda a, s=service: a.split(":", 1)[0] == s)
        sid = "".join(part.capitalize() for part in service.replace("-", " ").split())
        out.append(_statement(f"{sid}Resources", chosen, ["*"]))
    return out


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against MAX_POLICY_CHARS (whitespace excluded)."""
    return len(json.dumps(document, separators=(",", ":")))


def documents(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The statements packed, in order, into as few managed policies as IAM's size limit allows."""
    packed: list[list[dict[str, Any]]] = [[]]
    for statement in statements(templates):
        candidate = {"Version": "2012-10-17", "Statement": [*packed[-1], statement]}
        if packed[-1] and policy_size(candidate) > MAX_POLICY_CHARS:
            packed.append([])
        packed[-1].append(statement)
    return {
        f"part-{i}": {"Version": "2012-10-17", "Statement": group}
        for i, group in enumerate(packed, start=1)
    }


def load_documents(folder: Path = POLICY_DIR) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def write_documents(docs: Mapping[str, Mapping[str, Any]], folder: Path = POLICY_DIR) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        if stale.stem not in docs:
            stale.unlink()
    for name, document in docs.items():
        (folder / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")


def synthesized_templates() -> dict[str, dict[str, Any]]:
    """Every stack this project deploys: each stage and model in cdk.json, and GitHubOidc."""
    import aws_cdk as cdk

    import app as cdk_app
    from stacks.github_oidc import GitHubOidcStack

    account, region = "123456789012", "us-east-1"
    context = json.loads((cdk_app.PROJECT_ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(context={**context, "account": account, "region": region})
    serving = context[cdk_app.CONTEXT_ROOT]
    for stage in serving["stages"]:
        for model in serving["models"]:
            # An S3 artifact: the stack's resources do not depend on where the model comes from.
            cdk_app.build_app(
                app,
                overrides={
                    "stage": stage,
                    "model": model,
                    "model_data_url": "s3://example-models/model.tar.gz",
                    "framework": "pytorch",
                    "framework_version": "1.4",
                },
            )
    GitHubOidcStack(
        app,
        "GitHubOidc",
        github_repo="example-org/ml-serving",
        training_role_arn=f"arn:aws:iam::{account}:role/{SERVING_PREFIX}dev-digits-TrainingRole",
        training_bucket_name="mlserving-dev-digits-bucket",
        env=cdk.Environment(account=account, region=region),
    )
    assembly = app.synth()
    return {stack.stack_name: dict(stack.template) for stack in assembly.stacks}


# --- applying them to an account ----------------------------------------------------------------


def _decode(document: Any) -> Any:
    """IAM answers policy documents URL-encoded; boto3 decodes them, a raw answer may not be."""
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document


def apply(
    iam: Any, sts: Any, docs: Mapping[str, Mapping[str, Any]], log: Any = sys.stderr
) -> list[str]:
    """Create or update one managed policy per document; returns their ARNs, in order."""
    caller = str(sts.get_caller_identity()["Arn"])
    partition, account = caller.split(":")[1], caller.split(":")[4]
    arns = []
    for name, document in docs.items():
        text = json.dumps(document, separators=(",", ":")).replace(
            '"arn:aws:', f'"arn:{partition}:'
        )
        wanted = json.loads(text)
        policy_name = f"{POLICY_NAME_PREFIX}{name}"
        arn = f"arn:{partition}:iam::{account}:policy/{policy_name}"
        arns.append(arn)
        try:
            policy = iam.get_policy(PolicyArn=arn)["Policy"]
        except iam.exceptions.NoSuchEntityException:
            iam.create_policy(
                PolicyName=policy_name,
                PolicyDocument=text,
                Description="CloudFormation execution policy for the ml-serving stacks "
                "(account_setup/cdk-execution-policy)",
            )
            print(f"created {arn}", file=log)
            continue
        current = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        if _decode(current["PolicyVersion"]["Document"]) == wanted:
            print(f"unchanged {arn}", file=log)
            continue
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
        old = sorted(
            (v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"]
        )
        # IAM keeps at most 5 versions of a policy: make room by dropping the oldest.
        while len(versions) >= 5 and old:
            oldest = old.pop(0)["VersionId"]
            iam.delete_policy_version(PolicyArn=arn, VersionId=oldest)
            versions = [v for v in versions if v["VersionId"] != oldest]
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
        print(f"updated {arn}", file=log)
    return arns


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m account_setup.execution_policy",
        description="The CDK CloudFormation execution role's scoped managed policies.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "generate", help=f"synthesize every stack and rewrite {POLICY_DIR.name}/ (dev tools needed)"
    )
    apply_cmd = commands.add_parser(
        "apply",
        help="create or update the managed policies in the current account; prints their ARNs "
        "comma-separated, as `cdk bootstrap --cloudformation-execution-policies` takes them",
    )
    apply_cmd.add_argument("--profile", default=None, help="AWS profile (default: the usual chain)")
    args = parser.parse_args(argv)

    if args.command == "generate":
        docs = documents(synthesized_templates())
        if len(docs) > MAX_POLICIES:
            print(f"error: {len(docs)} policies needed, more than {MAX_POLICIES}", file=sys.stderr)
            return 1
        write_documents(docs)
        for name, document in docs.items():
            print(f"{POLICY_DIR.name}/{name}.json: {policy_size(document)} characters")
        return 0

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    docs = load_documents()
    if not docs:
        print(f"error: no policy documents in {POLICY_DIR}", file=sys.stderr)
        return 2
    try:
        session = boto3.Session(profile_name=args.profile)
        arns = apply(session.client("iam"), session.client("sts"), docs)
    except (BotoCoreError, ClientError) as exc:
        print(
            f"error: could not create the execution policies: {exc}\n"
            "This needs IAM rights (iam:CreatePolicy, iam:CreatePolicyVersion, ...): run it with "
            "the administrator credentials you bootstrap with.",
            file=sys.stderr,
        )
        return 1
    print(",".join(arns))
    return 0


if __name__ == "__main__":
    sys.exit(main())

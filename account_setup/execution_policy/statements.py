"""The policy's statements: IAM, S3, Lambda, SSM and KMS scoped to this project's names, the rest
by service with exact actions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from account_setup.execution_policy.actions import (
    attached_managed_policies,
    passed_role_services,
    required_actions,
)
from contracts.naming import STACK_PREFIX

# Physical names CloudFormation generates start with the stack name (lower-cased for buckets).
SERVING_PREFIX = STACK_PREFIX
GITHUB_STACK_PREFIX = "GitHubOidc-"
GITHUB_OIDC_PROVIDER = "token.actions.githubusercontent.com"
# Application Auto Scaling creates this service-linked role the first time an endpoint variant is
# registered in the account (AWS::ApplicationAutoScaling::ScalableTarget's handler may create it).
AUTOSCALING_SLR_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"

# Every resource of the serving stacks carries this tag (app.py); destructive KMS calls need it.
PROJECT_TAG = ("project", "ml-serving")
KMS_DESTRUCTIVE = {"kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"}
# Lambda actions whose resource is not a function of the stack (layers are AWS's, e.g. Powertools).
LAMBDA_UNSCOPED = {"lambda:GetLayerVersion", "lambda:GetCodeSigningConfig"}
IAM_ATTACH = {"iam:AttachRolePolicy", "iam:DetachRolePolicy"}
# S3 actions on objects rather than buckets (their resource is bucket/key).
S3_OBJECT_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:PutObjectAcl"}


def _statement(sid: str, actions: Iterable[str], resources: Sequence[str], **extra: Any) -> dict:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": list(resources) if len(resources) > 1 else resources[0],
    }
    statement.update(extra)
    return statement


class _Remaining:
    """The actions not yet in a statement; ``take`` moves the ones a predicate picks out."""

    def __init__(self, actions: Iterable[str]) -> None:
        self.actions = set(actions)

    def take(self, predicate: Callable[[str], bool]) -> list[str]:
        chosen = sorted(a for a in self.actions if predicate(a))
        self.actions.difference_update(chosen)
        return chosen


def statements(templates: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The policy's statements: scoped ones for IAM, S3, Lambda invocation and SSM, then by service."""
    remaining = _Remaining(required_actions(templates))
    return [
        *_iam_statements(remaining, templates),
        *_scoped_statements(remaining),
        *_by_service(remaining),
    ]


def _iam_statements(
    remaining: _Remaining, templates: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Roles passed only to the services that trust them, the stacks' roles and OIDC provider."""
    take = remaining.take
    stack_roles = [
        f"arn:aws:iam::*:role/{SERVING_PREFIX}*",
        f"arn:aws:iam::*:role/{GITHUB_STACK_PREFIX}*",
    ]
    out: list[dict[str, Any]] = []
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
    return out


def _scoped_statements(remaining: _Remaining) -> list[dict[str, Any]]:
    """SSM, Lambda, S3 and KMS actions on this project's names (or tag) only."""
    take = remaining.take
    out: list[dict[str, Any]] = []
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
    return out


def _by_service(remaining: _Remaining) -> list[dict[str, Any]]:
    take = remaining.take
    out: list[dict[str, Any]] = []
    # Everything else: names CloudFormation generates or that exist only after creation (keys,
    # endpoints, APIs). The actions stay exact.
    for service in sorted({a.split(":", 1)[0] for a in remaining.actions}):
        chosen = take(_of_service(service))
        sid = "".join(part.capitalize() for part in service.replace("-", " ").split())
        out.append(_statement(f"{sid}Resources", chosen, ["*"]))
    return out


def _of_service(service: str) -> Callable[[str], bool]:
    return lambda action: action.split(":", 1)[0] == service

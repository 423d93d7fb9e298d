"""GitHub Actions' way into AWS: an OIDC identity provider and the roles its workflows assume.

Deployed once per AWS account and region (``cdk deploy GitHubOidc``, with your own credentials), and
separately from the serving stacks: the workflows cannot create the roles they need to run.

* **Deploy role** (``DeployRoleArn``): trusted only for jobs of *this* repository bound to one of
  the chosen GitHub environments (``dev``, ``prod``). It may do exactly one thing: assume the CDK
  bootstrap roles of this account and region (deploy, file-publishing, image-publishing, lookup).
  Everything the CDK CLI does then happens with those roles' permissions, which ``cdk bootstrap``
  created and the account owner controls; the workflows read stack outputs and the API key through
  the read-only lookup role.
* **Train role** (``TrainRoleArn``, only when ``training_role_arn`` is given): trusted only for the
  chosen branches of this repository. It may start, describe and stop SageMaker training jobs, pass
  exactly one execution role to SageMaker, read the serving stacks' outputs, follow the jobs' logs
  and, when ``training_bucket_name`` is given, read and write that bucket (the launcher uploads the
  training code there).

Why environments for one role and branches for the other: when a job names an ``environment:``,
GitHub's token says ``repo:OWNER/NAME:environment:ENV`` and no longer mentions the branch, so the
deploy role trusts environments (protect them with deployment-branch rules and, for ``prod``,
required reviewers) and the train role, whose job names no environment, trusts branches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from contracts.bucket import TRAINING_PREFIX
from contracts.naming import STACK_PREFIX as SERVING_STACK_PREFIX

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
# The audience configure-aws-credentials asks GitHub to put in the token.
STS_AUDIENCE = "sts.amazonaws.com"
DEFAULT_CDK_QUALIFIER = "hnb659fds"
# The roles `cdk bootstrap` creates, named cdk-<qualifier>-<kind>-role-<account>-<region>.
CDK_BOOTSTRAP_ROLE_KINDS = ("deploy", "file-publishing", "image-publishing", "lookup")
# One hour: the longest a workflow's deploy (endpoint creation included) should hold these.
MAX_SESSION = cdk.Duration.hours(1)
# `train --wait` holds the train role while the job runs: up to GitHub's 6-hour job limit.
MAX_TRAIN_SESSION = cdk.Duration.hours(6)

_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# Branch and environment names as they appear in the token's `sub`; `*` is allowed for patterns
# such as `release/*`. Characters that would let one name spill into another part of the subject
# (`:`) or that IAM treats specially (`?`, `$`, spaces) are refused.
_NAME_RE = re.compile(r"^[A-Za-z0-9._/*-]{1,255}$")
_QUALIFIER_RE = re.compile(r"^[a-z0-9_-]{1,10}$")
_OIDC_ARN_RE = re.compile(
    rf"^arn:aws[a-z-]*:iam::\d{{12}}:oidc-provider/{re.escape(GITHUB_OIDC_HOST)}$"
)
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class GitHubOidcStack(cdk.Stack):
    """The GitHub OIDC provider (or an imported one), the deploy role and the optional train role.

    Attributes: ``provider`` (the OIDC provider), ``deploy_role``, ``train_role`` (``None`` without
    ``training_role_arn``), ``deploy_subjects`` and ``train_subjects`` (the token subjects trusted).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        github_repo: str,
        github_branches: Sequence[str] = ("main",),
        github_environments: Sequence[str] = ("dev", "prod"),
        oidc_provider_arn: str | None = None,
        cdk_qualifier: str = DEFAULT_CDK_QUALIFIER,
        training_role_arn: str | None = None,
        training_bucket_name: str | None = None,
        **kwargs: object,
    ) -> None:
        """Create the stack.

        Args:
            github_repo: ``owner/name`` of the repository whose workflows may assume the roles.
            github_branches: branches whose jobs may assume the train role (``*`` patterns allowed).
            github_environments: GitHub environments whose jobs may assume the deploy role.
            oidc_provider_arn: import this account's existing GitHub OIDC provider instead of
                creating one (an account holds at most one provider per URL).
            cdk_qualifier: the qualifier ``cdk bootstrap`` used (its default is ``hnb659fds``).
            training_role_arn: the SageMaker execution role training jobs run as (the serving
                stack's ``TrainingRoleArn`` output); without it no train role is made.
            training_bucket_name: the bucket the launcher stages code and data in (the serving
                stack's ``BucketName`` output); needs ``training_role_arn``.
        """
        _validate(
            github_repo=github_repo,
            github_branches=github_branches,
            github_environments=github_environments,
            oidc_provider_arn=oidc_provider_arn,
            cdk_qualifier=cdk_qualifier,
            training_role_arn=training_role_arn,
            training_bucket_name=training_bucket_name,
        )
        kwargs.setdefault(
            "description",
            f"GitHub Actions OIDC access for {github_repo}: deploy role (CDK bootstrap roles only)"
            + (" and train role (SageMaker training jobs only)" if training_role_arn else ""),
        )
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]

        if oidc_provider_arn:
            self.provider: iam.IOidcProvider = iam.OidcProviderNative.from_oidc_provider_arn(
                self, "GitHubProvider", oidc_provider_arn
            )
        else:
            # The native AWS::IAM::OIDCProvider resource: no custom-resource Lambda. No thumbprints:
            # IAM trusts GitHub's certificate through its own root-CA library.
            self.provider = iam.OidcProviderNative(
                self, "GitHubProvider", url=GITHUB_OIDC_URL, client_ids=[STS_AUDIENCE]
            )

        self.deploy_subjects = [f"repo:{github_repo}:environment:{e}" for e in github_environments]
        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            assumed_by=_github_principal(self.provider, self.deploy_subjects),
            description=(
                f"Assumed by {github_repo}'s deploy/destroy jobs (environments "
                f"{', '.join(github_environments)}); may only assume the CDK bootstrap roles."
            ),
            max_session_duration=MAX_SESSION,
        )
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeCdkBootstrapRoles",
                actions=["sts:AssumeRole"],
                resources=[
                    self.format_arn(
                        service="iam",
                        region="",
                        resource="role",
                        resource_name=f"cdk-{cdk_qualifier}-{kind}-role-{self.account}-{self.region}",
                    )
                    for kind in CDK_BOOTSTRAP_ROLE_KINDS
                ],
            )
        )
        cdk.CfnOutput(
            self,
            "DeployRoleArn",
            value=self.deploy_role.role_arn,
            description="Repository (or environment) variable AWS_DEPLOY_ROLE_ARN",
        )

        self.train_role: iam.Role | None = None
        self.train_subjects = [f"repo:{github_repo}:ref:refs/heads/{b}" for b in github_branches]
        if training_role_arn:
            self.train_role = self._make_train_role(
                github_repo=github_repo,
                training_role_arn=training_role_arn,
                training_bucket_name=training_bucket_name,
            )
            cdk.CfnOutput(
                self,
                "TrainRoleArn",
                value=self.train_role.role_arn,
                description="Repository variable AWS_TRAIN_ROLE_ARN",
            )
        cdk.CfnOutput(self, "OidcProviderArn", value=self.provider.oidc_provider_arn)

    def _make_train_role(
        self, *, github_repo: str, training_role_arn: str, training_bucket_name: str | None
    ) -> iam.Role:
        role = iam.Role(
            self,
            "TrainRole",
            assumed_by=_github_principal(self.provider, self.train_subjects),
            description=(
                f"Assumed by {github_repo}'s train workflow; may only run SageMaker training "
                "jobs as the given execution role."
            ),
            max_session_duration=MAX_TRAIN_SESSION,
        )
        training_jobs = self.format_arn(
            service="sagemaker", resource="training-job", resource_name="*"
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RunTrainingJobs",
                actions=[
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    # CreateTrainingJob with Tags (the SDK tags its jobs) needs AddTags too.
                    "sagemaker:AddTags",
                ],
                resources=[training_jobs],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PassTrainingExecutionRole",
                actions=["iam:PassRole"],
                resources=[training_role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # The launcher finds the execution role and bucket in the serving stack's outputs.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadServingStackOutputs",
                actions=["cloudformation:DescribeStacks"],
                resources=[
                    self.format_arn(
                        service="cloudformation",
                        resource="stack",
                        resource_name=f"{SERVING_STACK_PREFIX}*/*",
                    )
                ],
            )
        )
        # `--wait` follows the job's log.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FollowTrainingLogs",
                actions=["logs:DescribeLogStreams", "logs:GetLogEvents"],
                resources=[
                    self.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/TrainingJobs:*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        # cdk-nag names a finding by the resource as it renders it: tokens become <AWS::...>.
        partition = (
            "<AWS::Partition>" if cdk.Token.is_unresolved(self.partition) else self.partition
        )
        region = "<AWS::Region>" if cdk.Token.is_unresolved(self.region) else self.region
        account = "<AWS::AccountId>" if cdk.Token.is_unresolved(self.account) else self.account
        acknowledgements = [
            (
                f"AwsSolutions-IAM5[Resource::arn:{partition}:sagemaker:"
                f"{region}:{account}:training-job/*]",
                "Training job names are generated per run (base name + timestamp), so the role "
                "cannot name them in advance; the actions are limited to create/describe/stop/tag.",
            ),
            (
                f"AwsSolutions-IAM5[Resource::arn:{partition}:cloudformation:"
                f"{region}:{account}:stack/{SERVING_STACK_PREFIX}*/*]",
                "Read-only DescribeStacks on this project's serving stacks (one per stage and "
                "model); the stack id suffix is generated by CloudFormation.",
            ),
            (
                f"AwsSolutions-IAM5[Resource::arn:{partition}:logs:"
                f"{region}:{account}:log-group:/aws/sagemaker/TrainingJobs:*]",
                "Read-only access to SageMaker's training log group; its streams are named after "
                "the generated job names.",
            ),
        ]
        if training_bucket_name:
            bucket = iam.PolicyStatement(
                sid="StageTrainingCodeAndData",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[
                    self.format_arn(
                        service="s3",
                        region="",
                        account="",
                        resource=training_bucket_name,
                        resource_name=f"{TRAINING_PREFIX}*",
                    )
                ],
            )
            role.add_to_policy(bucket)
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ListTrainingBucket",
                    actions=["s3:ListBucket"],
                    resources=[
                        self.format_arn(
                            service="s3",
                            region="",
                            account="",
                            resource=training_bucket_name,
                        )
                    ],
                )
            )
            acknowledgements.append(
                (
                    f"AwsSolutions-IAM5[Resource::arn:{partition}:s3:::"
                    f"{training_bucket_name}/{TRAINING_PREFIX}*]",
                    "Objects under the training/ prefix of the project's own bucket only: the "
                    "launcher uploads code and data there under generated per-job keys.",
                )
            )
        for rule_id, reason in acknowledgements:
            cdk.Validations.of(role).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))
        return role


def _github_principal(provider: iam.IOidcProvider, subjects: Sequence[str]) -> iam.IPrincipal:
    """A web-identity principal for GitHub tokens minted for sts and one of ``subjects``."""
    # Exact matches unless a subject is a pattern: StringLike would also honour a stray `*`.
    sub_operator = "StringLike" if any("*" in s for s in subjects) else "StringEquals"
    conditions: dict[str, dict[str, object]] = {
        "StringEquals": {f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE}
    }
    conditions.setdefault(sub_operator, {})[f"{GITHUB_OIDC_HOST}:sub"] = list(subjects)
    return iam.WebIdentityPrincipal(provider.oidc_provider_arn, conditions)


def _validate(
    *,
    github_repo: str,
    github_branches: Sequence[str],
    github_environments: Sequence[str],
    oidc_provider_arn: str | None,
    cdk_qualifier: str,
    training_role_arn: str | None,
    training_bucket_name: str | None,
) -> None:
    """Reject bad props with a message that names the prop and says what to pass instead."""
    if not isinstance(github_repo, str) or not _REPO_RE.match(github_repo):
        raise ValueError(
            f"github_repo must be 'owner/name' (e.g. 'octo-org/ml-serving'), got {github_repo!r}"
        )
    for prop, names in (
        ("github_branches", github_branches),
        ("github_environments", github_environments),
    ):
        if isinstance(names, str) or not names:
            raise ValueError(f"{prop} must be a non-empty list of names, got {names!r}")
        bad = [n for n in names if not isinstance(n, str) or not _NAME_RE.match(n) or n == "*"]
        if bad:
            raise ValueError(
                f"{prop} has invalid entries {bad!r}: use names made of letters, digits and "
                "'._/-' ('*' only inside a pattern such as 'release/*', never alone)"
            )
    if oidc_provider_arn is not None and not _OIDC_ARN_RE.match(oidc_provider_arn):
        raise ValueError(
            "oidc_provider_arn must be the ARN of this account's GitHub provider, "
            f"'arn:aws:iam::<account>:oidc-provider/{GITHUB_OIDC_HOST}', got {oidc_provider_arn!r}"
        )
    if not _QUALIFIER_RE.match(cdk_qualifier):
        raise ValueError(
            "cdk_qualifier must be the `cdk bootstrap --qualifier` value (up to 10 lower-case "
            f"letters, digits, '-' or '_'; default {DEFAULT_CDK_QUALIFIER!r}), "
            f"got {cdk_qualifier!r}"
        )
    if training_role_arn is not None and not _ROLE_ARN_RE.match(training_role_arn):
        raise ValueError(
            "training_role_arn must be an IAM role ARN (the serving stack's TrainingRoleArn "
            f"output, 'arn:aws:iam::<account>:role/<name>'), got {training_role_arn!r}"
        )
    if training_bucket_name is not None:
        if not training_role_arn:
            raise ValueError(
                "training_bucket_name is only used by the train role: also set training_role_arn"
            )
        if not _BUCKET_RE.match(training_bucket_name):
            raise ValueError(
                "training_bucket_name must be an S3 bucket name (the serving stack's BucketName "
                f"output), got {training_bucket_name!r}"
            )

"""The GitHub OIDC stack: who may assume its roles, and what those roles may do.

Every stack here is synthesized with the AwsSolutions checks attached, so `Template.from_stack`
itself fails on an unacknowledged finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from stacks.github_oidc import GitHubOidcStack

ACCOUNT = "123456789012"
REGION = "us-east-1"
REPO = "octo-org/ml-serving"
TRAINING_ROLE = f"arn:aws:iam::{ACCOUNT}:role/MlServing-dev-digits-TrainingRole"
BUCKET = "mlserving-dev-digits-bucket-abc123"
PROVIDER_URL = "https://token.actions.githubusercontent.com"


def synth(**props: Any) -> tuple[GitHubOidcStack, Template]:
    app = cdk.App()
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = GitHubOidcStack(
        app,
        "GitHubOidc",
        env=cdk.Environment(account=ACCOUNT, region=REGION),
        **{"github_repo": REPO, **props},
    )
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="module")
def full() -> tuple[GitHubOidcStack, Template]:
    return synth(training_role_arn=TRAINING_ROLE, training_bucket_name=BUCKET)


@pytest.fixture(scope="module")
def deploy_only() -> tuple[GitHubOidcStack, Template]:
    return synth()


def render(value: Any) -> Any:
    """Resolve the partition token the way IAM will (`aws`), so ARNs compare as plain strings."""
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return sep.join(str(render(p)) for p in parts)
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    if isinstance(value, list):
        return [render(v) for v in value]
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    return value


def role_resource(stack: GitHubOidcStack, template: Template, role: iam.Role) -> dict:
    logical_id = stack.get_logical_id(role.node.default_child)  # type: ignore[arg-type]
    return template.to_json()["Resources"][logical_id]


def statements_of(stack: GitHubOidcStack, template: Template, role: iam.Role) -> list[dict]:
    """Every identity-policy statement attached to ``role``, inline or in AWS::IAM::Policy."""
    logical_id = stack.get_logical_id(role.node.default_child)  # type: ignore[arg-type]
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": logical_id} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    for inline in role_resource(stack, template, role)["Properties"].get("Policies", []):
        found.extend(inline["PolicyDocument"]["Statement"])
    return [render(s) for s in found]


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# --- the provider ------------------------------------------------------------------------------


def test_creates_the_github_provider_for_sts(deploy_only):
    _, template = deploy_only
    template.resource_count_is("AWS::IAM::OIDCProvider", 1)
    template.has_resource_properties(
        "AWS::IAM::OIDCProvider", {"Url": PROVIDER_URL, "ClientIdList": ["sts.amazonaws.com"]}
    )
    # The native resource: no custom-resource Lambda to patch or to trip the security checks.
    template.resource_count_is("AWS::Lambda::Function", 0)


def test_imports_an_existing_provider_instead_of_creating_one():
    existing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    stack, template = synth(oidc_provider_arn=existing)
    template.resource_count_is("AWS::IAM::OIDCProvider", 0)
    trust = role_resource(stack, template, stack.deploy_role)["Properties"]
    assert trust["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Federated": existing}


# --- the deploy role ---------------------------------------------------------------------------


def test_deploy_role_trusts_only_this_repos_environments_with_the_sts_audience(deploy_only):
    stack, template = deploy_only
    props = role_resource(stack, template, stack.deploy_role)["Properties"]
    (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    provider_id = stack.get_logical_id(stack.provider.node.default_child)  # type: ignore[attr-defined]
    assert statement["Principal"] == {"Federated": {"Ref": provider_id}}
    # Exact matches, both claims required: a token for another repo, branch-only job or another
    # audience does not match.
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": [
                f"repo:{REPO}:environment:dev",
                f"repo:{REPO}:environment:prod",
            ],
        }
    }
    assert props["MaxSessionDuration"] == 3600
    assert "ManagedPolicyArns" not in props


def test_deploy_role_may_only_assume_the_four_cdk_bootstrap_roles(deploy_only):
    stack, template = deploy_only
    (statement,) = statements_of(stack, template, stack.deploy_role)
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    assert "Condition" not in statement
    assert sorted(as_list(statement["Resource"])) == sorted(
        f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-{kind}-role-{ACCOUNT}-{REGION}"
        for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
    )


def test_custom_qualifier_and_environments_reach_the_policy_and_trust():
    stack, template = synth(cdk_qualifier="mlserve", github_environments=["staging"])
    (statement,) = statements_of(stack, template, stack.deploy_role)
    assert f"arn:aws:iam::{ACCOUNT}:role/cdk-mlserve-deploy-role-{ACCOUNT}-{REGION}" in as_list(
        statement["Resource"]
    )
    assert all("hnb659fds" not in arn for arn in as_list(statement["Resource"]))
    trust = role_resource(stack, template, stack.deploy_role)["Properties"]
    condition = trust["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"]["token.actions.githubusercontent.com:sub"] == [
        f"repo:{REPO}:environment:staging"
    ]


def test_outputs_name_the_role_arns_for_the_repository_variables(full, deploy_only):
    _, template = full
    template.has_output("DeployRoleArn", {"Value": {"Fn::GetAtt": [Match.any_value(), "Arn"]}})
    template.has_output("TrainRoleArn", {"Value": {"Fn::GetAtt": [Match.any_value(), "Arn"]}})
    template.has_output("OidcProviderArn", {})
    assert "TrainRoleArn" not in deploy_only[1].find_outputs("*")


# --- the train role ----------------------------------------------------------------------------


def test_no_train_role_without_a_training_execution_role(deploy_only):
    stack, template = deploy_only
    assert stack.train_role is None
    template.resource_count_is("AWS::IAM::Role", 1)


def test_train_role_trusts_only_the_chosen_branches(full):
    stack, template = full
    assert stack.train_role is not None
    props = role_resource(stack, template, stack.train_role)["Properties"]
    (statement,) = props["AssumeRolePolicyDocument"]["Statement"]
    # Long enough for `train --wait`, no longer than a GitHub job can run.
    assert props["MaxSessionDuration"] == 6 * 3600
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": [f"repo:{REPO}:ref:refs/heads/main"],
        }
    }


def test_train_role_runs_training_jobs_and_passes_only_the_given_role_to_sagemaker(full):
    stack, template = full
    assert stack.train_role is not None
    statements = {s["Sid"]: s for s in statements_of(stack, template, stack.train_role)}
    assert sorted(as_list(statements["RunTrainingJobs"]["Action"])) == [
        "sagemaker:AddTags",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
    ]
    assert statements["RunTrainingJobs"]["Resource"] == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/*"
    )
    assert statements["PassTrainingExecutionRole"] == {
        "Sid": "PassTrainingExecutionRole",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": TRAINING_ROLE,
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    assert statements["ReadServingStackOutputs"]["Action"] == "cloudformation:DescribeStacks"
    assert statements["ReadServingStackOutputs"]["Resource"] == (
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/MlServing-*/*"
    )
    assert statements["StageTrainingCodeAndData"]["Resource"] == (
        f"arn:aws:s3:::{BUCKET}/training/*"
    )
    assert statements["ListTrainingBucket"]["Resource"] == f"arn:aws:s3:::{BUCKET}"


def test_no_role_gets_wildcard_actions_or_resources_beyond_the_documented_ones(full):
    stack, template = full
    allowed_wildcards = {
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/*",
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/MlServing-*/*",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs:*",
        f"arn:aws:s3:::{BUCKET}/training/*",
    }
    for role in (stack.deploy_role, stack.train_role):
        assert role is not None
        for statement in statements_of(stack, template, role):
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                assert "*" not in action, statement
            for resource in as_list(statement["Resource"]):
                assert "*" not in resource or resource in allowed_wildcards, statement


def test_branch_patterns_switch_the_subject_match_to_stringlike():
    stack, template = synth(training_role_arn=TRAINING_ROLE, github_branches=["main", "release/*"])
    assert stack.train_role is not None
    condition = role_resource(stack, template, stack.train_role)["Properties"][
        "AssumeRolePolicyDocument"
    ]["Statement"][0]["Condition"]
    assert condition == {
        "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
        "StringLike": {
            "token.actions.githubusercontent.com:sub": [
                f"repo:{REPO}:ref:refs/heads/main",
                f"repo:{REPO}:ref:refs/heads/release/*",
            ]
        },
    }


# --- security checks and template validity -------------------------------------------------


def test_security_checks_are_live_and_catch_a_wildcard_grant():
    # Given the same stack with a careless extra grant,
    app = cdk.App()
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = GitHubOidcStack(
        app, "GitHubOidc", env=cdk.Environment(account=ACCOUNT, region=REGION), github_repo=REPO
    )
    stack.deploy_role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    # When it is synthesized, then the AwsSolutions checks refuse it.
    with pytest.raises(Exception, match="AwsSolutions-IAM5"):
        Template.from_stack(stack)


def test_template_passes_cfn_lint(full):
    from cfnlint.api import lint

    _, template = full
    matches = lint(json.dumps(template.to_json()), regions=[REGION])
    assert [str(m) for m in matches] == []


def test_passes_the_security_checks_under_the_projects_feature_flags():
    # cdk.json's flags change how ARNs render (partition literals), and with them the ids of the
    # acknowledged findings: app.py synthesizes this stack with them.
    root = Path(__file__).resolve().parents[2]
    flags = {
        key: value
        for key, value in json.loads((root / "cdk.json").read_text())["context"].items()
        if key.startswith("@")
    }
    app = cdk.App(context=flags)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = GitHubOidcStack(
        app,
        "GitHubOidc",
        env=cdk.Environment(account=ACCOUNT, region=REGION),
        github_repo=REPO,
        training_role_arn=TRAINING_ROLE,
        training_bucket_name=BUCKET,
    )
    template = Template.from_stack(stack)
    assert stack.train_role is not None
    statements = {s["Sid"]: s for s in statements_of(stack, template, stack.train_role)}
    assert statements["PassTrainingExecutionRole"]["Resource"] == TRAINING_ROLE


def test_env_agnostic_stack_also_passes_the_security_checks():
    app = cdk.App()
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = GitHubOidcStack(
        app,
        "GitHubOidc",
        github_repo=REPO,
        training_role_arn=TRAINING_ROLE,
        training_bucket_name=BUCKET,
    )
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Sid": "AssumeCdkBootstrapRoles"})]
                )
            }
        },
    )


# --- bad props ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "names"),
    [
        ({"github_repo": "ml-serving"}, "github_repo"),
        ({"github_repo": "octo/ml serving"}, "github_repo"),
        ({"github_environments": []}, "github_environments"),
        ({"github_environments": "prod"}, "github_environments"),
        ({"github_branches": ["*"]}, "github_branches"),
        ({"github_branches": ["main:evil"]}, "github_branches"),
        ({"oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/example.com"}, "oidc"),
        ({"cdk_qualifier": "Not-Valid!"}, "cdk_qualifier"),
        ({"training_role_arn": "TrainingRole"}, "training_role_arn"),
        ({"training_bucket_name": BUCKET}, "training_role_arn"),
        (
            {"training_role_arn": TRAINING_ROLE, "training_bucket_name": "Bad_Bucket"},
            "training_bucket_name",
        ),
    ],
)
def test_bad_props_fail_early_naming_the_prop(props, names):
    app = cdk.App()
    with pytest.raises(ValueError, match=names):
        GitHubOidcStack(
            app,
            "GitHubOidc",
            env=cdk.Environment(account=ACCOUNT, region=REGION),
            **{"github_repo": REPO, **props},
        )

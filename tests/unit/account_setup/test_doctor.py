"""`make doctor` against stubbed AWS answers (botocore's Stubber): each shortfall, and what it says.

The clients are real boto3 clients; only their HTTP answers are stubbed, and every stubbed request
is checked against the parameters the doctor must send.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from account_setup import doctor
from stacks.config import ConfigError, build_config

ROOT = Path(__file__).resolve().parents[3]
PROJECT_CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
CONTEXT = PROJECT_CONTEXT["ml-serving"]
REGION = "eu-west-1"
ACCOUNT = "123456789012"
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
# Service Quotas' code for "ml.m5.large for endpoint usage" (the code is read from the answer).
M5_LARGE_CODE = "L-1E9C780D"
EXEC_POLICIES = (
    f"arn:aws:iam::{ACCOUNT}:policy/MlServingCdkExecution-core,"
    f"arn:aws:iam::{ACCOUNT}:policy/MlServingCdkExecution-iam"
)


class Aws:
    """Stubbed clients for one run of the checks; `verify()` fails on an unused stubbed answer."""

    def __init__(self) -> None:
        session = boto3.Session(
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name=REGION
        )
        self.clients = {
            name: session.client(name)
            for name in ("sts", "ssm", "cloudformation", "lambda", "service-quotas")
        }
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        for stub in self.stubs.values():
            stub.activate()

    def __call__(self, service: str) -> Any:
        return self.clients[service]

    def __getitem__(self, service: str) -> Stubber:
        return self.stubs[service]

    def verify(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()

    # --- the answers, one helper per call ---------------------------------------------------
    def identity(self) -> None:
        self["sts"].add_response(
            "get_caller_identity",
            {
                "Account": ACCOUNT,
                "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/me",
                "UserId": "AROAEXAMPLE:me",
            },
            {},
        )

    def bootstrap(self, version: int | None = 33, policies: str = EXEC_POLICIES) -> None:
        name = "/cdk-bootstrap/hnb659fds/version"
        if version is None:
            self["ssm"].add_client_error(
                "get_parameter",
                "ParameterNotFound",
                http_status_code=400,
                expected_params={"Name": name},
            )
            return
        self["ssm"].add_response(
            "get_parameter",
            {"Parameter": {"Name": name, "Type": "String", "Value": str(version)}},
            {"Name": name},
        )
        self.stack("CDKToolkit", "UPDATE_COMPLETE", {"CloudFormationExecutionPolicies": policies})

    def stack(
        self, name: str, status: str | None, parameters: dict[str, str] | None = None
    ) -> None:
        if status is None:
            self["cloudformation"].add_client_error(
                "describe_stacks",
                "ValidationError",
                f"Stack with id {name} does not exist",
                expected_params={"StackName": name},
            )
            return
        self["cloudformation"].add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": name,
                        "CreationTime": NOW,
                        "StackStatus": status,
                        "Parameters": [
                            {"ParameterKey": k, "ParameterValue": v}
                            for k, v in (parameters or {}).items()
                        ],
                    }
                ]
            },
            {"StackName": name},
        )

    def lambda_limits(self, total: int, unreserved: int) -> None:
        self["lambda"].add_response(
            "get_account_settings",
            {
                "AccountLimit": {
                    "ConcurrentExecutions": total,
                    "UnreservedConcurrentExecutions": unreserved,
                }
            },
            {},
        )

    def stack_functions(self, stack_name: str, provisioned: int) -> None:
        """The deployed stack's gateway function, holding ``provisioned`` on its alias."""
        fn = f"{stack_name}-GatewayFunction-AbC123"
        self["cloudformation"].add_response(
            "list_stack_resources",
            {
                "StackResourceSummaries": [
                    {
                        "LogicalResourceId": "GatewayFunction1234",
                        "PhysicalResourceId": fn,
                        "ResourceType": "AWS::Lambda::Function",
                        "LastUpdatedTimestamp": NOW,
                        "ResourceStatus": "UPDATE_COMPLETE",
                    },
                    {
                        "LogicalResourceId": "Bucket1234",
                        "PhysicalResourceId": "mlserving-bucket",
                        "ResourceType": "AWS::S3::Bucket",
                        "LastUpdatedTimestamp": NOW,
                        "ResourceStatus": "CREATE_COMPLETE",
                    },
                ]
            },
            {"StackName": stack_name},
        )
        self["lambda"].add_response("get_function_concurrency", {}, {"FunctionName": fn})
        self["lambda"].add_response(
            "list_provisioned_concurrency_configs",
            {
                "ProvisionedConcurrencyConfigs": [
                    {
                        "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}:live",
                        "RequestedProvisionedConcurrentExecutions": provisioned,
                        "Status": "READY",
                    }
                ]
            },
            {"FunctionName": fn},
        )

    def quotas(self, operation: str, pages: list[list[tuple[str, str, float]]]) -> None:
        """``pages`` of (name, code, value), as the paginated List*ServiceQuotas answers them."""
        for i, page in enumerate(pages):
            params: dict[str, Any] = {"ServiceCode": "sagemaker", "MaxResults": 100}
            if i:
                params["NextToken"] = f"page-{i}"
            answer: dict[str, Any] = {
                "Quotas": [
                    {
                        "ServiceCode": "sagemaker",
                        "QuotaName": name,
                        "QuotaCode": code,
                        "Value": value,
                        "Adjustable": True,
                    }
                    for name, code, value in page
                ]
            }
            if i + 1 < len(pages):
                answer["NextToken"] = f"page-{i + 1}"
            self["service-quotas"].add_response(operation, answer, params)

    def endpoint_quota(self, value: float, instance_type: str = "ml.m5.large") -> None:
        self.quotas(
            "list_service_quotas",
            [
                [("ml.t2.medium for endpoint usage", "L-00000001", 2.0)],
                [
                    ("ml.m5.large for training job usage", "L-00000002", 4.0),
                    (f"{instance_type} for endpoint usage", M5_LARGE_CODE, value),
                ],
            ],
        )


@pytest.fixture
def aws() -> Iterator[Aws]:
    stubbed = Aws()
    yield stubbed
    stubbed.verify()


def config(account: str = "", region: str = "", **overrides: Any):
    return build_config(CONTEXT, {"stage": "dev", **overrides}, account=account, region=region)


def run(aws: Aws, cfg, cli_version: int | None = 33) -> doctor.Report:
    return doctor.run_checks(
        cfg, aws, region=REGION, region_source="AWS_REGION", cli_bootstrap_version=cli_version
    )


def only(report: doctor.Report, check: str) -> doctor.Finding:
    (finding,) = report.by_check(check)
    return finding


# --- a healthy account ---------------------------------------------------------------------------


def test_a_ready_account_passes_every_check(aws: Aws):
    # Given: bootstrapped at the CLI's version with scoped policies, a prod stack deployed before
    # (its function holds its 2 provisioned), room for 2 more, and 10 ml.m5.large
    cfg = config(stage="prod")
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, "UPDATE_COMPLETE")
    aws.lambda_limits(total=1000, unreserved=998)
    aws.stack_functions(cfg.stack_name, provisioned=2)
    aws.endpoint_quota(10.0)

    report = run(aws, cfg)

    assert [f.status for f in report.findings] == ["ok"] * 7, doctor.render(report, title="")
    assert not report.failed
    assert ACCOUNT in only(report, "AWS credentials").summary
    assert "version 33" in only(report, "CDK bootstrap").summary
    assert "MlServingCdkExecution-core" in only(report, "CDK execution role").summary
    assert "this deploy updates it" in only(report, "Stack state").summary
    assert "'ml.m5.large for endpoint usage' is 10" in only(report, "SageMaker quota").summary


# --- credentials and region -------------------------------------------------------------------------


def test_missing_credentials_fail_and_skip_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # Given: no credentials anywhere botocore looks (env, files, instance metadata)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    session = boto3.Session(region_name=REGION)

    report = doctor.run_checks(
        config(), lambda s: session.client(s), region=REGION, region_source="AWS_REGION"
    )

    assert report.failed
    finding = only(report, "AWS credentials")
    assert finding.status == "fail" and "no AWS credentials" in finding.summary
    assert any("aws sso login" in fix for fix in finding.fixes)
    # Nothing else is attempted without credentials
    assert [f.check for f in report.findings] == ["Region", "AWS credentials"]


def test_main_without_credentials_exits_1_and_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")

    assert doctor.main(["-c", "stage=prod", "-c", "model=digits"]) == 1

    out = capsys.readouterr().out
    assert "MlServing-prod-digits" in out and "ap-southeast-2 (from AWS_REGION)" in out
    assert "FAIL  AWS credentials" in out and "aws configure" in out


def test_a_bad_config_exits_2_with_the_loaders_message(capsys: pytest.CaptureFixture[str]):
    assert doctor.main(["-c", "stage=qa"]) == 2
    assert "config key 'stage' has bad value 'qa'" in capsys.readouterr().err


def test_credentials_for_another_account_than_the_stack_fail(aws: Aws):
    aws.identity()
    aws.bootstrap(33)
    cfg = config(account="210987654321")
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=1000, unreserved=1000)
    aws.endpoint_quota(4.0)

    report = run(aws, cfg)

    assert report.failed
    assert any(
        f.status == "fail" and "210987654321" in f.summary
        for f in report.by_check("AWS credentials")
    )


def test_region_follows_the_cdk_clis_order(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert doctor.resolve_region(config(), None) == ("us-east-1", "")  # the CLI's fallback
    assert doctor.resolve_region(config(), "eu-central-1") == ("eu-central-1", "your AWS profile")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")  # the CLI reads this one first; botocore doesn't
    assert doctor.resolve_region(config(), "eu-central-1") == ("eu-west-3", "AWS_REGION")
    assert doctor.resolve_region(config(region="sa-east-1"), None) == ("sa-east-1", "-c region")


# --- CDK bootstrap ------------------------------------------------------------------------------------


def _rest_ok(aws: Aws, cfg) -> None:
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=1000, unreserved=1000)
    aws.endpoint_quota(4.0)


def test_an_account_not_bootstrapped_fails_with_make_bootstrap(aws: Aws):
    aws.identity()
    aws.bootstrap(None)
    _rest_ok(aws, config())

    report = run(aws, config())

    finding = only(report, "CDK bootstrap")
    assert finding.status == "fail" and "not bootstrapped" in finding.summary
    assert finding.fixes[0].startswith("make bootstrap")
    assert report.failed


def test_a_bootstrap_older_than_the_templates_need_fails(aws: Aws):
    aws.identity()
    aws.bootstrap(5)
    _rest_ok(aws, config())

    finding = only(run(aws, config()), "CDK bootstrap")

    assert finding.status == "fail" and "at least 6" in finding.summary


def test_a_bootstrap_older_than_the_cli_is_a_warning(aws: Aws):
    aws.identity()
    aws.bootstrap(21)
    _rest_ok(aws, config())

    report = run(aws, config(), cli_version=33)

    finding = only(report, "CDK bootstrap")
    assert finding.status == "warn" and "21" in finding.summary and "33" in finding.summary
    assert not report.failed


def test_the_cli_bootstrap_version_is_read_from_the_pinned_cli(tmp_path: Path):
    template = tmp_path / "bootstrap-template.yaml"
    template.write_text(
        "Resources:\n  CdkBootstrapVersion:\n    Type: AWS::SSM::Parameter\n    Properties:\n"
        "      Type: String\n      Name: x\n      Value: '41'\n"
    )
    assert doctor.read_cli_bootstrap_version(template) == 41
    assert doctor.read_cli_bootstrap_version(tmp_path / "missing.yaml") is None
    installed = doctor.read_cli_bootstrap_version()
    if doctor.CLI_BOOTSTRAP_TEMPLATE.is_file():
        assert installed is not None and installed >= doctor.MIN_BOOTSTRAP_VERSION


@pytest.mark.parametrize("policies", ["", "arn:aws:iam::aws:policy/AdministratorAccess"])
def test_an_admin_execution_role_is_a_warning_that_points_at_make_bootstrap(
    aws: Aws, policies: str
):
    aws.identity()
    aws.bootstrap(33, policies=policies)
    _rest_ok(aws, config())

    report = run(aws, config())

    finding = only(report, "CDK execution role")
    assert finding.status == "warn" and "AdministratorAccess" in finding.summary
    assert finding.fixes[0].startswith("make bootstrap")
    assert not report.failed


# --- the stack itself ---------------------------------------------------------------------------------


def test_a_stack_left_in_rollback_complete_fails_with_make_destroy(aws: Aws):
    cfg = config()
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, "ROLLBACK_COMPLETE")
    aws.lambda_limits(total=1000, unreserved=1000)
    aws.endpoint_quota(4.0)

    finding = only(run(aws, cfg), "Stack state")

    assert finding.status == "fail" and "ROLLBACK_COMPLETE" in finding.summary
    assert finding.fixes == ("make destroy STAGE=dev MODEL=digits, then deploy again",)


# --- Lambda concurrency -------------------------------------------------------------------------------


def test_a_new_account_cannot_hold_prods_provisioned_concurrency(aws: Aws):
    # Given: a new account's 10 concurrent executions, all unreserved; prod provisions 2 and
    # reserves 400 (its throttle burst) for the gateway function
    cfg = config(stage="prod")
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=10, unreserved=10)
    aws.endpoint_quota(10.0)

    report = run(aws, cfg)

    finding = only(report, "Lambda concurrency")
    assert finding.status == "fail" and report.failed
    # 400 for the stage + the 10 Lambda keeps unreserved (the whole limit, here)
    assert (
        "reserved concurrency 400 needs 410 unreserved" in finding.summary
        and "account limit 10" in finding.summary
    )
    assert (
        "aws service-quotas request-service-quota-increase --service-code lambda "
        "--quota-code L-B99A9384 --desired-value 1000 --region eu-west-1"
    ) in finding.fixes
    assert any("console.aws.amazon.com/servicequotas" in fix for fix in finding.fixes)


def test_the_floor_is_100_once_the_account_has_more(aws: Aws):
    # Given: prod without the gateway's reservation, so only its 2 provisioned count
    cfg = config(stage="prod", reserve_lambda_concurrency="false")
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=150, unreserved=101)  # other functions reserve 49
    aws.endpoint_quota(10.0)

    finding = only(run(aws, cfg), "Lambda concurrency")

    assert finding.status == "fail" and "needs 102 unreserved" in finding.summary
    assert "--desired-value 1000" in finding.fixes[0]


def test_a_redeploy_counts_what_the_stack_already_holds(aws: Aws):
    # Given: 102 in total, 2 of them already provisioned by this very stack: exactly enough
    cfg = config(stage="prod", reserve_lambda_concurrency="false")
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, "UPDATE_COMPLETE")
    aws.lambda_limits(total=102, unreserved=100)
    aws.stack_functions(cfg.stack_name, provisioned=2)
    aws.endpoint_quota(10.0)

    finding = only(run(aws, cfg), "Lambda concurrency")

    assert finding.status == "ok", finding


def test_without_a_reservation_dev_needs_no_concurrency(aws: Aws):
    cfg = config(reserve_lambda_concurrency="false")
    assert cfg.provisioned_concurrency == 0 and cfg.lambda_reserved_concurrency is None
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=10, unreserved=10)
    aws.endpoint_quota(4.0)

    finding = only(run(aws, cfg), "Lambda concurrency")

    assert finding.status == "ok" and "nothing reserved" in finding.summary


def test_dev_reserves_its_throttle_burst_and_says_how_to_reserve_less(aws: Aws):
    # Given: dev reserves its burst (100) for the gateway; a new account has 10 in all
    cfg = config()
    assert cfg.lambda_reserved_concurrency == 100
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=10, unreserved=10)
    aws.endpoint_quota(4.0)

    finding = only(run(aws, cfg), "Lambda concurrency")

    assert finding.status == "fail" and "reserved concurrency 100 needs 110" in finding.summary
    assert any("reserve_lambda_concurrency=false" in fix for fix in finding.fixes)


# --- SageMaker quota ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "says"),
    [
        (0.0, "fail", "creating the endpoint needs 1 and a model update 2 (a rolling update"),
        (1.0, "fail", "every model update needs 2 (a rolling update"),
        (2.0, "warn", "3 covers one at max_instances"),
        (3.0, "ok", "enough for 3"),
    ],
)
def test_the_endpoint_quota_against_a_rolling_update_of_a_scale_to_zero_stage(
    aws: Aws, value: float, status: str, says: str
):
    # dev scales to zero: one copy to start, up to 2; a rolling update starts half the copies
    # (at least one) beside them, so 2 at rest and 3 at max_instances.
    cfg = config()
    assert (cfg.capacity_mode, cfg.initial_instance_count, cfg.max_instances) == (
        "scale_to_zero",
        1,
        2,
    )
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=1000, unreserved=1000)
    aws.endpoint_quota(value)

    finding = only(run(aws, cfg), "SageMaker quota")

    assert finding.status == status and says in finding.summary, finding


@pytest.mark.parametrize(
    ("value", "status", "says"),
    [
        (0.0, "fail", "creating the endpoint needs 1"),
        (1.0, "fail", "every model update needs 2"),
        (2.0, "warn", "an update while autoscaling runs many instances fails"),
        (4.0, "ok", "enough for 4"),
    ],
)
def test_the_endpoint_quota_against_a_blue_green_update(
    aws: Aws, value: float, status: str, says: str
):
    # always on: 1 instance to start, autoscaling up to 2; blue/green needs as many again
    cfg = config(capacity_mode="always_on", min_instances=1)
    assert (cfg.initial_instance_count, cfg.min_instances, cfg.max_instances) == (1, 1, 2)
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=1000, unreserved=1000)
    aws.endpoint_quota(value)

    report = run(aws, cfg)

    finding = only(report, "SageMaker quota")
    assert finding.status == status and says in finding.summary, finding
    assert report.failed is (status == "fail")
    if status != "ok":
        # The real quota code from the answer, and enough for an update at max_instances
        assert finding.fixes[0] == (
            "aws service-quotas request-service-quota-increase --service-code sagemaker "
            f"--quota-code {M5_LARGE_CODE} --desired-value 4 --region {REGION}"
        )
        assert finding.fixes[1].endswith(f"/services/sagemaker/quotas/{M5_LARGE_CODE}")


def test_the_model_and_stage_choose_the_instance_type_and_counts(aws: Aws):
    # dog-breeds runs on ml.c5.xlarge; prod scales to 4, so an update at peak needs 8
    cfg = config(stage="prod", model="dog-breeds")
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=1000, unreserved=1000)
    aws.endpoint_quota(4.0, instance_type="ml.c5.xlarge")

    finding = only(run(aws, cfg), "SageMaker quota")

    assert finding.status == "warn" and "'ml.c5.xlarge for endpoint usage' is 4" in finding.summary
    assert "--desired-value 8" in finding.fixes[0]


def test_a_quota_never_raised_is_found_among_the_aws_defaults(aws: Aws):
    cfg = config()
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=1000, unreserved=1000)
    aws.quotas("list_service_quotas", [[("ml.t2.medium for endpoint usage", "L-00000001", 2.0)]])
    aws.quotas(
        "list_aws_default_service_quotas",
        [[("ml.m5.large for endpoint usage", M5_LARGE_CODE, 0.0)]],
    )

    finding = only(run(aws, cfg), "SageMaker quota")

    assert finding.status == "fail" and "is 0 (AWS default)" in finding.summary
    assert M5_LARGE_CODE in finding.fixes[0]


def test_an_instance_type_without_a_hosting_quota_is_a_warning(aws: Aws):
    cfg = config(instance_type="ml.x9.large", capacity_mode="always_on", min_instances=1)
    aws.identity()
    aws.bootstrap(33)
    aws.stack(cfg.stack_name, None)
    aws.lambda_limits(total=1000, unreserved=1000)
    aws.quotas("list_service_quotas", [[]])
    aws.quotas("list_aws_default_service_quotas", [[]])

    finding = only(run(aws, cfg), "SageMaker quota")

    assert (
        finding.status == "warn"
        and "no quota named 'ml.x9.large for endpoint usage'" in finding.summary
    )


# --- calls the credentials may not make -----------------------------------------------------------------


def test_access_denied_is_a_warning_and_the_other_checks_still_run(aws: Aws):
    cfg = config(stage="prod")
    aws.identity()
    aws["ssm"].add_client_error("get_parameter", "AccessDeniedException", http_status_code=400)
    aws.stack(cfg.stack_name, None)
    aws["lambda"].add_client_error(
        "get_account_settings", "AccessDeniedException", http_status_code=403
    )
    aws["service-quotas"].add_client_error(
        "list_service_quotas", "AccessDeniedException", http_status_code=400
    )

    report = run(aws, cfg)

    assert not report.failed
    for check in ("CDK bootstrap", "Lambda concurrency", "SageMaker quota"):
        finding = only(report, check)
        assert finding.status == "warn" and "not allowed" in finding.summary, finding
        assert finding.fixes[0].startswith("check by hand: aws ")
    assert only(report, "Stack state").status == "ok"


# --- the command line -----------------------------------------------------------------------------------


def test_context_arguments_build_the_same_config_as_cdk():
    cfg, qualifier = doctor.config_from_args(
        PROJECT_CONTEXT,
        doctor.parse_context(
            [
                "stage=prod",
                "model=dog-breeds",
                "max_instances=6",
                "@aws-cdk/core:bootstrapQualifier=team1",
            ]
        ),
    )
    assert cfg.stack_name == "MlServing-prod-dog-breeds"
    assert (cfg.instance_type, cfg.max_instances, cfg.provisioned_concurrency) == (
        "ml.c5.xlarge",
        6,
        2,
    )
    assert qualifier == "team1"
    with pytest.raises(ConfigError, match="key=value"):
        doctor.parse_context(["stage"])


def test_the_report_names_each_fix_under_its_problem():
    report = doctor.Report()
    report.add("Region", "ok", "eu-west-1 (from AWS_REGION)")
    report.add(
        "SageMaker quota", "fail", "'ml.m5.large for endpoint usage' is 0", "aws x", "https://y"
    )
    text = doctor.render(report, title="Pre-deploy checks")
    lines = text.splitlines()
    fail_line = next(i for i, line in enumerate(lines) if "FAIL  SageMaker quota" in line)
    assert (
        lines[fail_line + 1].strip() == "-> aws x"
        and lines[fail_line + 2].strip() == "-> https://y"
    )
    assert "1 blocking problem(s)" in text and "SKIP_DOCTOR=1" in text

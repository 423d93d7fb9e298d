"""`make doctor`: will a deploy of this stage and model work in this account and region?

    python -m account_setup.doctor -c stage=prod -c model=digits [-c key=value ...]

Takes the same ``-c`` arguments as ``cdk deploy`` (the Makefile passes the deploy's own), builds the
deployment's config from ``cdk.json`` with the project's loader (no synth), then checks:

1. credentials and region (STS GetCallerIdentity);
2. the CDK bootstrap stack: present (``/cdk-bootstrap/<qualifier>/version``), at least the version
   the synthesized templates require, as recent as the pinned CDK CLI's template, and whether its
   CloudFormation execution role is still AdministratorAccess;
3. whether the serving stack is in a state CloudFormation can update (a failed first create
   leaves ROLLBACK_COMPLETE, which only a delete clears);
4. Lambda concurrency: what the gateway function reserves (provisioned concurrency) must fit in
   the account's unreserved concurrency without going below the floor Lambda keeps unreserved;
5. SageMaker: the "<instance type> for endpoint usage" quota against what the stage's endpoint
   needs, including the second fleet a blue/green update starts.

Each finding is ``ok``, ``warn`` (deploys, but something is off or could not be checked) or
``FAIL`` (the deploy or a routine update would fail); the exit status is 1 when any check fails,
2 on a config error, else 0. A call the credentials may not make is a warning, never a crash.
"""

from account_setup.doctor.bootstrap import (
    CLI_BOOTSTRAP_TEMPLATE,
    DEFAULT_QUALIFIER,
    DEFAULT_TOOLKIT_STACK,
    MIN_BOOTSTRAP_VERSION,
    check_bootstrap,
    read_cli_bootstrap_version,
)
from account_setup.doctor.checks import ClientFactory, run_checks
from account_setup.doctor.cli import config_from_args, main, parse_context, resolve_region
from account_setup.doctor.identity import check_identity
from account_setup.doctor.lambda_concurrency import (
    LAMBDA_CONCURRENCY_QUOTA,
    LAMBDA_UNRESERVED_FLOOR,
    check_lambda_concurrency,
)
from account_setup.doctor.needs import EndpointNeed, lambda_reservation
from account_setup.doctor.report import Finding, Report, Status, render
from account_setup.doctor.sagemaker_quota import check_sagemaker_quota, find_endpoint_quota
from account_setup.doctor.stack_state import check_stack_state

__all__ = [
    "CLI_BOOTSTRAP_TEMPLATE",
    "DEFAULT_QUALIFIER",
    "DEFAULT_TOOLKIT_STACK",
    "LAMBDA_CONCURRENCY_QUOTA",
    "LAMBDA_UNRESERVED_FLOOR",
    "MIN_BOOTSTRAP_VERSION",
    "ClientFactory",
    "EndpointNeed",
    "Finding",
    "Report",
    "Status",
    "check_bootstrap",
    "check_identity",
    "check_lambda_concurrency",
    "check_sagemaker_quota",
    "check_stack_state",
    "config_from_args",
    "find_endpoint_quota",
    "lambda_reservation",
    "main",
    "parse_context",
    "read_cli_bootstrap_version",
    "render",
    "resolve_region",
    "run_checks",
]

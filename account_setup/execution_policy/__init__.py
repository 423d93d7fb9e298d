"""The CloudFormation execution role's permissions: exactly what this project's stacks create.

`cdk bootstrap` gives the role CloudFormation deploys with AdministratorAccess unless told
otherwise, and everyone who may deploy (the GitHub deploy role included) may pass that role. These
managed policies replace it:

    make bootstrap        # = python -m account_setup.execution_policy apply, then
                          #   cdk bootstrap --cloudformation-execution-policies <the ARNs it printed>

The documents live in ``account_setup/cdk-execution-policy/`` and are generated, not written by
hand: for every resource type in every synthesized stack (each stage and model, and GitHubOidc) they
allow the actions CloudFormation's own resource handler for that type declares it needs (the
resource provider schemas cfn-lint ships), less the actions of features these stacks do not use
(``EXCLUDED``), plus what the templates need beyond their resources (``EXTRAS``). IAM, S3, Lambda
invocation and SSM are scoped to this project's names; actions are never wildcards.

    python -m account_setup.execution_policy generate   # after changing the stacks (needs the dev tools)

tests/infra/test_execution_policy.py fails when a stack gains a resource type the documents do not
cover, or when the committed documents differ from what ``generate`` writes.
"""

from account_setup.execution_policy.actions import (
    CUSTOM_RESOURCE_ACTIONS,
    EXCLUDED,
    EXTRAS,
    SSM_PARAMETER_ACTIONS,
    attached_managed_policies,
    handler_permissions,
    is_excluded,
    passed_role_services,
    required_actions,
    resource_types,
)
from account_setup.execution_policy.apply_to_account import POLICY_NAME_PREFIX, apply
from account_setup.execution_policy.cli import main
from account_setup.execution_policy.documents import (
    MAX_POLICIES,
    MAX_POLICY_CHARS,
    POLICY_DIR,
    documents,
    load_documents,
    policy_size,
    synthesized_templates,
    write_documents,
)
from account_setup.execution_policy.statements import (
    AUTOSCALING_SLR_SERVICE,
    GITHUB_OIDC_PROVIDER,
    GITHUB_STACK_PREFIX,
    KMS_DESTRUCTIVE,
    PROJECT_TAG,
    SERVING_PREFIX,
    statements,
)

__all__ = [
    "AUTOSCALING_SLR_SERVICE",
    "CUSTOM_RESOURCE_ACTIONS",
    "EXCLUDED",
    "EXTRAS",
    "GITHUB_OIDC_PROVIDER",
    "GITHUB_STACK_PREFIX",
    "KMS_DESTRUCTIVE",
    "MAX_POLICIES",
    "MAX_POLICY_CHARS",
    "POLICY_DIR",
    "POLICY_NAME_PREFIX",
    "PROJECT_TAG",
    "SERVING_PREFIX",
    "SSM_PARAMETER_ACTIONS",
    "apply",
    "attached_managed_policies",
    "documents",
    "handler_permissions",
    "is_excluded",
    "load_documents",
    "main",
    "passed_role_services",
    "policy_size",
    "required_actions",
    "resource_types",
    "statements",
    "synthesized_templates",
    "write_documents",
]

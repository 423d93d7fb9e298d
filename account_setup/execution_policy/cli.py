"""The command line: ``generate`` rewrites the committed documents, ``apply`` installs them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from account_setup.execution_policy.apply_to_account import apply
from account_setup.execution_policy.documents import (
    MAX_POLICIES,
    POLICY_DIR,
    documents,
    load_documents,
    policy_size,
    synthesized_templates,
    write_documents,
)


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

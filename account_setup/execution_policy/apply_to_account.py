"""The documents created or updated as managed policies in an account (IAM keeps 5 versions)."""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Mapping
from typing import Any

POLICY_NAME_PREFIX = "MlServingCdkExecution-"


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

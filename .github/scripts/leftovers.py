#!/usr/bin/env python3
"""List what may outlive a stack's deletion, so the destroy workflow can check and report it.

    aws cloudformation get-template --stack-name S --query TemplateBody --output json > template.json
    aws cloudformation describe-stack-resources --stack-name S --output json > resources.json
    python .github/scripts/leftovers.py --template template.json --resources resources.json

Run *before* ``cdk destroy`` (afterwards the stack and its resource list are gone). Prints one
tab-separated line per candidate: ``CHECK<TAB>ID<TAB>WHY``, where CHECK says how to test whether it
still exists: ``s3-bucket``, ``log-group``, ``log-group-nocase`` (SageMaker lower-cases endpoint ARNs,
its log group keeps the name's case), ``kms-key`` or ``other`` (check by hand). Candidates are:

* resources whose ``DeletionPolicy`` keeps them (``Retain``, ``RetainExceptOnCreate``,
  ``Snapshot``), e.g. the prod data bucket;
* log groups that services create at run time, outside the stack: ``/aws/lambda/<function>`` and
  ``/aws/sagemaker/Endpoints/<endpoint>``.

Standard library only. Exit status 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

KEEPING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})
CHECK_BY_TYPE = {
    "AWS::S3::Bucket": "s3-bucket",
    "AWS::Logs::LogGroup": "log-group",
    "AWS::KMS::Key": "kms-key",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--template", type=Path, required=True, help="`get-template --query TemplateBody` JSON"
    )
    parser.add_argument(
        "--resources", type=Path, required=True, help="`describe-stack-resources` JSON"
    )
    return parser.parse_args(argv)


def _load(path: Path, what: str) -> Any:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {what} {path} as JSON: {exc}") from exc
    # `get-template` hands a JSON template over as an object, a YAML one as a string.
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{what} {path} is not a JSON template (YAML is not supported)"
            ) from exc
    return document


def candidates(template: dict, stack_resources: dict) -> Iterator[tuple[str, str, str]]:
    """``(check, id, why)`` for everything that may be left behind, without duplicates."""
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in stack_resources.get("StackResources", [])
        if "LogicalResourceId" in r
    }
    seen: set[tuple[str, str]] = set()
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type", "")
        physical_id = physical.get(logical_id, "")
        found: list[tuple[str, str, str]] = []
        policy = resource.get("DeletionPolicy", "Delete")
        if policy in KEEPING_POLICIES and physical_id:
            found.append(
                (CHECK_BY_TYPE.get(kind, "other"), physical_id, f"{kind} {logical_id}: {policy}")
            )
        if kind == "AWS::Lambda::Function" and physical_id:
            found.append(
                (
                    "log-group",
                    f"/aws/lambda/{physical_id}",
                    f"log group Lambda created for {logical_id}",
                )
            )
        if kind == "AWS::SageMaker::Endpoint" and physical_id:
            name = physical_id.split(":endpoint/", 1)[-1]
            found.append(
                (
                    "log-group-nocase",
                    f"/aws/sagemaker/Endpoints/{name}",
                    f"log group SageMaker created for {logical_id}",
                )
            )
        for item in found:
            if item[:2] not in seen:
                seen.add(item[:2])
                yield item


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        template = _load(args.template, "template")
        resources = _load(args.resources, "stack resources")
    except ValueError as exc:
        print(f"leftovers: {exc}", file=sys.stderr)
        return 2
    for check, resource_id, why in candidates(template, resources):
        print(f"{check}\t{resource_id}\t{why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Log groups AWS services create for the stack's resources, and whether the stack declares them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reliability.teardown.policies import refs


@dataclass
class ServiceLogs:
    """A log group an AWS service creates for one of the stack's resources."""

    what: str
    owned: bool
    detail: str


def _log_groups(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: r for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}


def _name_mentions(log_group: dict[str, Any], *needles: str) -> bool:
    text = json.dumps(log_group.get("Properties", {}).get("LogGroupName", ""))
    return all(n in text for n in needles)


def service_log_groups(template: dict[str, Any]) -> list[ServiceLogs]:
    """Each log group a service would create for this stack, and whether the stack declares it."""
    resources = template["Resources"]
    groups = _log_groups(resources)
    found = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            target = refs(props.get("LoggingConfig", {}).get("LogGroup"))
            owned = bool(target & set(groups)) or any(
                _name_mentions(g, "/aws/lambda/", logical_id) for g in groups.values()
            )
            found.append(
                ServiceLogs(
                    f"Lambda {logical_id}: /aws/lambda/<function name>",
                    owned,
                    f"logs to declared {', '.join(sorted(target & set(groups)))}"
                    if owned
                    else "no declared log group: Lambda creates one on first invocation, "
                    "never expiring, and destroy leaves it",
                )
            )
        elif resource["Type"] == "AWS::SageMaker::Endpoint":
            name = props.get("EndpointName", "")
            owned = isinstance(name, str) and any(
                _name_mentions(g, f"/aws/sagemaker/Endpoints/{name}") for g in groups.values()
            )
            found.append(
                ServiceLogs(
                    f"SageMaker endpoint {logical_id}: /aws/sagemaker/Endpoints/{name}",
                    owned,
                    "declared by the stack"
                    if owned
                    else "SageMaker creates it when the endpoint starts; destroy leaves it",
                )
            )
        elif resource["Type"] == "AWS::ApiGateway::Stage":
            levels = {m.get("LoggingLevel", "OFF") for m in props.get("MethodSettings", [])}
            if levels <= {"OFF"}:
                continue
            api = next(iter(refs(props.get("RestApiId"))), "")
            owned = any(
                _name_mentions(g, "API-Gateway-Execution-Logs_", api) for g in groups.values()
            )
            found.append(
                ServiceLogs(
                    f"API Gateway stage {props.get('StageName')} execution logs "
                    f"(level {', '.join(sorted(levels - {'OFF'}))}): "
                    "API-Gateway-Execution-Logs_<api id>/<stage>",
                    owned,
                    "declared by the stack"
                    if owned
                    else "API Gateway creates it on the first logged request; destroy leaves it",
                )
            )
    return found

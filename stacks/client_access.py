"""An optional role for callers outside the API that may only invoke this endpoint."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from constructs import Construct


class ClientAccess(Construct):
    """A role assumable by ``principal`` (an account id or IAM ARN) that may invoke the endpoint.

    With IAM auth on the API it may also call the API's two routes (``api_invoke_arns``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        principal: str,
        endpoint_arn: str,
        api_invoke_arns: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if not principal:
            raise ValueError("ClientAccess: principal must name an account id or IAM ARN")
        assumed_by: iam.IPrincipal = (
            iam.AccountPrincipal(principal) if principal.isdigit() else iam.ArnPrincipal(principal)
        )
        statements = [
            iam.PolicyStatement(
                sid="InvokeThisEndpoint",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[endpoint_arn],
            )
        ]
        if api_invoke_arns:
            statements.append(
                iam.PolicyStatement(
                    sid="CallThisApi",
                    actions=["execute-api:Invoke"],
                    resources=list(api_invoke_arns),
                )
            )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=assumed_by,
            description="May only invoke this model's endpoint",
            inline_policies={"Invoke": iam.PolicyDocument(statements=statements)},
        )

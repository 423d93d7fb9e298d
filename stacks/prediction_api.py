"""The public REST API: `POST /predict` and `GET /health`, integrated with the gateway alias."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.common import data_removal_policy, retention
from stacks.openapi import draft4_schema, to_json_schema

# The request shapes `POST /predict` accepts as JSON, from the published OpenAPI document
# (lambda_src/openapi.json). API Gateway checks them before the Lambda runs, so malformed requests
# cost no Lambda time, and the published contract is what is enforced.
PREDICT_REQUEST_SCHEMA = to_json_schema(draft4_schema("PredictRequest"))

_SHAPES_HINT = (
    'send {\\"instances\\": [...]}, {\\"inputs\\": ...}, {\\"image\\": \\"<base64>\\"}, '
    '{\\"images\\": [...]}, {\\"text\\": \\"...\\"} or {\\"texts\\": [...]}'
)
# API Gateway's own error answers, in the same shape as the Lambda's errors.
_GATEWAY_ERRORS: tuple[tuple[apigw.ResponseType, str | None, str, str], ...] = (
    (
        apigw.ResponseType.BAD_REQUEST_BODY,
        "400",
        "BadRequest",
        f'"The request body does not match the expected shape: {_SHAPES_HINT}."',
    ),
    (
        apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        "404",
        "NotFound",
        '"No such route: use POST /predict or GET /health."',
    ),
    (
        apigw.ResponseType.INVALID_API_KEY,
        "403",
        "Forbidden",
        '"Missing or invalid API key: send it in the x-api-key header."',
    ),
    (
        apigw.ResponseType.THROTTLED,
        "429",
        "TooManyRequests",
        '"Too many requests: slow down and retry."',
    ),
    (
        apigw.ResponseType.QUOTA_EXCEEDED,
        "429",
        "QuotaExceeded",
        '"The daily request quota of this API key is used up."',
    ),
    (
        apigw.ResponseType.REQUEST_TOO_LARGE,
        "413",
        "PayloadTooLarge",
        '"The request body is larger than API Gateway accepts (10 MB)."',
    ),
    (
        apigw.ResponseType.INTEGRATION_TIMEOUT,
        "504",
        "GatewayTimeout",
        '"The prediction did not finish within 29 seconds."',
    ),
    (apigw.ResponseType.DEFAULT_4_XX, None, "ClientError", "$context.error.messageString"),
    (apigw.ResponseType.DEFAULT_5_XX, None, "ServerError", "$context.error.messageString"),
)


class PredictionApi(Construct):
    """A regional REST API with throttling, access logs, tracing, request validation and auth.

    ``api_auth`` is `api_key` (an API key on a usage plan; the default) or `iam` (SigV4).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        api_name: str,
        stage_name: str,
        api_auth: str,
        throttle_rate_limit: float,
        throttle_burst_limit: int,
        quota_per_day: int,
        cors_allow_origin: str,
        binary_media_types: Sequence[str],
        log_retention_days: int,
        log_key: kms.IKey,
        retain_data: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        if api_auth not in ("api_key", "iam"):
            raise ValueError(f"PredictionApi: api_auth must be api_key or iam, not {api_auth!r}")
        removal = data_removal_policy(retain_data)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(log_retention_days),
            encryption_key=log_key,
            removal_policy=removal,
        )
        cors = (
            apigw.CorsOptions(
                allow_origins=[cors_allow_origin],
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=[
                    "Content-Type",
                    "Accept",
                    "X-Api-Key",
                    "Authorization",
                    "X-Amz-Date",
                    "X-Amz-Security-Token",
                ],
                max_age=cdk.Duration.hours(1),
            )
            if cors_allow_origin
            else None
        )
        # REST API metrics are keyed by ApiName (and Stage), not by id: two stacks' APIs with one
        # name would share every metric and each other's alarms.
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=api_name,
            description="Prediction API in front of a SageMaker endpoint",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(binary_media_types),
            # Access logs need the account-level CloudWatch role of API Gateway.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                throttling_rate_limit=throttle_rate_limit,
                throttling_burst_limit=throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                tracing_enabled=True,
                metrics_enabled=True,
                # Execution logs of errors only, and never the bodies (no data trace).
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
            ),
            default_cors_preflight_options=cors,
        )
        cdk.Validations.of(self.api).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="API Gateway's account-level logging role; AWS publishes this policy for "
                "exactly this role, and access logs cannot be written without it.",
            )
        )
        cors_headers = {"Access-Control-Allow-Origin": f"'{cors_allow_origin}'"} if cors else None
        for response_type, status, code, message in _GATEWAY_ERRORS:
            self.api.add_gateway_response(
                f"Error{code}{response_type.response_type}",
                type=response_type,
                status_code=status,
                response_headers=cors_headers,
                templates={
                    "application/json": f'{{"error": {{"code": "{code}", "message": {message}}}, '
                    '"requestId": "$context.requestId"}'
                },
            )

        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        predict_model = self.api.add_model(
            "PredictRequest", content_type="application/json", schema=PREDICT_REQUEST_SCHEMA
        )
        integration = apigw.LambdaIntegration(handler, proxy=True)
        key_required = api_auth == "api_key"
        authorization = (
            apigw.AuthorizationType.NONE if key_required else apigw.AuthorizationType.IAM
        )
        self.predict_method = self.api.root.add_resource("predict").add_method(
            "POST",
            integration,
            request_validator=validator,
            request_models={"application/json": predict_model},
            api_key_required=key_required,
            authorization_type=authorization,
        )
        self.health_method = self.api.root.add_resource("health").add_method(
            "GET", integration, api_key_required=key_required, authorization_type=authorization
        )

        self.api_key: apigw.IApiKey | None = None
        if api_auth == "api_key":
            self.api_key = apigw.ApiKey(self, "Key", description="Prediction API key")
            plan = self.api.add_usage_plan(
                "UsagePlan",
                description="Throttle and quota for the prediction API key",
                throttle=apigw.ThrottleSettings(
                    rate_limit=throttle_rate_limit, burst_limit=throttle_burst_limit
                ),
                quota=apigw.QuotaSettings(limit=quota_per_day, period=apigw.Period.DAY)
                if quota_per_day
                else None,
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
            plan.add_api_key(self.api_key)

        # API keys identify and throttle callers; they are not an authorizer in cdk-nag's sense.
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            if api_auth == "api_key":
                cdk.Validations.of(self.api).acknowledge(
                    cdk.Acknowledgment(
                        id=rule,
                        reason="Callers authenticate with an API key on a throttled usage plan; "
                        "set api_auth=iam for SigV4 authorization. No end-user identity exists.",
                    )
                )
        if api_auth == "iam":
            cdk.Validations.of(self.api).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-COG4",
                    reason="Methods use IAM (SigV4) authorization; there are no end users to "
                    "keep in a Cognito user pool.",
                )
            )
        cdk.Validations.of(self.api).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="Stage and usage-plan throttling bound abuse; a WAF web ACL (about $6 a "
                "month) is left to accounts that route all APIs through one.",
            )
        )

    def invoke_arns(self) -> list[str]:
        """The execute-api ARNs of the two routes on the deployed stage (for IAM auth)."""
        return [
            self.api.arn_for_execute_api("POST", "/predict", self.api.deployment_stage.stage_name),
            self.api.arn_for_execute_api("GET", "/health", self.api.deployment_stage.stage_name),
        ]

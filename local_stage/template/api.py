"""The REST API: its stage, resource paths, methods (Lambda proxy or mock integrations), request
body validation, throttling (stage method settings, usage plan) and gateway responses."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from local_stage.errors import LocalStageError
from local_stage.template.functions import integration_function, read_function
from local_stage.template.intrinsics import Resolver, of_type, refs, to_int
from local_stage.template.specs import (
    DEFAULT_INTEGRATION_TIMEOUT_S,
    ApiSpec,
    FunctionSpec,
    GatewayResponseSpec,
    RouteSpec,
    Throttle,
)

log = logging.getLogger("local_stage.template")


def _throttle(settings: dict[str, Any]) -> Throttle | None:
    rate = settings.get("ThrottlingRateLimit", settings.get("RateLimit"))
    burst = settings.get("ThrottlingBurstLimit", settings.get("BurstLimit"))
    if rate is None and burst is None:
        return None
    return Throttle(rate_rps=float(rate if rate is not None else 10000), burst=int(burst or 0))


@dataclasses.dataclass(frozen=True)
class _Stage:
    name: str
    throttle: Throttle | None  # the stage-wide method setting ("/*", "*")
    per_method: dict[tuple[str, str], Throttle]  # (resource path, HTTP method) -> throttle


def _stage(resources: dict[str, Any], api_id: str) -> _Stage:
    """The API's stage (its Stage resource, else its Deployment's StageName) and throttles."""
    stages = {
        k: v
        for k, v in of_type(resources, "AWS::ApiGateway::Stage").items()
        if api_id in refs(v["Properties"].get("RestApiId"))
    }
    if stages:
        _stage_id, stage = sorted(stages.items())[0]
        stage_props = stage["Properties"]
        stage_name = str(stage_props.get("StageName", "prod"))
        method_settings = stage_props.get("MethodSettings", [])
    else:
        deployments = of_type(resources, "AWS::ApiGateway::Deployment")
        stage_name, method_settings = "prod", []
        for dep in deployments.values():
            if dep["Properties"].get("StageName"):
                stage_name = str(dep["Properties"]["StageName"])
    stage_wide: Throttle | None = None
    per_method: dict[tuple[str, str], Throttle] = {}
    for ms in method_settings:
        throttle = _throttle(ms)
        if throttle is None:
            continue
        path = str(ms.get("ResourcePath", "/*")).replace("~1", "/")
        method = str(ms.get("HttpMethod", "*"))
        if path == "/*" and method == "*":
            stage_wide = throttle
        else:
            per_method[(path, method)] = throttle
    return _Stage(name=stage_name, throttle=stage_wide, per_method=per_method)


class _Paths:
    """Resource paths ("/predict") of the API's AWS::ApiGateway::Resource tree."""

    def __init__(self, resources: dict[str, Any], api_id: str) -> None:
        self.api_id = api_id
        self.api_resources = {
            k: v["Properties"]
            for k, v in of_type(resources, "AWS::ApiGateway::Resource").items()
            if api_id in refs(v["Properties"].get("RestApiId"))
        }

    def path_of(self, resource_ref: Any) -> str:
        found = refs(resource_ref)
        if self.api_id in found and "RootResourceId" in json.dumps(resource_ref):
            return "/"
        matches = found & set(self.api_resources)
        if not matches:
            raise LocalStageError(f"cannot resolve API resource {resource_ref}")
        (rid,) = matches
        props = self.api_resources[rid]
        parent = self.path_of(props["ParentId"])
        return parent.rstrip("/") + "/" + str(props["PathPart"])


def _route(
    method_id: str,
    props: dict[str, Any],
    base: RouteSpec,
    resources: dict[str, Any],
    read_fn: Any,
    r: Resolver,
) -> RouteSpec | None:
    """One method as a route: a Lambda proxy or a mock integration; None (with a warning) for an
    integration the local stage does not serve."""
    integration = props.get("Integration", {})
    kind = integration.get("Type", "")
    if kind == "AWS_PROXY":
        fn_id = integration_function(resources, integration.get("Uri"))
        if fn_id is None:
            raise LocalStageError(
                f"method {base.http_method} {base.resource_path} ({method_id}) integrates with no "
                "Lambda function of this stack"
            )
        timeout_ms = integration.get("TimeoutInMillis")
        return dataclasses.replace(
            base,
            integration="lambda",
            function=read_fn(fn_id),
            integration_timeout_s=(
                float(timeout_ms) / 1000 if timeout_ms else DEFAULT_INTEGRATION_TIMEOUT_S
            ),
        )
    if kind == "MOCK":
        responses = integration.get("IntegrationResponses") or [{}]
        params = responses[0].get("ResponseParameters", {})
        headers = {
            k.removeprefix("method.response.header."): str(r.resolve(v)).strip("'")
            for k, v in params.items()
        }
        return dataclasses.replace(
            base,
            integration="mock",
            mock_status=to_int(responses[0].get("StatusCode", 200), "StatusCode"),
            mock_headers=headers,
        )
    log.warning(
        "method %s %s has a %s integration; the local stage does not serve it",
        base.http_method,
        base.resource_path,
        kind or "missing",
    )
    return None


def _routes(
    app_dir: Path,
    assets: dict[str, Any],
    resources: dict[str, Any],
    api_id: str,
    stage: _Stage,
    r: Resolver,
) -> list[RouteSpec]:
    """A route for each method of the API that the local stage serves."""
    paths = _Paths(resources, api_id)
    functions: dict[str, FunctionSpec] = {}

    def read_fn(fn_id: str) -> FunctionSpec:
        if fn_id not in functions:
            functions[fn_id] = read_function(app_dir, assets, fn_id, resources, r)
        return functions[fn_id]

    routes = []
    for m_id, m in sorted(of_type(resources, "AWS::ApiGateway::Method").items()):
        props = m["Properties"]
        if api_id not in refs(props.get("RestApiId")):
            continue
        http_method = str(props["HttpMethod"]).upper()
        resource_path = paths.path_of(props["ResourceId"])
        base = RouteSpec(
            http_method=http_method,
            resource_path=resource_path,
            api_key_required=bool(props.get("ApiKeyRequired", False)),
            integration="",
            throttle=stage.per_method.get((resource_path, http_method)) or stage.throttle,
            body_schemas=_body_schemas(resources, props),
        )
        route = _route(m_id, props, base, resources, read_fn, r)
        if route is not None:
            routes.append(route)
    if not routes:
        raise LocalStageError("the REST API has no Lambda proxy methods to serve")
    return routes


def read_api(
    app_dir: Path, assets: dict[str, Any], resources: dict[str, Any], r: Resolver
) -> ApiSpec:
    apis = of_type(resources, "AWS::ApiGateway::RestApi")
    if len(apis) != 1:
        raise LocalStageError(
            f"the stack has {len(apis)} AWS::ApiGateway::RestApi resources; the local stage runs "
            "stacks with exactly one"
        )
    ((api_id, api),) = apis.items()
    api_props = api.get("Properties", {})
    binary = tuple(t.replace("~1", "/") for t in api_props.get("BinaryMediaTypes", []))
    stage = _stage(resources, api_id)
    routes = _routes(app_dir, assets, resources, api_id, stage, r)
    usage_throttle = None
    for plan in of_type(resources, "AWS::ApiGateway::UsagePlan").values():
        props = plan["Properties"]
        if any(api_id in refs(s.get("ApiId")) for s in props.get("ApiStages", [])):
            usage_throttle = _throttle(props.get("Throttle", {})) or usage_throttle
    has_key = bool(of_type(resources, "AWS::ApiGateway::ApiKey"))
    return ApiSpec(
        logical_id=api_id,
        stage_name=stage.name,
        binary_media_types=binary,
        routes=tuple(routes),
        usage_plan_throttle=usage_throttle,
        has_api_key=has_key,
        gateway_responses=_gateway_responses(resources, api_id, r),
    )


def _body_schemas(resources: dict[str, Any], method: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The JSON schemas API Gateway checks request bodies against, by content type."""
    validator_ids = refs(method.get("RequestValidatorId"))
    validates_body = any(
        resources.get(v, {}).get("Properties", {}).get("ValidateRequestBody") for v in validator_ids
    )
    if not validates_body:
        return {}
    schemas = {}
    for content_type, model_ref in (method.get("RequestModels") or {}).items():
        for model_id in refs(model_ref):
            schema = resources.get(model_id, {}).get("Properties", {}).get("Schema")
            if isinstance(schema, dict):
                schemas[str(content_type).lower()] = schema
    return schemas


def _gateway_responses(
    resources: dict[str, Any], api_id: str, r: Resolver
) -> dict[str, GatewayResponseSpec]:
    found = {}
    for resource in of_type(resources, "AWS::ApiGateway::GatewayResponse").values():
        props = resource["Properties"]
        if api_id not in refs(props.get("RestApiId")):
            continue
        headers = {
            k.removeprefix("gatewayresponse.header."): str(r.resolve(v)).strip("'")
            for k, v in (props.get("ResponseParameters") or {}).items()
            if k.startswith("gatewayresponse.header.")
        }
        status = props.get("StatusCode")
        found[str(props["ResponseType"])] = GatewayResponseSpec(
            status=to_int(status, "StatusCode") if status is not None else None,
            template=(props.get("ResponseTemplates") or {}).get("application/json"),
            headers=headers,
        )
    return found

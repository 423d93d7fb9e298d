"""Read what to run from the synthesized stack: ``cdk.out/<stack>.template.json`` + its assets.

Everything the local stage runs comes from here, not from a second copy of config: the SageMaker
Model (container image → flavour, container environment, ``ModelDataUrl`` → the asset file in
``cdk.out``), the EndpointConfig's variant (name, initial instance count), the Lambda
function an API method integrates with (handler, runtime, environment, code asset directory,
timeout), and the REST API (stage name, binary media types, methods with ``ApiKeyRequired``, stage
method throttling, usage-plan throttle).

CloudFormation intrinsics are resolved the way they would resolve on deploy, with local values:
pseudo parameters (region, account), ``Ref``/``Fn::GetAtt`` of the endpoint (→ the local endpoint
name), ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``. A reference the local stage cannot give a
meaningful value is resolved to a placeholder and reported.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stage.errors import LocalStageError

log = logging.getLogger(__name__)

LOCAL_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
# API Gateway's integration timeout when a method does not set TimeoutInMillis.
DEFAULT_INTEGRATION_TIMEOUT_S = 29.0
# How long an inference component that may scale to 0 copies stays idle before it does: its
# target-tracking policy scales in after Application Auto Scaling's scale-in alarm has seen 15
# minutes of low datapoints (AWS ML blog, "Unlock cost savings with the new scale down to zero
# feature in SageMaker Inference": zero copies after about 15 minutes).
TARGET_TRACKING_SCALE_IN_S = 900.0


def flavour_from_image(image: str) -> str:
    """Which container contract an image URI means (the AWS Deep Learning Containers' names)."""
    repo, _, tag = image.rsplit("/", 1)[-1].split("@", 1)[0].partition(":")
    if repo == "ray" and tag.startswith("serve-"):
        return "pytorch"  # AWS's Ray Serve container: PyTorch artifacts with a config.yaml
    if "tensorflow-inference" in repo:
        return "tensorflow"
    raise LocalStageError(
        f"the SageMaker Model's container image {image!r} is not one the local stage can run: it "
        "runs the AWS Deep Learning Containers '.../ray:serve-ml-sagemaker-<cpu|cuda>-<version>' "
        "(PyTorch) and '.../tensorflow-inference:<tag>' (set the stack's framework or image_uri "
        "accordingly)"
    )


# Overrides the idle period of a scale-to-zero inference component (the template's is AWS's
# 15 minutes), so that a person or a test sees it release its model within seconds.
IDLE_ENV = "LOCAL_STAGE_SCALE_TO_ZERO_IDLE_S"


@dataclass(frozen=True)
class ModelSpec:
    logical_id: str
    image: str
    flavour: str
    environment: dict[str, str]
    # The cloud assembly's asset file, or None when the model is an existing S3 object
    # (model_data_url), which the stage downloads at start-up as SageMaker does.
    model_data_path: Path | None
    model_data_url: str | None = None


@dataclass(frozen=True)
class ComponentSpec:
    """An AWS::SageMaker::InferenceComponent hosting the variant's model."""

    name: str
    copy_count: int
    # Seconds idle before the copies go to 0; None when its scalable target keeps a copy.
    scale_to_zero_idle_s: float | None


@dataclass(frozen=True)
class VariantSpec:
    name: str
    model: ModelSpec
    initial_instance_count: int
    instance_type: str
    inference_component: ComponentSpec | None = None


@dataclass(frozen=True)
class EndpointSpec:
    logical_id: str
    name: str
    variants: tuple[VariantSpec, ...]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    runtime: str
    code_dir: Path
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int
    # Environments its alias keeps initialised (ProvisionedConcurrencyConfig).
    provisioned_concurrency: int = 0


@dataclass(frozen=True)
class Throttle:
    rate_rps: float
    burst: int


@dataclass(frozen=True)
class RouteSpec:
    http_method: str  # "GET", "POST", ... or "ANY"
    resource_path: str  # "/predict", "/{proxy+}"
    api_key_required: bool
    integration: str  # "lambda" | "mock"
    function: FunctionSpec | None = None
    integration_timeout_s: float = DEFAULT_INTEGRATION_TIMEOUT_S
    mock_status: int = 200
    mock_headers: dict[str, str] = field(default_factory=dict)
    throttle: Throttle | None = None
    # Request validation: content type -> JSON schema of the body (RequestValidator + Model).
    body_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayResponseSpec:
    """An AWS::ApiGateway::GatewayResponse: API Gateway's own error answer of one type."""

    status: int | None
    template: str | None  # the application/json response template
    headers: dict[str, str]


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    stage_name: str
    binary_media_types: tuple[str, ...]
    routes: tuple[RouteSpec, ...]
    usage_plan_throttle: Throttle | None
    has_api_key: bool
    gateway_responses: dict[str, GatewayResponseSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class StackSpec:
    stack_name: str
    template_path: Path
    region: str
    account: str
    endpoint: EndpointSpec
    api: ApiSpec
    unresolved: tuple[str, ...] = ()

    @property
    def functions(self) -> list[FunctionSpec]:
        seen: dict[str, FunctionSpec] = {}
        for route in self.api.routes:
            if route.function is not None:
                seen[route.function.logical_id] = route.function
        return list(seen.values())


class _Resolver:
    def __init__(self, template: dict[str, Any], stack_name: str, region: str, account: str):
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.stack_name = stack_name
        self.region = region
        self.account = account
        self.endpoint_names: dict[str, str] = {}
        self.unresolved: list[str] = []

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account}:stack/"
            f"{self.stack_name}/local",
            "AWS::NoValue": "",
        }.get(name)

    def ref(self, name: str) -> str:
        value = self.pseudo(name)
        if value is not None:
            return value
        if name in self.endpoint_names:
            return self.endpoint_names[name]
        self.unresolved.append(f"Ref {name}")
        return f"local-{name}"

    def get_att(self, name: str, attr: str) -> str:
        if name in self.endpoint_names and attr == "EndpointName":
            return self.endpoint_names[name]
        self.unresolved.append(f"GetAtt {name}.{attr}")
        return f"local-{name}-{attr}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(name, attr)
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(str(self.resolve(p)) for p in self.resolve(parts))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            sep, text = arg
            return str(self.resolve(text)).split(sep)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

            def sub(match: re.Match[str]) -> str:
                expr = match.group(1)
                if expr in variables:
                    return str(self.resolve(variables[expr]))
                if "." in expr and not expr.startswith("AWS::"):
                    name, attr = expr.split(".", 1)
                    return self.get_att(name, attr)
                return self.ref(expr)

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {k: self.resolve(v) for k, v in value.items()}


def _of_type(resources: dict[str, Any], cfn_type: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v.get("Type") == cfn_type}


def _refs(value: Any) -> set[str]:
    """Logical IDs a property value refers to (Ref, GetAtt, ${X} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".", 1)[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found.update(m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                if not isinstance(v, str):
                    found.update(_refs(v[1]))
            else:
                found.update(_refs(v))
    elif isinstance(value, list):
        for v in value:
            found.update(_refs(v))
    return found


def _is_asset(assets: dict[str, Any], rendered: str) -> bool:
    for asset_hash, entry in assets.get("files", {}).items():
        keys = {d.get("objectKey", "") for d in entry.get("destinations", {}).values()}
        keys.add(asset_hash)
        if any(k and k in rendered for k in keys):
            return True
    return False


def _find_asset(app_dir: Path, assets: dict[str, Any], rendered: str, what: str) -> Path:
    """The cdk.out path of the file asset whose object key appears in ``rendered``."""
    for asset_hash, entry in assets.get("files", {}).items():
        keys = {d.get("objectKey", "") for d in entry.get("destinations", {}).values()}
        keys.add(asset_hash)
        if any(k and k in rendered for k in keys):
            return app_dir / entry["source"]["path"]
    raise LocalStageError(
        f"{what} ({rendered}) is not an asset of this cloud assembly: the local stage serves "
        "artifacts that `cdk synth` packaged from artifacts/<model>/model.tar.gz, not existing "
        "S3 objects (synthesize without model_data_url)"
    )


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LocalStageError(f"{what} is {value!r}, not a number") from None


def list_stacks(app_dir: Path) -> list[str]:
    return sorted(p.name.removesuffix(".template.json") for p in app_dir.glob("*.template.json"))


def load_stack(app_dir: Path, stack_name: str) -> StackSpec:
    app_dir = Path(app_dir)
    template_path = app_dir / f"{stack_name}.template.json"
    if not template_path.is_file():
        stacks = list_stacks(app_dir) if app_dir.is_dir() else []
        hint = f"stacks there: {', '.join(stacks)}" if stacks else "run `make synth` first"
        raise LocalStageError(f"{template_path} not found ({hint})")
    try:
        template = json.loads(template_path.read_text())
    except ValueError as exc:
        raise LocalStageError(f"{template_path} is not valid JSON: {exc}") from exc
    assets_path = app_dir / f"{stack_name}.assets.json"
    assets = json.loads(assets_path.read_text()) if assets_path.is_file() else {}
    region, account = _environment(app_dir, stack_name)
    resolver = _Resolver(template, stack_name, region, account)
    resources = resolver.resources

    endpoint = _read_endpoint(app_dir, assets, resources, resolver, stack_name)
    api = _read_api(app_dir, assets, resources, resolver)
    if resolver.unresolved:
        log.info(
            "references with no local meaning, given placeholder values: %s",
            ", ".join(sorted(set(resolver.unresolved))),
        )
    return StackSpec(
        stack_name=stack_name,
        template_path=template_path,
        region=region,
        account=account,
        endpoint=endpoint,
        api=api,
        unresolved=tuple(sorted(set(resolver.unresolved))),
    )


def _environment(app_dir: Path, stack_name: str) -> tuple[str, str]:
    """The stack's region and account from manifest.json (``aws://account/region``)."""
    manifest_path = app_dir / "manifest.json"
    region, account = DEFAULT_REGION, LOCAL_ACCOUNT
    if manifest_path.is_file():
        try:
            artifacts = json.loads(manifest_path.read_text()).get("artifacts", {})
        except ValueError:
            artifacts = {}
        env = artifacts.get(stack_name, {}).get("environment", "")
        match = re.fullmatch(r"aws://([^/]+)/(.+)", env)
        if match:
            if match.group(1) != "unknown-account":
                account = match.group(1)
            if match.group(2) != "unknown-region":
                region = match.group(2)
    return region, account


def _read_endpoint(
    app_dir: Path,
    assets: dict[str, Any],
    resources: dict[str, Any],
    resolver: _Resolver,
    stack_name: str,
) -> EndpointSpec:
    endpoints = _of_type(resources, "AWS::SageMaker::Endpoint")
    if len(endpoints) != 1:
        raise LocalStageError(
            f"the stack has {len(endpoints)} AWS::SageMaker::Endpoint resources; the local stage "
            "runs stacks with exactly one"
        )
    ((ep_id, ep),) = endpoints.items()
    props = ep.get("Properties", {})
    name = props.get("EndpointName")
    if not isinstance(name, str):
        name = f"{stack_name}-endpoint"[:63]
    resolver.endpoint_names[ep_id] = name
    configs = _of_type(resources, "AWS::SageMaker::EndpointConfig")
    config_ids = _refs(props.get("EndpointConfigName")) & set(configs)
    if len(config_ids) != 1:
        raise LocalStageError(f"cannot tell which EndpointConfig endpoint {ep_id} uses")
    config = configs[config_ids.pop()]["Properties"]
    models = _of_type(resources, "AWS::SageMaker::Model")
    components = {
        k: v.get("Properties", {})
        for k, v in _of_type(resources, "AWS::SageMaker::InferenceComponent").items()
        if ep_id in _refs(v.get("Properties", {}).get("EndpointName"))
    }
    variants = []
    for pv in config.get("ProductionVariants", []):
        if "ServerlessConfig" in pv:
            count = 1
        else:
            count = _int(pv.get("InitialInstanceCount", 1), "InitialInstanceCount")
        component: ComponentSpec | None = None
        if "ModelName" in pv:
            model_ref = pv.get("ModelName")
        else:
            # A variant for inference components: the model is the component's.
            hosted = [c for c in components.values() if c.get("VariantName") == pv["VariantName"]]
            if len(hosted) != 1:
                raise LocalStageError(
                    f"variant {pv.get('VariantName')} names no model and hosts {len(hosted)} "
                    "inference components; the local stage runs exactly one per variant"
                )
            (ic,) = hosted
            model_ref = (ic.get("Specification") or {}).get("ModelName")
            component = _read_component(resources, ic, resolver)
        model_ids = _refs(model_ref) & set(models)
        if len(model_ids) != 1:
            raise LocalStageError(f"cannot tell which Model variant {pv.get('VariantName')} uses")
        model_id = model_ids.pop()
        variants.append(
            VariantSpec(
                name=str(pv["VariantName"]),
                model=_read_model(app_dir, assets, model_id, models[model_id], resolver),
                initial_instance_count=count,
                instance_type=str(pv.get("InstanceType", "serverless")),
                inference_component=component,
            )
        )
    if len(variants) != 1:
        # The stack deploys one production variant (or one inference component on it); traffic
        # splitting between variants is not something it creates, so nor does this stage run it.
        raise LocalStageError(
            f"the EndpointConfig has {len(variants)} ProductionVariants; the local stage runs "
            "endpoints with exactly one, as the stack deploys them"
        )
    return EndpointSpec(logical_id=ep_id, name=name, variants=tuple(variants))


def _read_component(
    resources: dict[str, Any], props: dict[str, Any], resolver: _Resolver
) -> ComponentSpec:
    name = props.get("InferenceComponentName")
    if not isinstance(name, str):
        raise LocalStageError(
            "the inference component has no literal InferenceComponentName; the local stage "
            "routes InvokeEndpoint's InferenceComponentName by it"
        )
    copies = _int((props.get("RuntimeConfig") or {}).get("CopyCount", 1), "CopyCount")
    idle_s: float | None = None
    for target in _of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget").values():
        t = target.get("Properties", {})
        if (
            resolver.resolve(t.get("ResourceId")) == f"inference-component/{name}"
            and _int(t.get("MinCapacity", 1), "MinCapacity") == 0
        ):
            idle_s = TARGET_TRACKING_SCALE_IN_S
    return ComponentSpec(name=name, copy_count=copies, scale_to_zero_idle_s=idle_s)


def _read_model(
    app_dir: Path, assets: dict[str, Any], logical_id: str, model: dict[str, Any], r: _Resolver
) -> ModelSpec:
    props = model.get("Properties", {})
    container = props.get("PrimaryContainer") or (props.get("Containers") or [None])[0]
    if not container:
        raise LocalStageError(f"Model {logical_id} has no PrimaryContainer")
    image = str(r.resolve(container.get("Image", "")))
    env = {k: str(r.resolve(v)) for k, v in (container.get("Environment") or {}).items()}
    url = container.get("ModelDataUrl")
    if url is None and "ModelDataSource" in container:
        url = container["ModelDataSource"].get("S3DataSource", {}).get("S3Uri")
    if url is None:
        raise LocalStageError(f"Model {logical_id} has no ModelDataUrl")
    rendered = json.dumps(url) if not isinstance(url, str) else url
    if isinstance(url, str) and url.startswith("s3://") and not _is_asset(assets, url):
        return ModelSpec(
            logical_id=logical_id,
            image=image,
            flavour=flavour_from_image(image),
            environment=env,
            model_data_path=None,
            model_data_url=url,
        )
    path = _find_asset(app_dir, assets, rendered, f"Model {logical_id}'s ModelDataUrl")
    if not path.exists():
        raise LocalStageError(f"the model artifact asset {path} is missing: run `make synth` again")
    return ModelSpec(
        logical_id=logical_id,
        image=image,
        flavour=flavour_from_image(image),
        environment=env,
        model_data_path=path,
    )


def _provisioned_concurrency(resources: dict[str, Any], function_id: str) -> int:
    """The provisioned environments of the function's aliases (the API calls the alias)."""
    total = 0
    for alias in _of_type(resources, "AWS::Lambda::Alias").values():
        props = alias.get("Properties", {})
        if function_id in _refs(props.get("FunctionName")):
            config = props.get("ProvisionedConcurrencyConfig") or {}
            total += _int(
                config.get("ProvisionedConcurrentExecutions", 0), "ProvisionedConcurrency"
            )
    return total


def _read_function(
    app_dir: Path, assets: dict[str, Any], logical_id: str, resources: dict[str, Any], r: _Resolver
) -> FunctionSpec:
    fn = resources[logical_id]
    props = fn.get("Properties", {})
    handler = props.get("Handler")
    if not isinstance(handler, str) or "." not in handler:
        raise LocalStageError(f"Lambda function {logical_id} has no module.function Handler")
    runtime = str(props.get("Runtime", ""))
    if not runtime.startswith("python"):
        raise LocalStageError(
            f"Lambda function {logical_id} runs {runtime or 'a container image'}; the local stage "
            "runs Python functions"
        )
    asset_path = fn.get("Metadata", {}).get("aws:asset:path")
    if asset_path:
        code_dir = app_dir / asset_path
    else:
        code = props.get("Code", {})
        if "ZipFile" in code:
            raise LocalStageError(f"Lambda function {logical_id} has inline code (ZipFile)")
        code_dir = _find_asset(app_dir, assets, json.dumps(code), f"function {logical_id}'s Code")
    if not code_dir.is_dir():
        raise LocalStageError(f"the function's code asset {code_dir} is missing: run `make synth`")
    variables = (props.get("Environment") or {}).get("Variables") or {}
    env = {k: str(r.resolve(v)) for k, v in variables.items()}
    return FunctionSpec(
        logical_id=logical_id,
        handler=handler,
        runtime=runtime,
        code_dir=code_dir,
        environment=env,
        timeout_s=float(props.get("Timeout", 3)),
        memory_mb=_int(props.get("MemorySize", 128), "MemorySize"),
        provisioned_concurrency=_provisioned_concurrency(resources, logical_id),
    )


def _integration_function(resources: dict[str, Any], uri: Any) -> str | None:
    """Follow an integration URI's references (alias → function, version → function)."""
    for ref in _refs(uri):
        res = resources.get(ref, {})
        kind = res.get("Type")
        if kind == "AWS::Lambda::Function":
            return ref
        if kind in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            targets = _refs(res.get("Properties", {}).get("FunctionName"))
            for t in targets:
                if resources.get(t, {}).get("Type") == "AWS::Lambda::Function":
                    return t
    return None


def _throttle(settings: dict[str, Any]) -> Throttle | None:
    rate = settings.get("ThrottlingRateLimit", settings.get("RateLimit"))
    burst = settings.get("ThrottlingBurstLimit", settings.get("BurstLimit"))
    if rate is None and burst is None:
        return None
    return Throttle(rate_rps=float(rate if rate is not None else 10000), burst=int(burst or 0))


def _read_api(
    app_dir: Path, assets: dict[str, Any], resources: dict[str, Any], r: _Resolver
) -> ApiSpec:
    apis = _of_type(resources, "AWS::ApiGateway::RestApi")
    if len(apis) != 1:
        raise LocalStageError(
            f"the stack has {len(apis)} AWS::ApiGateway::RestApi resources; the local stage runs "
            "stacks with exactly one"
        )
    ((api_id, api),) = apis.items()
    api_props = api.get("Properties", {})
    binary = tuple(t.replace("~1", "/") for t in api_props.get("BinaryMediaTypes", []))
    stages = {
        k: v
        for k, v in _of_type(resources, "AWS::ApiGateway::Stage").items()
        if api_id in _refs(v["Properties"].get("RestApiId"))
    }
    if stages:
        stage_id, stage = sorted(stages.items())[0]
        stage_props = stage["Properties"]
        stage_name = str(stage_props.get("StageName", "prod"))
        method_settings = stage_props.get("MethodSettings", [])
    else:
        deployments = _of_type(resources, "AWS::ApiGateway::Deployment")
        stage_id, stage_name, method_settings = "", "prod", []
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

    # Resource paths from the Resource tree.
    api_resources = {
        k: v["Properties"]
        for k, v in _of_type(resources, "AWS::ApiGateway::Resource").items()
        if api_id in _refs(v["Properties"].get("RestApiId"))
    }

    def path_of(resource_ref: Any) -> str:
        refs = _refs(resource_ref)
        if api_id in refs and "RootResourceId" in json.dumps(resource_ref):
            return "/"
        (rid,) = refs & set(api_resources) or {None}
        if rid is None:
            raise LocalStageError(f"cannot resolve API resource {resource_ref}")
        props = api_resources[rid]
        parent = path_of(props["ParentId"])
        return parent.rstrip("/") + "/" + str(props["PathPart"])

    functions: dict[str, FunctionSpec] = {}
    routes = []
    for m_id, m in sorted(_of_type(resources, "AWS::ApiGateway::Method").items()):
        props = m["Properties"]
        if api_id not in _refs(props.get("RestApiId")):
            continue
        http_method = str(props["HttpMethod"]).upper()
        resource_path = path_of(props["ResourceId"])
        integration = props.get("Integration", {})
        kind = integration.get("Type", "")
        throttle = per_method.get((resource_path, http_method)) or stage_wide
        common = {
            "http_method": http_method,
            "resource_path": resource_path,
            "api_key_required": bool(props.get("ApiKeyRequired", False)),
            "throttle": throttle,
            "body_schemas": _body_schemas(resources, props),
        }
        if kind == "AWS_PROXY":
            fn_id = _integration_function(resources, integration.get("Uri"))
            if fn_id is None:
                raise LocalStageError(
                    f"method {http_method} {resource_path} ({m_id}) integrates with no Lambda "
                    "function of this stack"
                )
            if fn_id not in functions:
                functions[fn_id] = _read_function(app_dir, assets, fn_id, resources, r)
            timeout_ms = integration.get("TimeoutInMillis")
            routes.append(
                RouteSpec(
                    integration="lambda",
                    function=functions[fn_id],
                    integration_timeout_s=(
                        float(timeout_ms) / 1000 if timeout_ms else DEFAULT_INTEGRATION_TIMEOUT_S
                    ),
                    **common,
                )
            )
        elif kind == "MOCK":
            responses = integration.get("IntegrationResponses") or [{}]
            params = responses[0].get("ResponseParameters", {})
            headers = {
                k.removeprefix("method.response.header."): str(r.resolve(v)).strip("'")
                for k, v in params.items()
            }
            routes.append(
                RouteSpec(
                    integration="mock",
                    mock_status=_int(responses[0].get("StatusCode", 200), "StatusCode"),
                    mock_headers=headers,
                    **common,
                )
            )
        else:
            log.warning(
                "method %s %s has a %s integration; the local stage does not serve it",
                http_method,
                resource_path,
                kind or "missing",
            )
    if not routes:
        raise LocalStageError("the REST API has no Lambda proxy methods to serve")
    usage_throttle = None
    for plan in _of_type(resources, "AWS::ApiGateway::UsagePlan").values():
        props = plan["Properties"]
        if any(api_id in _refs(s.get("ApiId")) for s in props.get("ApiStages", [])):
            usage_throttle = _throttle(props.get("Throttle", {})) or usage_throttle
    has_key = bool(_of_type(resources, "AWS::ApiGateway::ApiKey"))
    del stage_id
    return ApiSpec(
        logical_id=api_id,
        stage_name=stage_name,
        binary_media_types=binary,
        routes=tuple(routes),
        usage_plan_throttle=usage_throttle,
        has_api_key=has_key,
        gateway_responses=_gateway_responses(resources, api_id, r),
    )


def _body_schemas(resources: dict[str, Any], method: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The JSON schemas API Gateway checks request bodies against, by content type."""
    validator_ids = _refs(method.get("RequestValidatorId"))
    validates_body = any(
        resources.get(v, {}).get("Properties", {}).get("ValidateRequestBody") for v in validator_ids
    )
    if not validates_body:
        return {}
    schemas = {}
    for content_type, model_ref in (method.get("RequestModels") or {}).items():
        for model_id in _refs(model_ref):
            schema = resources.get(model_id, {}).get("Properties", {}).get("Schema")
            if isinstance(schema, dict):
                schemas[str(content_type).lower()] = schema
    return schemas


def _gateway_responses(
    resources: dict[str, Any], api_id: str, r: _Resolver
) -> dict[str, GatewayResponseSpec]:
    found = {}
    for resource in _of_type(resources, "AWS::ApiGateway::GatewayResponse").values():
        props = resource["Properties"]
        if api_id not in _refs(props.get("RestApiId")):
            continue
        headers = {
            k.removeprefix("gatewayresponse.header."): str(r.resolve(v)).strip("'")
            for k, v in (props.get("ResponseParameters") or {}).items()
            if k.startswith("gatewayresponse.header.")
        }
        status = props.get("StatusCode")
        found[str(props["ResponseType"])] = GatewayResponseSpec(
            status=_int(status, "StatusCode") if status is not None else None,
            template=(props.get("ResponseTemplates") or {}).get("application/json"),
            headers=headers,
        )
    return found

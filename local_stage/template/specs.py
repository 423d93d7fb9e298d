"""What the local stage reads from a synthesized stack: one frozen record per resource it runs
(model, inference component, variant, endpoint, function, API route, gateway response, API), and
the constants the reader falls back to where the template leaves a value to AWS's default."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stage.errors import LocalStageError

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

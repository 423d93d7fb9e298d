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

The reader is split by what it reads: ``specs`` (the records), ``intrinsics`` (CloudFormation's
functions and assets), ``endpoint``, ``functions``, ``api``, and ``stack`` (``load_stack``).
"""

from local_stage.template.specs import (
    DEFAULT_INTEGRATION_TIMEOUT_S,
    DEFAULT_REGION,
    IDLE_ENV,
    LOCAL_ACCOUNT,
    TARGET_TRACKING_SCALE_IN_S,
    ApiSpec,
    ComponentSpec,
    EndpointSpec,
    FunctionSpec,
    GatewayResponseSpec,
    ModelSpec,
    RouteSpec,
    StackSpec,
    Throttle,
    VariantSpec,
    flavour_from_image,
)
from local_stage.template.stack import list_stacks, load_stack

__all__ = [
    "DEFAULT_INTEGRATION_TIMEOUT_S",
    "DEFAULT_REGION",
    "IDLE_ENV",
    "LOCAL_ACCOUNT",
    "TARGET_TRACKING_SCALE_IN_S",
    "ApiSpec",
    "ComponentSpec",
    "EndpointSpec",
    "FunctionSpec",
    "GatewayResponseSpec",
    "ModelSpec",
    "RouteSpec",
    "StackSpec",
    "Throttle",
    "VariantSpec",
    "flavour_from_image",
    "list_stacks",
    "load_stack",
]

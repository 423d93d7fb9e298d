"""SageMaker Runtime's InvokeEndpoint, served locally on aiohttp.

``POST /endpoints/{EndpointName}/invocations`` as botocore's ``sagemaker-runtime`` service model
describes it (rest-json): the request headers ``Content-Type``, ``Accept``,
``X-Amzn-SageMaker-Custom-Attributes``, ``X-Amzn-SageMaker-Target-Variant``...; the response body
with ``Content-Type`` and ``x-Amzn-Invoked-Production-Variant``; errors with an
``x-amzn-ErrorType`` header and a JSON body, so an unmodified boto3 client pointed here through
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` raises the same exception classes as against AWS:

- unknown endpoint / variant, payload over 6 MiB → ``ValidationError`` (400)
- the container answered 4xx/5xx → ``ModelError`` (424) with ``OriginalStatusCode``,
  ``OriginalMessage``, ``LogStreamArn``; also when it does not answer within the container timeout
- every instance's queue is full → ``ThrottlingException`` (429), the error a serverless
  endpoint gives past its concurrency, which clients retry with back-off
- no instance reachable (all crashed or restarting), or one died mid-request →
  ``ServiceUnavailable`` (503)

An endpoint whose variant hosts an inference component needs InvokeEndpoint's
``InferenceComponentName`` (header ``X-Amzn-SageMaker-Inference-Component``). A component that may
scale to zero releases its model after its idle period (the instances' processes are stopped by
the supervisor, which follows ``GET /_local/capacity``); the next request gets SageMaker's
no-capacity ``ValidationError`` and starts a copy again, as the NoCapacityInvocationFailures alarm
and its step policy do; requests get the same error until an instance answers ``/ping``.

Requests go to the variant's instances by least outstanding requests (SageMaker's
``LEAST_OUTSTANDING_REQUESTS`` routing); an instance that refuses connections is taken out of
rotation and probed on ``/ping`` until it is back.

The package is split by concern: ``routing`` (endpoints, variants, instances and the
scale-to-zero state), ``forwarding`` (one request to one instance, and what its answer means),
``errors`` (InvokeEndpoint's error responses), ``app`` (the aiohttp application).
"""

from local_stage.runtime_api.app import RuntimeApi
from local_stage.runtime_api.errors import NO_CAPACITY_MESSAGE, RuntimeError_, error_response
from local_stage.runtime_api.forwarding import MAX_PAYLOAD_BYTES
from local_stage.runtime_api.routing import Endpoint, Instance, Variant, endpoints_from_config

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "NO_CAPACITY_MESSAGE",
    "Endpoint",
    "Instance",
    "RuntimeApi",
    "RuntimeError_",
    "Variant",
    "endpoints_from_config",
    "error_response",
]

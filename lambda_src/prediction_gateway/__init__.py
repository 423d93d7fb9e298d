"""The prediction API's Lambda runtime: one HTTP request in, one InvokeEndpoint call, one answer.

Model-agnostic on purpose: it knows the request *shapes* users send (see ``lambda_src/README.md``)
and the SageMaker Runtime error contract, never a model. Model-specific pre- and post-processing
ships inside the model artifact (``code/inference.py``).

One module per concern, each importing only the standard library, botocore (already loaded by the
client) and Powertools (from AWS's public layer), so the cold start stays small (it is measured:
``bench/lambda_cold_init.py``):

- ``config``: the function's environment, validated once at init;
- ``client``: the sagemaker-runtime client with its timeouts and retry policy;
- ``events``: API Gateway REST (v1) proxy events as requests, and the request id;
- ``payloads``: request bodies validated and turned into the endpoint's payload;
- ``errors``: ``ApiError`` and SageMaker Runtime's error contract mapped onto the API's statuses;
- ``responses``: proxy responses, headers, the model's answer as a response body;
- ``observability``: one structured log line and the metrics of each request;
- ``gateway``: ``Gateway.handle``, which ties the above together;
- ``handler``: the entry point Lambda calls, ``prediction_gateway.handler.lambda_handler``.

Imports inside the package are relative, so the local stage can import one copy of the package
per simulated execution environment, as Lambda runs one process per environment.
"""

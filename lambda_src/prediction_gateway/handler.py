"""AWS Lambda entry point of the prediction API: ``prediction_gateway.handler.lambda_handler``.

Everything expensive happens once, at init: configuration is validated (a bad environment fails
the init with a message naming the variable), the sagemaker-runtime client is created with its
timeouts and retry policy, and Powertools' Logger and Metrics come from AWS's public layer.

Powertools' Tracer is deliberately not used: importing the X-Ray SDK and patching botocore costs
more than the whole client creation (bench/results/lambda.md). X-Ray still traces the function
through Lambda's active tracing, which the stack turns on.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

from .client import create_runtime_client
from .config import Config
from .gateway import Gateway

CONFIG = Config.from_env(os.environ)
logger = Logger(service=CONFIG.service_name, level=CONFIG.log_level)
metrics = Metrics(namespace=CONFIG.metrics_namespace, service=CONFIG.service_name)
GATEWAY = Gateway(CONFIG, create_runtime_client(CONFIG), logger=logger, metrics=metrics)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return GATEWAY.handle(event, context)

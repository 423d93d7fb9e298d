"""Small artifacts in both containers' layouts, for the local stage's tests and benchmarks.

``build_torch_artifact`` writes an artifact for AWS's Ray Serve container (``model.pth``
state_dict + ``code/inference.py`` with ``model_fn``/``input_fn``/``predict_fn``/``output_fn`` +
the project's ``code/serve_app.py`` and a ``config.yaml``); its ``inference.py`` also understands
a few control inputs so tests can make the model fail, hang or crash on purpose, and its answers
carry ``max_batch_rows``: the most rows one ``predict_fn`` call of this replica has seen. ``build_tf_artifact`` writes a TF Serving artifact (a Keras SavedModel under
``1/``), optionally with ``code/inference.py`` handlers. ``pack`` makes the ``model.tar.gz``.
"""

from __future__ import annotations

import tarfile
import textwrap
from pathlib import Path
from typing import Any

HTTP_TIMEOUT_S = 60

TORCH_INFERENCE_PY = '''
"""A tiny classifier following the SageMaker PyTorch toolkit contract (test artifact)."""
import json
import os
import time

import numpy as np
import torch

CLASSES = ["a", "b", "c"]


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def model_fn(model_dir):
    model = Tiny()
    model.load_state_dict(torch.load(os.path.join(model_dir, "model.pth"), weights_only=True))
    return model.eval()


def input_fn(body, content_type):
    if content_type == "application/x-npy":
        import io
        return torch.from_numpy(np.load(io.BytesIO(body))).float()
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type}")
    data = json.loads(body)
    if isinstance(data, dict):
        if "fail" in data:
            raise ValueError("the model refused this input: " + str(data["fail"]))
        if "sleep_s" in data:
            time.sleep(float(data["sleep_s"]))
            data = data.get("instances", [[0.0, 0.0, 0.0, 0.0]])
        elif "crash" in data:
            os._exit(3)
        else:
            data = data["instances"]
    return torch.tensor(data, dtype=torch.float32).reshape(-1, 4)


MAX_BATCH_ROWS = [0]


def predict_fn(data, model):
    MAX_BATCH_ROWS[0] = max(MAX_BATCH_ROWS[0], int(data.shape[0]))
    with torch.no_grad():
        return torch.softmax(model(data), dim=1)


def output_fn(prediction, accept):
    probs = prediction.numpy()
    body = {
        "predictions": [
            {"label": CLASSES[int(row.argmax())], "probabilities": row.tolist()}
            for row in probs
        ],
        "max_batch_rows": MAX_BATCH_ROWS[0],
    }
    if accept in ("application/json", "*/*", None):
        return json.dumps(body), "application/json"
    if accept == "text/csv":
        return "\\n".join(CLASSES[int(r.argmax())] for r in probs), "text/csv"
    raise ValueError(f"unsupported accept {accept}")
'''

TF_INFERENCE_PY = '''
"""TF Serving container handlers (test artifact): a JSON list of rows in, labels out."""
import json

CLASSES = ["a", "b", "c"]


def input_handler(data, context):
    if context.request_content_type != "application/json":
        raise ValueError(f"unsupported content type {context.request_content_type}")
    rows = json.loads(data.read().decode("utf-8"))
    return json.dumps({"instances": [{"x": r} for r in rows]})


def output_handler(response, context):
    if response.status_code != 200:
        raise ValueError(response.content.decode("utf-8"))
    preds = response.json()["predictions"]
    labels = [CLASSES[max(range(len(p)), key=p.__getitem__)] for p in preds]
    return json.dumps({"labels": labels, "probabilities": preds}), "application/json"
'''


def add_ray_serve_app(model_dir: Path, settings: Any = None) -> Path:
    """Put the project's Ray Serve application and a ``config.yaml`` into an unpacked artifact,
    as ``model_export pytorch`` does (``settings``: a ``ServeSettings``, default one replica)."""
    import shutil

    from model_export.pytorch_export import SERVE_APP
    from model_export.serve_config import CONFIG_NAME, ServeSettings

    settings = settings or ServeSettings(replicas=1, max_batch_size=8, batch_wait_ms=20.0)
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SERVE_APP, model_dir / "code" / "serve_app.py")
    (model_dir / CONFIG_NAME).write_text(settings.config_yaml(), encoding="utf-8")
    return model_dir


def build_torch_artifact(model_dir: Path, *, seed: int = 0, settings: Any = None) -> Path:
    """An artifact directory (unpacked) for AWS's Ray Serve container."""
    import torch

    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    fc = torch.nn.Linear(4, 3)
    torch.save({"fc.weight": fc.weight.data, "fc.bias": fc.bias.data}, model_dir / "model.pth")
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    (code / "inference.py").write_text(textwrap.dedent(TORCH_INFERENCE_PY))
    return add_ray_serve_app(model_dir, settings)


def build_torchscript_artifact(model_dir: Path, *, seed: int = 0) -> Path:
    """A PyTorch artifact without inference.py: the toolkit's default handlers serve TorchScript."""
    import torch

    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    torch.jit.save(torch.jit.script(model.eval()), str(model_dir / "model.pt"))
    return add_ray_serve_app(model_dir)


def build_tf_artifact(model_dir: Path, *, with_handlers: bool = False, seed: int = 0) -> Path:
    """A TF Serving artifact: a Keras model with input ``x`` (None, 4) → ``probabilities``."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(4,), name="x")
    outputs = keras.layers.Dense(3, activation="softmax", name="probabilities")(inputs)
    model = keras.Model(inputs, outputs)
    model_dir.mkdir(parents=True, exist_ok=True)
    model.export(str(model_dir / "1"), verbose=False)
    if with_handlers:
        code = model_dir / "code"
        code.mkdir(exist_ok=True)
        (code / "inference.py").write_text(textwrap.dedent(TF_INFERENCE_PY))
    return model_dir


def pack(model_dir: Path, tarball: Path) -> Path:
    """``model.tar.gz`` with the directory's contents at the archive root, as SageMaker expects."""
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return tarball


TINY_HANDLER_PY = '''
"""A minimal API Gateway proxy handler that forwards to SageMaker Runtime (test fixture)."""
import base64
import json
import os

import boto3
from botocore.config import Config

CLIENT = boto3.client(
    "sagemaker-runtime", config=Config(retries={"max_attempts": 1}, read_timeout=10)
)
ENDPOINT = os.environ["ENDPOINT_NAME"]


def lambda_handler(event, context):
    if event["httpMethod"] == "GET":
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"status": "ok", "event": event})}
    body = event["body"] or ""
    data = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
    content_type = (event["headers"] or {}).get("Content-Type", "application/json")
    try:
        resp = CLIENT.invoke_endpoint(EndpointName=ENDPOINT, Body=data, ContentType=content_type)
    except CLIENT.exceptions.ModelError as err:
        return {"statusCode": 502, "body": json.dumps({"error": err.response["Error"]})}
    if content_type == "text/x-raise":
        raise RuntimeError("boom")
    return {"statusCode": 200, "headers": {"Content-Type": resp["ContentType"]},
            "body": resp["Body"].read().decode(), "isBase64Encoded": False}
'''

PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/ray:serve-ml-sagemaker-cpu-v1.4"
TF_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.19.0-cpu"


def write_cloud_assembly(
    out_dir: Path,
    *,
    stack_name: str,
    model_tarball: Path,
    lambda_dir: Path | None = None,
    image: str = PYTORCH_IMAGE,
    container_env: dict[str, str] | None = None,
    instance_count: int = 1,
    binary_media_types: tuple[str, ...] = ("image/png", "image/jpeg"),
    throttle_rate: float = 50,
    throttle_burst: int = 100,
    lambda_env: dict[str, str] | None = None,
) -> Path:
    """A cloud assembly shaped like `cdk synth`'s for the serving stack (resource types,
    properties, intrinsics and asset manifest as CDK writes them), for tests that must not
    depend on the real stack's synth."""
    import hashlib
    import json
    import shutil

    out_dir.mkdir(parents=True, exist_ok=True)
    model_hash = hashlib.sha256(model_tarball.read_bytes()).hexdigest()
    shutil.copyfile(model_tarball, out_dir / f"asset.{model_hash}.gz")
    if lambda_dir is None:
        lambda_dir = out_dir / "_tiny_handler"
        lambda_dir.mkdir(exist_ok=True)
        (lambda_dir / "tiny_handler.py").write_text(textwrap.dedent(TINY_HANDLER_PY))
        handler = "tiny_handler.lambda_handler"
    else:
        handler = "prediction_gateway.handler.lambda_handler"
    code_hash = hashlib.sha256(str(lambda_dir).encode()).hexdigest()
    code_dir = out_dir / f"asset.{code_hash}"
    if code_dir.exists():
        shutil.rmtree(code_dir)
    shutil.copytree(lambda_dir, code_dir, ignore=shutil.ignore_patterns("__pycache__"))
    bucket = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}
    api_ref = {"Ref": "PredictionApiD1F2E3A4"}
    root = {"Fn::GetAtt": ["PredictionApiD1F2E3A4", "RootResourceId"]}
    alias_uri = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":apigateway:",
                {"Ref": "AWS::Region"},
                ":lambda:path/2015-03-31/functions/",
                {"Ref": "GatewayAliasB5C6D7E8"},
                "/invocations",
            ],
        ]
    }

    def method(res_id: Any, verb: str) -> dict[str, Any]:
        return {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "HttpMethod": verb,
                "ResourceId": res_id,
                "RestApiId": api_ref,
                "ApiKeyRequired": True,
                "AuthorizationType": "NONE",
                "Integration": {
                    "IntegrationHttpMethod": "POST",
                    "Type": "AWS_PROXY",
                    "Uri": alias_uri,
                },
            },
        }

    env_vars = {
        "ENDPOINT_NAME": {"Fn::GetAtt": ["ModelEndpointEndpoint9A8B7C6D", "EndpointName"]},
        "ENDPOINT_CONTENT_TYPE": "application/json",
        "POWERTOOLS_SERVICE_NAME": "prediction-api",
        "LOG_LEVEL": "INFO",
        **(lambda_env or {}),
    }
    resources: dict[str, Any] = {
        "ModelEndpointModel1A2B3C4D": {
            "Type": "AWS::SageMaker::Model",
            "Properties": {
                "ExecutionRoleArn": {"Fn::GetAtt": ["ModelEndpointRoleABCD1234", "Arn"]},
                "PrimaryContainer": {
                    "Environment": container_env or {"SAGEMAKER_PROGRAM": "inference.py"},
                    "Image": image,
                    "ModelDataUrl": {
                        "Fn::Sub": "s3://cdk-hnb659fds-assets-${AWS::AccountId}-"
                        "${AWS::Region}/" + f"{model_hash}.gz"
                    },
                },
            },
        },
        "ModelEndpointConfig5E6F7A8B": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {
                        "InitialInstanceCount": instance_count,
                        "InitialVariantWeight": 1,
                        "InstanceType": "ml.m5.large",
                        "VariantName": "AllTraffic",
                        "ModelName": {"Fn::GetAtt": ["ModelEndpointModel1A2B3C4D", "ModelName"]},
                    }
                ],
            },
        },
        "ModelEndpointEndpoint9A8B7C6D": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {
                "EndpointConfigName": {
                    "Fn::GetAtt": ["ModelEndpointConfig5E6F7A8B", "EndpointConfigName"]
                }
            },
        },
        "GatewayFunction1F2E3D4C": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Code": {"S3Bucket": bucket, "S3Key": f"{code_hash}.zip"},
                "Environment": {"Variables": env_vars},
                "Handler": handler,
                "MemorySize": 512,
                "Role": {"Fn::GetAtt": ["GatewayFunctionRole", "Arn"]},
                "Runtime": "python3.12",
                "Timeout": 29,
            },
            "Metadata": {"aws:asset:path": f"asset.{code_hash}", "aws:asset:property": "Code"},
        },
        "GatewayVersion0A1B2C3D": {
            "Type": "AWS::Lambda::Version",
            "Properties": {"FunctionName": {"Ref": "GatewayFunction1F2E3D4C"}},
        },
        "GatewayAliasB5C6D7E8": {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": {"Ref": "GatewayFunction1F2E3D4C"},
                "FunctionVersion": {"Fn::GetAtt": ["GatewayVersion0A1B2C3D", "Version"]},
                "Name": "live",
            },
        },
        "PredictionApiD1F2E3A4": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {"BinaryMediaTypes": list(binary_media_types), "Name": stack_name},
        },
        "PredictionApiDeployment11223344": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": api_ref},
        },
        "PredictionApiDeploymentStagedev55667788": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "DeploymentId": {"Ref": "PredictionApiDeployment11223344"},
                "RestApiId": api_ref,
                "StageName": "dev",
                "TracingEnabled": True,
                "MethodSettings": [
                    {
                        "DataTraceEnabled": False,
                        "HttpMethod": "*",
                        "ResourcePath": "/*",
                        "ThrottlingBurstLimit": throttle_burst,
                        "ThrottlingRateLimit": throttle_rate,
                    }
                ],
            },
        },
        "PredictionApipredictAABBCCDD": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {"ParentId": root, "PathPart": "predict", "RestApiId": api_ref},
        },
        "PredictionApihealthEEFF0011": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {"ParentId": root, "PathPart": "health", "RestApiId": api_ref},
        },
        "PredictionApipredictPOST99887766": method({"Ref": "PredictionApipredictAABBCCDD"}, "POST"),
        "PredictionApihealthGET55443322": method({"Ref": "PredictionApihealthEEFF0011"}, "GET"),
        "PredictionApiKey77665544": {
            "Type": "AWS::ApiGateway::ApiKey",
            "Properties": {"Enabled": True},
        },
        "PredictionApiUsagePlan33221100": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "ApiStages": [
                    {"ApiId": api_ref, "Stage": {"Ref": "PredictionApiDeploymentStagedev55667788"}}
                ],
                "Throttle": {"BurstLimit": throttle_burst, "RateLimit": throttle_rate},
            },
        },
    }
    (out_dir / f"{stack_name}.template.json").write_text(json.dumps({"Resources": resources}))
    dest = {"123456789012-us-east-1": {"bucketName": "cdk-hnb659fds-assets-123456789012-us-east-1"}}
    assets = {
        "version": "48.0.0",
        "files": {
            model_hash: {
                "source": {"path": f"asset.{model_hash}.gz", "packaging": "file"},
                "destinations": {
                    k: {**v, "objectKey": f"{model_hash}.gz"} for k, v in dest.items()
                },
            },
            code_hash: {
                "source": {"path": f"asset.{code_hash}", "packaging": "zip"},
                "destinations": {
                    k: {**v, "objectKey": f"{code_hash}.zip"} for k, v in dest.items()
                },
            },
        },
    }
    (out_dir / f"{stack_name}.assets.json").write_text(json.dumps(assets))
    manifest = {
        "artifacts": {
            stack_name: {
                "type": "aws:cloudformation:stack",
                "environment": "aws://123456789012/us-east-1",
            }
        }
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    return out_dir

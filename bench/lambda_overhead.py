"""Per-request overhead of the Lambda gateway, excluding the endpoint's own time.

The unmodified handler module runs in-process with its real botocore client; only the network is
cut out: botocore's `before-send` hook answers each InvokeEndpoint with a canned HTTP response, so
serialisation, SigV4 signing, response parsing, our validation, logging and EMF metrics are all
timed. Also timed, side by side: the bare `client.invoke_endpoint(...)` with the same canned answer
(what any caller of the endpoint pays), so the gateway's own share is visible.

    .venv/bin/python bench/lambda_overhead.py --out bench/results
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAMBDA_SRC = REPO / "lambda_src"
EVENTS = REPO / "tests" / "events"
IMAGE_BYTES = 1024 * 1024
TARGET_SMALL_P50_MS = 1.0

log = logging.getLogger("bench.lambda_overhead")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_calls(
    fn: Callable[[], Any], iterations: int, warmup: int
) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms of this thread) per call. CPU time is what the call itself burned, so it
    stays meaningful on a shared, loaded machine where wall time also counts waiting for a core."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(iterations):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - start_cpu) * 1000.0)
        wall.append((time.perf_counter() - start) * 1000.0)
    return wall, cpu


def load_handler() -> Any:
    os.environ.update(
        {
            "ENDPOINT_NAME": "MlServing-dev-digits-endpoint",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "POWERTOOLS_SERVICE_NAME": "prediction-api",
            "POWERTOOLS_METRICS_NAMESPACE": "MlServing",
        }
    )
    # The package from lambda_src/, installed with the project (pip install -e .).
    from prediction_gateway import handler

    return handler


def canned_network(client: Any) -> dict[str, bytes]:
    """Answer every InvokeEndpoint at botocore's last step before the socket.

    Returns the holder of the answer's JSON body; set holder["body"] per case.
    """
    from botocore.awsrequest import AWSResponse
    from urllib3.response import HTTPResponse

    holder = {"body": b"{}"}

    def answer(request: Any, **_: Any) -> AWSResponse:
        body = holder["body"]
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            "x-Amzn-Invoked-Production-Variant": "AllTraffic",
            "x-amzn-RequestId": "00000000-0000-4000-8000-000000000000",
        }
        raw = HTTPResponse(
            body=io.BytesIO(body), headers=headers, status=200, preload_content=False
        )
        return AWSResponse(request.url, 200, headers, raw)

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", answer)
    return holder


class InstantEndpoint:
    """Answers invoke_endpoint at once, without botocore: isolates the gateway's own code."""

    def __init__(self, holder: dict[str, bytes]) -> None:
        self._holder = holder

    def invoke_endpoint(self, **_: Any) -> dict[str, Any]:
        from botocore.response import StreamingBody

        body = self._holder["body"]
        return {
            "Body": StreamingBody(io.BytesIO(body), len(body)),
            "ContentType": "application/json",
        }


def cases() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """name -> (API event, the bare invoke_endpoint kwargs carrying the same payload)."""
    small = json.loads((EVENTS / "apigw_rest_v1_predict_instances.json").read_text())
    image = b"\xff\xd8\xff\xe0" + os.urandom(IMAGE_BYTES - 4)
    image_b64 = base64.b64encode(image).decode()
    raw_image = json.loads((EVENTS / "apigw_rest_v1_predict_jpeg.json").read_text())
    raw_image["body"] = image_b64
    json_image = json.loads((EVENTS / "apigw_rest_v1_predict_image_json.json").read_text())
    json_image["body"] = json.dumps({"image": image_b64})
    json_image_sent = json.dumps({"instances": [{"b64": image_b64}]}).encode()
    return {
        "small JSON (2 instances)": (
            small,
            {"Body": small["body"].encode(), "ContentType": "application/json"},
        ),
        "1 MiB image, raw image/jpeg": (raw_image, {"Body": image, "ContentType": "image/jpeg"}),
        "1 MiB image, JSON {image: b64}": (
            json_image,
            {"Body": json_image_sent, "ContentType": "application/json"},
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--small-iterations", type=int, default=3000, help="small requests timed (default: 3000)"
    )
    parser.add_argument(
        "--image-iterations", type=int, default=200, help="1 MiB requests timed (default: 200)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write lambda_overhead.json here (default: none)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    # The handler's structured logs and EMF lines go to stdout as in Lambda; send them nowhere.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        handler = load_handler()
        client = handler.GATEWAY._client
        holder = canned_network(client)
        results = {}
        for name, (event, bare_kwargs) in cases().items():
            iterations = args.small_iterations if "small" in name else args.image_iterations
            warmup = max(10, iterations // 10)
            inputs = 2 if "small" in name else 1
            holder["body"] = json.dumps({"predictions": [[0.1, 0.9]] * inputs}).encode()

            def through_handler(event: dict[str, Any] = event) -> None:
                response = handler.lambda_handler(event, None)
                assert response["statusCode"] == 200, response["body"]

            def bare_call(kwargs: dict[str, Any] = bare_kwargs) -> None:
                client.invoke_endpoint(EndpointName="MlServing-dev-digits-endpoint", **kwargs)[
                    "Body"
                ].read()

            # Interleave in blocks so drift in machine load hits both alike.
            handler_ms: list[float] = []
            handler_cpu_ms: list[float] = []
            bare_ms: list[float] = []
            bare_cpu_ms: list[float] = []
            block = max(1, iterations // 10)
            for _ in range(10):
                wall, cpu = time_calls(through_handler, block, warmup)
                handler_ms += wall
                handler_cpu_ms += cpu
                wall, cpu = time_calls(bare_call, block, warmup)
                bare_ms += wall
                bare_cpu_ms += cpu
            results[name] = {
                "handler_p50_ms": statistics.median(handler_ms),
                "handler_p99_ms": percentile(handler_ms, 0.99),
                "handler_cpu_p50_ms": statistics.median(handler_cpu_ms),
                "handler_cpu_p99_ms": percentile(handler_cpu_ms, 0.99),
                "bare_invoke_p50_ms": statistics.median(bare_ms),
                "bare_invoke_p99_ms": percentile(bare_ms, 0.99),
                "bare_invoke_cpu_p50_ms": statistics.median(bare_cpu_ms),
                "gateway_share_p50_ms": statistics.median(handler_ms) - statistics.median(bare_ms),
                "gateway_share_cpu_p50_ms": statistics.median(handler_cpu_ms)
                - statistics.median(bare_cpu_ms),
                "samples": len(handler_ms),
            }
        # Our code alone: the client itself swapped for an instant stand-in (no botocore work).
        handler.GATEWAY._client = InstantEndpoint(holder)
        for name, (event, _) in cases().items():
            iterations = args.small_iterations if "small" in name else args.image_iterations
            inputs = 2 if "small" in name else 1
            holder["body"] = json.dumps({"predictions": [[0.1, 0.9]] * inputs}).encode()

            def gateway_only(event: dict[str, Any] = event) -> None:
                handler.lambda_handler(event, None)

            wall, cpu = time_calls(gateway_only, iterations, 20)
            results[name]["gateway_only_p50_ms"] = statistics.median(wall)
            results[name]["gateway_only_cpu_p50_ms"] = statistics.median(cpu)
        handler.GATEWAY._client = client
    for name, r in results.items():
        log.info(
            "%-31s gateway code alone (instant endpoint client): wall p50 %7.3f CPU p50 %7.3f",
            name,
            r["gateway_only_p50_ms"],
            r["gateway_only_cpu_p50_ms"],
        )
    for name, r in results.items():
        log.info(
            "%-31s handler wall p50 %7.3f p99 %7.3f | CPU p50 %7.3f p99 %7.3f | "
            "bare invoke wall p50 %6.3f CPU p50 %6.3f | gateway's own share wall %6.3f CPU %6.3f",
            name,
            r["handler_p50_ms"],
            r["handler_p99_ms"],
            r["handler_cpu_p50_ms"],
            r["handler_cpu_p99_ms"],
            r["bare_invoke_p50_ms"],
            r["bare_invoke_cpu_p50_ms"],
            r["gateway_share_p50_ms"],
            r["gateway_share_cpu_p50_ms"],
        )
    small = results["small JSON (2 instances)"]
    for kind in ("handler_p50_ms", "handler_cpu_p50_ms"):
        verdict = "PASS" if small[kind] < TARGET_SMALL_P50_MS else "FAIL"
        log.info(
            "small request %s %.3f ms (target < %.1f ms): %s",
            kind,
            small[kind],
            TARGET_SMALL_P50_MS,
            verdict,
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "lambda_overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

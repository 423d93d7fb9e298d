"""One model-server instance, run like the container: ``python -m local_stage.model_server``.

Reads the container's environment (``SAGEMAKER_BIND_TO_PORT``, the batching and timeout variables,
``SAGEMAKER_PROGRAM``...) the way the SageMaker container does; flags override them. The local
stage's ``up`` and ``serve-model`` commands start one of these per instance.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from container_contract.errors import ContainerError
from container_contract.handler import ServingHandler
from local_stage.errors import LocalStageError
from local_stage.model_server.batching import BatchingConfig
from local_stage.model_server.server import ModelServer, model_thread, serve

log = logging.getLogger("local_stage.model_server")

# PyTorch models run in real Ray Serve (container_contract.ray_serve), not here.
FLAVOURS = ("tensorflow",)


def _env_bool(env: Mapping[str, str], key: str) -> bool:
    return env.get(key, "false").strip().lower() in ("1", "true", "yes")


def _env_number(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise LocalStageError(f"container env {key}={raw!r} is not a number") from None


def batching_from_env(flavour: str, env: Mapping[str, str]) -> tuple[int, float]:
    """(max batch size, max delay in seconds) as the TF Serving container reads them."""
    if not _env_bool(env, "SAGEMAKER_TFS_ENABLE_BATCHING"):
        return 1, 0.0
    size = int(_env_number(env, "SAGEMAKER_TFS_MAX_BATCH_SIZE", 8))
    return size, _env_number(env, "SAGEMAKER_TFS_BATCH_TIMEOUT_MICROS", 1000) / 1e6


def timeout_from_env(env: Mapping[str, str]) -> float:
    return _env_number(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60.0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m local_stage.model_server",
        description="Serve an unpacked model artifact with the SageMaker container HTTP contract.",
    )
    p.add_argument("--model-dir", type=Path, required=True, help="the unpacked model.tar.gz")
    p.add_argument("--flavour", choices=FLAVOURS, required=True, help="which container's contract")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default: $SAGEMAKER_BIND_TO_PORT, else 8080, as in the container)",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help="dynamic batching: most requests per model call (default: from the container env: "
        "SAGEMAKER_TFS_MAX_BATCH_SIZE when SAGEMAKER_TFS_ENABLE_BATCHING is true; 1 = off)",
    )
    p.add_argument(
        "--max-batch-delay-ms",
        type=float,
        default=None,
        help="dynamic batching: longest wait for a fuller batch when the model is idle (default: "
        "SAGEMAKER_TFS_BATCH_TIMEOUT_MICROS)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=100,
        help="requests an instance holds at once (decoding, queued, in the model) beyond which "
        "new ones are refused with an overload error (default: 100)",
    )
    p.add_argument(
        "--request-timeout-s",
        type=float,
        default=None,
        help="per-request limit (default: $SAGEMAKER_MODEL_SERVER_TIMEOUT, else 60)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads for the model (default: CPU count divided by --instances times "
        "--workers)",
    )
    p.add_argument(
        "--instances",
        type=int,
        default=1,
        help="how many instances share this machine; sizes the default --threads (default: 1)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="how many worker processes serve this instance (each started with --reuse-port); "
        "sizes the default --threads (default: 1)",
    )
    p.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind with SO_REUSEPORT so that several worker processes share the port, as the "
        "container's model-server workers share 8080",
    )
    p.add_argument(
        "--drain-timeout-s",
        type=float,
        default=30.0,
        help="on SIGTERM, how long in-flight requests may take to finish (default: 30)",
    )
    return p.parse_args(argv)


def build_server(args: argparse.Namespace, env: Mapping[str, str]) -> ModelServer:
    if not args.model_dir.is_dir():
        raise LocalStageError(f"--model-dir {args.model_dir} is not a directory")
    if args.workers < 1 or args.instances < 1:
        raise LocalStageError("--workers and --instances must be at least 1")
    threads = args.threads or max(1, (os.cpu_count() or 1) // (args.instances * args.workers))
    env_size, env_delay_s = batching_from_env(args.flavour, env)
    size = args.max_batch_size if args.max_batch_size is not None else env_size
    delay_s = (
        args.max_batch_delay_ms / 1000.0 if args.max_batch_delay_ms is not None else env_delay_s
    )
    try:
        batching = BatchingConfig(
            max_batch_size=size, max_delay_s=delay_s, max_queue=args.max_queue
        )
    except ValueError as exc:
        raise LocalStageError(str(exc)) from exc
    timeout_s = args.request_timeout_s or timeout_from_env(env)
    port_holder: dict[str, int] = {"port": args.port}
    model_pool = model_thread()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
    from container_contract.tfs import TfsHandler

    def rest_base_url() -> str:
        return f"http://{args.host}:{port_holder['port']}"

    handler: ServingHandler = TfsHandler(args.model_dir, env, rest_base_url)
    server = ModelServer(
        handler,
        batching,
        request_timeout_s=timeout_s,
        model_pool=model_pool,
    )
    log.info(
        "%s model loaded from %s: %s; batching max %d / %.1f ms, queue %d, timeout %g s, "
        "%d threads",
        args.flavour,
        args.model_dir,
        handler.describe(),
        batching.max_batch_size,
        batching.max_delay_s * 1000,
        batching.max_queue,
        timeout_s,
        threads,
    )
    return server


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("LOCAL_STAGE_LOG_LEVEL", "INFO"),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args = parse_args(argv)
    if args.port is None:
        args.port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    try:
        server = build_server(args, os.environ)
    except ContainerError as exc:
        log.error("%s", exc)
        return 2
    asyncio.run(
        serve(
            server,
            args.host,
            args.port,
            drain_timeout_s=args.drain_timeout_s,
            reuse_port=args.reuse_port,
        )
    )
    # Everything is drained and closed; skip TensorFlow's slow interpreter teardown (seconds).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

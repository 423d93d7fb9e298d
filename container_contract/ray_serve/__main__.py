"""``python -m container_contract.ray_serve``: the container's ``serve`` entrypoint."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from container_contract.errors import ContainerError
from container_contract.ray_serve.adapter import make_adapter
from container_contract.ray_serve.environment import (
    SERVE_PORT_VAR,
    backend_timeout_s,
    prepare_environment,
)
from container_contract.ray_serve.processes import TEMP_ROOT, kill_leftovers
from container_contract.ray_serve.serve import check_requirements, start_serve, wait_running

log = logging.getLogger("container_contract.ray_serve")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m container_contract.ray_serve",
        description="Run an unpacked PyTorch artifact as AWS's Ray Serve container does.",
    )
    p.add_argument("--model-dir", type=Path, required=True, help="the unpacked model.tar.gz")
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
        help="the adapter's port (default $SAGEMAKER_BIND_TO_PORT, else 8080)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the adapter's address (default 127.0.0.1)")
    p.add_argument(
        "--serve-port", type=int, default=0, help="Serve's HTTP port (default: a free one)"
    )
    p.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs the Ray head offers the replicas (default: this machine's)",
    )
    p.add_argument(
        "--start-timeout-s",
        type=float,
        default=300.0,
        help="how long the application may take to become RUNNING (default 300)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from container_contract.aio import serve_app

    model_dir = args.model_dir.resolve()
    temp_dir = tempfile.mkdtemp(prefix=f"ray-{os.getpid()}-", dir=TEMP_ROOT)
    try:
        if not model_dir.is_dir():
            raise ContainerError(f"--model-dir {model_dir} is not a directory")
        check_requirements(model_dir)
        os.environ.update(prepare_environment(model_dir, dict(os.environ), temp_dir))
        timeout_s = backend_timeout_s(os.environ)
        serve_port = args.serve_port or int(os.environ[SERVE_PORT_VAR])
        started = time.perf_counter()
        start_serve(model_dir, serve_port, args.num_cpus, temp_dir)
        wait_running(args.start_timeout_s)
    except ContainerError as exc:
        log.error("%s", exc)
        _shutdown(temp_dir)
        return 2
    log.info(
        "Ray Serve application RUNNING on :%d after %.1f s",
        serve_port,
        time.perf_counter() - started,
    )

    async def _no_drain(_timeout_s: float) -> None:
        return None

    try:
        asyncio.run(
            serve_app(
                make_adapter(f"http://127.0.0.1:{serve_port}", timeout_s),
                args.host,
                args.port,
                _no_drain,
                0.0,
            )
        )
    finally:
        _shutdown(temp_dir)
    return 0


def _shutdown(temp_dir: str) -> None:
    import shutil

    import ray

    # The cluster is private to this process: stopping it ends the replicas too. (Serve's own
    # graceful shutdown waits on the replicas and can hang a stopping local stage.)
    ray.shutdown()
    kill_leftovers(os.getpid())
    shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

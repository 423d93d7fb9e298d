"""The model-server processes of the stack's endpoint: one child per instance (per worker for the
TF Serving emulation), on ports held for this process's life, and the runtime API's routing to
them."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from container_contract.artifact import unpack_artifact
from container_contract.ports import BLOCK_SIZE, PortPool
from local_stage.artifact_download import download_model_data
from local_stage.errors import LocalStageError
from local_stage.procs import Child
from local_stage.template import IDLE_ENV

log = logging.getLogger("local_stage")

# Ports of the supervisor's children (instances, the runtime API), from blocks held while this
# process runs: a port merely free when picked could be taken before the child binds it.
PORTS = PortPool()


def model_server_workers(
    args: argparse.Namespace, flavour: str, env: dict[str, str], instances: int
) -> int:
    """Worker processes per TF Serving instance: ``--workers``, else 1 (one process, as the
    container runs one TF Serving). PyTorch models run in Ray Serve, whose replica count comes
    from the artifact's ``config.yaml``."""
    if args.workers is None or flavour != "tensorflow":
        return 1
    if args.workers < 1:
        raise LocalStageError("--workers: the worker count must be at least 1")
    return int(args.workers)


def _instance_ports(count: int) -> list[int]:
    """A port for each instance of a variant, from a block this process claims for its life.

    An instance binds its port only after it has loaded the model (seconds, for Ray Serve after
    Ray is up), and is restarted on the same port: a port merely free when picked could be taken
    meanwhile (container_contract/ports.py).
    """
    if count > BLOCK_SIZE:
        raise LocalStageError(
            f"{count} instances of one variant: the local stage runs at most {BLOCK_SIZE}; "
            "lower --instances"
        )
    return PORTS.take(count)


def _ray_container_child(
    args: argparse.Namespace, variant: Any, model_dir: Path, instance: int, port: int
) -> Child:
    """One instance of a PyTorch variant: AWS's Ray Serve container (``container_contract.ray_serve``)."""
    env = {**os.environ, **variant.model.environment, "SAGEMAKER_BIND_TO_PORT": str(port)}
    if args.request_timeout_s is not None:
        env["RAYSERVE_BACKEND_TIMEOUT"] = str(max(1, round(args.request_timeout_s)))
    argv = [
        sys.executable,
        "-m",
        "container_contract.ray_serve",
        "--model-dir",
        str(model_dir),
        "--port",
        str(port),
        "--start-timeout-s",
        str(args.start_timeout_s),
    ]
    return Child(
        name=f"model/{variant.name}/{instance}",
        argv=argv,
        env=env,
        port=port,
        ping_path="/ping",
        restart=True,
        kill_group=True,
        extra={"role": "model-server", "variant": variant.name, "instance": instance, "worker": 0},
    )


def _model_server_argv(
    args: argparse.Namespace, model: Any, model_dir: Path, port: int, count: int, workers: int
) -> list[str]:
    """One TF Serving instance's command line (the local model server)."""
    # The instance's queue bound is shared out between its workers.
    queue_per_worker = max(1, -(-args.max_queue // workers))
    argv = [
        sys.executable,
        "-m",
        "local_stage.model_server",
        "--model-dir",
        str(model_dir),
        "--flavour",
        model.flavour,
        "--port",
        str(port),
        "--instances",
        str(count),
        "--workers",
        str(workers),
        "--max-queue",
        str(queue_per_worker),
    ]
    if workers > 1:
        argv.append("--reuse-port")
    if args.max_batch_size is not None:
        argv += ["--max-batch-size", str(args.max_batch_size)]
    if args.max_batch_delay_ms is not None:
        argv += ["--max-batch-delay-ms", str(args.max_batch_delay_ms)]
    if args.request_timeout_s is not None:
        argv += ["--request-timeout-s", str(args.request_timeout_s)]
    return argv


def _model_server_worker_children(
    args: argparse.Namespace, variant: Any, model_dir: Path, ports: list[int], workers: int
) -> list[Child]:
    """The worker children of each TF Serving instance of the variant; a worker shares its
    instance's port when there are several."""
    model = variant.model
    count = len(ports)
    children = []
    for i, port in enumerate(ports):
        env = {**os.environ, **model.environment, "SAGEMAKER_BIND_TO_PORT": str(port)}
        argv = _model_server_argv(args, model, model_dir, port, count, workers)
        for w in range(workers):
            name = f"model/{variant.name}/{i}" + (f"/w{w}" if workers > 1 else "")
            child = Child(
                name=name,
                argv=argv,
                env=env,
                port=port,
                ping_path="/ping",
                shares_port=workers > 1,
                restart=True,
                extra={
                    "role": "model-server",
                    "variant": variant.name,
                    "instance": i,
                    "worker": w,
                },
            )
            children.append(child)
    return children


def component_routing(variant: Any) -> dict[str, Any]:
    """The runtime API's view of the variant's inference component (none: {})."""
    component = variant.inference_component
    if component is None:
        return {}
    idle_s = component.scale_to_zero_idle_s
    override = os.environ.get(IDLE_ENV, "").strip()
    if idle_s is not None and override:
        try:
            idle_s = float(override)
        except ValueError:
            raise LocalStageError(f"{IDLE_ENV}={override!r} is not a number of seconds") from None
        if idle_s <= 0:
            raise LocalStageError(f"{IDLE_ENV}={override!r} must be a positive number of seconds")
    if idle_s is not None:
        log.info(
            "inference component %s scales to zero after %g s idle%s",
            component.name,
            idle_s,
            f" ({IDLE_ENV})" if override else " (Application Auto Scaling's scale-in window)",
        )
    return {"inference_component": component.name, "idle_s": idle_s}


def _artifact(args: argparse.Namespace, variant: Any, run_dir: Path) -> Path:
    """The variant's model.tar.gz: ``--model-data``, else the cloud assembly's asset, else the
    S3 object the Model names (downloaded)."""
    model = variant.model
    if args.model_data:
        return Path(args.model_data)
    if model.model_data_path is not None:
        return Path(model.model_data_path)
    assert model.model_data_url is not None
    return download_model_data(
        model.model_data_url, run_dir / "downloads" / variant.name / "model.tar.gz"
    )


def model_server_children(
    args: argparse.Namespace, spec: Any, run_dir: Path
) -> tuple[list[Child], dict[str, Any]]:
    """Model-server children for each instance of each variant (its InitialInstanceCount).

    An instance is one port; its worker processes share it (SO_REUSEPORT), each a child of its
    own in state.json, restarted on its own when it dies.
    """
    children: list[Child] = []
    routing: dict[str, Any] = {"variants": []}
    for variant in spec.endpoint.variants:
        model = variant.model
        tarball = _artifact(args, variant, run_dir)
        model_dir = unpack_artifact(tarball, run_dir / "model" / variant.name)
        count = args.instances or variant.initial_instance_count
        ports = _instance_ports(count)
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        workers = model_server_workers(args, model.flavour, model.environment, count)
        if model.flavour == "pytorch":
            for i, port in enumerate(ports):
                children.append(_ray_container_child(args, variant, model_dir, i, port))
        else:
            children += _model_server_worker_children(args, variant, model_dir, ports, workers)
        routing["variants"].append(
            {
                "name": variant.name,
                "instances": urls,
                **component_routing(variant),
            }
        )
        if model.flavour == "pytorch":
            log.info(
                "variant %s: %d instance(s) of %s in Ray Serve (artifact %s)",
                variant.name,
                count,
                model.logical_id,
                tarball,
            )
        else:
            log.info(
                "variant %s: %d instance(s) x %d worker(s) of %s (%s container, artifact %s)",
                variant.name,
                count,
                workers,
                model.logical_id,
                model.flavour,
                tarball,
            )
    return children, routing

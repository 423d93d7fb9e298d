"""``up`` and ``serve-model``: start the stack's processes under one supervisor, in order (model
server instances, the runtime API, the API front), send a first request, print how to call it;
on Ctrl-C drain and stop them front to back."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from local_stage.capacity import follow_capacity
from local_stage.errors import LocalStageError
from local_stage.first_request import (
    example_text,
    find_sample,
    smoke_request,
    smoke_text_request,
    try_command,
)
from local_stage.model_instances import PORTS, model_server_children
from local_stage.procs import Child, Supervisor
from local_stage.template import StackSpec, load_stack


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise LocalStageError(
                f"port {port} on {host} is in use ({exc.strerror}); pick another with --port"
            ) from None


async def _start_runtime_api(
    args: argparse.Namespace,
    spec: StackSpec,
    routing: dict[str, Any],
    run_dir: Path,
    supervisor: Supervisor,
) -> tuple[Child, str]:
    """The runtime API child, given the instances' routing; returns it and its URL once ready."""
    # Not an ephemeral port: Ray's processes keep binding those (its metrics agent took one a
    # test had picked for the API front), and the runtime API is restarted on its port.
    (runtime_port,) = PORTS.take(1)
    container_timeout_s = args.request_timeout_s or 60.0
    config = {
        "region": spec.region,
        "account": spec.account,
        "endpoints": {
            spec.endpoint.name: {**routing, "container_timeout_s": container_timeout_s + 1}
        },
    }
    (run_dir / "runtime.json").write_text(json.dumps(config, indent=2))
    runtime = Child(
        name="runtime-api",
        argv=[
            sys.executable,
            "-m",
            "local_stage",
            "runtime-api",
            "--config",
            str(run_dir / "runtime.json"),
            "--port",
            str(runtime_port),
        ],
        env=dict(os.environ),
        port=runtime_port,
        restart=True,
        extra={"role": "runtime-api"},
    )
    await supervisor.start(runtime)
    await supervisor.wait_ready(runtime, 30)
    return runtime, f"http://127.0.0.1:{runtime_port}"


async def _start_api_front(
    args: argparse.Namespace, api_key: str, runtime_url: str, supervisor: Supervisor
) -> Child:
    """The API front child (API Gateway + the Lambda functions), once it answers."""
    front_argv = [
        sys.executable,
        "-m",
        "local_stage",
        "api-front",
        "--stack",
        args.stack,
        "--app-dir",
        str(args.app_dir),
        "--runtime-url",
        runtime_url,
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    for key, value in args.lambda_env or []:
        front_argv += ["--lambda-env", f"{key}={value}"]
    front = Child(
        name="api-front",
        argv=front_argv,
        env={**os.environ, "LOCAL_STAGE_API_KEY": api_key},
        port=args.port,
        restart=True,
        extra={"role": "api-front"},
    )
    await supervisor.start(front)
    await supervisor.wait_ready(front, 60)
    return front


async def _greet(
    args: argparse.Namespace,
    spec: StackSpec,
    url: str,
    api_key: str,
    runtime_url: str,
    run_dir: Path,
) -> None:
    """The first request (unless --no-smoke) and the banner: URL, key, a curl line, boto3."""
    sample = (
        Path(args.sample)
        if args.sample
        else find_sample(spec.stack_name.rsplit("-", 1)[-1], Path.cwd())
    )
    text = example_text(run_dir / "model" / spec.endpoint.variants[0].name)
    if not args.no_smoke:
        if text is not None and not args.sample:
            print(await smoke_text_request(url, api_key, text), flush=True)
        else:
            print(await smoke_request(url, api_key, sample), flush=True)
    curl = try_command(url, api_key, sample, text)
    components = [
        v.inference_component.name for v in spec.endpoint.variants if v.inference_component
    ]
    component_note = f", InferenceComponentName {components[0]}" if components else ""
    print(
        "\n"
        f"  Local stage of {spec.stack_name} is up.\n"
        f"  API URL:   {url}   (POST /predict, GET /health)\n"
        f"  API key:   {api_key}\n"
        f"  Try:       {curl}\n"
        f"  boto3:     AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={runtime_url} "
        f"(endpoint {spec.endpoint.name}{component_note})\n"
        f"  State:     {run_dir / 'state.json'} (PIDs, ports)\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )


async def _run_up(args: argparse.Namespace) -> int:
    spec = load_stack(Path(args.app_dir), args.stack)
    run_dir = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="local-stage-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "up":
        _check_port(args.host, args.port)
    api_key = args.api_key or secrets.token_urlsafe(30)
    supervisor = Supervisor(run_dir / "state.json")
    models, routing = model_server_children(args, spec, run_dir)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    groups: list[list[Child]] = []
    follower: asyncio.Task[None] | None = None
    try:
        for child in models:
            await supervisor.start(child)
        await asyncio.gather(*(supervisor.wait_ready(c, args.start_timeout_s) for c in models))
        if args.command == "serve-model":
            supervisor.state_extra = {"instances": routing}
            supervisor.write_state()
            for variant in routing["variants"]:
                print(f"model server ({variant['name']}): {', '.join(variant['instances'])}")
            print(f"state (PIDs, ports): {run_dir / 'state.json'}  -- Ctrl-C stops it")
            groups = [models]
            await stopped.wait()
            return 0
        runtime, runtime_url = await _start_runtime_api(args, spec, routing, run_dir, supervisor)
        front = await _start_api_front(args, api_key, runtime_url, supervisor)
        groups = [[front], [runtime], models]
        follower = loop.create_task(follow_capacity(supervisor, runtime_url, models))
        url = f"http://{args.host}:{args.port}/{spec.api.stage_name}"
        supervisor.state_extra = {
            "stack": spec.stack_name,
            "api_url": url,
            "api_key": api_key,
            "endpoint_name": spec.endpoint.name,
            "runtime_url": runtime_url,
            "run_dir": str(run_dir),
        }
        supervisor.write_state()
        await _greet(args, spec, url, api_key, runtime_url, run_dir)
        await stopped.wait()
        return 0
    finally:
        if follower is not None:
            follower.cancel()
        print("stopping: draining in-flight requests...", flush=True)
        if not groups:
            groups = [list(reversed(supervisor.children))]
        await supervisor.stop_all(groups, args.drain_timeout_s + 5)
        print("stopped", flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    return asyncio.run(_run_up(args))

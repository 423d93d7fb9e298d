"""``python -m local_stage``: run the synthesized stack on this machine.

Commands:
  up           the whole stack: model server instances, runtime API, API front; a first real
               request; prints the URL, an API key and a curl line. Ctrl-C stops it cleanly.
  serve-model  only the model server instances of the stack's endpoint (benchmarks, debugging).
  runtime-api  only the SageMaker Runtime API (``up`` starts it; given a routing config).
  api-front    only the API Gateway + Lambda front (``up`` starts it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from container_contract.aio import serve_app
from container_contract.artifact import unpack_artifact
from container_contract.errors import ContainerError
from container_contract.ports import BLOCK_SIZE, PortPool
from contracts.naming import stack_name
from local_stage.errors import LocalStageError
from local_stage.template import IDLE_ENV

log = logging.getLogger("local_stage")

DEFAULT_PORT = 3000
DEFAULT_STACK = stack_name("dev", "digits")  # what `make local` runs by default


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise LocalStageError(
                f"port {port} on {host} is in use ({exc.strerror}); pick another with --port"
            ) from None


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


# ---------------------------------------------------------------------------------------------
# Child commands
# ---------------------------------------------------------------------------------------------


def cmd_runtime_api(args: argparse.Namespace) -> int:
    from local_stage.runtime_api import RuntimeApi, endpoints_from_config

    config = json.loads(Path(args.config).read_text())
    api = RuntimeApi(
        endpoints_from_config(config),
        region=config.get("region", "us-east-1"),
        account=config.get("account", "000000000000"),
    )
    asyncio.run(serve_app(api.app(), args.host, args.port, api.drain, args.drain_timeout_s))
    return 0


def cmd_api_front(args: argparse.Namespace) -> int:
    from local_stage.template import load_stack

    spec = load_stack(Path(args.app_dir), args.stack)
    api_key = os.environ.get("LOCAL_STAGE_API_KEY", "")
    if not api_key:
        raise LocalStageError("LOCAL_STAGE_API_KEY is not set (``up`` sets it)")
    asyncio.run(_serve_api_front(args, spec, api_key))
    return 0


async def _serve_api_front(args: argparse.Namespace, spec: Any, api_key: str) -> None:
    from local_stage.api_front import ApiFront
    from local_stage.lambda_environments import EnvironmentPool

    functions: dict[str, EnvironmentPool] = {}
    try:
        await _start_functions(args, spec, functions)
    except BaseException:
        for pool in functions.values():
            await pool.close()
        raise
    front = ApiFront(spec.api, functions, api_key=api_key, region=spec.region, account=spec.account)
    await serve_app(front.app(), args.host, args.port, front.drain, args.drain_timeout_s)


async def _start_functions(args: argparse.Namespace, spec: Any, functions: dict[str, Any]) -> None:
    from local_stage.api_front import lambda_environment
    from local_stage.lambda_environments import EnvironmentPool

    for fn in spec.functions:
        function_name = f"{args.stack}-{fn.logical_id}"[:64]
        env = lambda_environment(
            fn,
            function_name=function_name,
            region=spec.region,
            runtime_url=args.runtime_url,
            overrides=dict(args.lambda_env or []),
        )
        pool = EnvironmentPool(
            fn,
            env,
            function_name=function_name,
            region=spec.region,
            account=spec.account,
            max_environments=args.concurrency,
        )
        # One environment (or the provisioned ones) initialised now: a handler whose init fails
        # stops the stage here, with its error.
        functions[fn.logical_id] = pool
        await pool.start(warm=fn.provisioned_concurrency)
        log.info("Lambda %s (%s) initialised from %s", fn.logical_id, fn.handler, fn.code_dir)


# ---------------------------------------------------------------------------------------------
# up / serve-model
# ---------------------------------------------------------------------------------------------


def _python() -> str:
    return sys.executable


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


# Ports of the supervisor's children (instances, the runtime API), from blocks held while this
# process runs: a port merely free when picked could be taken before the child binds it.
_PORTS = PortPool()


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
    return _PORTS.take(count)


def _ray_container_child(
    args: argparse.Namespace, variant: Any, model_dir: Path, instance: int, port: int
) -> Any:
    """One instance of a PyTorch variant: AWS's Ray Serve container (``container_contract.ray_serve``)."""
    from local_stage.procs import Child

    env = {**os.environ, **variant.model.environment, "SAGEMAKER_BIND_TO_PORT": str(port)}
    if args.request_timeout_s is not None:
        env["RAYSERVE_BACKEND_TIMEOUT"] = str(max(1, round(args.request_timeout_s)))
    argv = [
        _python(),
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


def download_model_data(url: str, target: Path) -> Path:
    """An existing S3 artifact (model_data_url), fetched with your AWS credentials as SageMaker
    fetches it at endpoint creation. ``AWS_ENDPOINT_URL_S3`` points boto3 at a stand-in."""
    import re

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
    if not match:
        raise LocalStageError(f"the Model's ModelDataUrl {url!r} is not an s3://bucket/key URI")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading the model artifact %s", url)
    try:
        boto3.client("s3").download_file(match.group(1), match.group(2), str(target))
    except (ClientError, BotoCoreError) as exc:
        raise LocalStageError(
            f"cannot download the model artifact {url} ({exc}): the local stage fetches an "
            "existing S3 artifact with your AWS credentials; or pass --model-data <model.tar.gz>"
        ) from exc
    return target


def _component_routing(variant: Any) -> dict[str, Any]:
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


async def _follow_capacity(
    supervisor: Any, runtime_url: str, models: list[Any], interval_s: float = 0.2
) -> None:
    """Run each component's instances while it has a copy, stop them while it has none.

    The runtime API decides (idle period, a request finding no copy); this process owns the
    instances' processes, so it stops them (freeing the model's memory) and starts them again.
    """
    import aiohttp

    by_variant: dict[str, list[Any]] = {}
    for child in models:
        by_variant.setdefault(child.extra["variant"], []).append(child)
    async with aiohttp.ClientSession() as session:
        while True:
            await asyncio.sleep(interval_s)
            try:
                async with session.get(
                    f"{runtime_url}/_local/capacity", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    components = (await resp.json())["components"]
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                continue  # the runtime API is restarting
            for component in components:
                children = by_variant.get(component["variant"], [])
                running = [c for c in children if c.proc is not None]
                if component["copies"] == 0 and running:
                    print(
                        f"scale to zero: stopping {len(running)} instance process(es) of "
                        f"{component['component']}",
                        flush=True,
                    )
                    await asyncio.gather(*(supervisor.park(c, 30) for c in running))
                elif component["copies"] > 0 and len(running) < len(children):
                    print(f"scaling out from zero: starting {component['component']}", flush=True)
                    for child in children:
                        if child.proc is None:
                            await supervisor.start(child)


def _model_server_children(
    args: argparse.Namespace, spec: Any, run_dir: Path
) -> tuple[list[Any], dict[str, Any]]:
    """Model-server children for each instance of each variant (its InitialInstanceCount).

    An instance is one port; its worker processes share it (SO_REUSEPORT), each a child of its
    own in state.json, restarted on its own when it dies.
    """
    from local_stage.procs import Child

    children = []
    routing: dict[str, Any] = {"variants": []}
    for variant in spec.endpoint.variants:
        model = variant.model
        if args.model_data:
            tarball = Path(args.model_data)
        elif model.model_data_path is not None:
            tarball = model.model_data_path
        else:
            assert model.model_data_url is not None
            tarball = download_model_data(
                model.model_data_url, run_dir / "downloads" / variant.name / "model.tar.gz"
            )
        model_dir = unpack_artifact(tarball, run_dir / "model" / variant.name)
        count = args.instances or variant.initial_instance_count
        ports = _instance_ports(count)
        if model.flavour == "pytorch":
            urls = []
            for i in range(count):
                port = ports[i]
                children.append(_ray_container_child(args, variant, model_dir, i, port))
                urls.append(f"http://127.0.0.1:{port}")
            routing["variants"].append(
                {
                    "name": variant.name,
                    "instances": urls,
                    **_component_routing(variant),
                }
            )
            log.info(
                "variant %s: %d instance(s) of %s in Ray Serve (artifact %s)",
                variant.name,
                count,
                model.logical_id,
                tarball,
            )
            continue
        workers = model_server_workers(args, model.flavour, model.environment, count)
        # The instance's queue bound is shared out between its workers.
        queue_per_worker = max(1, -(-args.max_queue // workers))
        urls = []
        for i in range(count):
            port = ports[i]
            env = {**os.environ, **model.environment, "SAGEMAKER_BIND_TO_PORT": str(port)}
            argv = [
                _python(),
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
            urls.append(f"http://127.0.0.1:{port}")
        routing["variants"].append(
            {
                "name": variant.name,
                "instances": urls,
                **_component_routing(variant),
            }
        )
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


def _find_sample(model_name: str, project_root: Path) -> Path | None:
    for folder in ("test", "valid", "train"):
        base = project_root / "data" / model_name / folder
        if base.is_dir():
            for path in sorted(base.glob("*/*.png")) + sorted(base.glob("*/*.jpg")):
                return path
    return None


def _example_text(model_dir: Path) -> str | None:
    """A text model's example text from its manifest; None for other models (or no manifest)."""
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("task") != "text-classification":
        return None
    instances = (manifest.get("example") or {}).get("body", {}).get("instances") or []
    text = instances[0] if instances and isinstance(instances[0], str) else ""
    return text or "the flight was great"


def try_command(url: str, api_key: str, sample: Path | None, example_text: str | None) -> str:
    """The curl line printed at start-up: one text (text/plain) for a text model, else an image."""
    head = f"curl -sS -X POST {shlex.quote(url + '/predict')} -H {shlex.quote('x-api-key: ' + api_key)}"
    if example_text is not None:
        return f"{head} -H 'Content-Type: text/plain' --data-binary {shlex.quote(example_text)}"
    example = sample or Path("digit.png")
    ctype = "image/jpeg" if example.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return f"{head} -H 'Content-Type: {ctype}' --data-binary @{shlex.quote(str(example))}"


async def _smoke_text_request(url: str, api_key: str, text: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(
            f"{url}/predict",
            data=text.encode("utf-8"),
            headers={"x-api-key": api_key, "Content-Type": "text/plain; charset=utf-8"},
        ) as resp:
            body = await resp.text()
            elapsed_ms = (time.perf_counter() - started) * 1000
    return f"POST text/plain {text!r} -> {resp.status} in {elapsed_ms:.0f} ms: {body[:300]}"


async def _smoke_request(url: str, api_key: str, sample: Path | None) -> str:
    import aiohttp

    if sample is None:
        return "no sample image found (data/<model>/test/<class>/*.png); skipped the first request"
    content_type = "image/png" if sample.suffix.lower() == ".png" else "image/jpeg"
    expected = sample.parent.name
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(
            f"{url}/predict",
            data=sample.read_bytes(),
            headers={"x-api-key": api_key, "Content-Type": content_type},
        ) as resp:
            text = await resp.text()
            elapsed_ms = (time.perf_counter() - started) * 1000
    verdict = ""
    if resp.status == 200:
        verdict = f" (the image's folder says {expected!r})"
    return f"POST {sample} -> {resp.status} in {elapsed_ms:.0f} ms: {text[:300]}{verdict}"


async def _run_up(args: argparse.Namespace) -> int:
    from local_stage.procs import Child, Supervisor
    from local_stage.template import load_stack

    spec = load_stack(Path(args.app_dir), args.stack)
    run_dir = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="local-stage-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "up":
        _check_port(args.host, args.port)
    api_key = args.api_key or secrets.token_urlsafe(30)
    supervisor = Supervisor(run_dir / "state.json")
    models, routing = _model_server_children(args, spec, run_dir)
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
        # Not an ephemeral port: Ray's processes keep binding those (its metrics agent took one a
        # test had picked for the API front), and the runtime API is restarted on its port.
        (runtime_port,) = _PORTS.take(1)
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
                _python(),
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
        runtime_url = f"http://127.0.0.1:{runtime_port}"
        front_argv = [
            _python(),
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
        groups = [[front], [runtime], models]
        follower = loop.create_task(_follow_capacity(supervisor, runtime_url, models))
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
        sample = (
            Path(args.sample)
            if args.sample
            else _find_sample(spec.stack_name.rsplit("-", 1)[-1], Path.cwd())
        )
        text = _example_text(run_dir / "model" / spec.endpoint.variants[0].name)
        if not args.no_smoke:
            if text is not None and not args.sample:
                print(await _smoke_text_request(url, api_key, text), flush=True)
            else:
                print(await _smoke_request(url, api_key, sample), flush=True)
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


# ---------------------------------------------------------------------------------------------


def _add_stack_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--stack",
        default=DEFAULT_STACK,
        help=f"the stack to run (default: {DEFAULT_STACK})",
    )
    p.add_argument(
        "--app-dir",
        default="cdk.out",
        help="the cloud assembly `cdk synth` wrote (default: cdk.out)",
    )


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model-data",
        default=None,
        help="serve this model.tar.gz instead of the template's artifact asset",
    )
    p.add_argument(
        "--instances",
        type=int,
        default=None,
        help="model server instances per variant (default: the variant's "
        "InitialInstanceCount from the template)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="TF Serving model-server worker processes per instance, sharing its port (default: "
        "1). PyTorch models run in Ray Serve: their replicas are the artifact's config.yaml",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help="TF Serving: dynamic batching bound (default: the container env's batching "
        "variables in the template; 1 = off). PyTorch: config.yaml's max_batch_size",
    )
    p.add_argument(
        "--max-batch-delay-ms",
        type=float,
        default=None,
        help="longest wait for a fuller batch (default: from the container env)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=100,
        help="requests queued per instance before it refuses more (default: 100)",
    )
    p.add_argument(
        "--request-timeout-s",
        type=float,
        default=None,
        help="per-request model time limit (default: SAGEMAKER_MODEL_SERVER_TIMEOUT "
        "from the container env, else 60; PyTorch: sets RAYSERVE_BACKEND_TIMEOUT)",
    )
    p.add_argument(
        "--run-dir",
        default=None,
        help="where the unpacked model and state.json go (default: a new temp dir)",
    )
    p.add_argument(
        "--start-timeout-s",
        type=float,
        default=180.0,
        help="how long the model may take to load (default: 180)",
    )
    p.add_argument(
        "--drain-timeout-s",
        type=float,
        default=30.0,
        help="on stop, how long in-flight requests may take (default: 30)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_stage",
        description="Run the synthesized MlServing stack on this machine, without AWS or Docker.",
    )
    parser.add_argument("--log-level", default="INFO", help="log level (default: INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole stack and send a first request")
    _add_stack_args(up)
    _add_model_args(up)
    up.add_argument(
        "--host",
        default="127.0.0.1",
        help="API front bind address (default: 127.0.0.1, this machine only)",
    )
    up.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"API front port (default: {DEFAULT_PORT})"
    )
    up.add_argument(
        "--api-key", default=None, help="the API key to accept (default: a random one, printed)"
    )
    up.add_argument(
        "--lambda-env",
        type=_kv,
        action="append",
        metavar="KEY=VALUE",
        help="override a Lambda environment variable (repeatable; default: none)",
    )
    up.add_argument(
        "--sample",
        default=None,
        help="image for the first request (default: the first PNG under data/<model>/test/)",
    )
    up.add_argument("--no-smoke", action="store_true", help="skip the first request")

    sm = sub.add_parser("serve-model", help="start only the model server instances")
    _add_stack_args(sm)
    _add_model_args(sm)

    rt = sub.add_parser("runtime-api", help="only the SageMaker Runtime API (up starts it)")
    rt.add_argument("--config", required=True, help="routing config JSON written by `up`")
    rt.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    rt.add_argument("--port", type=int, required=True, help="port")
    rt.add_argument(
        "--drain-timeout-s",
        type=float,
        default=30.0,
        help="on stop, how long in-flight requests may take (default: 30)",
    )

    fr = sub.add_parser("api-front", help="only the API Gateway + Lambda front (up starts it)")
    _add_stack_args(fr)
    fr.add_argument("--runtime-url", required=True, help="the local runtime API's URL")
    fr.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    fr.add_argument("--port", type=int, required=True, help="port")
    fr.add_argument(
        "--lambda-env",
        type=_kv,
        action="append",
        metavar="KEY=VALUE",
        help="override a Lambda environment variable (repeatable; default: none)",
    )
    fr.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="most Lambda execution environments (processes) at once; more concurrent requests "
        "wait for a free one (default: 8)",
    )
    fr.add_argument(
        "--drain-timeout-s",
        type=float,
        default=30.0,
        help="on stop, how long in-flight requests may take (default: 30)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    commands = {
        "up": cmd_up,
        "serve-model": cmd_up,
        "runtime-api": cmd_runtime_api,
        "api-front": cmd_api_front,
    }
    try:
        return commands[args.command](args)
    except ContainerError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()

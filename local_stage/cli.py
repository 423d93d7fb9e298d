"""``python -m local_stage``: run the synthesized stack on this machine.

Commands:
  up           the whole stack: model server instances, runtime API, API front; a first real
               request; prints the URL, an API key and a curl line. Ctrl-C stops it cleanly.
  serve-model  only the model server instances of the stack's endpoint (benchmarks, debugging).
  runtime-api  only the SageMaker Runtime API (``up`` starts it; given a routing config).
  api-front    only the API Gateway + Lambda front (``up`` starts it).

This module parses the command line and dispatches; ``up.py`` starts the stack,
``child_commands.py`` runs the children ``up`` starts.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence

from container_contract.errors import ContainerError
from contracts.naming import stack_name
from local_stage.child_commands import cmd_api_front, cmd_runtime_api
from local_stage.up import cmd_up

log = logging.getLogger("local_stage")

DEFAULT_PORT = 3000
DEFAULT_STACK = stack_name("dev", "digits")  # what `make local` runs by default


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


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
        default=16,
        help="most Lambda execution environments (processes) at once; more concurrent requests "
        "wait for a free one (default: 16; each holds about 40 MB)",
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

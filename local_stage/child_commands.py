"""The child commands ``up`` starts: ``runtime-api`` (the SageMaker Runtime API from a routing
config) and ``api-front`` (API Gateway + the stack's Lambda functions, each a pool of execution
environments)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from container_contract.aio import serve_app
from local_stage.errors import LocalStageError

log = logging.getLogger("local_stage")


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
    from local_stage.lambda_environments import EnvironmentPool, lambda_environment

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

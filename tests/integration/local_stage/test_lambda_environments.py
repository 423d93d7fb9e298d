"""Lambda's execution environments in the local API front: one request at a time per
environment, its module state kept between requests, a new environment (a cold start) when all
are busy, up to the cap; a failed invocation keeps the environment, a timed-out one replaces it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from local_stage.errors import LocalStageError
from local_stage.lambda_environments import EnvironmentPool, FunctionError, lambda_environment
from local_stage.template import FunctionSpec

HANDLERS = Path(__file__).resolve().parents[2] / "support" / "lambda_handlers"


def _pool(max_environments: int = 2, **env: str) -> EnvironmentPool:
    fn = FunctionSpec("Fn", "probe_handler.handler", "python3.13", HANDLERS, env, 10, 128)
    environment = lambda_environment(
        fn,
        function_name="probe",
        region="us-east-1",
        runtime_url="http://127.0.0.1:9",
        overrides={},
    )
    return EnvironmentPool(
        fn,
        environment,
        function_name="probe",
        region="us-east-1",
        account="123456789012",
        max_environments=max_environments,
    )


def test_environments_serve_one_request_at_a_time_and_keep_their_state():
    async def scenario() -> None:
        pool = _pool(max_environments=2)
        await pool.start(warm=0)  # one environment initialised at start
        try:
            first, _ = await pool.invoke({}, timeout_s=10)
            again, _ = await pool.invoke({}, timeout_s=10)
            # The same warm environment, its module state kept: as on Lambda.
            assert again["pid"] == first["pid"] and again["served"] == first["served"] + 1
            # Two at once: the second finds the first busy and starts an environment of its own.
            (a, _), (b, _) = await asyncio.gather(
                pool.invoke({"sleep_s": 0.5}, timeout_s=10),
                pool.invoke({"sleep_s": 0.5}, timeout_s=10),
            )
            assert a["pid"] != b["pid"]
            assert pool.cold_starts == 2
            # Three at once with a cap of two: the third waits for a free one.
            results = await asyncio.gather(
                *(pool.invoke({"sleep_s": 0.3}, timeout_s=10) for _ in range(3))
            )
            assert len({r["pid"] for r, _ in results}) == 2
            assert pool.cold_starts == 2
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_failed_invocation_keeps_the_environment_a_timed_out_one_replaces_it():
    async def scenario() -> None:
        pool = _pool(max_environments=1)
        await pool.start(warm=1)
        try:
            before, _ = await pool.invoke({}, timeout_s=10)
            with pytest.raises(FunctionError, match="ValueError: asked to fail"):
                await pool.invoke({"raise": True}, timeout_s=10)
            after, _ = await pool.invoke({}, timeout_s=10)
            assert after["pid"] == before["pid"]
            with pytest.raises(TimeoutError):
                await pool.invoke({"sleep_s": 5}, timeout_s=0.5)
            fresh, _ = await pool.invoke({}, timeout_s=10)
            assert fresh["pid"] != before["pid"] and fresh["served"] == 1
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_handler_whose_init_fails_stops_the_start_with_its_error():
    async def scenario() -> None:
        pool = _pool(PROBE_FAIL_INIT="1")
        try:
            with pytest.raises(LocalStageError, match="failed to initialise: RuntimeError: PROBE"):
                await pool.start(warm=0)
        finally:
            await pool.close()

    asyncio.run(scenario())

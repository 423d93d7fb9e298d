"""Lambda's execution environments for the local API front: one process per environment.

Lambda runs one request at a time per execution environment and keeps an environment for the
next request; a request that finds none free starts a new one (a cold start: the handler module's
init runs again), up to the function's concurrency. Provisioned concurrency keeps environments
initialised before any request. This pool does the same with processes
(``local_stage/lambda_env_worker.py``), so what the handler keeps per environment (its clients,
Powertools' metric buffer, its cold-start flag) behaves as on AWS, and one request cannot see
another's state.

Past ``max_environments`` (a limit of this machine, lower than the function's reserved
concurrency) a request waits for a free environment instead of being throttled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_stage.errors import LocalStageError
from local_stage.template import FunctionSpec

log = logging.getLogger("local_stage.lambda")


def lambda_environment(
    fn: FunctionSpec,
    *,
    function_name: str,
    region: str,
    runtime_url: str,
    overrides: dict[str, str],
) -> dict[str, str]:
    """The function's environment as Lambda would set it, pointed at the local runtime API.

    Nothing of this process's environment is inherited (as on Lambda), and the credentials are
    dummies on purpose: the local handler must never reach a real AWS account.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        # No AWS config or credential files exist on Lambda; none of the user's may be read.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **fn.environment,
    }
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime_url,
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "LAMBDA_TASK_ROOT": str(fn.code_dir),
            "_HANDLER": fn.handler,
            # No X-Ray daemon runs locally.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    env.update(overrides)
    return env


WORKER = Path(__file__).resolve().with_name("lambda_env_worker.py")
# A reply line holds at most Lambda's 6 MB response, base64-encoded, plus JSON framing.
_MAX_REPLY_BYTES = 16 * 1024 * 1024


class FunctionError(Exception):
    """The invocation failed inside the function (Lambda's ``FunctionError``): raised, crashed,
    or answered something that is not JSON."""


@dataclass
class _Environment:
    number: int
    process: asyncio.subprocess.Process
    replies: asyncio.StreamReader
    init_ms: float
    served: int = 0

    async def read(self) -> dict[str, Any]:
        line = await self.replies.readline()
        if not line:
            raise FunctionError("Runtime.ExitError: the execution environment's process exited")
        message: dict[str, Any] = json.loads(line)
        return message

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class EnvironmentPool:
    """The execution environments of one function."""

    def __init__(
        self,
        fn: FunctionSpec,
        env: dict[str, str],
        *,
        function_name: str,
        region: str,
        account: str,
        max_environments: int,
    ) -> None:
        if max_environments < 1:
            raise LocalStageError("a function needs at least one execution environment")
        self.fn = fn
        self.function_name = function_name
        self.alias_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}:live"
        self.max_environments = max_environments
        # Lambda puts the code directory on the import path; the rest is the function's own.
        self._env = {**env, "PYTHONPATH": str(fn.code_dir), "PYTHONUNBUFFERED": "1"}
        self._idle: list[_Environment] = []
        self._count = 0
        self._numbers = 0
        self._freed = asyncio.Condition()
        self._retired: list[_Environment] = []
        self.cold_starts = 0

    async def start(self, warm: int) -> None:
        """Initialise ``warm`` environments now (provisioned concurrency; at least one, so a
        handler whose init fails stops the stage at start-up with its error)."""
        for _ in range(max(1, min(warm, self.max_environments))):
            self._idle.append(await self._spawn())

    async def _spawn(self) -> _Environment:
        self._count += 1
        self._numbers += 1
        number = self._numbers
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                "--handler",
                self.fn.handler,
                "--reply-fd",
                str(write_fd),
                cwd=self.fn.code_dir,
                env=self._env,
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
            )
        except BaseException:
            self._count -= 1
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        replies = asyncio.StreamReader(limit=_MAX_REPLY_BYTES, loop=loop)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(replies), os.fdopen(read_fd, "rb", 0)
        )
        environment = _Environment(number, process, replies, init_ms=0.0)
        try:
            first = await asyncio.wait_for(environment.read(), timeout=max(10.0, self.fn.timeout_s))
        except (FunctionError, TimeoutError) as exc:
            self._retire(environment)
            raise LocalStageError(
                f"the Lambda handler {self.fn.handler} from {self.fn.code_dir} did not "
                f"initialise: {exc}"
            ) from exc
        except BaseException:  # cancelled (the request's deadline passed) while initialising
            self._retire(environment)
            raise
        if "init_error" in first:
            self._retire(environment)
            raise LocalStageError(
                f"the Lambda handler {self.fn.handler} from {self.fn.code_dir} failed to "
                f"initialise: {first['init_error']}"
            )
        environment.init_ms = float(first["init_ms"])
        self.cold_starts += 1
        log.info(
            "INIT_START %s environment %d: init %.0f ms",
            self.function_name,
            number,
            environment.init_ms,
        )
        return environment

    def _retire(self, environment: _Environment) -> None:
        environment.kill()
        self._count -= 1
        self._retired.append(environment)  # reaped in close()

    async def _acquire(self) -> tuple[_Environment, bool]:
        async with self._freed:
            while True:
                if self._idle:
                    return self._idle.pop(), False
                if self._count < self.max_environments:
                    break
                await self._freed.wait()
        return await self._spawn(), True

    async def _release(self, environment: _Environment | None) -> None:
        async with self._freed:
            if environment is not None:
                self._idle.append(environment)
            self._freed.notify()

    async def invoke(self, event: dict[str, Any], timeout_s: float) -> tuple[Any, str]:
        """Run ``event`` in a free environment: (the handler's answer, Lambda's request id).

        Raises FunctionError when the invocation fails inside the function and TimeoutError
        past ``timeout_s`` (the environment is then torn down, as Lambda resets it after a
        timeout)."""
        request_id = str(uuid.uuid4())
        deadline_s = time.monotonic() + timeout_s
        try:
            # API Gateway's integration timeout runs from the request's arrival: a request that
            # waits for a free environment spends it too.
            async with asyncio.timeout(timeout_s):
                environment, cold = await self._acquire()
        except LocalStageError as exc:
            raise FunctionError(f"Runtime.InitError: {exc}") from exc
        start_s = time.perf_counter()
        context = {
            "function_name": self.function_name,
            "invoked_function_arn": self.alias_arn,
            "memory_limit_in_mb": self.fn.memory_mb,
            "aws_request_id": request_id,
            "log_group_name": f"/aws/lambda/{self.function_name}",
            "log_stream_name": f"local/environment-{environment.number}",
            "deadline_epoch_ms": int((time.time() + self.fn.timeout_s) * 1000),
        }
        kept: _Environment | None = environment
        try:
            assert environment.process.stdin is not None
            line = json.dumps({"event": event, "context": context}, separators=(",", ":"))
            environment.process.stdin.write(line.encode() + b"\n")
            await environment.process.stdin.drain()
            remaining_s = max(0.0, deadline_s - time.monotonic())
            reply = await asyncio.wait_for(environment.read(), timeout=remaining_s)
        except BaseException:
            # Timed out, crashed, or cancelled mid-request: its answer may still come, so the
            # environment cannot serve another request (Lambda resets it likewise).
            self._retire(environment)
            kept = None
            raise
        finally:
            duration_ms = (time.perf_counter() - start_s) * 1000.0
            log.debug(
                "REPORT RequestId: %s Duration: %.2f ms%s",
                request_id,
                duration_ms,
                f" Init Duration: {environment.init_ms:.2f} ms" if cold else "",
            )
            environment.served += 1
            await self._release(kept)
        if "error" in reply:
            raise FunctionError(reply["error"])
        return reply["result"], request_id

    async def close(self) -> None:
        async with self._freed:
            idle, self._idle = self._idle, []
        for environment in idle:
            self._retire(environment)
        retired, self._retired = self._retired, []
        for environment in retired:
            with contextlib.suppress(ProcessLookupError, BrokenPipeError):
                await environment.process.wait()

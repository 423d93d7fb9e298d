"""One Lambda execution environment: imports the function's handler, then runs one event at a time.

Started by ``local_stage.lambda_environments`` as its own process, as Lambda runs each execution
environment apart: the handler module, its clients and Powertools' metric buffer belong to this
environment alone. The function's code directory is on ``PYTHONPATH`` (Lambda puts
``LAMBDA_TASK_ROOT`` there); the environment variables are the function's.

Protocol (newline-delimited JSON): requests on stdin, answers on the file descriptor named by
``--reply-fd``. stdout is the function's log stream (Powertools writes its JSON lines there), so
it is left to the handler and forwarded by the parent like the rest of the stage's logs.

- After the init: ``{"init_ms": <float>}`` or ``{"init_error": "<Type>: <message>"}`` (then exit).
- Per request ``{"event": {...}, "context": {...}}``: ``{"result": <handler's answer>}`` or
  ``{"error": "<Type>: <message>"}`` (Lambda's "errorType"/"errorMessage" of a failed invocation).

Only the standard library is imported here: the handler's imports are the environment's cold start.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class Context:
    """The context object the Lambda Python runtime passes to a handler."""

    def __init__(self, fields: dict[str, Any], deadline_epoch_ms: int) -> None:
        self.function_name: str = fields["function_name"]
        self.function_version: str = fields.get("function_version", "$LATEST")
        self.invoked_function_arn: str = fields["invoked_function_arn"]
        self.memory_limit_in_mb: str = str(fields["memory_limit_in_mb"])
        self.aws_request_id: str = fields["aws_request_id"]
        self.log_group_name: str = fields["log_group_name"]
        self.log_stream_name: str = fields["log_stream_name"]
        self._deadline_epoch_ms = deadline_epoch_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_epoch_ms - int(time.time() * 1000))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--handler", required=True, help="module.function, as in the template")
    parser.add_argument("--reply-fd", type=int, required=True, help="where answers are written")
    args = parser.parse_args()
    reply = os.fdopen(args.reply_fd, "w", buffering=1, encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        reply.write(json.dumps(message, separators=(",", ":")) + "\n")

    start_s = time.perf_counter()
    module_name, _, function_name = args.handler.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        if not callable(handler):
            raise TypeError(f"{args.handler} is not a function")
    except Exception as exc:  # an init failure of any kind is reported, as Lambda does
        traceback.print_exc(file=sys.stderr)
        send({"init_error": _describe(exc)})
        return 1
    send({"init_ms": (time.perf_counter() - start_s) * 1000.0})

    for line in sys.stdin:
        request = json.loads(line)
        fields = request["context"]
        context = Context(fields, int(fields["deadline_epoch_ms"]))
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            send({"error": _describe(exc)})
            continue
        try:
            send({"result": result})
        except (TypeError, ValueError) as exc:  # Lambda's Runtime.MarshalError
            send({"error": f"Runtime.MarshalError: the handler's answer is not JSON: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())

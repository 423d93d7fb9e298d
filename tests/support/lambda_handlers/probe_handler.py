"""A Lambda handler that shows which execution environment served a request (tests only).

Module-level state lives as long as the environment, as on Lambda; ``INIT`` fails the init when
``PROBE_FAIL_INIT`` is set. The event's ``sleep_s`` holds the environment, ``raise`` fails the
invocation.
"""

import os
import time

if os.environ.get("PROBE_FAIL_INIT"):
    raise RuntimeError("PROBE_FAIL_INIT is set")

SERVED = 0


def handler(event, context):
    global SERVED
    SERVED += 1
    time.sleep(float(event.get("sleep_s", 0)))
    if event.get("raise"):
        raise ValueError("asked to fail")
    return {"pid": os.getpid(), "served": SERVED, "request_id": context.aws_request_id}

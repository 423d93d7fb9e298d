"""The stage's processes as the faults see them: found in state.json, restarted, answering."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import requests

from container_contract.ray_serve import replica_pids
from local_stage import harness
from reliability.faults.traffic import BODY, Load


def stage_process(stage: harness.Stage, role: str, **match: Any) -> dict[str, Any]:
    for p in stage.processes(role):
        if all(p.get(k) == v for k, v in match.items()):
            return p
    raise RuntimeError(f"no {role} process {match} in {stage.state_path}")


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_restarted(
    stage: harness.Stage, role: str, old_pid: int, load: Load, timeout_s: float, **match: Any
) -> tuple[float | None, int]:
    """(when the replacement accepted connections, its pid) or (None, 0) if it never did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            proc = stage_process(stage, role, **match)
        except (RuntimeError, ValueError, OSError):  # state.json being replaced
            proc = {}
        running = proc.get("pid") not in (None, old_pid) and proc.get("running")
        if running and accepts(proc["port"]):
            return load.now(), proc["pid"]
        time.sleep(0.02)
    return None, 0


def replica_back(port: int, root: int, old: int) -> bool:
    """A new replica runs in the container and the instance answers a request."""
    current = replica_pids(root)
    if not current or old in current:
        return False
    try:
        resp = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(BODY),
            headers={"Content-Type": "application/json"},
            timeout=2,
        )
    except requests.RequestException:
        return False
    return resp.status_code == 200

"""Child processes of the local stage: started, log-prefixed, health-checked, restarted, stopped.

Each part runs in its own process (the model server's instances, the runtime API, the API
front), in its own session so that Ctrl-C reaches only the parent, which then stops them in order
(front first, model server last) and lets each drain. On Linux a child also gets SIGTERM if the
parent dies, so nothing is left behind. PIDs and ports are written to ``<run dir>/state.json``
for tools that need them (e.g. fault injection).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from local_stage.errors import LocalStageError
from local_stage.model_server import PID_HEADER

log = logging.getLogger(__name__)

_COLORS = ["36", "33", "35", "32", "34", "31"]


def _die_with_parent() -> None:
    """prctl(PR_SET_PDEATHSIG, SIGTERM): the child is told to stop when the parent dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)


def _kill_group(pgid: int) -> None:
    from container_contract.ray_serve import kill_leftovers

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    # HAProxy, started by a Ray worker, lives outside the group.
    kill_leftovers(pgid)


# A process that ran at least this long before it exited counts as having been healthy: it is
# restarted at once. One that exits sooner, again and again (a model that cannot load), is
# restarted after a delay that doubles each time, so it does not spin the CPU.
HEALTHY_UPTIME_S = 10.0
FIRST_RESTART_DELAY_S = 0.05
MAX_RESTART_DELAY_S = 30.0


def restart_delay_s(quick_exits: int) -> float:
    """The wait before a restart, given how many exits in a row came soon after a start."""
    if quick_exits <= 1:
        return FIRST_RESTART_DELAY_S
    return min(MAX_RESTART_DELAY_S, 0.5 * 2 ** min(quick_exits - 2, 6))


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ping_path: str | None = None  # HTTP readiness path; None = the port accepting connections
    # Several processes share the port: ready = a ping answered with this child's own PID.
    shares_port: bool = False
    restart: bool = False
    # The child starts processes of its own (Ray's): when it ends, SIGKILL what is left of its
    # process group (it leads one), so a crash or a kill leaves nothing behind.
    kill_group: bool = False
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    quick_exits: int = 0  # exits in a row within HEALTHY_UPTIME_S of a start
    started_at: float = 0.0
    last_lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


class Supervisor:
    def __init__(self, state_file: Path | None = None, *, color: bool | None = None) -> None:
        self.children: list[Child] = []
        self.state_file = state_file
        self.stopping = False
        self.color = sys.stdout.isatty() if color is None else color
        self.state_extra: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def _prefix(self, child: Child) -> str:
        label = f"{child.name:<16}|"
        if not self.color:
            return label
        code = _COLORS[self.children.index(child) % len(_COLORS)]
        return f"\033[{code}m{label}\033[0m"

    async def start(self, child: Child) -> None:
        if child not in self.children:
            self.children.append(child)
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv,
            env=child.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        child.started_at = time.monotonic()
        self._tasks.append(asyncio.get_running_loop().create_task(self._pump(child, child.proc)))
        self._tasks.append(asyncio.get_running_loop().create_task(self._watch(child, child.proc)))
        self.write_state()

    async def _pump(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        prefix = self._prefix(child)
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip()
            child.last_lines.append(line)
            sys.stdout.write(f"{prefix} {line}\n")
            sys.stdout.flush()

    async def _watch(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if child.kill_group:
            _kill_group(proc.pid)
        if self.stopping or child.proc is not proc:
            return
        log.warning("%s (pid %d) exited with code %s", child.name, proc.pid, code)
        if not child.restart:
            return
        # A process that had been running is replaced at once (its callers wait meanwhile); one
        # that keeps exiting right after its start is backed off (see restart_delay_s).
        if time.monotonic() - child.started_at >= HEALTHY_UPTIME_S:
            child.quick_exits = 0
        child.quick_exits += 1
        delay_s = restart_delay_s(child.quick_exits)
        child.restarts += 1
        log.warning("restarting %s in %.1f s (restart %d)", child.name, delay_s, child.restarts)
        await asyncio.sleep(delay_s)
        if not self.stopping:
            await self.start(child)

    async def wait_ready(self, child: Child, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{child.port}{child.ping_path or ''}"
        # A fresh connection for every ping: the kernel picks a worker per connection.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            while time.monotonic() < deadline:
                proc = child.proc
                if proc is not None and proc.returncode is not None:
                    await asyncio.sleep(0.1)  # let the pump print the last lines
                    tail = "\n  ".join(list(child.last_lines)[-8:])
                    raise LocalStageError(
                        f"{child.name} exited with code {proc.returncode} while starting; its "
                        f"last log lines:\n  {tail}"
                    )
                try:
                    if child.ping_path:
                        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                            if r.status == 200 and self._answered_by(child, r.headers):
                                return
                            if r.status == 200:  # a sibling worker answered: ask again soon
                                await asyncio.sleep(0.01)
                                continue
                    else:
                        _, writer = await asyncio.open_connection("127.0.0.1", child.port)
                        writer.close()
                        return
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise LocalStageError(f"{child.name} did not become ready within {timeout_s:g} s")

    @staticmethod
    def _answered_by(child: Child, headers: Any) -> bool:
        if not child.shares_port:
            return True
        return child.proc is not None and headers.get(PID_HEADER) == str(child.proc.pid)

    async def stop(self, child: Child, timeout_s: float) -> None:
        proc = child.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            log.warning("%s did not stop within %g s; killing it", child.name, timeout_s)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if child.kill_group:
            _kill_group(proc.pid)

    async def park(self, child: Child, timeout_s: float) -> None:
        """Stop ``child`` for good, until it is started again (no restart meanwhile)."""
        proc = child.proc
        if proc is None:
            return
        # Cleared first: when it exits, _watch sees a process that is no longer the child's and
        # does not restart it.
        child.proc = None
        parked = Child(
            name=child.name,
            argv=child.argv,
            env=child.env,
            port=child.port,
            kill_group=child.kill_group,
            proc=proc,
        )
        await self.stop(parked, timeout_s)
        self.write_state()

    async def stop_all(self, groups: list[list[Child]], timeout_s: float) -> None:
        """Stop group by group (each group's children in parallel), e.g. front before backend."""
        self.stopping = True
        for group in groups:
            await asyncio.gather(*(self.stop(c, timeout_s) for c in group))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.write_state()

    def write_state(self) -> None:
        if self.state_file is None:
            return
        state = {
            **self.state_extra,
            "supervisor_pid": os.getpid(),
            "processes": [
                {
                    "name": c.name,
                    "pid": c.pid,
                    "port": c.port,
                    "running": bool(c.proc and c.proc.returncode is None),
                    "restarts": c.restarts,
                    **c.extra,
                }
                for c in self.children
            ],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

"""Running one container from Python (verify, tests, benchmarks): ``with RayContainer(dir) as c``."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from container_contract.errors import ContainerError
from container_contract.ports import PortBlock, claim_block
from container_contract.ray_serve.processes import kill_group, kill_leftovers

log = logging.getLogger("container_contract.ray_serve")


class RayContainer:
    """``python -m container_contract.ray_serve`` as a child process: ``with RayContainer(dir) as c``.

    ``url`` is the adapter's base URL once ``/ping`` answers 200. The child leads its own process
    group; stopping it stops Ray's processes with it.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        num_cpus: int | None = None,
        start_timeout_s: float = 180.0,
        log_path: Path | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.env = dict(os.environ if env is None else env)
        self.num_cpus = num_cpus
        self.start_timeout_s = start_timeout_s
        self.log_path = log_path
        self.port = 0
        self.proc: Any = None
        self.started_s = 0.0  # seconds from the start to the first 200 from /ping
        self._log: Any = None
        self._ports: PortBlock | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> tuple[int, bytes, dict[str, str]]:
        """One HTTP request to the adapter: ``(status, body, headers)``."""
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            return resp.status, resp.read(), dict(resp.getheaders())
        finally:
            conn.close()

    def start(self) -> RayContainer:
        import subprocess

        self._ports = claim_block()  # the adapter binds late: see container_contract/ports.py
        self.port = self._ports.port(0)
        argv = [
            sys.executable,
            "-m",
            "container_contract.ray_serve",
            "--model-dir",
            str(self.model_dir),
            "--port",
            str(self.port),
        ]
        if self.num_cpus:
            argv += ["--num-cpus", str(self.num_cpus)]
        # Kept open while the child runs; closed in stop().
        if self.log_path is None:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115
        else:
            self._log = open(self.log_path, "w+b")  # noqa: SIM115
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise ContainerError(
                    f"the Ray Serve container exited with code {self.proc.returncode} while "
                    f"starting:\n{tail}"
                )
            try:
                if self.request("GET", "/ping", timeout_s=2)[0] == 200:
                    self.started_s = time.perf_counter() - began
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise ContainerError(f"the Ray Serve container did not answer /ping in time:\n{tail}")

    def log_tail(self, lines: int = 30) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 15.0) -> None:
        import signal
        import subprocess

        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None:
            kill_group(proc.pid)
            kill_leftovers(proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._ports is not None:
            self._ports.release()
            self._ports = None

    def __enter__(self) -> RayContainer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Several TF model-server worker processes sharing one instance's port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from container_contract.ports import free_port
from local_stage.model_server import PID_HEADER
from local_stage.procs import Child, Supervisor
from tests.support.artifacts import HTTP_TIMEOUT_S

from .conftest import REPO, stop_process

pytestmark = pytest.mark.slow
FRESH = {"Connection": "close"}  # a new connection each time: the kernel picks the worker


def worker_argv(model_dir: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "local_stage.model_server",
        "--model-dir",
        str(model_dir),
        "--flavour",
        "tensorflow",
        "--port",
        str(port),
        "--workers",
        "2",
        "--reuse-port",
    ]


def answering_pids(url: str, tries: int = 60) -> set[str]:
    pids = set()
    for _ in range(tries):
        resp = requests.get(url + "/ping", headers=FRESH, timeout=HTTP_TIMEOUT_S)
        assert resp.status_code == 200
        pids.add(resp.headers[PID_HEADER])
    return pids


def test_supervisor_starts_workers_on_one_port_each_answers_and_a_crash_is_survived(
    tf_artifacts, tmp_path
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    children = [
        Child(
            name=f"model/w{i}",
            argv=worker_argv(tf_artifacts["plain"], port),
            env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"},
            port=port,
            ping_path="/ping",
            shares_port=True,
        )
        for i in range(2)
    ]

    async def scenario() -> tuple[set[str], list[int], set[str], list[int]]:
        supervisor = Supervisor(tmp_path / "state.json", color=False)
        try:
            for child in children:
                await supervisor.start(child)
            # Ready means: this child itself answered, not a sibling on the same port.
            await asyncio.gather(*(supervisor.wait_ready(c, 120) for c in children))
            pids = [c.pid for c in children]
            seen = await asyncio.to_thread(answering_pids, url)
            os.kill(pids[0], signal.SIGKILL)
            await asyncio.sleep(0.3)
            statuses = await asyncio.to_thread(
                lambda: [
                    requests.post(
                        url + "/invocations",
                        data='{"instances": [[1, 2, 3, 4]]}',
                        headers={"Content-Type": "application/json", **FRESH},
                        timeout=HTTP_TIMEOUT_S,
                    ).status_code
                    for _ in range(20)
                ]
            )
            after = await asyncio.to_thread(answering_pids, url, 10)
            return seen, pids, after, statuses
        finally:
            await supervisor.stop_all([children], 15)

    seen, pids, after, statuses = asyncio.run(scenario())

    assert seen == {str(p) for p in pids}  # both workers take connections on the one port
    assert statuses == [200] * 20  # the surviving worker takes every new connection
    assert after == {str(pids[1])}


def test_a_worker_without_reuse_port_cannot_share_the_port(tf_artifacts, tmp_path):
    port = free_port()
    log_path = tmp_path / "second.log"
    first = subprocess.Popen(
        worker_argv(tf_artifacts["plain"], port),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/ping", timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        argv = [a for a in worker_argv(tf_artifacts["plain"], port) if a != "--reuse-port"]
        with log_path.open("wb") as log:
            second = subprocess.run(
                argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=120
            )
    finally:
        stop_process(first)

    assert second.returncode != 0
    assert "address already in use" in log_path.read_text().lower()

"""Fixtures for the local stage's integration tests: small artifacts and servers on free ports.

Every process a test starts is stopped by the fixture's finalizer (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from container_contract.ports import free_port
from reliability.fault_model import build_torch_artifact

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def torch_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_torch_artifact(tmp_path_factory.mktemp("torch") / "model")


@pytest.fixture(scope="session")
def tf_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # One subprocess builds both (importing TensorFlow once costs seconds).
    base = tmp_path_factory.mktemp("tf")
    code = (
        "import sys; from pathlib import Path; from tests.support.artifacts import build_tf_artifact;"
        "build_tf_artifact(Path(sys.argv[1]));"
        "build_tf_artifact(Path(sys.argv[2]), with_handlers=True)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(base / "plain"), str(base / "handlers")],
        check=True,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
    )
    return {"plain": base / "plain", "handlers": base / "handlers"}


class RunningServer:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.proc = proc
        self.url = url
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout_s} s:\n{log_path.read_text()}")


def _server_factory(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(
        model_dir: Path, flavour: str, *flags: str, env: dict[str, str] | None = None
    ) -> RunningServer:
        port = free_port()
        log_path = tmp_path / f"server-{port}.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local_stage.model_server",
                "--model-dir",
                str(model_dir),
                "--flavour",
                flavour,
                *flags,
            ],
            cwd=REPO,
            env={
                **os.environ,
                "SAGEMAKER_BIND_TO_PORT": str(port),
                "TF_CPP_MIN_LOG_LEVEL": "2",
                **(env or {}),
            },
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/ping", proc, log_path, 120)
        return RunningServer(proc, url, log_path)

    yield start
    for proc in started:
        stop_process(proc)


def wait_http_port(
    port: int, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float
) -> None:
    """Wait until something answers HTTP on ``port`` (any status)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"port {port} not ready in {timeout_s} s:\n{log_path.read_text()}")


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start ``python -m local_stage.model_server`` with the given flags; stopped afterwards."""
    yield from _server_factory(tmp_path)


@pytest.fixture(scope="module")
def module_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RunningServer]]:
    """Like ``model_server``, shared by a module's tests (servers with default settings)."""
    yield from _server_factory(tmp_path_factory.mktemp("servers"))


@pytest.fixture(scope="session")
def session_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RunningServer]]:
    yield from _server_factory(tmp_path_factory.mktemp("session-servers"))

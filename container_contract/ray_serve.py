"""AWS's Ray Serve container on this machine: real Ray Serve plus the container's adapter.

``python -m container_contract.ray_serve --model-dir <unpacked artifact> --port <adapter port>`` does
what the container's ``serve`` entrypoint does (aws/deep-learning-containers
``scripts/docker/ray/sagemaker_entrypoint.sh`` and ``sagemaker_serve.py``):

1. put the model dir and its ``code/`` first on ``PYTHONPATH`` (``SM_MODEL_DIR`` is the model dir);
2. refuse ``code/requirements.txt`` lines this environment cannot satisfy (the container
   pip-installs them at start-up, which fails under the endpoint's network isolation);
3. start a Ray head and Serve with its HTTP ingress on a free port (the container's 8000), then
   deploy ``<model dir>/config.yaml`` (Serve's ``applications:`` config) or, without one,
   ``SM_RAYSERVE_APP`` (``module:app``);
4. answer ``GET /ping`` (Serve's ``/-/healthz``) and ``POST /invocations`` on ``--port`` (the
   container's 8080), forwarding the body, ``Content-Type`` (default ``application/json``),
   ``Accept`` (default ``application/json``) and every ``X-Amzn-SageMaker-*`` header to the app's
   route ``/``, and answering with the app's status, body and content type. The proxy call is
   bounded by ``RAYSERVE_BACKEND_TIMEOUT`` (default 300 s): past it 504, Serve unreachable 503.

Differences, on purpose: the Ray cluster is private to this process (its own temp dir, ports
picked by Ray, ``address="local"``), so several can run on one machine; the adapter starts once
the application is RUNNING, not on the first ``/-/healthz`` answer. The fast ingress (HAProxy) is
on unless the container env says otherwise (``ingress_env``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from container_contract.errors import ContainerError
from container_contract.ports import PortBlock, claim_block

log = logging.getLogger("container_contract.ray_serve")

DEFAULT_BACKEND_TIMEOUT_S = 300
SERVE_PORT_VAR = "LOCAL_STAGE_SERVE_PORT"
SAGEMAKER_HEADER_PREFIX = "x-amzn-sagemaker-"
# HAProxy asks for about 2.5 file descriptors per connection (its maxconn) and exits at start-up
# when the hard limit is lower ("Cannot raise FD limit").
HAPROXY_FDS_PER_CONN = 2.5
HAPROXY_MAXCONN_CEILING = 20000


def haproxy_maxconn(fd_hard_limit: int) -> int:
    """The largest HAProxy ``maxconn`` this process's open-file limit allows (with headroom)."""
    usable = max(0, fd_hard_limit - 1024)  # Ray, Python and the adapter need their own fds
    return int(max(256, min(HAPROXY_MAXCONN_CEILING, usable / HAPROXY_FDS_PER_CONN)))


def ingress_env(env: Mapping[str, str], fd_hard_limit: int) -> dict[str, str]:
    """Ray Serve's high-throughput ingress (Ray 2.56+), unless the container env sets it.

    HAProxy in C replaces the Python proxy actor (about 4x the throughput at one replica here);
    one HAProxy thread is enough for the replicas one instance runs. Replicas log to stderr, so
    their logs reach the container's log as they reach CloudWatch on the endpoint.
    """
    defaults = {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_LOG_TO_STDERR": "1",
        "RAY_SERVE_HAPROXY_NBTHREAD": "1",
        "RAY_SERVE_HAPROXY_MAXCONN": str(haproxy_maxconn(fd_hard_limit)),
    }
    out = {k: v for k, v in defaults.items() if not env.get(k)}
    raw = env.get("RAY_SERVE_HAPROXY_MAXCONN")
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            raise ContainerError(
                f"RAY_SERVE_HAPROXY_MAXCONN={raw!r} is not a whole number"
            ) from None
        if wanted * HAPROXY_FDS_PER_CONN > fd_hard_limit:
            fitted = haproxy_maxconn(fd_hard_limit)
            log.warning(
                "RAY_SERVE_HAPROXY_MAXCONN=%d needs about %d open files but this machine allows "
                "%d: using %d here (the endpoint keeps the template's value)",
                wanted,
                int(wanted * HAPROXY_FDS_PER_CONN),
                fd_hard_limit,
                fitted,
            )
            out["RAY_SERVE_HAPROXY_MAXCONN"] = str(fitted)
    return out


def backend_timeout_s(env: Mapping[str, str]) -> float:
    raw = env.get("RAYSERVE_BACKEND_TIMEOUT", str(DEFAULT_BACKEND_TIMEOUT_S))
    try:
        value = int(raw)
    except ValueError:
        raise ContainerError(f"RAYSERVE_BACKEND_TIMEOUT={raw!r} is not a whole number") from None
    if value <= 0:
        raise ContainerError(f"RAYSERVE_BACKEND_TIMEOUT must be positive: {value}")
    return float(value)


def check_requirements(model_dir: Path) -> None:
    """Refuse ``code/requirements.txt`` lines this environment lacks (no pip at start-up here)."""
    from container_contract.image_packages import unmet_requirements

    path = model_dir / "code" / "requirements.txt"
    if not path.is_file():
        return
    unmet = unmet_requirements(path.read_text(encoding="utf-8"))
    if unmet:
        raise ContainerError(
            f"{path} asks for {', '.join(unmet)}, which the serving image does not ship; the "
            "endpoint runs with network isolation, so the container's pip install would fail. "
            "Vendor the code into code/ or drop the requirement."
        )


# ---------------------------------------------------------------------------------------------
# Ray Serve
# ---------------------------------------------------------------------------------------------


def start_serve(model_dir: Path, http_port: int, num_cpus: int | None, temp_dir: str) -> None:
    """Start a private Ray head + Serve on ``http_port`` and deploy the model's application."""
    import ray
    import yaml
    from ray.serve._private import api as serve_api
    from ray.serve.config import ProxyLocation
    from ray.serve.schema import ServeDeploySchema

    config_path = model_dir / "config.yaml"
    app_path = os.environ.get("SM_RAYSERVE_APP", "")
    if config_path.is_file():
        try:
            document = yaml.safe_load(config_path.read_text(encoding="utf-8"))
            config = ServeDeploySchema.model_validate(document)
        except Exception as exc:
            raise ContainerError(f"{config_path} is not a Serve config: {exc}") from exc
    elif app_path:
        config = ServeDeploySchema.model_validate(
            {"applications": [{"name": "default", "route_prefix": "/", "import_path": app_path}]}
        )
    else:
        raise ContainerError(
            f"no Ray Serve application in {model_dir}: provide config.yaml there (what "
            "`python -m model_export pytorch` writes) or SM_RAYSERVE_APP=module:app"
        )
    ray.init(
        address="local",
        namespace="serve",
        num_cpus=num_cpus,
        include_dashboard=False,
        _temp_dir=temp_dir,
        logging_level=logging.WARNING,
        log_to_driver=True,
    )
    client = serve_api.serve_start(
        http_options={"host": "127.0.0.1", "port": http_port},
        proxy_location=ProxyLocation.HeadOnly,
    )
    client.deploy_apps(config, _blocking=False)


def wait_running(timeout_s: float) -> None:
    """Until every application is RUNNING; a failed deploy raises with Serve's own message."""
    from ray import serve

    deadline = time.monotonic() + timeout_s
    while True:
        status = serve.status()
        apps = status.applications
        states = {name: str(getattr(app.status, "value", app.status)) for name, app in apps.items()}
        failed = {n: apps[n].message for n, s in states.items() if "FAIL" in s.upper()}
        if failed:
            raise ContainerError(f"the Ray Serve application failed to deploy: {failed}")
        if apps and all(s.upper() == "RUNNING" for s in states.values()):
            return
        if time.monotonic() > deadline:
            raise ContainerError(f"Ray Serve did not become RUNNING in {timeout_s:.0f} s: {states}")
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# The adapter (sagemaker_serve.py's semantics, on aiohttp)
# ---------------------------------------------------------------------------------------------


def make_adapter(backend_url: str, timeout_s: float) -> Any:
    import json

    import aiohttp
    from aiohttp import web

    async def on_startup(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        app["client"] = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def on_cleanup(app: web.Application) -> None:
        await app["client"].close()

    def _error(status: int, message: str) -> web.Response:
        return web.Response(
            body=json.dumps({"error": message}).encode(),
            status=status,
            content_type="application/json",
        )

    async def invocations(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower().startswith(SAGEMAKER_HEADER_PREFIX)
        }
        accept = request.headers.get("Accept", "application/json")
        headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
        headers["Accept"] = accept
        try:
            async with request.app["client"].post(
                f"{backend_url}/", data=body, headers=headers
            ) as resp:
                content = await resp.read()
                out_headers = {
                    name: value
                    for name, value in resp.headers.items()
                    if name.lower().startswith(SAGEMAKER_HEADER_PREFIX)
                }
                out_headers["Content-Type"] = resp.headers.get("Content-Type", accept)
                return web.Response(body=content, status=resp.status, headers=out_headers)
        except TimeoutError:
            log.error("Ray Serve did not answer within RAYSERVE_BACKEND_TIMEOUT=%.0f s", timeout_s)
            return _error(504, "Request timeout")
        except aiohttp.ClientConnectionError as exc:
            log.error("cannot reach Ray Serve: %s", exc)
            return _error(503, "Service unavailable")

    async def ping(request: web.Request) -> web.Response:
        try:
            async with request.app["client"].get(
                f"{backend_url}/-/healthz", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                await resp.read()
                return web.Response(status=200 if resp.status == 200 else 503)
        except (TimeoutError, aiohttp.ClientError):
            return web.Response(status=503)

    app = web.Application(client_max_size=1024**3)
    app.router.add_post("/invocations", invocations)
    app.router.add_get("/ping", ping)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


# Fixed ports Ray Serve's ingress listens on: HAProxy's stats and Prometheus listeners (8404,
# 9101) and the Python proxy HAProxy falls back to while no replica takes direct traffic (8500,
# 9500, bound with SO_REUSEPORT, so a second cluster silently shares the first one's). One
# container per host on SageMaker; here several instances and test runs share the machine, so
# each container gets ports of its own.
FIXED_PORT_VARS = (
    "RAY_SERVE_HAPROXY_STATS_PORT",
    "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
    "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT",
)
# Replicas take HTTP (and gRPC) ports for HAProxy's direct ingress from one fixed range per host
# (30000-31000, 40000-41000). Each Serve controller hands out ports from its own view of that range,
# so two clusters on one machine can route to each other's replicas: each container gets ranges
# of its own.
DIRECT_INGRESS_PORTS = 40
# All of a container's ports come from one block it claims for its life (container_contract/ports.py):
# they are bound seconds after they are chosen, once Ray is up. Offsets in the block:
HTTP_RANGE_AT, GRPC_RANGE_AT = 0, DIRECT_INGRESS_PORTS
SERVE_PORT_AT = 2 * DIRECT_INGRESS_PORTS
FIXED_PORTS_AT = SERVE_PORT_AT + 1
_claimed: list[PortBlock] = []  # held until this process ends


def container_ports(env: Mapping[str, str]) -> dict[str, str]:
    """The ports this container's Ray binds, from a block claimed for this process's life.

    What the container env sets explicitly is left alone.
    """
    block = claim_block()
    _claimed.append(block)
    updates = {
        name: str(block.port(FIXED_PORTS_AT + i))
        for i, name in enumerate(FIXED_PORT_VARS)
        if not env.get(name)
    }
    if not env.get("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"):
        last = DIRECT_INGRESS_PORTS - 1
        http, grpc = block.port(HTTP_RANGE_AT), block.port(GRPC_RANGE_AT)
        updates |= {
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(http),
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(http + last),
            "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(grpc),
            "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(grpc + last),
        }
    # Serve's own HTTP port (the container's 8000), read back by main().
    updates[SERVE_PORT_VAR] = str(block.port(SERVE_PORT_AT))
    return updates


def haproxy_paths(temp_dir: str) -> dict[str, str]:
    """HAProxy's files under this container's temp dir (default: one /tmp/haproxy-serve).

    HAProxy runs outside Ray's process tree (a reload starts a new one that outlives the Ray
    worker that started it); with its config under the temp dir, its command line names the dir
    and ``kill_leftovers`` finds it.
    """
    base = os.path.join(temp_dir, "hap")
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": os.path.join(base, "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": os.path.join(base, "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": base,
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": os.path.join(base, "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": os.path.join(base, "metrics.sock"),
    }


# Short on purpose: Ray's unix sockets live under the temp dir and must stay under 107 characters
# ($TMPDIR can be long). mkdtemp makes each dir private to its user.
TEMP_ROOT = "/tmp"  # noqa: S108


def temp_dir_prefix(pid: int) -> str:
    """The temp dir of the container whose process is ``pid`` starts with this."""
    return f"{TEMP_ROOT}/ray-{pid}-"


def kill_leftovers(pid: int) -> int:
    """SIGKILL every process whose command line names the temp dir of container ``pid``, then
    remove that dir (a container killed outright cannot remove it itself)."""
    import glob
    import shutil
    import signal

    needle = temp_dir_prefix(pid).encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except OSError:
            continue
    if pid != os.getpid():
        for folder in glob.glob(temp_dir_prefix(pid) + "*"):
            shutil.rmtree(folder, ignore_errors=True)
    return killed


def prepare_environment(
    model_dir: Path, env: dict[str, str], temp_dir: str | None = None
) -> dict[str, str]:
    """The process environment the container gives Ray (read before Ray starts)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    fd_limit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    updates = ingress_env(env, fd_limit)
    updates.update(container_ports(env))
    if temp_dir is not None:
        updates.update(haproxy_paths(temp_dir))
    code = model_dir / "code"
    path = env.get("PYTHONPATH", "")
    updates["PYTHONPATH"] = os.pathsep.join(p for p in (str(model_dir), str(code), path) if p)
    updates["SM_MODEL_DIR"] = str(model_dir)
    return updates


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m container_contract.ray_serve",
        description="Run an unpacked PyTorch artifact as AWS's Ray Serve container does.",
    )
    p.add_argument("--model-dir", type=Path, required=True, help="the unpacked model.tar.gz")
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
        help="the adapter's port (default $SAGEMAKER_BIND_TO_PORT, else 8080)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the adapter's address (default 127.0.0.1)")
    p.add_argument(
        "--serve-port", type=int, default=0, help="Serve's HTTP port (default: a free one)"
    )
    p.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs the Ray head offers the replicas (default: this machine's)",
    )
    p.add_argument(
        "--start-timeout-s",
        type=float,
        default=300.0,
        help="how long the application may take to become RUNNING (default 300)",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from container_contract.aio import serve_app

    model_dir = args.model_dir.resolve()
    temp_dir = tempfile.mkdtemp(prefix=f"ray-{os.getpid()}-", dir=TEMP_ROOT)
    try:
        if not model_dir.is_dir():
            raise ContainerError(f"--model-dir {model_dir} is not a directory")
        check_requirements(model_dir)
        os.environ.update(prepare_environment(model_dir, dict(os.environ), temp_dir))
        timeout_s = backend_timeout_s(os.environ)
        serve_port = args.serve_port or int(os.environ[SERVE_PORT_VAR])
        started = time.perf_counter()
        start_serve(model_dir, serve_port, args.num_cpus, temp_dir)
        wait_running(args.start_timeout_s)
    except ContainerError as exc:
        log.error("%s", exc)
        _shutdown(temp_dir)
        return 2
    log.info(
        "Ray Serve application RUNNING on :%d after %.1f s",
        serve_port,
        time.perf_counter() - started,
    )

    async def _no_drain(_timeout_s: float) -> None:
        return None

    try:
        asyncio.run(
            serve_app(
                make_adapter(f"http://127.0.0.1:{serve_port}", timeout_s),
                args.host,
                args.port,
                _no_drain,
                0.0,
            )
        )
    finally:
        _shutdown(temp_dir)
    return 0


def _shutdown(temp_dir: str) -> None:
    import shutil

    import ray

    # The cluster is private to this process: stopping it ends the replicas too. (Serve's own
    # graceful shutdown waits on the replicas and can hang a stopping local stage.)
    ray.shutdown()
    kill_leftovers(os.getpid())
    shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())


# ---------------------------------------------------------------------------------------------
# Running one from Python (verify, tests, benchmarks)
# ---------------------------------------------------------------------------------------------


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


def kill_group(pgid: int) -> None:
    """SIGKILL what is left of a process group (Ray's agents outlive a killed driver)."""
    import contextlib
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def descendants(root: int) -> dict[int, str]:
    """``{pid: command line}`` of every process below ``root`` (Ray's processes, HAProxy)."""
    parent: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        names[pid] = cmd.strip() or stat.split("(", 1)[1].split(")", 1)[0]
    found: set[int] = set()
    frontier = [root]
    while frontier:
        current = frontier.pop()
        for pid, ppid in parent.items():
            if ppid == current and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return {pid: names[pid] for pid in found if pid in names}


def replica_pids(root: int) -> list[int]:
    """The Serve replicas (``ray::ServeReplica:...``) of the container whose process is ``root``."""
    return sorted(pid for pid, cmd in descendants(root).items() if "ServeReplica" in cmd)

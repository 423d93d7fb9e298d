"""The environment the container gives Ray: the fast ingress, the backend timeout, ports and
HAProxy files of its own (several containers share this machine), ``PYTHONPATH``/``SM_MODEL_DIR``."""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Mapping
from pathlib import Path

from container_contract.errors import ContainerError
from container_contract.ports import PortBlock, claim_block

log = logging.getLogger("container_contract.ray_serve")


DEFAULT_BACKEND_TIMEOUT_S = 300
SERVE_PORT_VAR = "LOCAL_STAGE_SERVE_PORT"
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

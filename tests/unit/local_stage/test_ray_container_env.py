"""The environment the local Ray Serve container gives Ray: what the container does, plus what
several containers on one machine need."""

from __future__ import annotations

from pathlib import Path

import pytest

from container_contract.errors import ContainerError
from container_contract.ray_serve import (
    FIXED_PORT_VARS,
    SERVE_PORT_VAR,
    backend_timeout_s,
    haproxy_maxconn,
    ingress_env,
    prepare_environment,
)


def test_haproxy_maxconn_fits_the_open_file_limit():
    # HAProxy asks for about 2.5 descriptors per connection and exits when it cannot have them.
    assert haproxy_maxconn(20000) * 2.5 <= 20000
    assert haproxy_maxconn(1 << 20) == 20000  # Ray's own default when the limit allows it
    assert haproxy_maxconn(1024) == 256  # never zero


def test_the_fast_ingress_is_on_unless_the_container_env_says_otherwise():
    assert ingress_env({}, 20000)["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert ingress_env({}, 20000)["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert ingress_env({}, 20000)["RAY_SERVE_LOG_TO_STDERR"] == "1"
    assert "RAY_SERVE_ENABLE_HA_PROXY" not in ingress_env({"RAY_SERVE_ENABLE_HA_PROXY": "0"}, 20000)
    # The template's maxconn is kept unless this machine cannot give HAProxy the descriptors.
    assert "RAY_SERVE_HAPROXY_MAXCONN" not in ingress_env(
        {"RAY_SERVE_HAPROXY_MAXCONN": "4000"}, 20000
    )
    fitted = ingress_env({"RAY_SERVE_HAPROXY_MAXCONN": "20000"}, 20000)
    assert int(fitted["RAY_SERVE_HAPROXY_MAXCONN"]) * 2.5 <= 20000


def _ports(env: dict[str, str]) -> set[int]:
    ranges = (("MIN_HTTP", "MAX_HTTP"), ("MIN_GRPC", "MAX_GRPC"))
    found = {int(env[name]) for name in (*FIXED_PORT_VARS, SERVE_PORT_VAR)}
    for low, high in ranges:
        first = int(env[f"RAY_SERVE_DIRECT_INGRESS_{low}_PORT"])
        last = int(env[f"RAY_SERVE_DIRECT_INGRESS_{high}_PORT"])
        assert last - first == 39
        found |= set(range(first, last + 1))
    return found


def test_each_container_gets_ports_of_its_own_instead_of_rays_fixed_ones(tmp_path: Path):
    env = prepare_environment(tmp_path, {})
    other = prepare_environment(tmp_path, {})  # a second container on the machine

    mine = _ports(env)
    assert len(mine) == 4 + 1 + 80  # fixed listeners, Serve's HTTP port, two direct-ingress ranges
    assert mine.isdisjoint(_ports(other))
    assert mine.isdisjoint(
        {8404, 9101, 8500, 9500, 52365}
    )  # Ray's defaults, shared by every cluster
    # One claimed block, below both Ray's per-host ranges and the kernel's ephemeral ports.
    assert max(mine) - min(mine) < 100 and max(mine) < 30000
    assert env["PYTHONPATH"].split(":")[:2] == [str(tmp_path), str(tmp_path / "code")]
    assert env["SM_MODEL_DIR"] == str(tmp_path)
    # What the template sets explicitly is left alone.
    assert "RAY_SERVE_HAPROXY_STATS_PORT" not in prepare_environment(
        tmp_path, {"RAY_SERVE_HAPROXY_STATS_PORT": "18404"}
    )


def test_the_backend_timeout_is_read_as_the_container_reads_it():
    assert backend_timeout_s({}) == 300
    assert backend_timeout_s({"RAYSERVE_BACKEND_TIMEOUT": "60"}) == 60
    with pytest.raises(ContainerError, match="must be positive"):
        backend_timeout_s({"RAYSERVE_BACKEND_TIMEOUT": "0"})

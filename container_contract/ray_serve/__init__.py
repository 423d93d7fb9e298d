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

Modules: ``environment`` (what the container sets before Ray starts), ``serve`` (Ray Serve
started and deployed), ``adapter`` (``/ping``, ``/invocations``), ``processes`` (Ray's processes,
leftovers), ``container`` (``RayContainer``: one run from Python), ``__main__`` (the entrypoint).
"""

from container_contract.ray_serve.container import RayContainer
from container_contract.ray_serve.environment import (
    DEFAULT_BACKEND_TIMEOUT_S,
    FIXED_PORT_VARS,
    SERVE_PORT_VAR,
    backend_timeout_s,
    container_ports,
    haproxy_maxconn,
    haproxy_paths,
    ingress_env,
    prepare_environment,
)
from container_contract.ray_serve.processes import (
    descendants,
    kill_group,
    kill_leftovers,
    replica_pids,
    temp_dir_prefix,
)

__all__ = [
    "DEFAULT_BACKEND_TIMEOUT_S",
    "FIXED_PORT_VARS",
    "RayContainer",
    "SERVE_PORT_VAR",
    "backend_timeout_s",
    "container_ports",
    "descendants",
    "haproxy_maxconn",
    "haproxy_paths",
    "ingress_env",
    "kill_group",
    "kill_leftovers",
    "prepare_environment",
    "replica_pids",
    "temp_dir_prefix",
]

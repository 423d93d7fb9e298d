"""The Ray Serve settings of a PyTorch artifact, and the ``config.yaml`` that carries them.

AWS's Ray Serve container runs ``serve run /opt/ml/model/config.yaml``: Serve's ``applications:``
config (a ``ServeDeploySchema``). The artifact's one application is ``serve_app:app`` (the
project's ``code/serve_app.py``) on route ``/``, the route the container's adapter forwards
``/invocations`` to. Its deployment's settings are the tunables of this module: replicas, CPUs per
replica (Ray also sets each replica's ``OMP_NUM_THREADS`` from it), the most requests a replica
takes at once, and the batch size and window handed to ``@serve.batch`` through ``user_config``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import yaml

from model_export.errors import ExportError

APP_NAME = "model"
DEPLOYMENT_NAME = "SageMakerHandlers"
IMPORT_PATH = "serve_app:app"
CONFIG_NAME = "config.yaml"


@dataclass(frozen=True)
class ServeSettings:
    """Defaults suit an ``ml.m5.large`` (2 vCPUs): two one-CPU replicas, batches of up to 16."""

    replicas: int = 2
    cpus_per_replica: float = 1.0
    max_ongoing_requests: int = 32
    max_batch_size: int = 16
    batch_wait_ms: float = 2.0

    def __post_init__(self) -> None:
        checks = [
            ("replicas", self.replicas >= 1, "at least 1"),
            ("cpus_per_replica", self.cpus_per_replica > 0, "more than 0"),
            ("max_ongoing_requests", self.max_ongoing_requests >= 1, "at least 1"),
            ("max_batch_size", self.max_batch_size >= 1, "at least 1"),
            ("batch_wait_ms", 0 <= self.batch_wait_ms <= 1000, "between 0 and 1000"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ExportError(f"serve setting {name}={getattr(self, name)!r} must be {allowed}")
        if self.max_ongoing_requests < self.max_batch_size:
            raise ExportError(
                f"serve setting max_ongoing_requests={self.max_ongoing_requests} is below "
                f"max_batch_size={self.max_batch_size}: a replica could never fill a batch; "
                "raise max_ongoing_requests or lower max_batch_size"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def config(self) -> dict[str, Any]:
        """The Serve config document (``applications:``) for the artifact's ``config.yaml``."""
        return {
            "applications": [
                {
                    "name": APP_NAME,
                    "route_prefix": "/",
                    "import_path": IMPORT_PATH,
                    "deployments": [
                        {
                            "name": DEPLOYMENT_NAME,
                            "num_replicas": self.replicas,
                            "max_ongoing_requests": self.max_ongoing_requests,
                            "ray_actor_options": {"num_cpus": self.cpus_per_replica},
                            # A log line per request costs the replica more CPU than a small
                            # model's forward pass; errors are still logged.
                            "logging_config": {"enable_access_log": False},
                            "user_config": {
                                "max_batch_size": self.max_batch_size,
                                "batch_wait_timeout_s": self.batch_wait_ms / 1000.0,
                            },
                        }
                    ],
                }
            ]
        }

    def config_yaml(self) -> str:
        header = (
            "# Ray Serve config: AWS's Ray Serve container runs `serve run` on this file.\n"
            "# Written by `python -m model_export pytorch`; re-export to change it.\n"
        )
        return header + yaml.safe_dump(self.config(), sort_keys=False)


def settings_from_config(document: Any) -> ServeSettings:
    """Read the settings back from a ``config.yaml`` document this module wrote."""
    try:
        (app,) = document["applications"]
        (deployment,) = app["deployments"]
        user = deployment["user_config"]
        return ServeSettings(
            replicas=int(deployment["num_replicas"]),
            cpus_per_replica=float(deployment["ray_actor_options"]["num_cpus"]),
            max_ongoing_requests=int(deployment["max_ongoing_requests"]),
            max_batch_size=int(user["max_batch_size"]),
            batch_wait_ms=float(user["batch_wait_timeout_s"]) * 1000.0,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{CONFIG_NAME} is not one model_export wrote: {exc!r}") from exc

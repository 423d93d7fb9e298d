"""Ray Serve started as the container starts it: requirements checked, a private Ray head, the
artifact's ``config.yaml`` (or ``SM_RAYSERVE_APP``) deployed, then waited on until RUNNING."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from container_contract.errors import ContainerError


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

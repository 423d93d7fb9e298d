"""Where things are: SageMaker's environment when it is set, local folders when it is not.

The same script runs on a laptop, on EC2 and as a SageMaker script-mode job. SageMaker tells the
script where its data and outputs live through ``SM_*`` variables (aws/sagemaker-training-toolkit,
``ENVIRONMENT_VARIABLES.md``); outside SageMaker none of them exists, so every lookup here has a
local fallback and an explicit flag beats both.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

SM_CHECKPOINT_DIR = Path("/opt/ml/checkpoints")
SM_FAILURE_FILE = Path("/opt/ml/output/failure")
CHANNELS: tuple[str, ...] = ("train", "valid", "test")


class UsageError(Exception):
    """Bad input from the user (flags, data, config): reported as one clear line, no traceback."""


def in_sagemaker() -> bool:
    """True inside a SageMaker training container."""
    return "SM_TRAINING_ENV" in os.environ or "SM_MODEL_DIR" in os.environ


def env_path(var: str) -> Path | None:
    """The path in environment variable ``var``, or None when it is unset or empty."""
    value = os.environ.get(var, "").strip()
    return Path(value) if value else None


def default_model_dir(stem: str) -> Path:
    return env_path("SM_MODEL_DIR") or Path("runs") / stem / "model"


def default_output_dir(stem: str) -> Path:
    return env_path("SM_OUTPUT_DATA_DIR") or Path("runs") / stem / "output"


def default_checkpoint_dir(stem: str) -> Path:
    # CheckpointConfig(local_path=...) defaults to /opt/ml/checkpoints; SageMaker syncs it to S3
    # and restores it onto a replacement (spot) instance.
    if SM_CHECKPOINT_DIR.is_dir() or in_sagemaker():
        return SM_CHECKPOINT_DIR
    return Path("runs") / stem / "checkpoints"


def default_failure_file(output_dir: Path) -> Path:
    """SageMaker reads the failure reason from /opt/ml/output/failure; locally it goes beside the
    outputs instead of into a root-owned folder."""
    if SM_FAILURE_FILE.parent.is_dir() or in_sagemaker():
        return SM_FAILURE_FILE
    return output_dir / "failure"


def resolve_channels(
    data: Path | None, explicit: dict[str, Path | None], required: tuple[str, ...] = ("train",)
) -> dict[str, Path | None]:
    """Each channel's folder: ``--train``, else ``SM_CHANNEL_TRAIN``, else ``DATA/train`` (etc.).

    A channel that cannot be found is None; a required one raises :class:`UsageError`.
    """
    resolved: dict[str, Path | None] = {}
    for name in CHANNELS:
        path = explicit.get(name) or env_path(f"SM_CHANNEL_{name.upper()}")
        if path is None and data is not None and (data / name).exists():
            path = data / name
        if path is not None and not path.exists():
            raise UsageError(f"the {name} data folder {path} does not exist")
        resolved[name] = path
    for name in required:
        if resolved[name] is None:
            where = f" (no {data / name})" if data is not None else ""
            raise UsageError(
                f"no {name} data{where}: pass --data DIR holding {name}/, or --{name} DIR, "
                f"or run as a SageMaker job with a '{name}' channel"
            )
    return resolved


def sm_hosts() -> list[str]:
    """SM_HOSTS as a list (one host, ``localhost``, outside SageMaker)."""
    raw = os.environ.get("SM_HOSTS")
    if not raw:
        return ["localhost"]
    try:
        hosts = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"SM_HOSTS is not a JSON list of host names: {raw!r}") from exc
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise UsageError(f"SM_HOSTS is not a JSON list of host names: {raw!r}")
    return hosts


def current_host() -> str:
    return os.environ.get("SM_CURRENT_HOST", "localhost")


def require_one_host_unless_distributed(script: str, distributed: bool) -> None:
    """A multi-instance job whose processes are not joined (no torchrun) would train N separate
    models that overwrite each other's outputs: refuse, saying what to change."""
    hosts = sm_hosts()
    if len(hosts) > 1 and not distributed:
        raise UsageError(
            f"this job runs on {len(hosts)} instances ({', '.join(hosts)}; this is "
            f"{current_host()}) but {script} is not running distributed: use one instance, or "
            "(image_classifier_torch.py only) launch it with torchrun (the Torchrun distribution)"
        )


def num_gpus_from_env() -> int | None:
    """SM_NUM_GPUS when SageMaker set it, else None (the caller asks the framework)."""
    raw = os.environ.get("SM_NUM_GPUS")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise UsageError(f"SM_NUM_GPUS must be an integer, got {raw!r}") from exc


def write_failure(path: Path | None, message: str) -> None:
    """Record why the job failed where SageMaker shows it (``FailureReason``); never raises."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # SageMaker truncates FailureReason to 1 KiB; keep the start, which names the error.
        path.write_text(message[:1024], encoding="utf-8")
    except OSError as exc:
        log.error("could not write the failure file %s: %s", path, exc)

"""Pretrained weights as a job's ``pretrained`` input channel (``SM_CHANNEL_PRETRAINED``).

For a transfer-learning model the launcher picks the weights of ``training/common/sources.py``
that fit the job's architecture (the ``arch`` / ``backbone`` hyperparameter), fetches them into
the local cache (``python -m training.weights``, verified), uploads them once to
``s3://BUCKET/training/input/weights/<name>/<file>`` (under the input prefix the training role
can read) and passes that object as the channel; the script loads whatever the channel holds.
``--pretrained-weights none`` trains from random weights on purpose (the script is told so),
a weights name picks other weights from the table, and an ``s3://`` URI is passed as is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.common.sources import PRETRAINED_CHANNEL, WEIGHTS, Weights
from training.launch import settings
from training.launch.models import ModelSpec
from training.launch.settings import LaunchError

log = logging.getLogger(__name__)

AUTO, NONE = "auto", "none"
# The sources table names Keras weights "keras"; the launcher's models say "tensorflow".
_FRAMEWORK_OF_WEIGHTS = {"pytorch": "pytorch", "tensorflow": "keras"}


@dataclass(frozen=True)
class PretrainedInput:
    s3_uri: str
    weights: Weights | None  # None: a user's own S3 object, nothing to upload

    @property
    def key(self) -> str:
        return settings.parse_s3_uri(self.s3_uri, "--pretrained-weights")[1]


def s3_uri_for(weights: Weights, bucket: str) -> str:
    return f"s3://{bucket}/{settings.WEIGHTS_PREFIX}{weights.name}/{weights.download.file_name}"


def _arch(model: ModelSpec, hyperparameters: Mapping[str, Any]) -> str | None:
    if model.backbone_hyperparameter is None:
        return None
    value = hyperparameters.get(model.backbone_hyperparameter, model.backbone_default)
    return None if value is None else str(value)


def pick(choice: str, model: ModelSpec, hyperparameters: Mapping[str, Any]) -> Weights | None:
    """The table's weights for ``--pretrained-weights auto|NAME`` (None: the table has none for
    the job's architecture)."""
    framework = _FRAMEWORK_OF_WEIGHTS[model.framework]
    if choice.lower() == AUTO:
        arch = _arch(model, hyperparameters)
        match = [w for w in WEIGHTS.values() if w.framework == framework and w.arch == arch]
        if not match:
            return None
        weights = match[0]
    else:
        found = WEIGHTS.get(choice)
        if found is None:
            known = ", ".join([AUTO, NONE, *sorted(WEIGHTS)])
            raise LaunchError(
                f"--pretrained-weights {choice!r}: use one of {known}, or an s3:// URI"
            )
        if found.framework != framework:
            raise LaunchError(
                f"--pretrained-weights {choice} are {found.framework} weights; {model.name} "
                f"trains with {model.framework}"
            )
        weights = found
    alpha = hyperparameters.get("alpha")
    if weights.arch == "mobilenet_v2" and alpha is not None and float(alpha) != 1.0:
        raise LaunchError(
            f"alpha={alpha}: the published MobileNetV2 weights in the table are alpha 1.0; "
            "pass --pretrained-weights none, or weights of your own for that alpha"
        )
    return weights


def _transfer(model: ModelSpec, hyperparameters: Mapping[str, Any]) -> bool:
    """Whether the job's architecture is one the table has pretrained weights for."""
    framework = _FRAMEWORK_OF_WEIGHTS[model.framework]
    arch = _arch(model, hyperparameters)
    return any(w.framework == framework and w.arch == arch for w in WEIGHTS.values())


def resolve(
    choice: str, model: ModelSpec, hyperparameters: Mapping[str, Any], bucket: str
) -> tuple[PretrainedInput | None, dict[str, str]]:
    """The channel to add (if any) and the hyperparameters that go with it."""
    choice = choice.strip()
    if choice.lower() == NONE:
        return None, ({"pretrained-weights": NONE} if _transfer(model, hyperparameters) else {})
    if choice.startswith("s3://"):
        settings.parse_s3_uri(choice, "--pretrained-weights")
        return PretrainedInput(choice, None), {}
    weights = pick(choice, model, hyperparameters)
    if weights is None:
        return None, {}
    return PretrainedInput(s3_uri_for(weights, bucket), weights), {}


_SCRIPT_FLAGS = ("--pretrained-weights", "--pretrained_weights", "--backbone-weights",
                 "--backbone_weights")  # fmt: skip


def script_args_for_local_run(
    choice: str, model: ModelSpec, script_args: list[str], *, cache_root: Path | None = None
) -> list[str]:
    """For ``ec2``: the script flag that gives it its weights (fetched into the local cache)."""
    if any(arg.split("=")[0] in _SCRIPT_FLAGS for arg in script_args):
        return []  # the user passes weights to the script themselves
    hyperparameters: dict[str, Any] = dict(model.hyperparameters)
    for i, arg in enumerate(script_args[:-1]):  # `-- --arch resnet18` changes the architecture
        name = arg.lstrip("-").replace("_", "-")
        if arg.startswith("--") and name in (model.backbone_hyperparameter, "alpha"):
            hyperparameters[name] = script_args[i + 1]
    choice = choice.strip()
    if choice.lower() == NONE:
        return ["--pretrained-weights", NONE] if _transfer(model, hyperparameters) else []
    if choice.lower() != AUTO and choice not in WEIGHTS:
        path = Path(choice).expanduser()
        if not path.exists():
            raise LaunchError(
                f"--pretrained-weights {choice}: not auto, none, a name from `python -m "
                "training.weights list`, or an existing local file"
            )
        return ["--pretrained-weights", str(path)]
    weights = pick(choice, model, hyperparameters)
    if weights is None:
        return []
    from training import weights as weights_cli

    return ["--pretrained-weights", str(weights_cli.fetch(weights.name, root=cache_root).path)]


def upload(pretrained: PretrainedInput, s3: Any, *, cache_root: Path | None = None) -> bool:
    """Fetch the weights (cache, verified) and upload them unless the same bytes are there.

    Returns whether it uploaded. The object records the SHA-256 in its metadata and S3 checks
    the upload against it (``ChecksumAlgorithm``).
    """
    if pretrained.weights is None:
        return False
    from botocore.exceptions import ClientError

    from training import weights as weights_cli

    bucket, key = settings.parse_s3_uri(pretrained.s3_uri, "--pretrained-weights")
    fetched = weights_cli.fetch(pretrained.weights.name, root=cache_root)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == fetched.sha256:
            log.info("pretrained weights %s are already in S3", pretrained.s3_uri)
            return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    from training.launch.s3sync import TRANSFER

    s3.upload_file(
        str(fetched.path),
        bucket,
        key,
        ExtraArgs={"Metadata": {"sha256": fetched.sha256}, "ChecksumAlgorithm": "SHA256"},
        Config=TRANSFER,
    )
    log.info("uploaded pretrained weights %s to %s", pretrained.weights.name, pretrained.s3_uri)
    return True


__all__ = ["PRETRAINED_CHANNEL", "PretrainedInput", "resolve", "upload", "s3_uri_for"]

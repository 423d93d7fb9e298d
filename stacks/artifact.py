"""Where the model comes from and which serving container runs it, decided at synth time, offline.

The artifact is either the local `model.tar.gz` that `make artifacts` writes (uploaded as a CDK
asset on deploy) or an existing `s3://` URI from config. The serving container is the AWS Deep
Learning Container for the artifact's framework and version, resolved by `sagemaker.core.image_uris`
from JSON shipped in the package (no AWS call), unless config names an image URI: PyTorch models
run on AWS's Ray Serve container (image family `ray-serve`, CPU or CUDA by instance type, version
pinned by the manifest or `framework_version`), TensorFlow models on TF Serving.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from contracts.frameworks import IMAGE_FAMILY
from stacks.config import ConfigError, ServingConfig

# What each framework's serving container expects when a manifest does not say.
_DEFAULT_CONTENT_TYPE = {"pytorch": "application/json", "tensorflow": "application/json"}
# The Ray Serve settings in a PyTorch artifact's config.yaml (manifest "serve"), by config key.
SERVE_KEYS = {
    "serve_replicas": "replicas",
    "serve_cpus_per_replica": "cpus_per_replica",
    "serve_max_ongoing_requests": "max_ongoing_requests",
    "serve_max_batch_size": "max_batch_size",
    "serve_batch_wait_ms": "batch_wait_ms",
}


class ArtifactError(ConfigError):
    """The model artifact is missing or its manifest is unusable."""


@dataclass(frozen=True)
class ServingImage:
    uri: str
    repository_arn: str  # for the execution role's ECR pull permission


@dataclass(frozen=True)
class ModelSource:
    framework: str
    framework_version: str
    py_version: str
    content_type: str
    local_path: Path | None  # set when the artifact is a local file (CDK asset)
    s3_url: str | None  # set when config names an existing artifact
    image: ServingImage
    container_env: dict[str, str]  # the framework's defaults, then config's container_env


def parse_s3_url(url: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
    if not match:
        raise ArtifactError(f"'{url}' is not an s3://bucket/key URI")
    return match.group(1), match.group(2)


def _read_manifest(tarball: Path) -> dict:
    manifest_path = tarball.with_name("manifest.json")
    if not manifest_path.is_file():
        return {}
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"{manifest_path} is not valid JSON ({exc}); rebuild it with `make artifacts`"
        ) from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(
            f"{manifest_path} must hold a JSON object; rebuild it with `make artifacts`"
        )
    return manifest


def resolve_image(
    cfg: ServingConfig, framework: str, version: str, py_version: str
) -> ServingImage:
    if cfg.image_uri:
        uri = cfg.image_uri
    else:
        if not cfg.region:
            raise ConfigError(
                "the serving image is resolved per region: set CDK_DEFAULT_REGION (or "
                "-c region=...) or name the image with -c image_uri=..."
            )
        # Imported here: it takes seconds, and only synth needs it.
        from sagemaker.core import image_uris

        try:
            uri = image_uris.retrieve(
                framework=IMAGE_FAMILY[framework],
                region=cfg.region,
                version=version,
                instance_type=cfg.instance_type,
                image_scope="inference",
            )
        except ValueError as exc:
            raise ConfigError(
                f"no AWS serving container for framework={framework} version={version} "
                f"py_version={py_version} in {cfg.region} on {cfg.instance_type}: {exc}. "
                "Set framework_version to a supported version or name the image with image_uri."
            ) from exc
    match = re.fullmatch(
        r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([a-z0-9._/-]+)[:@].+", uri
    )
    if not match:
        raise ConfigError(f"config key 'image_uri' has bad value {uri!r}: not an ECR image URI")
    account, region, repository = match.groups()
    partition = "aws-cn" if region.startswith("cn-") else "aws"
    return ServingImage(
        uri=uri, repository_arn=f"arn:{partition}:ecr:{region}:{account}:repository/{repository}"
    )


def ray_serve_env(cfg: ServingConfig) -> dict[str, str]:
    """How AWS's Ray Serve container should run Ray (its entrypoint passes the env to Ray).

    Ray 2.56+'s high-throughput ingress: HAProxy in C instead of Serve's Python proxy actor (about
    4x the requests per second of one replica measured locally; BENCHMARKS.md). One HAProxy thread
    per vCPU pair is plenty for a model-bound instance. RAYSERVE_BACKEND_TIMEOUT bounds the
    adapter's call into Serve: SageMaker's own limit on an invocation is 60 s.
    RAY_SERVE_LOG_TO_STDERR: THROUGHPUT_OPTIMIZED turns it off, and then the replicas' logs (the
    model's tracebacks, its handlers' own logging) go only to files inside the container; on stderr
    Ray forwards them to the container's output, which SageMaker sends to CloudWatch. The
    per-request access log stays off (``config.yaml``), so this costs nothing per request.
    """
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_LOG_TO_STDERR": "1",
        "RAY_SERVE_HAPROXY_NBTHREAD": "1",
        "RAYSERVE_BACKEND_TIMEOUT": str(cfg.model_timeout_s),
    }


def check_serve_settings(cfg: ServingConfig, manifest: dict) -> None:
    """Config's serve_* keys must match what the artifact's config.yaml was exported with."""
    wanted = {key: value for key, value in cfg.serve_settings.items() if value is not None}
    if not wanted:
        return
    exported = manifest.get("serve")
    if not isinstance(exported, dict):
        raise ArtifactError(
            f"config sets {', '.join(sorted(wanted))} but the artifact's manifest has no Ray "
            "Serve settings: re-export it with `python -m model_export pytorch`"
        )
    differ = {
        key: (exported.get(SERVE_KEYS[key]), value)
        for key, value in wanted.items()
        if exported.get(SERVE_KEYS[key]) != value
    }
    if differ:
        flags = " ".join(
            f"--{SERVE_KEYS[key].replace('_', '-')} {value}" for key, (_, value) in differ.items()
        )
        found = ", ".join(f"{key}={old!r} (config: {new!r})" for key, (old, new) in differ.items())
        raise ArtifactError(
            f"the artifact's config.yaml was exported with {found}; Ray Serve reads these from "
            f"the artifact, so re-export it: `python -m model_export pytorch ... {flags}`"
        )


def resolve_model_source(cfg: ServingConfig, project_root: Path) -> ModelSource:
    """Decide artifact location, framework and serving image; fail with a how-to-fix message."""
    manifest: dict = {}
    local_path: Path | None = None
    if cfg.model_data_url:
        parse_s3_url(cfg.model_data_url)
    else:
        local_path = (project_root / cfg.resolved_artifact_path).resolve()
        if not local_path.is_file():
            raise ArtifactError(
                f"model artifact {cfg.resolved_artifact_path} not found. Build it with "
                f"`make artifacts MODEL={cfg.model}`, or deploy an artifact already in S3 with "
                "-c model_data_url=s3://<bucket>/<key>/model.tar.gz -c framework=<pytorch|tensorflow> "
                "-c framework_version=<version>."
            )
        manifest = _read_manifest(local_path)

    def pick(key: str, configured: str) -> str:
        if configured != "auto":
            return configured
        value = manifest.get(key)
        if not isinstance(value, str) or not value:
            raise ArtifactError(
                f"config key '{key}' is 'auto' but {cfg.resolved_artifact_path.with_name('manifest.json')} "
                f"does not name it; rebuild the artifact with `make artifacts MODEL={cfg.model}` or "
                f"set -c {key}=..."
            )
        return value

    framework = pick("framework", cfg.framework)
    if framework not in ("pytorch", "tensorflow"):
        raise ArtifactError(f"the artifact's framework {framework!r} is not pytorch or tensorflow")
    version = pick("framework_version", cfg.framework_version)
    env: dict[str, str] = {}
    if framework == "pytorch":
        container = manifest.get("container") or {}
        if manifest and container.get("image_family") != IMAGE_FAMILY["pytorch"]:
            raise ArtifactError(
                f"{cfg.resolved_artifact_path} was exported for the retired PyTorch inference "
                "container (TorchServe); re-export it with `python -m model_export pytorch` for "
                "AWS's Ray Serve container"
            )
        if manifest:
            check_serve_settings(cfg, manifest)
        env = ray_serve_env(cfg)
    py_version = str(manifest.get("py_version") or cfg.py_version)
    content_type = cfg.endpoint_content_type
    if content_type == "auto":
        content_type = str(manifest.get("content_type") or _DEFAULT_CONTENT_TYPE[framework])
    return ModelSource(
        framework=framework,
        framework_version=version,
        py_version=py_version,
        content_type=content_type,
        local_path=local_path,
        s3_url=cfg.model_data_url or None,
        image=resolve_image(cfg, framework, version, py_version),
        container_env={**env, **cfg.container_env},
    )

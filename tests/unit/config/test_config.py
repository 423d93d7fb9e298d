"""Config: precedence, coercion of `-c` strings, and errors that name key, value and what is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacks.artifact import ArtifactError, resolve_model_source
from stacks.config import ConfigError, build_config, volume_kms_supported

ROOT = Path(__file__).resolve().parents[3]
CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]["ml-serving"]


def test_precedence_defaults_stage_model_then_cli():
    cfg = build_config(CONTEXT, {"stage": "prod", "model": "dog-breeds"})
    assert cfg.stack_name == "MlServing-prod-dog-breeds"
    assert cfg.retain_data is True and cfg.provisioned_concurrency == 2  # stage block
    assert cfg.instance_type == "ml.c5.xlarge"  # model block
    assert cfg.max_instances == 4
    cfg = build_config(
        CONTEXT, {"stage": "prod", "model": "dog-breeds", "instance_type": "ml.c5.2xlarge"}
    )
    assert cfg.instance_type == "ml.c5.2xlarge"  # -c wins


def test_cli_strings_are_coerced_to_the_keys_types():
    cfg = build_config(
        CONTEXT,
        {
            "max_instances": "3",
            "throttle_rate_limit": "12.5",
            "volume_kms": "false",
            "binary_media_types": '["image/png"]',
            "container_env": '{"SAGEMAKER_TFS_ENABLE_BATCHING": "true"}',
        },
    )
    assert cfg.max_instances == 3 and cfg.throttle_rate_limit == 12.5 and cfg.volume_kms is False
    assert cfg.binary_media_types == ("image/png",)
    assert cfg.container_env == {"SAGEMAKER_TFS_ENABLE_BATCHING": "true"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stage": "qa"}, "'stage' has bad value 'qa': must be one of dev, prod"),
        ({"instance_type": "m5.large"}, "'instance_type' has bad value 'm5.large'"),
        ({"max_instances": "lots"}, "'max_instances' has bad value 'lots': must be an integer"),
        (
            {"min_instances": 3, "max_instances": 2},
            "'max_instances' has bad value 2: must be at least 1 and at least min_instances (3)",
        ),
        ({"api_auth": "none"}, "'api_auth' has bad value 'none': must be one of api_key, iam"),
        ({"lambda_timeout_s": 60}, "API Gateway gives up on the integration after 29 s"),
        ({"volume_kms": "maybe"}, "'volume_kms' has bad value 'maybe': must be true or false"),
        ({"model_data_url": "https://x/model.tar.gz"}, "must be an s3://bucket/key.tar.gz URI"),
        ({"model_data_url": "s3://bucket-a/m/model.tar.gz"}, "'framework' has bad value 'auto'"),
        ({"cors_allow_origin": "app.example.com"}, "'cors_allow_origin' has bad value"),
        ({"model": "My_Model"}, "'model' has bad value 'My_Model'"),
        # "--" separates the stack's name from the instance type in endpoint names.
        (
            {"model": "digits--v2"},
            "'model' has bad value 'digits--v2': must be 1-30 lower-case letters, digits or single",
        ),
        ({"model": "digits-"}, "'model' has bad value 'digits-'"),
        ({"client_role_principal": "bob"}, "'client_role_principal' has bad value 'bob'"),
        (
            {"instance_typ": "ml.m5.large"},
            "unknown config key 'instance_typ' in -c overrides (did you mean 'instance_type'?); "
            "allowed keys: ",
        ),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(overrides, message):
    with pytest.raises(ConfigError) as error:
        build_config(CONTEXT, overrides)
    assert message in str(error.value)


def test_unknown_key_in_a_cdk_json_block_is_rejected():
    with pytest.raises(ConfigError, match=r"unknown config key 'max_instance' in stages\.prod"):
        build_config({**CONTEXT, "stages": {"prod": {"max_instance": 3}}}, {"stage": "prod"})


@given(st.integers().filter(lambda n: not 0 <= n <= 1000))
def test_out_of_range_integers_are_always_rejected(value):
    with pytest.raises(ConfigError, match="provisioned_concurrency"):
        build_config(CONTEXT, {"provisioned_concurrency": value})


def test_gateway_reserved_concurrency_is_sized_from_the_api_throttle():
    # The stage's burst is what API Gateway lets in at once; never below twice the provisioned
    # concurrency (both alias versions may hold theirs while it moves).
    assert build_config(CONTEXT, {"stage": "dev"}).lambda_reserved_concurrency == 100
    assert build_config(CONTEXT, {"stage": "prod"}).lambda_reserved_concurrency == 400
    cfg = build_config(
        CONTEXT, {"stage": "prod", "throttle_burst_limit": "10", "provisioned_concurrency": "8"}
    )
    assert cfg.lambda_reserved_concurrency == 16
    # An account without room for a reservation turns it off.
    off = build_config(CONTEXT, {"reserve_lambda_concurrency": "false"})
    assert off.lambda_reserved_concurrency is None


@pytest.mark.parametrize(
    ("url", "prefix", "versions"),
    [
        ("s3://b-1/digits/v3/model.tar.gz", "", "s3://b-1/digits/"),
        ("s3://b-1/runs/42/model.tar.gz", "", "s3://b-1/runs/"),
        ("s3://b-1/digits/model.tar.gz", "", "s3://b-1/digits/"),
        ("s3://b-1/model.tar.gz", "", "s3://b-1/model.tar.gz"),
        (
            "s3://b-1/training/jobs/j-7/output/model.tar.gz",
            "s3://b-1/training/jobs/",
            "s3://b-1/training/jobs/",
        ),
    ],
)
def test_the_endpoint_may_read_every_version_of_an_s3_model(url, prefix, versions):
    overrides = {"model_data_url": url, "framework": "pytorch", "framework_version": "1.4"}
    if prefix:
        overrides["model_data_prefix"] = prefix
    assert build_config(CONTEXT, overrides).model_versions_url == versions


def test_model_data_prefix_must_hold_the_artifact():
    with pytest.raises(ConfigError, match="model_data_prefix.*model_data_url lies under"):
        build_config(
            CONTEXT,
            {
                "model_data_url": "s3://b-1/digits/v3/model.tar.gz",
                "model_data_prefix": "s3://b-1/other/",
                "framework": "pytorch",
                "framework_version": "1.4",
            },
        )


def test_volume_key_only_where_the_instance_type_allows_it():
    assert volume_kms_supported("ml.m5.large") and volume_kms_supported("ml.c5.xlarge")
    for instance_type in (
        "ml.g5.xlarge",
        "ml.m5d.large",
        "ml.g4dn.xlarge",
        "ml.p4d.24xlarge",
        "ml.inf2.xlarge",
    ):
        assert not volume_kms_supported(instance_type), instance_type


def test_missing_artifact_says_which_file_and_which_command(tmp_path):
    cfg = build_config(CONTEXT, {"model": "sentiment"}, region="us-east-1")
    with pytest.raises(ArtifactError) as error:
        resolve_model_source(cfg, tmp_path)
    message = str(error.value)
    assert "artifacts/sentiment/model.tar.gz not found" in message
    assert "make artifacts MODEL=sentiment" in message and "model_data_url=s3://" in message


def _write_manifest(tmp_path, manifest):
    folder = tmp_path / "artifacts" / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tar.gz").write_bytes(b"\x1f\x8b")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


RAY_MANIFEST = {
    "framework": "pytorch",
    "framework_version": "1.4",
    "py_version": "py313",
    "content_type": "application/json",
    "container": {"image_family": "ray-serve", "image_repository": "ray"},
    "serve": {
        "config": "config.yaml",
        "replicas": 2,
        "cpus_per_replica": 1.0,
        "max_ongoing_requests": 32,
        "max_batch_size": 16,
        "batch_wait_ms": 2.0,
    },
}


def test_manifest_picks_framework_container_and_content_type(tmp_path):
    folder = _write_manifest(tmp_path, RAY_MANIFEST)
    source = resolve_model_source(build_config(CONTEXT, {}, region="eu-west-1"), tmp_path)
    assert source.local_path == folder / "model.tar.gz"
    assert (
        source.image.uri
        == "763104351884.dkr.ecr.eu-west-1.amazonaws.com/ray:serve-ml-sagemaker-cpu-v1.4"
    )
    assert source.image.repository_arn == "arn:aws:ecr:eu-west-1:763104351884:repository/ray"
    assert source.container_env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    # A GPU instance type gets the CUDA image (always on: scale to zero sizes CPU copies only).
    on_gpu = {"instance_type": "ml.g5.xlarge", "capacity_mode": "always_on", "min_instances": 1}
    gpu = resolve_model_source(build_config(CONTEXT, on_gpu, region="eu-west-1"), tmp_path)
    assert gpu.image.uri.endswith("ray:serve-ml-sagemaker-cuda-v1.4")
    # Config's container_env wins over the defaults.
    tuned = resolve_model_source(
        build_config(
            CONTEXT, {"container_env": {"RAY_SERVE_HAPROXY_NBTHREAD": "2"}}, region="eu-west-1"
        ),
        tmp_path,
    )
    assert tuned.container_env["RAY_SERVE_HAPROXY_NBTHREAD"] == "2"


def test_serve_settings_that_differ_from_the_artifact_fail_with_the_re_export_command(tmp_path):
    _write_manifest(tmp_path, RAY_MANIFEST)
    same = build_config(
        CONTEXT, {"serve_replicas": 2, "serve_batch_wait_ms": 2}, region="us-east-1"
    )
    resolve_model_source(same, tmp_path)
    other = build_config(CONTEXT, {"serve_replicas": 4}, region="us-east-1")
    with pytest.raises(ArtifactError) as error:
        resolve_model_source(other, tmp_path)
    assert "serve_replicas=2 (config: 4)" in str(error.value)
    assert "python -m model_export pytorch ... --replicas 4" in str(error.value)


def test_an_artifact_exported_for_the_retired_torchserve_container_is_refused(tmp_path):
    _write_manifest(
        tmp_path,
        {
            "framework": "pytorch",
            "framework_version": "1.4",
            "py_version": "py312",
            "container": {"image_repository": "pytorch-inference"},
        },
    )
    with pytest.raises(ArtifactError, match="retired PyTorch inference container"):
        resolve_model_source(build_config(CONTEXT, {}, region="us-east-1"), tmp_path)


def test_unsupported_container_version_is_a_clear_error(tmp_path):
    cfg = build_config(
        CONTEXT,
        {
            "model_data_url": "s3://bucket-a/m/model.tar.gz",
            "framework": "pytorch",
            "framework_version": "0.1",
        },
        region="us-east-1",
    )
    with pytest.raises(
        ConfigError, match="no AWS serving container for framework=pytorch version=0.1"
    ):
        resolve_model_source(cfg, tmp_path)


def test_synth_with_a_bad_value_exits_2_with_the_message_and_no_traceback(tmp_path):
    # As `cdk synth -c max_instances=0` runs the app.
    context = {**json.loads((ROOT / "cdk.json").read_text())["context"], "max_instances": "0"}
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_CONTEXT_JSON": json.dumps(context),
            "CDK_OUTDIR": str(tmp_path),
            "CDK_DEFAULT_REGION": "us-east-1",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        "error: config key 'max_instances' has bad value 0: must be at least 1 and at least "
        "min_instances (0)" in result.stderr
    )
    assert "Traceback" not in result.stderr


# --- capacity modes and schedules ---------------------------------------------------------------

NIGHTS = {
    "name": "nights",
    "schedule": "cron(0 20 ? * MON-FRI *)",
    "timezone": "Europe/Berlin",
    "min_capacity": 0,
    "max_capacity": 0,
}


def test_dev_scales_to_zero_and_prod_stays_on_by_default():
    dev = build_config(CONTEXT, {"stage": "dev"})
    prod = build_config(CONTEXT, {"stage": "prod"})
    assert (dev.capacity_mode, dev.min_instances) == ("scale_to_zero", 0)
    assert (prod.capacity_mode, prod.min_instances) == ("always_on", 1)
    assert dev.scaling_schedules == () and prod.scaling_schedules == ()


def test_schedules_come_from_cdk_json_or_a_json_string():
    cfg = build_config(CONTEXT, {"stage": "dev", "scaling_schedules": json.dumps([NIGHTS])})
    assert [entry.model_dump() for entry in cfg.scaling_schedules] == [NIGHTS]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"stage": "dev", "min_instances": 1},
            "'min_instances' has bad value 1: must be 0 with capacity_mode scale_to_zero",
        ),
        (
            {"stage": "dev", "capacity_mode": "always_on"},
            "'min_instances' has bad value 0: must be at least 1 with capacity_mode always_on",
        ),
        ({"capacity_mode": "sometimes"}, "must be one of always_on, scale_to_zero"),
        ({"scaling_schedules": "nightly"}, "must be a JSON list of schedule objects"),
        (
            {"scaling_schedules": [{**NIGHTS, "schedule": "cron(0 20 * *)"}]},
            "'scaling_schedules[0].schedule' has bad value 'cron(0 20 * *)': must be an "
            "Application Auto Scaling schedule",
        ),
        (
            {"scaling_schedules": [{**NIGHTS, "schedule": "every night"}]},
            "'scaling_schedules[0].schedule'",
        ),
        (
            {"scaling_schedules": [{**NIGHTS, "min_capacity": 2, "max_capacity": 1}]},
            "'scaling_schedules[0].max_capacity' has bad value 1: must be at least min_capacity",
        ),
        (
            {"scaling_schedules": [{**NIGHTS, "timezone": "Mars/Olympus"}]},
            "'scaling_schedules[0].timezone' has bad value 'Mars/Olympus': must be an IANA",
        ),
        (
            {"scaling_schedules": [{**NIGHTS, "min": 0}]},
            "unknown key(s) ['min'] in scaling_schedules[0]",
        ),
        (
            {"scaling_schedules": [{k: v for k, v in NIGHTS.items() if k != "max_capacity"}]},
            "scaling_schedules[0] lacks 'max_capacity'",
        ),
        (
            {"scaling_schedules": [NIGHTS, NIGHTS]},
            "'scaling_schedules[1].name' has bad value 'nights': must be unique",
        ),
        (
            {"stage": "prod", "scaling_schedules": [NIGHTS]},
            "'scaling_schedules[0].min_capacity' has bad value 0: must be at least 1 with "
            "capacity_mode always_on",
        ),
    ],
)
def test_bad_capacity_settings_are_named(overrides, message):
    with pytest.raises(ConfigError) as caught:
        build_config(CONTEXT, overrides)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "schedule", ["rate(1 day)", "rate(30 minutes)", "at(2027-01-01T08:00:00)", "cron(0 7 ? * 2 *)"]
)
def test_every_kind_of_schedule_expression_is_accepted(schedule):
    cfg = build_config(CONTEXT, {"scaling_schedules": [{**NIGHTS, "schedule": schedule}]})
    assert cfg.scaling_schedules[0].schedule == schedule


@pytest.mark.parametrize("instance_type", ["ml.g4dn.xlarge", "ml.p3.2xlarge", "ml.t2.medium"])
def test_scale_to_zero_on_an_instance_it_cannot_size_is_a_config_error(instance_type):
    # A model copy is sized from the instance type; a type it cannot size must fail at config
    # time with the key named, not as a traceback from deep inside synth.
    with pytest.raises(ConfigError, match=f"instance_type='{instance_type}'.*always_on"):
        build_config(CONTEXT, {"stage": "dev", "instance_type": instance_type})

"""The template reader: what the local stage runs comes from the synthesized stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_stage.errors import LocalStageError
from local_stage.template import flavour_from_image, load_stack
from local_stage.testing import PYTORCH_IMAGE, TF_IMAGE, pack, write_cloud_assembly

from .conftest import REPO


@pytest.fixture(scope="module")
def assembly(torch_model_dir, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("assembly")
    tarball = pack(torch_model_dir, base / "model.tar.gz")
    return write_cloud_assembly(
        base / "cdk.out",
        stack_name="MlServing-dev-tiny",
        model_tarball=tarball,
        container_env={"RAY_SERVE_HAPROXY_NBTHREAD": "1"},
        instance_count=3,
        binary_media_types=("image/png", "multipart~1form-data"),
        throttle_rate=7,
        throttle_burst=11,
    )


def test_reads_model_variant_function_and_api_settings(assembly):
    spec = load_stack(assembly, "MlServing-dev-tiny")

    assert (spec.region, spec.account) == ("us-east-1", "123456789012")
    (variant,) = spec.endpoint.variants
    assert (variant.name, variant.initial_instance_count) == ("AllTraffic", 3)
    assert variant.model.flavour == "pytorch"
    assert variant.model.environment == {"RAY_SERVE_HAPROXY_NBTHREAD": "1"}
    assert variant.model.model_data_path.is_file()
    (fn,) = spec.functions
    assert fn.handler == "tiny_handler.lambda_handler"
    assert (fn.code_dir / "tiny_handler.py").is_file()
    # ENDPOINT_NAME is a GetAtt of the endpoint: resolved to the local endpoint's name.
    assert fn.environment["ENDPOINT_NAME"] == spec.endpoint.name == "MlServing-dev-tiny-endpoint"
    assert spec.api.stage_name == "dev"
    assert spec.api.binary_media_types == ("image/png", "multipart/form-data")
    routes = {(r.http_method, r.resource_path): r for r in spec.api.routes}
    assert set(routes) == {("POST", "/predict"), ("GET", "/health")}
    assert all(r.api_key_required and r.throttle.rate_rps == 7 for r in routes.values())
    assert spec.api.usage_plan_throttle.burst == 11


def test_unknown_images_and_missing_templates_are_clear_errors(assembly):
    assert flavour_from_image(TF_IMAGE) == "tensorflow"
    assert flavour_from_image(PYTORCH_IMAGE) == "pytorch"
    with pytest.raises(LocalStageError, match="ray:serve-ml-sagemaker.*tensorflow-inference"):
        flavour_from_image("123.dkr.ecr.us-east-1.amazonaws.com/my-own-server:1")
    # The retired TorchServe container is not run any more.
    with pytest.raises(LocalStageError, match="ray:serve-ml-sagemaker"):
        flavour_from_image("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu")
    with pytest.raises(LocalStageError, match="stacks there: MlServing-dev-tiny"):
        load_stack(assembly, "MlServing-prod-tiny")


@pytest.mark.parametrize("capacity_mode", ["always_on", "scale_to_zero"])
def test_reads_the_real_synthesized_stack(torch_model_dir, tmp_path, capacity_mode):
    """`python app.py` (the project's CDK app) synthesizes; the reader understands its output,
    in either capacity mode (scale_to_zero: the model is an inference component's)."""
    art = tmp_path / "artifacts" / "tiny"
    tarball = pack(torch_model_dir, art / "model.tar.gz")
    (art / "manifest.json").write_text(
        json.dumps(
            {
                "framework": "pytorch",
                "framework_version": "1.4",
                "py_version": "py313",
                "content_type": "application/json",
                "container": {"image_family": "ray-serve"},
            }
        )
    )
    out = tmp_path / "cdk.out"
    context = {
        "artifact_path": str(tarball),
        "region": "us-east-1",
        "account": "123456789012",
        "model": "tiny",
        "capacity_mode": capacity_mode,
        "min_instances": "0" if capacity_mode == "scale_to_zero" else "1",
    }
    env = {
        **os.environ,
        "CDK_OUTDIR": str(out),
        "CDK_CONTEXT_JSON": json.dumps(context),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    synth = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert synth.returncode == 0, synth.stderr[-2000:]
    (stack,) = [
        p.name.removesuffix(".template.json")
        for p in out.glob("MlServing-*-tiny*.json")
        if p.name.endswith(".template.json")
    ]

    spec = load_stack(out, stack)

    assert spec.endpoint.variants[0].model.flavour == "pytorch"
    assert spec.endpoint.variants[0].model.model_data_path.read_bytes() == tarball.read_bytes()
    assert {(r.http_method, r.resource_path) for r in spec.api.routes} >= {
        ("POST", "/predict"),
        ("GET", "/health"),
    }
    (fn,) = spec.functions
    module_path = fn.handler.rpartition(".")[0].replace(".", "/")
    assert (fn.code_dir / module_path).with_suffix(".py").is_file()
    assert fn.environment["ENDPOINT_NAME"] == spec.endpoint.name
    component = spec.endpoint.variants[0].inference_component
    if capacity_mode == "always_on":
        assert component is None
        assert "INFERENCE_COMPONENT_NAME" not in fn.environment
    else:
        assert component is not None
        assert component.name == f"{spec.endpoint.name}-ic"
        assert component.copy_count == 1
        assert component.scale_to_zero_idle_s == 900  # Application Auto Scaling's window
        assert fn.environment["INFERENCE_COMPONENT_NAME"] == component.name

"""The template reader: what the local stage runs comes from the synthesized stack.

The stack is the project's own CDK app synthesized once for this module (`python app.py`, about
15 s) with context that moves every setting the reader carries off its default, so each
assertion below can only pass if the reader took the value from the template.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_stage.errors import LocalStageError
from local_stage.template import StackSpec, flavour_from_image, load_stack
from model_export.tarball import write_tarball

from .conftest import REPO

PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/ray:serve-ml-sagemaker-cpu-v1.4"
TF_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.19.0-cpu"


def _synthesize(
    torch_model_dir: Path, base: Path, settings: dict[str, str]
) -> tuple[Path, Path, str]:
    """(cdk.out, the artifact, the stack's name) of the real app around the tiny model."""
    art = base / "artifacts" / "tiny"
    tarball = art / "model.tar.gz"
    write_tarball(torch_model_dir, tarball)
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
    out = base / "cdk.out"
    context = {
        "artifact_path": str(tarball),
        "region": "us-east-1",
        "account": "123456789012",
        "model": "tiny",
        **settings,
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
        p.name.removesuffix(".template.json") for p in out.glob("MlServing-*-tiny*.template.json")
    ]
    return out, tarball, stack


@pytest.fixture(scope="module")
def synthesized(torch_model_dir, tmp_path_factory) -> tuple[Path, Path, str]:
    """Every setting the reader reads moved off its default; always-on capacity."""
    settings = {
        "capacity_mode": "always_on",
        "min_instances": "1",
        "container_env": json.dumps({"RAY_SERVE_HAPROXY_NBTHREAD": "1"}),
        "initial_instance_count": "3",
        "max_instances": "4",
        "throttle_rate_limit": "7",
        "throttle_burst_limit": "11",
    }
    return _synthesize(torch_model_dir, tmp_path_factory.mktemp("synth"), settings)


@pytest.fixture(scope="module")
def spec(synthesized) -> StackSpec:
    out, _, stack = synthesized
    return load_stack(out, stack)


def test_reads_the_model_and_its_variant(spec, synthesized):
    _, tarball, _ = synthesized
    assert (spec.region, spec.account) == ("us-east-1", "123456789012")
    (variant,) = spec.endpoint.variants
    assert variant.initial_instance_count == 3
    assert variant.model.flavour == "pytorch"
    assert variant.model.environment["RAY_SERVE_HAPROXY_NBTHREAD"] == "1"
    assert variant.model.model_data_path.read_bytes() == tarball.read_bytes()


def test_reads_the_function_with_its_code_and_resolved_environment(spec):
    (fn,) = spec.functions
    module_path = fn.handler.rpartition(".")[0].replace(".", "/")
    assert (fn.code_dir / module_path).with_suffix(".py").is_file()
    # ENDPOINT_NAME is a GetAtt of the endpoint: resolved to the local endpoint's name.
    assert fn.environment["ENDPOINT_NAME"] == spec.endpoint.name


def test_reads_the_api_routes_keys_and_throttles(spec):
    assert "image/png" in spec.api.binary_media_types
    routes = {(r.http_method, r.resource_path): r for r in spec.api.routes}
    assert {("POST", "/predict"), ("GET", "/health")} <= set(routes)
    assert routes[("POST", "/predict")].api_key_required
    assert routes[("POST", "/predict")].throttle.rate_rps == 7
    assert spec.api.usage_plan_throttle.burst == 11


def test_unknown_images_and_missing_stacks_are_clear_errors(synthesized):
    out, _, stack = synthesized
    assert flavour_from_image(TF_IMAGE) == "tensorflow"
    assert flavour_from_image(PYTORCH_IMAGE) == "pytorch"
    with pytest.raises(LocalStageError, match="ray:serve-ml-sagemaker.*tensorflow-inference"):
        flavour_from_image("123.dkr.ecr.us-east-1.amazonaws.com/my-own-server:1")
    # The retired TorchServe container is not run any more.
    with pytest.raises(LocalStageError, match="ray:serve-ml-sagemaker"):
        flavour_from_image("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-cpu")
    with pytest.raises(LocalStageError, match=f"stacks there: {stack}"):
        load_stack(out, "MlServing-nope-tiny")


def test_an_always_on_variant_has_no_inference_component(spec):
    (variant,) = spec.endpoint.variants
    assert variant.inference_component is None
    (fn,) = spec.functions
    assert "INFERENCE_COMPONENT_NAME" not in fn.environment


def test_reads_a_scale_to_zero_stack_as_an_inference_component(torch_model_dir, tmp_path):
    # capacity_mode scale_to_zero (dev's in cdk.json): the model is an inference component's,
    # and the function names the component.
    settings = {"capacity_mode": "scale_to_zero", "min_instances": "0"}
    out, _, stack = _synthesize(torch_model_dir, tmp_path, settings)
    zero = load_stack(out, stack)
    component = zero.endpoint.variants[0].inference_component
    assert component is not None
    assert component.name == f"{zero.endpoint.name}-ic"
    assert component.copy_count == 1
    assert component.scale_to_zero_idle_s == 900  # Application Auto Scaling's window
    (fn,) = zero.functions
    assert fn.environment["INFERENCE_COMPONENT_NAME"] == component.name

"""PyTorch artifact: layout, manifest, every content type through the container's handler
contract, batching, and the torch.export / ONNX parity checks."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from model_export import manifest as manifest_lib
from model_export.containers import PyTorchContainer, Request, load
from model_export.errors import ExportError
from model_export.preprocess import example_png, torch_eval_input
from model_export.pytorch_export import export_pytorch, load_arch_module, load_original, read_config

ATOL = 1e-5


@pytest.fixture(scope="module")
def container(torch_artifact) -> PyTorchContainer:
    _, unpacked = torch_artifact
    served = load(unpacked)
    assert isinstance(served, PyTorchContainer)
    return served


@pytest.fixture(scope="module")
def original(torch_model):
    model_dir, arch = torch_model
    config = read_config(model_dir)
    model = load_original(model_dir, config, load_arch_module(arch))
    return model, config


def _reference(original, images: list[bytes]) -> np.ndarray:
    model, config = original
    batch = np.stack(
        [
            torch_eval_input(img, config["image_size"], config["mean"], config["std"])
            for img in images
        ]
    )
    with torch.inference_mode():
        return torch.softmax(model(torch.from_numpy(batch)), 1).numpy()


def _probs(response, names) -> np.ndarray:
    assert response.status == 200, response.body
    return np.array(
        [[p["probabilities"][n] for n in names] for p in response.json()["predictions"]]
    )


def _image(fmt: str, size=(20, 13), seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def test_tarball_layout_is_what_the_ray_serve_container_loads(torch_artifact):
    result, _ = torch_artifact
    with tarfile.open(result.tarball) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert names == [
        "code/inference.py",
        "code/serve_app.py",
        "code/torch_models.py",
        "config.yaml",
        "manifest.json",
        "model.pt2",
        "model.pth",
        "model_config.json",
    ]


def test_manifest_schema_and_what_the_stack_reads(torch_artifact, torch_model):
    result, unpacked = torch_artifact
    beside = json.loads(result.manifest_path.read_text())
    inside = json.loads((unpacked / "manifest.json").read_text())
    assert manifest_lib.validate(beside) == [] and manifest_lib.validate(inside) == []
    # The CDK stack picks the container from these top-level keys.
    assert (beside["framework"], beside["framework_version"], beside["py_version"]) == (
        "pytorch",
        "1.4",
        "py313",
    )
    assert beside["content_type"] == "application/json"
    assert (beside["name"], beside["version"], beside["class_names"]) == (
        "digits",
        3,
        ["zero", "one", "two"],
    )
    assert beside["training"]["metrics"] == {"test_accuracy": 0.5, "test_loss": 1.1}
    # Inside: no creation time (reproducible tarball); beside: creation time + tarball hash.
    assert "created_at" not in inside and "artifact" not in inside
    assert beside["created_at"].endswith("+00:00")
    assert beside["artifact"]["sha256"] == result.sha256
    assert {
        k: v for k, v in beside.items() if k not in ("created_at", "artifact", "edge")
    } == inside
    model_dir, _ = torch_model
    assert (
        inside["files"]["model.pth"]["sha256"]
        == __import__("hashlib").sha256((model_dir / "model.pth").read_bytes()).hexdigest()
    )


def test_json_b64_example_matches_the_original_model(container, original, torch_artifact):
    result, _ = torch_artifact
    example = result.manifest["example"]
    response = container.invoke(json.dumps(example["body"]).encode(), "application/json", None)
    size = original[1]["image_size"]
    want = _reference(original, [example_png(size)])
    got = _probs(response, original[1]["class_names"])
    np.testing.assert_allclose(got, want, atol=ATOL)
    np.testing.assert_allclose(want, example["expected"]["probabilities"], atol=ATOL)
    assert response.content_type == "application/json"
    prediction = response.json()["predictions"][0]
    assert prediction["label"] == example["expected"]["labels"][0]
    assert prediction["probability"] == pytest.approx(max(got[0]))


@pytest.mark.parametrize(("content_type", "fmt"), [("image/png", "PNG"), ("image/jpeg", "JPEG")])
def test_raw_image_bytes_are_decoded_resized_and_normalised(container, original, content_type, fmt):
    image = _image(fmt)  # 20 x 13, not square, not the model's size: exercises the resize
    response = container.invoke(image, content_type, "application/json")
    np.testing.assert_allclose(
        _probs(response, original[1]["class_names"]), _reference(original, [image]), atol=ATOL
    )


def test_json_and_npy_tensors_and_npy_output(container, original):
    model, config = original
    batch = np.random.default_rng(3).normal(size=(2, 3, 8, 8)).astype(np.float32)
    with torch.inference_mode():
        want = torch.softmax(model(torch.from_numpy(batch)), 1).numpy()
    names = config["class_names"]
    # Bare nested list (the toolkit's default JSON form) and TF-Serving-like instances.
    for body in (batch.tolist(), {"instances": batch.tolist()}):
        got = _probs(container.invoke(json.dumps(body).encode(), "application/json"), names)
        np.testing.assert_allclose(got, want, atol=ATOL)
    # application/x-npy in and out.
    buffer = io.BytesIO()
    np.save(buffer, batch)
    response = container.invoke(buffer.getvalue(), "application/x-npy", "application/x-npy")
    assert response.status == 200 and response.content_type == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(response.body)), want, atol=ATOL)


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/html, application/json;q=0.9", "application/json"),
        ("application/x-npy", "application/x-npy"),
    ],
)
def test_accept_is_honoured(container, accept, content_type):
    response = container.invoke(_image("PNG"), "image/png", accept)
    assert (response.status, response.content_type) == (200, content_type)


def test_json_with_charset_parameter_is_accepted(container, original):
    image = _image("PNG")
    body = json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}]}).encode()
    response = container.invoke(body, "application/json; charset=utf-8")
    np.testing.assert_allclose(
        _probs(response, original[1]["class_names"]), _reference(original, [image]), atol=ATOL
    )


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        (b"x,y", "text/csv", None, 415, "not supported; send one of"),
        (_image("PNG"), "image/png", "text/html", 406, "Accept 'text/html' is not supported"),
        (b"{not json", "application/json", None, 400, "not valid JSON"),
        (b"", "image/png", None, 400, "empty"),
        (b"GIF89a-not-really", "image/png", None, 400, "could not be decoded"),
        (json.dumps([[1.0, 2.0]]).encode(), "application/json", None, 400, "expected [3, 8, 8]"),
        (
            json.dumps({"instances": [{"b64": "%%%"}]}).encode(),
            "application/json",
            None,
            400,
            "base64",
        ),
        (json.dumps({"images": []}).encode(), "application/json", None, 400, '"instances"'),
        (b"\x93NUMPY garbage", "application/x-npy", None, 400, ".npy"),
    ],
)
def test_bad_requests_get_a_clear_4xx(container, body, content_type, accept, status, message):
    response = container.invoke(body, content_type, accept)
    assert response.status == status
    assert message in response.json()["error"]


def test_batch_of_requests_equals_requests_one_by_one(container):
    # Given four requests: one with two images, one raw PNG, one bad, one asking for npy
    two = json.dumps(
        {"instances": [{"b64": base64.b64encode(_image("PNG", seed=s)).decode()} for s in (1, 2)]}
    ).encode()
    requests = [
        Request(two, "application/json"),
        Request(_image("PNG", seed=3), "image/png"),
        Request(b"nope", "image/png"),
        Request(_image("JPEG", seed=4), "image/jpeg", "application/x-npy"),
    ]
    # When they are served as one batch (one predict_fn call)
    calls = []
    original_predict = container._predict_fn

    def counting_predict(data, model, context=None):
        calls.append(tuple(data.shape))
        return original_predict(data, model, context)

    container._predict_fn = counting_predict
    try:
        batched = container.invoke_batch(requests)
    finally:
        container._predict_fn = original_predict
    # Then predict_fn ran once on the 4 good images, and each answer equals the single-request one
    assert calls == [(4, 3, 8, 8)]
    singles = [container.invoke(r.body, r.content_type, r.accept) for r in requests]
    assert [r.status for r in batched] == [200, 200, 400, 200]
    assert len(batched[0].json()["predictions"]) == 2
    for got, want in zip(batched, singles, strict=True):
        assert got.status == want.status and got.content_type == want.content_type
        if got.content_type == "application/json" and got.status == 200:
            for a, b in zip(got.json()["predictions"], want.json()["predictions"], strict=True):
                assert a["label"] == b["label"]
                assert a["probability"] == pytest.approx(b["probability"], abs=ATOL)
        elif got.status == 200:
            np.testing.assert_allclose(
                np.load(io.BytesIO(got.body)), np.load(io.BytesIO(want.body)), atol=ATOL
            )


def test_handlers_get_the_trailing_context_argument(container):
    # The toolkit passes context when the handler's signature has room for it; ours do.
    import inspect

    for name in ("model_fn", "input_fn", "predict_fn", "output_fn"):
        params = list(inspect.signature(getattr(container.module, name)).parameters)
        assert params[-1] == "context"


def test_two_artifacts_live_in_one_process(torch_artifact, tmp_path, torch_model):
    # The local model server may serve several artifacts: their handler state must not mix.
    model_dir, arch = torch_model
    five = tmp_path / "five"
    from tests.support import model_dirs as fixtures

    other_dir, other_arch = fixtures.write_torch_model_dir(
        five, class_names=("a", "b", "c", "d", "e"), seed=1
    )
    other = export_pytorch(other_dir, name="five", out_dir=tmp_path / "out", arch_module=other_arch)
    from model_export.tarball import safe_extract

    safe_extract(other.tarball, tmp_path / "unpacked")
    first = load(torch_artifact[1])
    second = load(tmp_path / "unpacked")
    image = _image("PNG")
    assert len(first.invoke(image, "image/png").json()["predictions"][0]["probabilities"]) == 3
    assert len(second.invoke(image, "image/png").json()["predictions"][0]["probabilities"]) == 5
    assert len(first.invoke(image, "image/png").json()["predictions"][0]["probabilities"]) == 3


def test_torch_export_program_and_onnx_match_the_original(torch_artifact, original):
    result, unpacked = torch_artifact
    model, _ = original
    x = torch.from_numpy(np.random.default_rng(5).normal(size=(3, 3, 8, 8)).astype(np.float32))
    with torch.inference_mode():
        want = torch.softmax(model(x), 1).numpy()
    program = torch.export.load(str(unpacked / "model.pt2")).module()
    with torch.inference_mode():
        np.testing.assert_allclose(torch.softmax(program(x), 1).numpy(), want, atol=ATOL)
    import onnxruntime as ort

    onnx = result.manifest["edge"]["onnx"]
    assert onnx["max_abs_diff"] <= onnx["atol"]
    session = ort.InferenceSession(str(result.tarball.parent / onnx["path"]))
    (logits,) = session.run(None, {"input": x.numpy()})
    got = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(got / got.sum(1, keepdims=True), want, atol=ATOL)


def test_pytorch_tarball_is_reproducible(torch_model, tmp_path):
    model_dir, arch = torch_model
    a = export_pytorch(model_dir, name="digits", out_dir=tmp_path / "a", arch_module=arch)
    b = export_pytorch(model_dir, name="digits", out_dir=tmp_path / "b", arch_module=arch)
    assert a.sha256 == b.sha256
    assert a.tarball.read_bytes() == b.tarball.read_bytes()


def _broken_model_dir(torch_model, tmp_path, edit):
    import shutil

    model_dir, _ = torch_model
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    edit(broken)
    return broken


def _edit_config(**changes):
    def edit(path):
        config = json.loads((path / "model_config.json").read_text())
        for key, value in changes.items():
            if value is None:
                config.pop(key)
            else:
                config[key] = value
        (path / "model_config.json").write_text(json.dumps(config))

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: (p / "model.pth").unlink(), "model.pth is missing"),
        (lambda p: (p / "model_config.json").unlink(), "model_config.json is missing"),
        (lambda p: (p / "model_config.json").write_text("{"), "not valid JSON"),
        (_edit_config(arch=None), "lacks arch"),
        (_edit_config(num_classes=4), "num_classes is 4 but class_names has 3"),
        (_edit_config(arch="resnet18"), "build_model('resnet18', ...) failed"),
        (_edit_config(mean=[0.5]), "mean must be three numbers"),
        (_edit_config(framework="tensorflow"), "model_export keras"),
        (
            lambda p: torch.save({"fc.weight": torch.zeros(3, 16)}, p / "model.pth"),
            "does not fit arch 'tiny_cnn'",
        ),
    ],
)
def test_bad_model_dirs_get_clear_errors(torch_model, tmp_path, edit, message):
    broken = _broken_model_dir(torch_model, tmp_path, edit)
    with pytest.raises(ExportError, match=None) as caught:
        export_pytorch(broken, name="digits", out_dir=tmp_path / "out", arch_module=torch_model[1])
    assert message in str(caught.value)


@pytest.mark.parametrize(("name", "version"), [("../etc", 1), ("", 1), ("digits", 0)])
def test_bad_names_and_versions_are_refused(torch_model, tmp_path, name, version):
    with pytest.raises(ExportError, match="--name|--version"):
        export_pytorch(
            torch_model[0], name=name, version=version, out_dir=tmp_path, arch_module=torch_model[1]
        )


def test_missing_arch_module_says_which_flag_to_use(torch_model, tmp_path):
    with pytest.raises(ExportError, match="--arch-module"):
        export_pytorch(
            torch_model[0], name="digits", out_dir=tmp_path, arch_module=tmp_path / "nope.py"
        )


def test_a_failing_batch_falls_back_to_one_request_at_a_time(container):
    requests = [Request(_image("PNG", seed=s), "image/png") for s in (1, 2, 3)]
    original_predict = container._predict_fn
    calls = []

    def batch_averse_predict(data, model, context=None):
        calls.append(len(data))
        if len(data) > 1:
            raise RuntimeError("out of memory")
        return original_predict(data, model, context)

    container._predict_fn = batch_averse_predict
    try:
        responses = container.invoke_batch(requests)
    finally:
        container._predict_fn = original_predict
    assert calls == [3, 1, 1, 1]
    assert [r.status for r in responses] == [200, 200, 200]

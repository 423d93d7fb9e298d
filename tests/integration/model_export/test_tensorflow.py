"""TF Serving artifact: layout, signatures, TF Serving REST semantics, the SageMaker container's
request handling with and without code/inference.py, the older JSON+HDF5 path, TFLite parity."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from model_export import manifest as manifest_lib
from model_export.containers import TFServingContainer, find_saved_models, load
from model_export.errors import ExportError
from model_export.keras_export import export_keras
from model_export.tarball import safe_extract
from model_export.verify import verify
from tests.support.model_dirs import write_keras_image_model_dir

ATOL = 1e-5


@pytest.fixture(scope="module")
def image_container(keras_image_artifact) -> TFServingContainer:
    served = load(keras_image_artifact[1])
    assert isinstance(served, TFServingContainer)
    return served


@pytest.fixture(scope="module")
def text_container(keras_text_artifact) -> TFServingContainer:
    return load(keras_text_artifact[1])


@pytest.fixture(scope="module")
def keras_image(keras_image_model):
    import keras

    return keras.saving.load_model(keras_image_model / "model.keras")


@pytest.fixture(scope="module")
def keras_text(keras_text_model):
    import keras

    return keras.saving.load_model(keras_text_model / "model.keras")


def _png(seed: int, size: int = 8) -> tuple[bytes, np.ndarray]:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue(), pixels.astype(np.float32)


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def test_layout_manifest_and_signatures(keras_image_artifact):
    result, unpacked = keras_image_artifact
    with tarfile.open(result.tarball) as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
    assert "cells/1/saved_model.pb" in names and "code/inference.py" in names
    assert not any(name == "saved_model.pb" for name in names)
    assert find_saved_models(unpacked) == {"cells": {1: unpacked / "cells" / "1"}}
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest_lib.validate(manifest) == []
    assert (manifest["framework"], manifest["framework_version"], manifest["content_type"]) == (
        "tensorflow",
        "2.20",
        "application/json",
    )
    assert manifest["container"]["env"] == {"SAGEMAKER_TFS_DEFAULT_MODEL_NAME": "cells"}
    import tensorflow as tf

    loaded = tf.saved_model.load(str(unpacked / "cells" / "1"))
    assert sorted(loaded.signatures) == ["pixels", "serving_default"]
    default = loaded.signatures["serving_default"]
    assert list(default.structured_input_signature[1]) == ["image_bytes"]
    assert sorted(default.structured_outputs) == ["label", "probabilities"]


def test_training_only_layers_export_and_serve_in_inference_mode(tmp_path):
    # Given a model with seeded augmentation, noise and dropout layers (as the scripts' default
    # flags produce), whose own SavedModel trace captures their random state
    import keras

    model_dir = write_keras_image_model_dir(tmp_path / "model", training_layers=True)
    model = keras.saving.load_model(model_dir / "model.keras")
    assert any("seed_generator_state" in v.path for v in model.variables)

    # When it is exported
    result = export_keras(model_dir, name="augmented", out_dir=tmp_path / "out", atol=ATOL)

    # Then the signatures answer as the model in inference mode, the same every time
    unpacked = tmp_path / "unpacked"
    safe_extract(result.tarball, unpacked)
    served = load(unpacked)
    pixels = np.stack([_png(seed)[1] for seed in (1, 2, 3)])
    want = np.asarray(model(pixels, training=False))
    for _ in range(2):
        status, answer = served.rest_predict(
            {"signature_name": "pixels", "instances": pixels.tolist()}
        )
        assert status == 200, answer
        got = np.asarray([row["probabilities"] for row in answer["predictions"]])
        np.testing.assert_allclose(got, want, atol=ATOL)
    assert verify(result.tarball, None, model_dir).ok


def test_rest_predict_row_and_columnar_formats(image_container, keras_image):
    images = [_png(seed) for seed in (1, 2)]
    want = np.asarray(keras_image(np.stack([p for _, p in images])))
    # Row format, b64 image bytes, default signature: a list of per-instance objects.
    status, answer = image_container.rest_predict({"instances": [_b64(data) for data, _ in images]})
    assert status == 200
    got = np.array([row["probabilities"] for row in answer["predictions"]])
    np.testing.assert_allclose(got, want, atol=ATOL)
    assert [row["label"] for row in answer["predictions"]] == [
        ["parasitized", "uninfected"][i] for i in want.argmax(1)
    ]
    # Columnar format, float pixels through the "pixels" signature: one object of outputs.
    status, answer = image_container.rest_predict(
        {"signature_name": "pixels", "inputs": {"image": [p.tolist() for _, p in images]}}
    )
    assert status == 200
    np.testing.assert_allclose(answer["outputs"]["probabilities"], want, atol=ATOL)
    assert len(answer["outputs"]["label"]) == 2


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"instances": [[1.0]], "signature_name": "nope"}, 'signature name: "nope" not found'),
        ({"signature_name": "pixels"}, "Missing 'inputs' or 'instances'"),
        ({"instances": [1], "inputs": [1]}, "not both"),
        ({"signature_name": "pixels", "instances": [[1.0, 2.0]]}, "expects [None, 8, 8, 3]"),
        ({"instances": [{"b64": "!!"}]}, "base64"),
        ({"instances": [_b64(b"not an image")]}, ""),
    ],
)
def test_rest_predict_errors_are_400_with_a_message(image_container, request_body, message):
    status, answer = image_container.rest_predict(request_body)
    assert status == 400
    assert message in answer["error"]


def test_rest_predict_unknown_model_or_version_is_404(image_container):
    assert image_container.rest_predict({"instances": []}, model="other")[0] == 404
    assert image_container.rest_predict({"instances": []}, version=7)[0] == 404


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "application/json"])
def test_invoke_through_the_input_and_output_handlers(image_container, keras_image, content_type):
    data, pixels = _png(4)
    if content_type == "image/jpeg":
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=95)
        data = buffer.getvalue()
        with Image.open(io.BytesIO(data)) as decoded:
            pixels = np.asarray(decoded.convert("RGB"), dtype=np.float32)
    body = data if content_type != "application/json" else json.dumps(_b64(data)).encode()
    response = image_container.invoke(body, content_type, "application/json")
    assert response.status == 200, response.body
    [prediction] = response.json()["predictions"]
    want = np.asarray(keras_image(pixels[np.newaxis]))[0]
    got = [prediction["probabilities"][n] for n in ("parasitized", "uninfected")]
    # JPEG: TF's and Pillow's libjpeg may differ by a level here and there.
    np.testing.assert_allclose(got, want, atol=ATOL if content_type != "image/jpeg" else 1e-3)
    assert prediction["label"] == ["parasitized", "uninfected"][int(np.argmax(want))]


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        (b"hello", "text/plain", None, 415, "image-classification model"),
        (b"a,b", "text/csv", None, 415, "not supported"),
        (b"{}", "application/json", "application/x-npy", 406, "Accept"),
        (b"{", "application/json", None, 400, "not valid JSON"),
        (b"", "image/png", None, 400, "empty"),
        (json.dumps({"instances": [_b64(b"junk")]}).encode(), "application/json", None, 400, ""),
    ],
)
def test_invoke_errors(image_container, body, content_type, accept, status, message):
    response = image_container.invoke(body, content_type, accept)
    assert response.status == status
    assert message in response.body.decode()


def test_custom_attributes_select_and_validate_the_model(image_container):
    data, _ = _png(5)
    ok = image_container.invoke(data, "image/png", None, "tfs-model-name=cells,tfs-model-version=1")
    assert ok.status == 200
    assert image_container.invoke(data, "image/png", None, "tfs-model-name=../x").status == 400
    assert image_container.invoke(data, "image/png", None, "tfs-model-name=other").status == 404


def test_text_model_json_and_text_plain(text_container, keras_text):
    import tensorflow as tf

    texts = ["the crew was friendly", "lost my bag again"]
    want = np.asarray(keras_text(tf.constant(texts)))
    response = text_container.invoke(json.dumps(texts).encode(), "application/json")
    got = [
        [p["probabilities"][n] for n in ("negative", "neutral", "positive")]
        for p in response.json()["predictions"]
    ]
    np.testing.assert_allclose(got, want, atol=ATOL)
    one = text_container.invoke(texts[1].encode(), "text/plain; charset=utf-8")
    assert one.status == 200
    np.testing.assert_allclose(
        list(one.json()["predictions"][0]["probabilities"].values()), want[1], atol=ATOL
    )
    assert text_container.invoke(b"\x89PNG", "image/png").status == 415


def test_no_handler_uses_the_containers_default_json_rules(keras_text_model, keras_text, tmp_path):
    import tensorflow as tf

    result = export_keras(keras_text_model, name="sentiment", out_dir=tmp_path, handler=False)
    safe_extract(result.tarball, tmp_path / "unpacked")
    assert not (tmp_path / "unpacked" / "code").exists()
    served = load(tmp_path / "unpacked")
    want = np.asarray(keras_text(tf.constant(["great crew"])))
    # TF Serving JSON passes through; a bare value is wrapped as {"instances": [value]}.
    for body in (b'{"instances": ["great crew"]}', b'"great crew"'):
        response = served.invoke(body, "application/json")
        assert response.status == 200, (body, response.body)
        [row] = response.json()["predictions"]
        np.testing.assert_allclose(row["probabilities"], want[0], atol=ATOL)
    # A bare list not starting with "[[" is wrapped whole: one instance that is a list, which
    # this signature (a batch of scalar strings) rejects, as TF Serving would.
    wrapped = served.invoke(b'["great crew"]', "application/json")
    assert wrapped.status == 400 and "shape [1, 1]" in wrapped.json()["error"]
    # CSV: each line is an instance (quoted as text when its first field is not a number).
    csv_answer = served.invoke(b"great crew\nlost bag\n", "text/csv")
    assert csv_answer.status == 200 and len(csv_answer.json()["predictions"]) == 2
    # JSON Lines: one instance per line.
    lines = served.invoke(b'{"instances": ["great crew"]}', "application/jsonlines")
    assert lines.status == 200
    # Only JSON, JSON Lines and CSV reach TF Serving without a handler.
    assert served.invoke(b"great crew", "text/plain").status == 415
    assert served.invoke(b"great crew", "application/json; charset=utf-8").status == 415


def test_legacy_json_and_hdf5_weights_in_the_servo_layout(keras_image_model, keras_image, tmp_path):
    result = export_keras(
        keras_image_model,
        name="cells",
        out_dir=tmp_path,
        layout="servo",
        architecture_json=keras_image_model / "model.json",
        weights_h5=keras_image_model / "model.weights.h5",
    )
    safe_extract(result.tarball, tmp_path / "unpacked")
    served = load(tmp_path / "unpacked")
    assert list(served.models) == ["Servo"] and served.default_model == "Servo"
    data, pixels = _png(6)
    response = served.invoke(data, "image/png")
    got = list(response.json()["predictions"][0]["probabilities"].values())
    np.testing.assert_allclose(got, np.asarray(keras_image(pixels[np.newaxis]))[0], atol=ATOL)


def test_legacy_flags_must_come_together(keras_image_model, tmp_path):
    with pytest.raises(ExportError, match="go together"):
        export_keras(
            keras_image_model,
            name="cells",
            out_dir=tmp_path,
            architecture_json=keras_image_model / "model.json",
        )


def test_tflite_matches_the_keras_model(keras_image_artifact, keras_image):
    import warnings

    import tensorflow as tf

    result, _ = keras_image_artifact
    info = result.manifest["edge"]["tflite"]
    assert info["max_abs_diff"] <= info["atol"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(result.tarball.parent / info["path"]))
    runner = interpreter.get_signature_runner("serving_default")
    pixels = np.stack([_png(s)[1] for s in (7, 8, 9)])
    (got,) = runner(
        **{interpreter.get_signature_list()["serving_default"]["inputs"][0]: pixels}
    ).values()
    np.testing.assert_allclose(got, np.asarray(keras_image(pixels)), atol=1e-4)


def test_tflite_refuses_text_models_with_the_reason(keras_text_model, tmp_path):
    with pytest.raises(ExportError, match="Flex"):
        export_keras(keras_text_model, name="sentiment", out_dir=tmp_path, tflite=True)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(task="regression"), "task must be one of"),
        (lambda c: c.update(class_names=["one"]), "at least two labels"),
        (lambda c: c.update(class_names=["a", "b", "c"]), "one probability per class"),
        (lambda c: c.update(framework="pytorch"), "model_export pytorch"),
    ],
)
def test_bad_keras_model_dirs_get_clear_errors(keras_image_model, tmp_path, edit, message):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(keras_image_model, broken)
    config = json.loads((broken / "model_config.json").read_text())
    edit(config)
    (broken / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError) as caught:
        export_keras(broken, name="cells", out_dir=tmp_path / "out")
    assert message in str(caught.value)

"""The manifest's schema: what it must hold, and that its JSON schemas describe real traffic."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from model_export import manifest as manifest_lib
from model_export.containers import load


@pytest.fixture(scope="module")
def artifacts(torch_artifact, keras_image_artifact, keras_text_artifact):
    return {"pytorch": torch_artifact, "image": keras_image_artifact, "text": keras_text_artifact}


@pytest.mark.parametrize("kind", ["pytorch", "image", "text"])
def test_the_example_and_the_real_answer_follow_the_manifests_json_schemas(artifacts, kind):
    result, unpacked = artifacts[kind]
    manifest = result.manifest
    example = manifest["example"]
    jsonschema.validate(example["body"], manifest["input"]["json_schema"])
    response = load(unpacked).invoke(
        json.dumps(example["body"]).encode(), example["content_type"], example["accept"]
    )
    assert response.status == 200
    jsonschema.validate(response.json(), manifest["output"]["json_schema"])
    # The schema is strict enough to catch a wrong answer.
    wrong = response.json()
    wrong["predictions"][0]["label"] = "not-a-class"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, manifest["output"]["json_schema"])


def test_tensor_specs_are_recorded(artifacts):
    torch_manifest = artifacts["pytorch"][0].manifest
    assert torch_manifest["input"]["tensor"]["shape"] == [None, 3, 8, 8]
    image = artifacts["image"][0].manifest
    assert image["input"]["signatures"]["serving_default"] == {
        "image_bytes": {"dtype": "string", "shape": [None]}
    }
    assert image["input"]["signatures"]["pixels"]["image"]["shape"] == [None, 8, 8, 3]
    text = artifacts["text"][0].manifest
    assert text["input"]["signatures"] == {
        "serving_default": {"text": {"dtype": "string", "shape": [None]}}
    }
    assert text["output"]["signatures"]["serving_default"]["probabilities"]["shape"] == [None, 3]


def test_every_file_has_a_sha256_and_the_tarball_hash_is_beside(artifacts):
    for result, _ in artifacts.values():
        files = result.manifest["files"]
        assert files and all(len(entry["sha256"]) == 64 for entry in files.values())
        assert "manifest.json" not in files
        assert result.manifest["artifact"]["sha256"] == result.sha256


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("framework"), "manifest.json lacks 'framework'"),
        (lambda m: m.update(version="1"), "version has bad value '1': must be an integer"),
        (lambda m: m.update(version=True), "version has bad value True: must be an integer"),
        (lambda m: m.update(version=0), "version has bad value 0: must be greater than or equal"),
        (
            lambda m: m.update(schema_version=99),
            "schema_version has bad value 99: must be 1; re-export the model",
        ),
        (
            lambda m: m.update(framework="mxnet"),
            "framework has bad value 'mxnet': must be one of pytorch, tensorflow",
        ),
        (lambda m: m["example"].pop("expected"), "manifest.json example lacks 'expected'"),
        (lambda m: m["files"].update({"x": {}}), "manifest.json files['x'] lacks 'sha256'"),
        (
            lambda m: m["files"].update({"x": {"sha256": "ab", "bytes": 1}}),
            "files['x'].sha256 has bad value 'ab'",
        ),
        (lambda m: m["serve"].update(replicas=1.5), "serve.replicas has bad value 1.5"),
        (lambda m: m.update(framwork="pytorch"), "unknown key 'framwork'"),
    ],
)
def test_validate_names_each_problem(artifacts, change, message):
    manifest = copy.deepcopy(artifacts["pytorch"][0].manifest)
    assert manifest_lib.validate(manifest) == []
    change(manifest)
    problems = manifest_lib.validate(manifest)
    assert any(message in p for p in problems), problems


def test_validate_rejects_non_objects():
    assert manifest_lib.validate([]) == ["manifest.json must hold a JSON object"]

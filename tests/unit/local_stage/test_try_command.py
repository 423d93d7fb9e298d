"""The curl line `make local` prints fits the model: text for a text model, an image otherwise."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from local_stage.first_request import example_text, try_command

URL, KEY = "http://127.0.0.1:3000/prod", "k3y"


def write_manifest(folder: Path, task: str, instances: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"task": task, "example": {"body": {"instances": instances}}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_a_text_model_gets_a_text_plain_curl_with_itsexample_text(tmp_path):
    model = write_manifest(tmp_path / "m", "text-classification", ["it's a great crew"])
    text = example_text(model)
    assert text == "it's a great crew"
    words = shlex.split(try_command(URL, KEY, None, text))
    assert "x-api-key: k3y" in words
    assert "Content-Type: text/plain" in words
    assert words[words.index("--data-binary") + 1] == "it's a great crew"
    assert not any(w.startswith("@") for w in words)


def test_an_image_model_gets_an_image_curl(tmp_path):
    model = write_manifest(tmp_path / "m", "image-classification", [{"b64": "AAAA"}])
    assert example_text(model) is None
    assert example_text(tmp_path / "no-manifest") is None
    words = shlex.split(try_command(URL, KEY, Path("data/digits/test/7/a.png"), None))
    assert "Content-Type: image/png" in words
    assert words[words.index("--data-binary") + 1] == "@data/digits/test/7/a.png"
    words = shlex.split(try_command(URL, KEY, None, None))
    assert words[words.index("--data-binary") + 1] == "@digit.png"

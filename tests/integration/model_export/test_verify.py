"""``verify`` accepts good artifacts and rejects each layout the containers would reject, each
with a message that says what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model_export.errors import ExportError
from model_export.tarball import write_tarball
from model_export.verify import verify


def _repack(unpacked: Path, tmp_path: Path, edit) -> Path:
    """A copy of the unpacked artifact, changed by ``edit(root)``, packed as model.tar.gz."""
    root = tmp_path / "edited"
    shutil.copytree(unpacked, root)
    edit(root)
    tarball = tmp_path / "out" / "model.tar.gz"
    write_tarball(root, tarball)
    return tarball


def _edit_manifest(change):
    def edit(root: Path) -> None:
        manifest = json.loads((root / "manifest.json").read_text())
        change(manifest)
        (root / "manifest.json").write_text(json.dumps(manifest))

    return edit


def test_good_artifacts_pass(torch_artifact, keras_image_artifact, keras_text_artifact):
    for result, _ in (torch_artifact, keras_image_artifact, keras_text_artifact):
        report = verify(result.tarball)
        assert report.ok, report.errors
        assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4
        assert any("labels" in note for note in report.notes)


def _move_into_folder(root: Path) -> None:
    inner = root / "model"
    inner.mkdir()
    for child in list(root.iterdir()):
        if child != inner:
            shutil.move(str(child), inner / child.name)


def _rename(src: str, dst: str):
    def edit(root: Path) -> None:
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(root / src), root / dst)

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_move_into_folder, "tar the folder's contents, not the folder"),
        (_rename("code/inference.py", "inference.py"), "inference.py is at the root"),
        (lambda r: (r / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda r: (r / "model_config.json").write_text("{}"), "model_config.json: sha256 differs"),
        (lambda r: (r / "extra.bin").write_bytes(b"x"), "extra.bin is in the tarball but not"),
        (
            lambda r: (r / "code" / "torch_models.py").unlink(),
            "listed in manifest.json but missing",
        ),
        (
            _edit_manifest(lambda m: m["example"]["expected"]["probabilities"][0].reverse()),
            "probabilities differ from the original model's",
        ),
        (
            _edit_manifest(lambda m: m["example"]["expected"].update(labels=["nope"])),
            "differ from the original model's ['nope']",
        ),
        (_edit_manifest(lambda m: m.pop("framework_version")), "lacks 'framework_version'"),
    ],
)
def test_broken_pytorch_artifacts_are_rejected(torch_artifact, tmp_path, edit, message):
    report = verify(_repack(torch_artifact[1], tmp_path, edit))
    assert not report.ok
    assert any(message in error for error in report.errors), report.errors


def test_serving_code_with_imports_the_container_lacks(torch_artifact, tmp_path):
    def edit(root: Path) -> None:
        script = root / "code" / "inference.py"
        script.write_text("import jsonschema\n" + script.read_text())

    report = verify(_repack(torch_artifact[1], tmp_path, edit))
    assert any("inference.py:1: imports 'jsonschema'" in e for e in report.errors), report.errors


def test_requirements_the_image_cannot_meet_offline_are_errors(torch_artifact, tmp_path):
    def edit(root: Path) -> None:
        (root / "code" / "requirements.txt").write_text("numpy==2.5.2\njsonschema==4.26.0\n")

    report = verify(_repack(torch_artifact[1], tmp_path, edit))
    problems = [e for e in report.errors if "requirements.txt asks for" in e]
    assert len(problems) == 1 and "'jsonschema==4.26.0' (not in the image)" in problems[0]
    assert "network isolation" in problems[0]


def test_an_artifact_without_the_serve_config_is_refused(torch_artifact, tmp_path):
    def edit(root: Path) -> None:
        (root / "config.yaml").unlink()

    report = verify(_repack(torch_artifact[1], tmp_path, edit))
    assert any("config.yaml is missing" in e for e in report.errors), report.errors


def _saved_model_to(dst: str):
    def edit(root: Path) -> None:
        shutil.move(str(root / "cells" / "1"), root / "tmp_sm")
        shutil.rmtree(root / "cells")
        if dst == ".":
            for child in (root / "tmp_sm").iterdir():
                shutil.move(str(child), root / child.name)
            (root / "tmp_sm").rmdir()
        else:
            (root / dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(root / "tmp_sm"), root / dst)

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _saved_model_to("."),
            "saved_model.pb is at the root; the TF Serving container only "
            "finds it under a numbered version folder",
        ),
        (_saved_model_to("cells/latest"), "its folder 'latest' is not a number"),
        (
            lambda r: (r / "code" / "inference.py").write_text(
                "def input_handler(d, c):\n  pass\n"
            ),
            "defines ['input_handler']",
        ),
    ],
)
def test_broken_tensorflow_artifacts_are_rejected(keras_image_artifact, tmp_path, edit, message):
    report = verify(_repack(keras_image_artifact[1], tmp_path, edit))
    assert not report.ok
    assert any(message in error for error in report.errors), report.errors


def test_a_second_version_folder_is_served_too(keras_image_artifact, tmp_path):
    # Every numeric version is loaded; the manifest lists both, so add it to the files list.
    from model_export.tarball import list_files, sha256_file

    def edit(root: Path) -> None:
        shutil.copytree(root / "cells" / "1", root / "cells" / "2")
        manifest = json.loads((root / "manifest.json").read_text())
        manifest["files"] = {
            f: {"sha256": sha256_file(root / f)} for f in list_files(root) if f != "manifest.json"
        }
        (root / "manifest.json").write_text(json.dumps(manifest))

    report = verify(_repack(keras_image_artifact[1], tmp_path, edit))
    assert report.ok, report.errors


def test_the_manifest_beside_must_belong_to_the_tarball(torch_artifact, tmp_path):
    result, unpacked = torch_artifact
    tarball = _repack(unpacked, tmp_path, lambda r: None)
    beside = json.loads(result.manifest_path.read_text())
    beside["artifact"]["sha256"] = "0" * 64
    (tarball.parent / "manifest.json").write_text(json.dumps(beside))
    report = verify(tarball)
    assert any("belongs to another export" in error for error in report.errors)


def test_unsafe_tarballs_are_refused_before_anything_runs(tmp_path, tar_of):
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(tar_of({"../code/inference.py": b"import os; os.system('boom')"}))
    with pytest.raises(ExportError, match="points outside the archive"):
        verify(bad)


def test_missing_tarball(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        verify(tmp_path / "nope.tar.gz")


def test_model_dir_reloads_the_original_model(
    torch_artifact, torch_model, keras_image_artifact, keras_image_model
):
    report = verify(torch_artifact[0].tarball, model_dir=torch_model[0])
    assert report.ok, report.errors
    assert any("--model-dir agrees" in note for note in report.notes)
    report = verify(keras_image_artifact[0].tarball, model_dir=keras_image_model)
    assert report.ok, report.errors


def test_model_dir_of_another_model_is_caught(torch_artifact, tmp_path):
    from tests.support import model_dirs as fixtures

    other_dir, _ = fixtures.write_torch_model_dir(tmp_path / "other", seed=7)
    report = verify(torch_artifact[0].tarball, model_dir=other_dir)
    assert any("exported from another model" in error for error in report.errors), report.errors


def test_a_retrained_model_with_another_shape_is_a_clear_error(torch_artifact, tmp_path):
    from tests.support import model_dirs as fixtures

    other_dir, _ = fixtures.write_torch_model_dir(tmp_path / "other", class_names=("a", "b"))
    report = verify(torch_artifact[0].tarball, model_dir=other_dir)
    assert any("does not fit arch" in error or "another model" in error for error in report.errors)

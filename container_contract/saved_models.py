"""Where the TensorFlow Serving container finds SavedModels in an artifact (its
``tfs_utils.find_models`` rule), and the error naming the fix when it would find none."""

from __future__ import annotations

from pathlib import Path

from container_contract.errors import ContainerError


def _saved_models(model_dir: Path) -> tuple[dict[str, dict[int, Path]], list[Path]]:
    found: dict[str, dict[int, Path]] = {}
    misplaced: list[Path] = []
    for pb in sorted(model_dir.rglob("saved_model.pb")):
        version_dir = pb.parent
        if "code" in pb.relative_to(model_dir).parts:
            continue
        if version_dir == model_dir or not version_dir.name.isdigit():
            misplaced.append(pb.relative_to(model_dir))
            continue
        parent = version_dir.parent
        # The container unpacks into /opt/ml/model, so a top-level version folder is "model".
        name = "model" if parent == model_dir else parent.name
        found.setdefault(name, {})[int(version_dir.name)] = version_dir
    return found, misplaced


def find_saved_models(model_dir: Path) -> dict[str, dict[int, Path]]:
    """``{name: {version: folder}}`` by the container's rule (tfs_utils.find_models):
    ``saved_model.pb`` in a folder whose name is all digits. Empty when there is none."""
    return _saved_models(model_dir)[0]


def discover_saved_models(model_dir: Path) -> dict[str, dict[int, Path]]:
    """``find_saved_models``, or an error naming the fix when the container would find none."""
    found, misplaced = _saved_models(model_dir)
    if not found:
        if misplaced:
            where = ", ".join(str(p) for p in misplaced)
            raise ContainerError(
                f"saved_model.pb found at {where}, but the TF Serving container only finds it "
                "under a numbered version folder (e.g. 1/saved_model.pb or <name>/1/...): "
                "re-export the artifact with model_export"
            )
        raise ContainerError(
            f"no SavedModel (saved_model.pb) in {model_dir}: the artifact does not fit the "
            "TensorFlow Serving container"
        )
    return found

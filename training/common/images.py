"""Image-folder data sets (``<split>/<class>/<image>``), decoded with Pillow.

The decode + resize here is the eval/serving preprocessing contract (CONTRACTS: identical in
training's eval transform and the serving ``inference.py``):
``Image.open(...).convert("RGB").resize((S, S), Image.Resampling.BILINEAR)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.common.env import UsageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def scan(
    root: Path, class_names: list[str] | None = None
) -> tuple[list[Path], list[int], list[str]]:
    """Image paths, their integer labels and the class names (sorted folder names).

    ``class_names`` from the training split fixes the label order for valid/test; a class folder
    there that training does not have is an error, not a silent relabelling.
    """
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder of class folders (<class>/<image>)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UsageError(f"{root} has no class folders: expected {root}/<class>/<image files>")
    found = [p.name for p in folders]
    if class_names is None:
        class_names = found
        if len(class_names) < 2:
            raise UsageError(f"{root} has one class folder ({found[0]}); a classifier needs two+")
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise UsageError(
                f"{root} has class folders the training data lacks: {', '.join(unknown)}"
            )
    index = {name: i for i, name in enumerate(class_names)}
    paths: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        files = sorted(
            p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        paths.extend(files)
        labels.extend([index[folder.name]] * len(files))
    if not paths:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UsageError(f"no images ({suffixes}) under {root}/<class>/")
    return paths, labels, class_names


def load_rgb(path: Path, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8 RGB, decoded and resized per the preprocessing contract."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read image {path}: {exc}") from exc

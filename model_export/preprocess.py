"""Reference preprocessing and example inputs, written independently of the serving handlers.

``verify`` compares the handlers' answers with the original model fed through these functions, so
a preprocessing bug in a handler shows up as a parity failure instead of being copied into both.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from model_export.errors import ExportError

DEFAULT_EXAMPLE_TEXT = "The flight was on time and the crew were friendly."


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def example_png(size: int, image_path: Path | None = None) -> bytes:
    """A ``size`` x ``size`` RGB PNG: ``image_path`` resized, or a fixed synthetic picture.

    The example is already at the model's input size, so the handler's resize is the identity and
    the comparison isolates decoding, normalisation and the model itself.
    """
    if image_path is not None:
        try:
            with Image.open(image_path) as image:
                picture = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        except (OSError, ValueError) as exc:
            raise ExportError(
                f"--example-image {image_path} is not a readable image: {exc}"
            ) from exc
        return _png(picture)
    # A smooth gradient plus fixed noise: deterministic, and not a constant the model would
    # answer the same way for any weights.
    axis = np.linspace(0.0, 1.0, size, dtype=np.float32)
    red = np.outer(axis, np.ones(size, dtype=np.float32))
    green = np.outer(np.ones(size, dtype=np.float32), axis)
    blue = np.sqrt(red * green)
    noise = np.random.default_rng(0).random((size, size, 3), dtype=np.float32) * 0.25
    pixels = np.clip(np.stack([red, green, blue], axis=-1) * 0.75 + noise, 0.0, 1.0)
    return _png(Image.fromarray((pixels * 255).astype(np.uint8), mode="RGB"))


def decode_rgb(data: bytes, size: int) -> np.ndarray:
    """``(size, size, 3)`` float32 pixels in [0, 255] (what the Keras image models take)."""
    with Image.open(io.BytesIO(data)) as image:
        picture = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.float32)


def torch_eval_input(data: bytes, size: int, mean: list[float], std: list[float]) -> np.ndarray:
    """``(3, size, size)`` float32: the contract's eval transform (/255, normalise, CHW)."""
    pixels = decode_rgb(data, size) / 255.0
    normalised = (pixels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32)

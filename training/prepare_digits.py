"""Write scikit-learn's bundled handwritten digits as a PNG ImageFolder data set (offline).

    python training/prepare_digits.py --out data/digits

gives ``data/digits/{train,valid,test}/<digit>/<index>.png`` (replacing those three folders):
the default data set of ``make local``, in the same layout as any user's image data. The split is
stratified and fixed by ``--seed``, so every run writes identical files.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger("prepare_digits")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("data/digits"), help="output folder")
    parser.add_argument("--size", type=int, default=32, help="PNG width and height in pixels")
    parser.add_argument("--valid-fraction", type=float, default=0.15, help="share for valid/")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="share for test/")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified split")
    args = parser.parse_args(argv)
    if not 8 <= args.size <= 512:
        parser.error(f"--size must be between 8 and 512 pixels, got {args.size}")
    if not (0 < args.valid_fraction < 0.5 and 0 < args.test_fraction < 0.5):
        parser.error("--valid-fraction and --test-fraction must each be between 0 and 0.5")
    return args


def split_indices(
    labels: np.ndarray, valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """A stratified train/valid/test split of ``range(len(labels))``, fixed by ``seed``."""
    from sklearn.model_selection import train_test_split

    everything = np.arange(len(labels))
    rest, test = train_test_split(
        everything, test_size=test_fraction, stratify=labels, random_state=seed
    )
    train, valid = train_test_split(
        rest,
        test_size=valid_fraction / (1 - test_fraction),
        stratify=labels[rest],
        random_state=seed,
    )
    return {"train": np.sort(train), "valid": np.sort(valid), "test": np.sort(test)}


def to_png(image_8x8: np.ndarray, size: int) -> Image.Image:
    # The bundled digits are 8x8 with intensities 0..16 (ink bright); scale to 0..255 grey.
    pixels = np.clip(image_8x8 * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.BILINEAR)


def main(args: argparse.Namespace) -> int:
    from sklearn.datasets import load_digits

    digits = load_digits()
    splits = split_indices(digits.target, args.valid_fraction, args.test_fraction, args.seed)
    for split, indices in splits.items():
        # Replace, not merge: files of an earlier split (another --seed) must not linger.
        if (args.out / split).exists():
            shutil.rmtree(args.out / split)
        for index in indices:
            label = int(digits.target[index])
            folder = args.out / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            to_png(digits.images[index], args.size).save(folder / f"{index:04d}.png")
        log.info("%s: %d images in %s", split, len(indices), args.out / split)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    sys.exit(main(parse_args()))

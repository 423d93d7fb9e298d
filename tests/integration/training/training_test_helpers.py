"""Small learnable data sets in the real formats, and running a training script the way users and
SageMaker do (a subprocess: ``python training/<script>.py ...``)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
TRAINING_DIR = ROOT / "training"
PYTHON = sys.executable

# Each class is an image tinted towards one colour under heavy noise: learnable in a few epochs by
# any CNN, far from trivial for a broken pipeline (chance is 1/3).
COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def make_image_folders(
    root: Path, per_class: dict[str, int], size: int = 24, seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                noise = rng.normal(0, 60, size=(size, size, 3))
                pixels = np.clip(np.asarray(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


POSITIVE = ["great", "love", "awesome", "thanks", "excellent", "friendly", "smooth", "best"]
NEGATIVE = ["delayed", "lost", "rude", "worst", "cancelled", "broken", "terrible", "awful"]
FILLER = ["flight", "the", "crew", "seat", "today", "plane", "airport", "my", "was", "again"]


def make_sentiment_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """Airline-tweets-shaped CSV (`text`, `airline_sentiment`) whose label follows the words."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["tweet_id", "airline_sentiment", "text"])
        writer.writeheader()
        for i in range(rows):
            label = ["negative", "neutral", "positive"][i % 3]
            words = list(rng.choice(FILLER, size=5))
            if label == "positive":
                words += list(rng.choice(POSITIVE, size=2))
            elif label == "negative":
                words += list(rng.choice(NEGATIVE, size=2))
            rng.shuffle(words)
            writer.writerow(
                {"tweet_id": i, "airline_sentiment": label, "text": "@airline " + " ".join(words)}
            )
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without SageMaker's or torchrun's variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SM_") and k not in {"RANK", "WORLD_SIZE", "LOCAL_RANK"}
    }
    env.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def run_script(
    script: str, *args: str, env: dict[str, str] | None = None, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(TRAINING_DIR / script), *args],
        cwd=ROOT,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )

"""Small archives with the structure of the real data sets, generated for the tests."""

from __future__ import annotations

import csv
import io
import tarfile
import zipfile

import numpy as np
from PIL import Image

DOG_BREEDS = {"n02085620-Chihuahua": (200, 30, 30), "n02085782-Japanese_spaniel": (30, 200, 30),
              "n02086240-Shih-Tzu": (30, 30, 200)}  # fmt: skip
DOGS_PER_BREED, DOGS_TEST_PER_BREED = 12, 4


def _image(colour: tuple[int, int, int], fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (24, 24, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype("uint8")).save(buffer, format=fmt)
    return buffer.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _mat(names: list[str]) -> bytes:
    from scipy.io import savemat

    buffer = io.BytesIO()
    cells = np.empty((len(names), 1), dtype=object)
    for i, name in enumerate(names):
        cells[i, 0] = np.array([name])
    savemat(buffer, {"file_list": cells})
    return buffer.getvalue()


def stanford_dogs() -> dict[str, bytes]:
    """``images.tar`` (Images/<wnid-breed>/<wnid>_<n>.jpg) and ``lists.tar`` (train/test lists)."""
    images, train, test = {}, [], []
    for b, (breed, colour) in enumerate(DOG_BREEDS.items()):
        wnid = breed.split("-")[0]
        for i in range(DOGS_PER_BREED):
            relative = f"{breed}/{wnid}_{i}.jpg"
            images[f"Images/{relative}"] = _image(colour, "JPEG", b * 100 + i)
            (test if i < DOGS_TEST_PER_BREED else train).append(relative)
    lists = {"file_list.mat": _mat(train + test), "train_list.mat": _mat(train),
             "test_list.mat": _mat(test)}  # fmt: skip
    return {"images.tar": _tar(images), "lists.tar": _tar(lists)}


def malaria_cells(per_class: int = 10) -> dict[str, bytes]:
    """``cell_images.zip``: cell_images/{Parasitized,Uninfected}/*.png plus Windows' Thumbs.db."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for c, label in enumerate(("Parasitized", "Uninfected")):
            archive.writestr(f"cell_images/{label}/Thumbs.db", b"not an image")
            for i in range(per_class):
                name = f"cell_images/{label}/C{i}P{c}_ThinF_IMG_2015_cell_{i}.png"
                archive.writestr(name, _image((180, 60 + 120 * c, 90), "PNG", c * 100 + i))
    return {"cell_images.zip": buffer.getvalue()}


def airline_csv(per_label: int = 10) -> dict[str, bytes]:
    """The publisher's CSV: its columns, Windows-1252 encoded, one row without a label."""
    buffer = io.StringIO()
    columns = ["_unit_id", "_golden", "airline_sentiment", "airline_sentiment:confidence",
               "negativereason", "airline", "name", "text", "tweet_created", "tweet_id"]  # fmt: skip
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    n = 0
    for label in ("negative", "neutral", "positive"):
        for i in range(per_label):
            n += 1
            writer.writerow({"_unit_id": 680000000 + n, "_golden": "FALSE",
                             "airline_sentiment": label, "airline": "Virgin America",
                             "text": f"@VirginAmerica caf\u00e9 {label} #{i}, \"quoted\"\nline two",
                             "tweet_id": 570000000000000000 + n})  # fmt: skip
    writer.writerow({"_unit_id": 1, "airline_sentiment": "", "text": "no label", "tweet_id": 1})
    return {"Airline-Sentiment-2-w-AA.csv": buffer.getvalue().encode("cp1252")}

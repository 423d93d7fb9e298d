"""How each publisher's archive becomes the layout the training scripts read.

``<split>/<class>/<image>`` for the image models, ``<split>/tweets.csv`` for the text model.
Splits are fixed: the publisher's where there is one (Stanford Dogs' train/test lists), otherwise
stratified by a hash of each item's name and the seed (:func:`split_names`), so every run and
every machine writes the same files. :mod:`training.datasets` downloads the archives and calls
:data:`PREPARE`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tarfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from training import download

SPLITS = ("train", "valid", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")


class DatasetError(download.FetchError):
    """An archive that does not hold what the data set should (wrong file, changed upstream)."""


@dataclass(frozen=True)
class Options:
    valid_fraction: float
    test_fraction: float
    seed: int


def _key(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def split_names(names: Sequence[str], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Assign each name (of one class) a split: exact shares, order fixed by a seeded hash, so the
    same item lands in the same split on every machine. Train keeps at least one item."""
    ordered = sorted(names, key=lambda n: _key(seed, n))
    assignment: dict[str, str] = {}
    start = 0
    for split, fraction in fractions.items():
        count = min(round(len(ordered) * fraction), max(0, len(ordered) - start - 1))
        for name in ordered[start : start + count]:
            assignment[name] = split
        start += count
    for name in ordered[start:]:
        assignment[name] = "train"
    return assignment


def _safe(part: str, what: str) -> str:
    if not _SAFE_NAME.match(part) or part in (".", ".."):
        raise DatasetError(f"unexpected {what} name {part!r} in the archive")
    return part


def _write(root: Path, split: str, label: str, name: str, data: bytes) -> None:
    folder = root / split / _safe(label, "class")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _safe(name, "file")).write_bytes(data)


# -- the data sets -------------------------------------------------------------------------------


def _dog_class(folder: str) -> str:
    """``n02085620-Chihuahua`` -> ``Chihuahua`` (the WordNet id says nothing to a user)."""
    return folder.split("-", 1)[1] if re.match(r"^n\d{8}-.", folder) else folder


def _mat_file_list(data: bytes, member: str) -> list[str]:
    from scipy.io import loadmat

    try:
        entries = loadmat(io.BytesIO(data))["file_list"]
    except Exception as exc:  # scipy raises several types for a file that is not a .mat
        raise DatasetError(f"lists.tar: {member} is not the expected MATLAB file ({exc})") from exc
    names = []
    for entry in entries.ravel():
        while not isinstance(entry, str):  # cell arrays nest: array([array(['a/b.jpg'])])
            entry = entry[0] if len(entry) else ""
        names.append(entry)
    return names


def prepare_dogs(archives: dict[str, Path], out: Path, options: Options) -> None:
    lists: dict[str, list[str]] = {}
    with tarfile.open(archives["lists.tar"]) as tar:
        for member in tar.getmembers():
            stem = Path(member.name).name
            if stem in ("train_list.mat", "test_list.mat") and member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    lists[stem] = _mat_file_list(handle.read(), stem)
    if set(lists) != {"train_list.mat", "test_list.mat"}:
        raise DatasetError(
            f"lists.tar lacks train_list.mat / test_list.mat (found {sorted(lists)})"
        )
    official = {name: "test" for name in lists["test_list.mat"]}
    by_class: dict[str, list[str]] = defaultdict(list)
    for name in lists["train_list.mat"]:
        official[name] = "train"
        by_class[name.split("/")[0]].append(name)
    # valid: a fixed share of each breed's official training images
    for names in by_class.values():
        for name, split in split_names(
            names, {"valid": options.valid_fraction}, options.seed
        ).items():
            official[name] = split
    written = 0
    with tarfile.open(archives["images.tar"]) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if (
                not member.isfile()
                or len(parts) < 2
                or not parts[-1].lower().endswith(IMAGE_SUFFIXES)
            ):
                continue
            relative = f"{parts[-2]}/{parts[-1]}"
            member_split = official.get(relative)
            if member_split is None:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            _write(out, member_split, _dog_class(parts[-2]), parts[-1], handle.read())
            written += 1
    if written != len(official):
        raise DatasetError(
            f"images.tar has {written} of the {len(official)} images lists.tar names"
        )


def prepare_malaria(archives: dict[str, Path], out: Path, options: Options) -> None:
    fractions = {"test": options.test_fraction, "valid": options.valid_fraction}
    with zipfile.ZipFile(archives["cell_images.zip"]) as archive:
        members: dict[str, dict[str, zipfile.ZipInfo]] = defaultdict(dict)
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or len(parts) < 2 or not parts[-1].lower().endswith(".png"):
                continue  # folders, Thumbs.db
            members[parts[-2]].setdefault(parts[-1], info)  # one copy per class and file name
        if set(members) != {"Parasitized", "Uninfected"}:
            raise DatasetError(
                "cell_images.zip should hold Parasitized/ and Uninfected/ PNG folders; found "
                f"{sorted(members) or 'no PNG folders'}"
            )
        for label, files in members.items():
            for name, split in split_names(sorted(files), fractions, options.seed).items():
                _write(out, split, label, name, archive.read(files[name]))


TWEET_COLUMNS = ("tweet_id", "airline", "airline_sentiment", "text")


def prepare_airline(archives: dict[str, Path], out: Path, options: Options) -> None:
    raw = archives["Airline-Sentiment-2-w-AA.csv"].read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # The publisher's file is Windows-1252; the scripts read UTF-8.
        text = raw.decode("cp1252", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"text", "airline_sentiment"} - set(reader.fieldnames or [])
    if missing:
        raise DatasetError(
            f"the airline CSV lacks the column(s) {', '.join(sorted(missing))} (it has "
            f"{', '.join(reader.fieldnames or [])})"
        )
    rows: dict[str, dict[str, str]] = {}
    by_label: dict[str, list[str]] = defaultdict(list)
    for number, row in enumerate(reader):
        label, tweet = (row.get("airline_sentiment") or "").strip(), row.get("text") or ""
        if not label or not tweet.strip():
            continue
        key = (row.get("tweet_id") or row.get("_unit_id") or str(number)).strip()
        if key in rows:
            continue
        rows[key] = {c: (row.get(c) or "").strip() if c != "text" else tweet for c in TWEET_COLUMNS}
        rows[key]["airline_sentiment"] = label
        rows[key]["tweet_id"] = key
        by_label[label].append(key)
    if len(by_label) < 2:
        raise DatasetError(f"the airline CSV has {len(by_label)} sentiment label(s); need two+")
    fractions = {"test": options.test_fraction, "valid": options.valid_fraction}
    chosen: dict[str, list[str]] = {split: [] for split in SPLITS}
    for keys in by_label.values():
        for key, split in split_names(keys, fractions, options.seed).items():
            chosen[split].append(key)
    for split, keys in chosen.items():
        (out / split).mkdir(parents=True, exist_ok=True)
        with open(out / split / "tweets.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=TWEET_COLUMNS)
            writer.writeheader()
            for key in sorted(keys, key=lambda k: _key(options.seed, k)):
                writer.writerow(rows[key])


PREPARE: dict[str, Callable[[dict[str, Path], Path, Options], None]] = {
    "dog-breeds": prepare_dogs,
    "malaria": prepare_malaria,
    "airline-sentiment": prepare_airline,
}

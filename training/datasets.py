"""``python -m training.datasets``: the reference models' public data sets, in the scripts' layout.

    python -m training.datasets list
    python -m training.datasets fetch dog-breeds          # -> data/dog-breeds/{train,valid,test}/
    python -m training.datasets fetch malaria             # -> data/malaria/...
    python -m training.datasets fetch airline-sentiment   # -> data/sentiment/{train,valid,test}/
    python -m training.launch upload-data --model dog-breeds --source data/dog-breeds

Downloads come from the publishers' URLs in ``training/common/sources.py`` (resumable, with a
progress bar, verified against the pinned size and SHA-256) into a cache
(``--cache-dir``, default ``~/.cache/ml-serving``), then the archive is unpacked into the layout
the training scripts read: ``<split>/<class>/<image>`` for the image models and
``<split>/tweets.csv`` (columns ``text``, ``airline_sentiment``, ...) for the text model. Splits
are fixed: the publisher's where there is one (Stanford Dogs' train/test lists), otherwise
stratified by a hash of each item's name and ``--seed``, so every run and every machine writes
the same files. The output is written beside the target and swapped in whole, with a
``dataset.json`` manifest; a run that finds a matching manifest does nothing.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from training import download
from training.common.sources import DATASETS, Dataset

log = logging.getLogger("training.datasets")

EXIT_FAILURE = 1
EXIT_USAGE = 2
SPLITS = ("train", "valid", "test")
MANIFEST = "dataset.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")


class DatasetError(download.FetchError):
    """An archive that does not hold what the data set should (wrong file, changed upstream)."""


class DatasetUsageError(DatasetError):
    """Bad input on the command line (unknown name, impossible fractions)."""


class UnknownDatasetError(DatasetUsageError):
    pass


def get(name: str) -> Dataset:
    """A data set by its name, or by the name of the model it trains (``sentiment``)."""
    if name in DATASETS:
        return DATASETS[name]
    for dataset in DATASETS.values():
        if dataset.model == name:
            return dataset
    known = ", ".join(sorted(DATASETS))
    raise UnknownDatasetError(f"unknown data set {name!r}: choose one of {known}")


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
            split = official.get(relative)
            if split is None:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            _write(out, split, _dog_class(parts[-2]), parts[-1], handle.read())
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


# -- fetch ---------------------------------------------------------------------------------------


def _counts(out: Path) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        folder = out / split
        if not folder.is_dir():
            continue
        csvs = sorted(folder.glob("*.csv"))
        if csvs:
            with open(csvs[0], newline="", encoding="utf-8") as handle:
                labels = [row["airline_sentiment"] for row in csv.DictReader(handle)]
            counts[split] = {label: labels.count(label) for label in sorted(set(labels))}
        else:
            counts[split] = {
                c.name: sum(1 for _ in c.iterdir()) for c in sorted(folder.iterdir()) if c.is_dir()
            }
    return counts


def _walk_files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())


def fetch(
    name: str,
    *,
    out: Path | None = None,
    cache_root: Path | None = None,
    mirror: str | None = None,
    options: Options = Options(0.1, 0.1, 0),
    force: bool = False,
    progress: bool = True,
) -> tuple[Path, bool]:
    """Download, verify and prepare ``name``; return the output folder and whether it was
    (re)written."""
    dataset = get(name)
    out = out or Path("data") / dataset.model
    for label, value in (("--valid-fraction", options.valid_fraction),
                         ("--test-fraction", options.test_fraction)):  # fmt: skip
        if not 0 <= value < 0.5:
            raise DatasetUsageError(f"{label} must be at least 0 and below 0.5, got {value}")
    cache = (cache_root or download.default_cache_dir()) / "datasets" / dataset.name
    fetched = {}
    for spec in dataset.downloads:
        url = f"{mirror.rstrip('/')}/{spec.file_name}" if mirror else None
        fetched[spec.file_name] = download.fetch(spec, cache, url=url, progress=progress)
    manifest = {
        "name": dataset.name,
        "description": dataset.description,
        "license": dataset.license,
        "sources": [
            {"url": s.url, "file": s.file_name, "sha256": fetched[s.file_name].sha256}
            for s in dataset.downloads
        ],
        "split": {
            "valid_fraction": options.valid_fraction,
            "test_fraction": options.test_fraction,
            "seed": options.seed,
        },  # fmt: skip
    }
    previous = out / MANIFEST
    if not force and previous.is_file():
        try:
            old = json.loads(previous.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        if {k: old.get(k) for k in ("name", "sources", "split")} == {
            k: manifest[k] for k in ("name", "sources", "split")
        }:
            log.info(
                "%s is already prepared from the same files (dataset.json); --force redoes it", out
            )
            return out, False
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # what an interrupted earlier run left
    staging.mkdir(parents=True)
    log.info("preparing %s in %s", dataset.name, out)
    try:
        PREPARE[dataset.name]({k: v.path for k, v in fetched.items()}, staging, options)
        (staging / MANIFEST).write_text(
            json.dumps({**manifest, "counts": _counts(staging)}, indent=2) + "\n", encoding="utf-8"
        )
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetError(f"cannot unpack {dataset.name}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Swap in the splits and the manifest; other files the user keeps in `out` stay.
    out.mkdir(parents=True, exist_ok=True)
    for entry in (*SPLITS, MANIFEST):
        target = out / entry
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if (staging / entry).exists():
            os.replace(staging / entry, target)
    shutil.rmtree(staging, ignore_errors=True)
    files = sum(1 for _ in _walk_files(out)) - 1
    log.info("%s: %d files in %s", dataset.name, files, out)
    return out, True


# -- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.datasets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="the data sets, their sources and licences")
    fetch_cmd = commands.add_parser(
        "fetch",
        help="download, verify and write the train/valid/test layout",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    fetch_cmd.add_argument(
        "name", help=f"one of {', '.join(sorted(DATASETS))} (or the model name, e.g. sentiment)"
    )
    fetch_cmd.add_argument("--out", type=Path, help="output folder; default data/<model>")
    fetch_cmd.add_argument(
        "--cache-dir",
        type=Path,
        help="cache root for the downloads (CACHE_DIR/datasets/<name>/); default "
        "$ML_SERVING_CACHE_DIR, else $XDG_CACHE_HOME/ml-serving, else ~/.cache/ml-serving",
    )
    fetch_cmd.add_argument(
        "--mirror", help="base URL of a mirror holding the same files under their file names"
    )
    fetch_cmd.add_argument("--valid-fraction", type=float, default=0.1, help="share for valid/")
    fetch_cmd.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        help="share for test/ (Stanford Dogs uses its official test list instead)",
    )
    fetch_cmd.add_argument("--seed", type=int, default=0, help="seed of the fixed split")
    fetch_cmd.add_argument("--force", action="store_true", help="prepare again even if prepared")
    fetch_cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if args.command == "list":
        for dataset in DATASETS.values():
            print(f"{dataset.name:18} -> data/{dataset.model}/  {dataset.description}")
            print(f"{'':18}    licence: {dataset.license}")
            for spec in dataset.downloads:
                print(f"{'':18}    {spec.url}  sha256 {spec.sha256 or 'not published'}")
        return 0
    try:
        out, _ = fetch(
            args.name,
            out=args.out,
            cache_root=args.cache_dir,
            mirror=args.mirror,
            options=Options(args.valid_fraction, args.test_fraction, args.seed),
            force=args.force,
            progress=not args.no_progress,
        )
    except DatasetUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except download.FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    dataset = get(args.name)
    print(f"data={out}")
    print(f"next: python -m training.launch upload-data --model {dataset.model} --source {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

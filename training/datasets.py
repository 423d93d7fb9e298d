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
import json
import logging
import os
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from training import download
from training.common.sources import DATASETS, Dataset
from training.dataset_layouts import PREPARE, SPLITS, DatasetError, Options

log = logging.getLogger("training.datasets")

EXIT_FAILURE = 1
EXIT_USAGE = 2
MANIFEST = "dataset.json"
DEFAULT_OPTIONS = Options(valid_fraction=0.1, test_fraction=0.1, seed=0)


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
    options: Options = DEFAULT_OPTIONS,
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

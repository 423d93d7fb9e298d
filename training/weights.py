"""``python -m training.weights``: the ImageNet weights the transfer-learning models start from.

    python -m training.weights list
    python -m training.weights fetch resnet50        # -> ~/.cache/ml-serving/weights/...
    python -m training.weights path resnet50         # the cached file, for --pretrained-weights

Files come from their publishers (download.pytorch.org for torchvision's ResNets,
storage.googleapis.com for Keras applications), are checked against the digests pinned in
``training/common/sources.py`` and cached (``--cache-dir``, ``$ML_SERVING_CACHE_DIR``). An
interrupted download resumes where it stopped. ``python -m training.launch train`` uploads the
model's weights and passes them to the job as its ``pretrained`` channel; locally, pass the
printed path to the script's ``--pretrained-weights``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from training import download
from training.common.sources import WEIGHTS, Weights

log = logging.getLogger("training.weights")

EXIT_FAILURE = 1
EXIT_USAGE = 2


class UnknownWeightsError(download.FetchError):
    """Bad input (an unknown name, a malformed digest): exit 2."""


def get(name: str) -> Weights:
    try:
        return WEIGHTS[name]
    except KeyError:
        known = ", ".join(sorted(WEIGHTS))
        raise UnknownWeightsError(f"unknown weights {name!r}: choose one of {known}") from None


def for_arch(framework: str, arch: str) -> Weights | None:
    """The table's weights for a script's architecture (``--arch`` / ``--backbone``), if any."""
    for weights in WEIGHTS.values():
        if weights.framework == framework and weights.arch == arch:
            return weights
    return None


def cache_dir(root: Path | None = None) -> Path:
    return (root or download.default_cache_dir()) / "weights"


def fetch(
    name: str,
    *,
    root: Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> download.Fetched:
    """Download (or find in the cache) and verify the weights called ``name``."""
    return download.fetch(
        get(name).download, cache_dir(root), url=url, sha256=sha256, progress=progress
    )


def cached_path(name: str, root: Path | None = None) -> Path | None:
    path = cache_dir(root) / get(name).download.file_name
    return path if path.is_file() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.weights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="the weights this project knows, and where they come from")
    for command, text in (
        ("fetch", "download, verify and cache weights; prints path=FILE"),
        ("path", "print the cached file of weights already fetched"),
    ):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("name", help=f"one of {', '.join(sorted(WEIGHTS))}")
        sub.add_argument(
            "--cache-dir",
            type=Path,
            help="cache root (files go to CACHE_DIR/weights/); default $ML_SERVING_CACHE_DIR, "
            "else $XDG_CACHE_HOME/ml-serving, else ~/.cache/ml-serving",
        )
        if command == "fetch":
            sub.add_argument("--url", help="download from this mirror of the same file instead")
            sub.add_argument(
                "--sha256", help="require this SHA-256 (pins weights whose publisher gives none)"
            )
            sub.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        if args.command == "list":
            for weights in WEIGHTS.values():
                spec = weights.download
                digest = spec.sha256 or (f"md5 {spec.md5}" if spec.md5 else "not published")
                print(f"{weights.name:16} {weights.framework:8} {weights.description}")
                print(f"{'':16} {spec.url}")
                print(f"{'':16} sha256 {digest}")
            return 0
        if args.command == "path":
            path = cached_path(args.name, args.cache_dir)
            if path is None:
                print(
                    f"error: {args.name} is not in {cache_dir(args.cache_dir)}: run "
                    f"`python -m training.weights fetch {args.name}` first",
                    file=sys.stderr,
                )
                return EXIT_FAILURE
            print(path)
            return 0
        if args.sha256:
            try:
                download.check_sha256(args.sha256)
            except download.FetchError as exc:
                raise UnknownWeightsError(str(exc)) from exc  # bad input: exit 2
        fetched = fetch(
            args.name,
            root=args.cache_dir,
            url=args.url,
            sha256=args.sha256,
            progress=not args.no_progress,
        )
    except UnknownWeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except download.FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if not fetched.downloaded:
        log.info("already cached and verified")
    print(f"sha256={fetched.sha256}")
    print(f"path={fetched.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

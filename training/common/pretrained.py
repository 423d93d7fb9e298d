"""Where a transfer-learning script's pretrained backbone weights come from.

In order: ``--pretrained-weights PATH`` (a file, or a folder holding one weights file); the job's
``pretrained`` input channel (``SM_CHANNEL_PRETRAINED``, which ``python -m training.launch train``
fills with the model's weights from ``training/common/sources.py``); else none. ``--pretrained-weights
none`` says "from random initialisation, on purpose". A transfer-learning run that ends up with no
weights without saying so logs a warning and records it in ``health_report.json``
(``no_pretrained_weights``), because it trains far worse and nothing else would show why.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.common import cli, env
from training.common.sources import PRETRAINED_CHANNEL, WEIGHTS

log = logging.getLogger(__name__)

NONE = "none"
WEIGHT_SUFFIXES = frozenset({".pth", ".pt", ".h5", ".keras"})
CHANNEL_ENV = f"SM_CHANNEL_{PRETRAINED_CHANNEL.upper()}"


def add_argument(group: argparse._ActionsContainer, *, what: str) -> None:
    """``--pretrained-weights`` with its spellings: ``--backbone-weights`` (the Keras script's
    earlier name) and the SageMaker ``_`` forms; all set ``args.pretrained_weights``."""
    group.add_argument(
        "--pretrained-weights",
        "--pretrained_weights",
        "--backbone-weights",
        "--backbone_weights",
        dest="pretrained_weights",
        type=cli.text,
        default=None,
        metavar="PATH|none",
        help=f"{what} (a file, or a folder with one); 'none': random initialisation on "
        f"purpose; unset: the job's '{PRETRAINED_CHANNEL}' channel ({CHANNEL_ENV}) when there "
        "is one (python -m training.launch train passes it), else none, with a warning",
    )


@dataclass(frozen=True)
class Pretrained:
    path: Path | None
    source: str  # "flag", "channel", "none" (asked for) or "missing"


def _single_file(folder: Path, what: str) -> Path:
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in WEIGHT_SUFFIXES
    )
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "no weights file"
        suffixes = ", ".join(sorted(WEIGHT_SUFFIXES))
        raise env.UsageError(f"{what} {folder} must hold one weights file ({suffixes}): {found}")
    return files[0]


def resolve(value: str | None) -> Pretrained:
    """The weights file to load (not yet checked to exist when it comes from the flag)."""
    if value is not None and value.strip().lower() == NONE:
        return Pretrained(None, "none")
    if value is not None and value.strip():
        path = Path(value).expanduser()
        if path.is_dir():
            path = _single_file(path, "--pretrained-weights")
        return Pretrained(path, "flag")
    channel = env.env_path(CHANNEL_ENV)
    if channel is not None and channel.is_dir():
        return Pretrained(_single_file(channel, f"the {PRETRAINED_CHANNEL} channel"), "channel")
    return Pretrained(None, "missing")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def record(pretrained: Pretrained, *, arch: str, transfer: bool) -> dict[str, Any]:
    """What the run started from, for the health report; warns when transfer learning has no
    weights it was not told to go without."""
    info: dict[str, Any] = {"source": pretrained.source, "arch": arch}
    if pretrained.path is not None and pretrained.path.is_file():
        digest = _sha256(pretrained.path)
        info.update(path=str(pretrained.path), file=pretrained.path.name, sha256=digest)
        for name, weights in WEIGHTS.items():
            spec = weights.download
            if spec.sha256 == digest:
                info["known_as"] = f"{name}: {weights.description}"
            elif spec.sha256 is None and spec.file_name == pretrained.path.name:
                info["known_as"] = f"{name} (by file name; no digest published)"
    if pretrained.source == "missing" and transfer:
        known = [w.name for w in WEIGHTS.values() if w.arch == arch]
        fetch = f"python -m training.weights fetch {known[0]}" if known else "your weights file"
        info["warning"] = (
            f"transfer learning without pretrained weights: the {arch} backbone starts from "
            f"random initialisation. Pass --pretrained-weights PATH ({fetch}), train with "
            f"`python -m training.launch train` (it passes the '{PRETRAINED_CHANNEL}' channel), "
            "or pass --pretrained-weights none to train from scratch on purpose"
        )
        log.warning("%s", info["warning"])
    elif pretrained.source == "none" and transfer:
        log.info("--pretrained-weights none: the %s backbone starts from random weights", arch)
    elif pretrained.path is not None:
        log.info(
            "pretrained weights from %s: %s (sha256 %s, %s)",
            pretrained.source,
            pretrained.path,
            info.get("sha256", "?")[:16],
            info.get("known_as", "not in training/common/sources.py"),
        )
    return info

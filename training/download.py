"""Resumable, verified HTTP downloads into a cache folder (for ``training.weights`` and
``training.datasets``).

A download goes to ``<file>.part`` and continues from its end with an HTTP ``Range`` request when
run again (or on a dropped connection, retried a few times); a server that ignores ``Range``
answers 200 and the file starts over. Only a file that matches the pinned size and checksums of
``training/common/sources.py`` is renamed into place. A file whose table entry pins no SHA-256
gets its digest recorded beside it (``<file>.sha256``) on first download and checked on later
uses.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from training.common.sources import Download

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # bytes per read
TIMEOUT_S = 60.0  # per socket operation
RETRIES = 3  # reconnects (resuming) after a dropped connection
RETRY_WAIT_S = 2.0
USER_AGENT = "ml-serving-fetch/1 (+python urllib)"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class FetchError(Exception):
    """A download that cannot finish (network, HTTP error, bad checksum): one clear line."""


class ChecksumError(FetchError):
    pass


def default_cache_dir() -> Path:
    """``$ML_SERVING_CACHE_DIR``, else ``$XDG_CACHE_HOME/ml-serving``, else ``~/.cache/ml-serving``."""
    explicit = os.environ.get("ML_SERVING_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ml-serving"


def check_sha256(value: str) -> str:
    lowered = value.strip().lower()
    if not _HEX64.match(lowered):
        raise FetchError(f"--sha256 {value!r} is not a SHA-256 digest (64 hex digits)")
    return lowered


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # the publisher's published digest, checked too
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    pinned: bool  # False: no digest was pinned; this one was recorded on first download
    downloaded: bool  # False: it was already in the cache


def verify(path: Path, spec: Download, sha256: str | None = None) -> str:
    """Check ``path`` against the spec (size, SHA-256, published prefix, MD5); return its SHA-256.

    ``sha256`` (e.g. from ``--sha256``) replaces the table's digest. Raises :class:`ChecksumError`
    naming what differs.
    """
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise ChecksumError(
            f"{spec.file_name} has {size} bytes, the pinned size is {spec.size}: the download is "
            "incomplete or the file changed upstream"
        )
    actual = sha256_of(path)
    expected = sha256 or spec.sha256
    if expected is not None and actual != expected:
        raise ChecksumError(
            f"{spec.file_name}: SHA-256 {actual} does not match the pinned {expected}: the "
            "file is corrupt, was tampered with, or changed upstream"
        )
    if spec.sha256_prefix is not None and not actual.startswith(spec.sha256_prefix):
        raise ChecksumError(
            f"{spec.file_name}: SHA-256 {actual} does not start with the publisher's "
            f"{spec.sha256_prefix}"
        )
    if spec.md5 is not None and (md5 := _md5_of(path)) != spec.md5:
        raise ChecksumError(
            f"{spec.file_name}: MD5 {md5} does not match the publisher's {spec.md5}"
        )
    return actual


def _recorded_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _verify_cached(target: Path, spec: Download, sha256: str | None) -> str:
    recorded = _recorded_path(target)
    pin = sha256 or spec.sha256
    if pin is None and recorded.is_file():
        pin = recorded.read_text(encoding="utf-8").split()[0]
    return verify(target, spec, pin)


def _progress(total: int | None, initial: int, desc: str, enabled: bool):  # noqa: ANN202
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not (enabled and sys.stderr.isatty()),
        leave=False,
    )


def _open(url: str, offset: int) -> http.client.HTTPResponse:
    if not url.startswith(("http://", "https://")):
        raise FetchError(f"{url}: only http(s) URLs can be fetched")
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked above
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310


def _transfer(url: str, part: Path, expected_size: int | None, progress: bool, desc: str) -> None:
    """Append the rest of ``url`` to ``part``; return when the server says the body is complete."""
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset == expected_size:
        return  # a previous run got every byte but stopped before verifying
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    try:
        response = _open(url, offset)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing after `offset`: the part is whole (or bad)
            return
        raise
    with response:
        status = response.status
        if status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                raise FetchError(
                    f"{url}: the server answered a resume with an unexpected Content-Range "
                    f"{response.headers.get('Content-Range')!r}"
                )
            total = None if match.group(3) == "*" else int(match.group(3))
            mode = "ab"
        elif status == 200:
            if offset:
                log.info("%s: the server does not resume downloads; starting over", url)
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        else:
            raise FetchError(f"{url}: unexpected HTTP status {status}")
        total = total or expected_size
        with part.open(mode) as out, _progress(total, offset, desc, progress) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
        size = part.stat().st_size
        if total is not None and size < total:
            raise http.client.IncompleteRead(b"", total - size)


def fetch(
    spec: Download,
    cache_dir: Path,
    *,
    url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Fetched:
    """``spec``'s file in ``cache_dir``, downloaded (or resumed) and verified.

    ``url`` replaces the table's (a mirror of the same file); ``sha256`` replaces its digest.
    """
    sha256 = check_sha256(sha256) if sha256 else None
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / spec.file_name
    pinned = (sha256 or spec.sha256) is not None
    if target.is_file():
        try:
            digest = _verify_cached(target, spec, sha256)
            return Fetched(target, digest, pinned, downloaded=False)
        except ChecksumError as exc:
            log.warning("cached %s fails verification (%s); downloading it again", target, exc)
            target.unlink()
    source = url or spec.url
    part = target.with_name(target.name + ".part")
    if part.exists():
        log.info("resuming %s from byte %d", source, part.stat().st_size)
    else:
        log.info("downloading %s", source)
    attempt = 0
    while True:
        try:
            _transfer(source, part, spec.size, progress, spec.file_name)
            break
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{source}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            attempt += 1
            if attempt > RETRIES:
                kept = part.stat().st_size if part.exists() else 0
                raise FetchError(
                    f"could not download {source}: {reason} ({kept} bytes kept in {part}; run "
                    "the same command again to resume)"
                ) from exc
            log.warning("download interrupted (%s); resuming (try %d of %d)", reason, attempt,
                        RETRIES)  # fmt: skip
            time.sleep(RETRY_WAIT_S)
    try:
        digest = verify(part, spec, sha256)
    except ChecksumError as exc:
        bad = part.with_name(part.name.removesuffix(".part") + ".bad")
        os.replace(part, bad)
        raise ChecksumError(f"{exc} (kept as {bad})") from exc
    os.replace(part, target)
    if not pinned:
        _recorded_path(target).write_text(f"{digest}  {spec.file_name}\n", encoding="utf-8")
        log.warning(
            "%s has no published checksum: recorded SHA-256 %s on this first download; pin it "
            "with --sha256 %s on other machines",
            spec.file_name,
            digest,
            digest,
        )
    log.info("%s: %d bytes, SHA-256 %s verified", target, target.stat().st_size, digest)
    return Fetched(target, digest, pinned, downloaded=True)

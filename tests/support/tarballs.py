"""Tarballs laid out however a test needs, including the wrong ways users get them."""

from __future__ import annotations

import io
import tarfile


def make_tar(files: dict[str, bytes], members: list[tarfile.TarInfo] | None = None) -> bytes:
    """A gzipped tar of exactly ``files`` (plus raw ``members``), however wrong its layout."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for member in members or []:
            tar.addfile(member)
    return buffer.getvalue()

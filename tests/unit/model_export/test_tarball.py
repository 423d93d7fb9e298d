"""The tarball is reproducible and extraction refuses anything outside plain files."""

from __future__ import annotations

import hashlib
import os
import tarfile

import pytest

from model_export.errors import ExportError
from model_export.tarball import read_member, safe_extract, write_tarball


def _tree(root, files):
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


FILES = {"model.pth": b"weights", "code/inference.py": b"print()", "code/lib/x.py": b"x = 1"}


def test_same_files_give_the_same_sha256_whatever_their_mtimes_modes_and_order(tmp_path):
    # Given the same files written in different orders, with different mtimes and modes
    first = _tree(tmp_path / "a", FILES)
    second = _tree(tmp_path / "b", dict(reversed(list(FILES.items()))))
    os.utime(second / "model.pth", (1_000_000, 1_000_000))
    os.chmod(second / "code" / "inference.py", 0o700)
    # When both are packed
    sha_a = write_tarball(first, tmp_path / "a.tar.gz")
    sha_b = write_tarball(second, tmp_path / "b.tar.gz")
    # Then the archives are byte-identical, and the returned hash is the file's
    assert sha_a == sha_b
    assert sha_a == hashlib.sha256((tmp_path / "a.tar.gz").read_bytes()).hexdigest()
    # And a changed byte changes the hash
    (first / "model.pth").write_bytes(b"weightz")
    assert write_tarball(first, tmp_path / "c.tar.gz") != sha_a


def test_headers_are_normalised_and_sorted_with_folders(tmp_path):
    write_tarball(_tree(tmp_path / "a", FILES), tmp_path / "a.tar.gz")
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "code",
        "code/inference.py",
        "code/lib",
        "code/lib/x.py",
        "model.pth",
    ]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
        assert m.mode == (0o755 if m.isdir() else 0o644)


def test_symlinks_are_refused_when_packing(tmp_path):
    root = _tree(tmp_path / "a", FILES)
    (root / "link").symlink_to(root / "model.pth")
    with pytest.raises(ExportError, match="symbolic link"):
        write_tarball(root, tmp_path / "a.tar.gz")


def test_safe_extract_round_trip(tmp_path):
    write_tarball(_tree(tmp_path / "a", FILES), tmp_path / "a.tar.gz")
    names = safe_extract(tmp_path / "a.tar.gz", tmp_path / "out")
    assert "code/lib/x.py" in names
    assert (tmp_path / "out" / "code" / "lib" / "x.py").read_bytes() == b"x = 1"
    assert read_member(tmp_path / "a.tar.gz", "model.pth") == b"weights"
    assert read_member(tmp_path / "a.tar.gz", "absent") is None


@pytest.mark.parametrize("name", ["../evil.py", "code/../../evil.py", "/etc/evil.py"])
def test_safe_extract_refuses_paths_outside_the_archive(tmp_path, tar_of, name):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(tar_of({"model.pth": b"w", name: b"boom"}))
    with pytest.raises(ExportError, match="points outside the archive"):
        safe_extract(bad, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()
    assert not (tmp_path / "out").exists()  # nothing written before the check


def test_safe_extract_refuses_links(tmp_path, tar_of):
    link = tarfile.TarInfo("model.pth")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(tar_of({}, [link]))
    with pytest.raises(ExportError, match="link or special file"):
        safe_extract(bad, tmp_path / "out")


def test_safe_extract_explains_a_file_that_is_not_a_tarball(tmp_path):
    bad = tmp_path / "model.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(ExportError, match="not a readable tar archive"):
        safe_extract(bad, tmp_path / "out")

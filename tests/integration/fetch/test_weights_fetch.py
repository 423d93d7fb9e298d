"""``python -m training.weights fetch``: download over real HTTP (a local server), verify against
the pinned digests, cache, resume with ``Range``, and say clearly what went wrong."""

from __future__ import annotations

import dataclasses
import hashlib
import os

from training import weights
from training.common import sources
from training.common.sources import Download

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


def serve_as(monkeypatch, server, name: str, body: bytes = BODY, **pins) -> Download:
    """Point the table's entry ``name`` at the local server, pinned to ``pins`` (default: BODY)."""
    original = sources.WEIGHTS[name]
    file_name = original.download.file_name
    server.behaviour.files[f"/{file_name}"] = body
    spec = Download(
        url=server.url(f"/{file_name}"),
        file_name=file_name,
        **({"size": len(BODY), "sha256": SHA, "sha256_prefix": SHA[:8]} | pins),
    )
    monkeypatch.setitem(sources.WEIGHTS, name, dataclasses.replace(original, download=spec))
    return spec


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = weights.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_fetch_downloads_verifies_and_caches(server, monkeypatch, capsys, cache) -> None:
    serve_as(monkeypatch, server, "resnet18")
    code, out, _ = run(capsys, "fetch", "resnet18")
    assert code == 0
    path = cache / "weights" / "resnet18-f37072fd.pth"
    assert out.splitlines()[-1] == f"path={path}"
    assert f"sha256={SHA}" in out
    assert path.read_bytes() == BODY
    assert not list(path.parent.glob("*.part"))
    # A second fetch finds it in the cache: no request, same answer.
    requests = len(server.behaviour.requests)
    code, out, _ = run(capsys, "fetch", "resnet18")
    assert code == 0 and out.splitlines()[-1] == f"path={path}"
    assert len(server.behaviour.requests) == requests
    code, out, _ = run(capsys, "path", "resnet18")
    assert (code, out.strip()) == (0, str(path))


def test_a_dropped_connection_resumes_with_a_range_request(server, monkeypatch, capsys, cache):
    spec = serve_as(monkeypatch, server, "resnet50")
    server.behaviour.drop_after[f"/{spec.file_name}"] = 100_000
    code, _, _ = run(capsys, "fetch", "resnet50")
    assert code == 0
    assert (cache / "weights" / spec.file_name).read_bytes() == BODY
    assert server.behaviour.requests == [
        (f"/{spec.file_name}", None),
        (f"/{spec.file_name}", "bytes=100000-"),
    ]


def test_a_partial_file_from_an_earlier_run_is_continued(server, monkeypatch, capsys, cache):
    spec = serve_as(monkeypatch, server, "resnet34")
    part = cache / "weights" / f"{spec.file_name}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(BODY[:123_456])
    code, _, _ = run(capsys, "fetch", "resnet34")
    assert code == 0
    assert (cache / "weights" / spec.file_name).read_bytes() == BODY
    assert server.behaviour.requests == [(f"/{spec.file_name}", "bytes=123456-")]


def test_a_server_that_ignores_range_gets_a_fresh_download(server, monkeypatch, capsys, cache):
    spec = serve_as(monkeypatch, server, "resnet34")
    server.behaviour.ignore_range = True
    part = cache / "weights" / f"{spec.file_name}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 5000)  # not even the right bytes: a 200 must overwrite, not append
    code, _, _ = run(capsys, "fetch", "resnet34")
    assert code == 0
    assert (cache / "weights" / spec.file_name).read_bytes() == BODY


def test_checksum_mismatch_is_an_error_and_nothing_is_cached(server, monkeypatch, capsys, cache):
    spec = serve_as(monkeypatch, server, "resnet18", body=BODY[:-1] + b"\0")
    code, out, err = run(capsys, "fetch", "resnet18")
    assert code == 1
    assert f"does not match the pinned {SHA}" in err
    assert "Traceback" not in err and out == ""
    assert not (cache / "weights" / spec.file_name).exists()
    assert (cache / "weights" / f"{spec.file_name}.bad").exists()


def test_the_publishers_sha256_prefix_is_checked(server, monkeypatch, capsys) -> None:
    serve_as(monkeypatch, server, "resnet18", sha256=None, sha256_prefix="f37072fd")
    code, _, err = run(capsys, "fetch", "resnet18")
    assert code == 1
    assert "does not start with the publisher's f37072fd" in err


def test_the_publishers_md5_is_checked(server, monkeypatch, capsys) -> None:
    serve_as(monkeypatch, server, "efficientnet_b0", sha256=None, sha256_prefix=None,
             md5="50bc09e76180e00e4465e1a485ddc09d")  # fmt: skip
    code, _, err = run(capsys, "fetch", "efficientnet_b0")
    assert code == 1
    assert "does not match the publisher's 50bc09e76180e00e4465e1a485ddc09d" in err
    serve_as(monkeypatch, server, "efficientnet_b0", sha256=None, sha256_prefix=None,
             md5=hashlib.md5(BODY, usedforsecurity=False).hexdigest())  # fmt: skip
    assert run(capsys, "fetch", "efficientnet_b0")[0] == 0


def test_unpinned_weights_are_recorded_then_held_to_it(
    server, monkeypatch, capsys, caplog, cache
) -> None:
    spec = serve_as(monkeypatch, server, "mobilenet_v2", size=None, sha256=None, sha256_prefix=None)
    code, _, _ = run(capsys, "fetch", "mobilenet_v2")
    assert code == 0
    assert f"recorded SHA-256 {SHA}" in caplog.text and f"--sha256 {SHA}" in caplog.text
    cached = cache / "weights" / spec.file_name
    assert (cache / "weights" / f"{spec.file_name}.sha256").read_text().split()[0] == SHA
    # The cached copy changes behind our back: it no longer matches what was recorded, so it is
    # fetched again rather than used.
    cached.write_bytes(b"tampered")
    code, _, _ = run(capsys, "fetch", "mobilenet_v2")
    assert code == 0 and "fails verification" in caplog.text
    assert cached.read_bytes() == BODY
    # --sha256 pins it explicitly, and a wrong pin is refused.
    code, _, err = run(capsys, "fetch", "mobilenet_v2", "--sha256", "0" * 64)
    assert code == 1 and "does not match the pinned 000" in err


def test_a_mirror_url_serves_the_same_pinned_file(server, monkeypatch, capsys, cache) -> None:
    spec = serve_as(monkeypatch, server, "resnet18")
    server.behaviour.files["/mirror/file.pth"] = BODY
    code, _, _ = run(capsys, "fetch", "resnet18", "--url", server.url("/mirror/file.pth"))
    assert code == 0
    assert server.behaviour.requests == [("/mirror/file.pth", None)]
    assert (cache / "weights" / spec.file_name).read_bytes() == BODY


def test_unknown_name_lists_the_known_ones(capsys) -> None:
    code, _, err = run(capsys, "fetch", "resnet1000")
    assert code == 2
    assert "unknown weights 'resnet1000': choose one of efficientnet_b0, mobilenet_v2" in err


def test_http_errors_and_unreachable_servers_are_one_line(server, monkeypatch, capsys) -> None:
    spec = serve_as(monkeypatch, server, "resnet18")
    server.behaviour.status[f"/{spec.file_name}"] = 404
    code, _, err = run(capsys, "fetch", "resnet18")
    assert code == 1 and f"{spec.url}: HTTP 404" in err
    # A port nothing listens on: refused, retried, then a message that says it can be resumed.
    with socket_closed_port() as port:
        closed = f"http://127.0.0.1:{port}/x.pth"
        code, _, err = run(capsys, "fetch", "resnet18", "--url", closed)
    assert code == 1
    assert f"could not download {closed}" in err and "run the same command again" in err
    assert "Traceback" not in err


def test_a_malformed_sha256_is_bad_input(capsys) -> None:
    code, _, err = run(capsys, "fetch", "resnet18", "--sha256", "f37072fd")
    assert code == 2 and "is not a SHA-256 digest (64 hex digits)" in err


def test_path_of_weights_not_fetched_says_how(capsys) -> None:
    code, _, err = run(capsys, "path", "resnet50")
    assert code == 1 and "python -m training.weights fetch resnet50" in err


class socket_closed_port:  # noqa: N801 - used as a context manager, reads like a function
    """A port that was free a moment ago and has no listener."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        pass

"""Fixtures for the download tests: a local file server on a free port, and an empty cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.fetch.file_server import FileServer


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("ML_SERVING_CACHE_DIR", str(root))
    monkeypatch.setattr("training.download.RETRY_WAIT_S", 0.0)
    return root

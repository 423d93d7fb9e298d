"""Fixtures for the download tests: a local file server on a free port, and an empty cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib does not put test folders on sys.path; the tests import the helpers.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from file_server import FileServer  # noqa: E402


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

"""Fixtures for model_export's unit tests (the ones with real models: tests/integration/)."""

from __future__ import annotations

import pytest

from tests.support.tarballs import make_tar


@pytest.fixture
def tar_of():
    """``make_tar`` as a fixture, so tests build exactly the archive they need."""
    return make_tar

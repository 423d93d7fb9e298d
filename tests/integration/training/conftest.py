"""Fixtures for the training scripts' integration tests (helpers in training_test_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.training.training_test_helpers import make_image_folders, make_sentiment_csv


@pytest.fixture(scope="session")
def colour_images(tmp_path_factory) -> Path:
    return make_image_folders(
        tmp_path_factory.mktemp("colours"), {"train": 32, "valid": 10, "test": 10}
    )


@pytest.fixture(scope="session")
def sentiment_csvs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tweets")
    make_sentiment_csv(root / "train" / "tweets.csv", 300, seed=0)
    make_sentiment_csv(root / "valid" / "tweets.csv", 60, seed=1)
    make_sentiment_csv(root / "test" / "tweets.csv", 60, seed=2)
    return root

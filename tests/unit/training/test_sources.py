"""The one table of downloads: every entry is self-consistent and comes from its publisher."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from training.common.sources import DATASETS, WEIGHTS, Download
from training.launch.models import MODELS

PUBLISHERS = {
    "download.pytorch.org",  # torchvision
    "storage.googleapis.com",  # Keras applications
    "vision.stanford.edu",  # Stanford Dogs
    "data.lhncbc.nlm.nih.gov",  # NIH / NLM
    "d1p17r2m4rzlbo.cloudfront.net",  # CrowdFlower "Data for Everyone"
}
ALL: list[Download] = [w.download for w in WEIGHTS.values()] + [
    d for ds in DATASETS.values() for d in ds.downloads
]


@pytest.mark.parametrize("spec", ALL, ids=[s.file_name for s in ALL])
def test_each_download_names_its_file_and_pins_well_formed_digests(spec: Download) -> None:
    url = urlsplit(spec.url)
    assert url.netloc in PUBLISHERS
    assert url.path.rsplit("/", 1)[-1] == spec.file_name
    if spec.sha256 is not None:
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
    if spec.sha256_prefix is not None:
        assert spec.sha256 is None or spec.sha256.startswith(spec.sha256_prefix)
    if spec.md5 is not None:
        assert re.fullmatch(r"[0-9a-f]{32}", spec.md5)
    assert spec.origin, "say where the pinned values come from"


def test_torchvision_file_names_carry_the_pinned_digest_prefix() -> None:
    for weights in WEIGHTS.values():
        if weights.framework == "pytorch":
            prefix = re.fullmatch(r"\w+-([0-9a-f]{8})\.pth", weights.download.file_name)
            assert prefix and prefix.group(1) == weights.download.sha256_prefix


def test_every_data_set_feeds_a_model_the_launcher_knows() -> None:
    assert {d.model for d in DATASETS.values()} <= set(MODELS)

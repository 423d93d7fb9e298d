"""The price table: every priced region is complete and dated; what it lacks fails clearly."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from cost.prices import REQUIRED_KEYS, PriceError, load_table, region_prices

CONFIGURED_TYPES = {"ml.m5.large", "ml.c5.xlarge", "ml.g5.xlarge"}  # cdk.json + the infra tests


@pytest.mark.parametrize("region", ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"])
def test_each_region_prices_everything_with_a_source_and_a_date(region):
    prices = region_prices(region)
    for key in REQUIRED_KEYS:
        price = prices[key]
        assert price.source.startswith("https://aws.amazon.com/"), key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price.entered_on), key
    for instance_type in CONFIGURED_TYPES:
        assert prices.instance(instance_type).usd > 0
        assert prices.vcpus(instance_type) >= 2


def test_the_table_says_it_was_entered_by_hand_and_must_be_rechecked():
    about = " ".join(load_table()["about"])
    assert "BY HAND" in about and "re-check" in about


def test_an_unknown_region_says_how_to_add_it():
    with pytest.raises(PriceError) as err:
        region_prices("ap-south-1")
    message = str(err.value)
    assert "ap-south-1" in message and "not in the price table" in message
    assert "copy one region's block" in message and "us-east-1" in message


def test_an_unpriced_instance_type_names_where_to_add_it():
    with pytest.raises(PriceError, match=r"ml\.p5\.48xlarge.*sagemaker_instance"):
        region_prices("us-east-1").instance("ml.p5.48xlarge")


def test_a_price_without_its_source_is_rejected():
    table = copy.deepcopy(load_table())
    del table["regions"]["us-east-1"]["kms_key"]["source"]
    with pytest.raises(PriceError, match="kms_key must be an object with"):
        region_prices("us-east-1", table)


def test_a_region_missing_a_price_is_rejected():
    table = copy.deepcopy(load_table())
    del table["regions"]["eu-west-1"]["dashboard"]
    with pytest.raises(PriceError, match="regions.eu-west-1 lacks dashboard"):
        region_prices("eu-west-1", table)


def test_an_unreadable_table_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "prices.json"
    bad.write_text("{not json")
    with pytest.raises(PriceError, match="cannot read the price table"):
        load_table(bad)
    bad.write_text(json.dumps({"currency": "USD"}))
    with pytest.raises(PriceError, match="'regions'"):
        load_table(bad)

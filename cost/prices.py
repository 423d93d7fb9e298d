"""The dated price table in cost/prices.json: loading, validation, and one region's prices.

The table is kept by hand (no fetch at run time): every price names its unit, the AWS pricing
page it comes from and the day it was read, so an estimate can always be traced to its inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_PATH = Path(__file__).resolve().parent / "prices.json"

# Every region block must price these; an instance type is looked up on demand.
REQUIRED_KEYS = (
    "lambda_requests",
    "lambda_duration_x86_64",
    "lambda_duration_arm64",
    "lambda_provisioned_concurrency_x86_64",
    "lambda_provisioned_concurrency_arm64",
    "lambda_provisioned_duration_x86_64",
    "lambda_provisioned_duration_arm64",
    "apigateway_rest_requests",
    "kms_key",
    "kms_requests",
    "logs_ingestion",
    "logs_storage",
    "alarm_metric",
    "dashboard",
    "s3_standard_storage",
    "s3_put_requests",
    "xray_traces",
)
PRICE_FIELDS = ("usd", "quantity", "unit", "source", "entered_on")


class PriceError(ValueError):
    """The price table lacks what an estimate needs, or is malformed."""


@dataclass(frozen=True)
class Price:
    """``usd`` per ``quantity`` ``unit`` (e.g. 0.20 per 1,000,000 requests)."""

    key: str
    usd: float
    quantity: float
    unit: str
    source: str
    entered_on: str
    note: str = ""

    @property
    def per_unit_usd(self) -> float:
        return self.usd / self.quantity

    def describe(self) -> str:
        quantity = "" if self.quantity == 1 else f"{self.quantity:,.0f} "
        return f"${self.usd:g} per {quantity}{self.unit}"


@dataclass(frozen=True)
class RegionPrices:
    region: str
    hours_per_month: float
    prices: dict[str, Price]
    instances: dict[str, Price]
    instance_vcpus: dict[str, int]
    gpu_families: tuple[str, ...]

    def __getitem__(self, key: str) -> Price:
        return self.prices[key]

    def instance(self, instance_type: str) -> Price:
        if instance_type not in self.instances:
            known = ", ".join(sorted(self.instances))
            raise PriceError(
                f"no price for SageMaker instance type {instance_type} in {self.region} in "
                f"{PRICES_PATH.name} (priced: {known}). Add it under regions.{self.region}."
                f"sagemaker_instance from https://aws.amazon.com/sagemaker/pricing/ "
                f"(real-time inference), with the day you read it, and its vCPUs under "
                f"instance_vcpus"
            )
        return self.instances[instance_type]

    def vcpus(self, instance_type: str) -> int:
        if instance_type not in self.instance_vcpus:
            raise PriceError(
                f"{PRICES_PATH.name} has no vCPU count for {instance_type}: add it under "
                "instance_vcpus (the SageMaker pricing page lists it beside the price)"
            )
        return self.instance_vcpus[instance_type]

    def is_gpu(self, instance_type: str) -> bool:
        return any(instance_type.startswith(family + ".") for family in self.gpu_families)


def _price(key: str, raw: Any, where: str) -> Price:
    if not isinstance(raw, dict) or any(f not in raw for f in PRICE_FIELDS):
        raise PriceError(f"{where}.{key} must be an object with {', '.join(PRICE_FIELDS)}")
    try:
        usd, quantity = float(raw["usd"]), float(raw["quantity"])
    except (TypeError, ValueError) as exc:
        raise PriceError(f"{where}.{key}: usd and quantity must be numbers ({exc})") from None
    if usd < 0 or quantity <= 0:
        raise PriceError(f"{where}.{key}: usd must be >= 0 and quantity > 0")
    return Price(
        key=key,
        usd=usd,
        quantity=quantity,
        unit=str(raw["unit"]),
        source=str(raw["source"]),
        entered_on=str(raw["entered_on"]),
        note=str(raw.get("note", "")),
    )


def load_table(path: Path = PRICES_PATH) -> dict[str, Any]:
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PriceError(f"cannot read the price table {path}: {exc}") from None
    if not isinstance(table, dict) or not isinstance(table.get("regions"), dict):
        raise PriceError(f"{path}: expected an object with a 'regions' object")
    return table


def region_prices(region: str, table: dict[str, Any] | None = None) -> RegionPrices:
    """The prices of ``region``; a region the table lacks is an error that says how to add it."""
    table = load_table() if table is None else table
    regions = table["regions"]
    if region not in regions:
        raise PriceError(
            f"region {region!r} is not in the price table {PRICES_PATH} (priced: "
            f"{', '.join(sorted(regions))}). To add it, copy one region's block under 'regions', "
            f"enter {region}'s prices from each entry's source page, and set entered_on to the day "
            "you read them; or pass --region with a priced region"
        )
    block = regions[region]
    where = f"regions.{region}"
    missing = [k for k in REQUIRED_KEYS if k not in block]
    if missing:
        raise PriceError(f"{PRICES_PATH.name}: {where} lacks {', '.join(missing)}")
    prices = {k: _price(k, block[k], where) for k in REQUIRED_KEYS}
    instances = {
        t: _price(t, raw, f"{where}.sagemaker_instance")
        for t, raw in (block.get("sagemaker_instance") or {}).items()
    }
    return RegionPrices(
        region=region,
        hours_per_month=float(table.get("hours_per_month", 730)),
        prices=prices,
        instances=instances,
        instance_vcpus={k: int(v) for k, v in (table.get("instance_vcpus") or {}).items()},
        gpu_families=tuple(table.get("gpu_instance_families") or ()),
    )


def priced_regions(table: dict[str, Any] | None = None) -> list[str]:
    return sorted((load_table() if table is None else table)["regions"])

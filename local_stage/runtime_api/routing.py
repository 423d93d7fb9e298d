"""Where an InvokeEndpoint request goes: the endpoint's variant (by InferenceComponentName or
TargetVariant), its instance with the least outstanding requests, and the scale-to-zero state of
an inference component (copies, warming, idle time)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from local_stage.runtime_api.errors import NO_CAPACITY_MESSAGE, RuntimeError_

log = logging.getLogger("local_stage.runtime_api")


@dataclass
class Instance:
    url: str
    instance_id: str
    outstanding: int = 0
    healthy: bool = True


@dataclass
class Variant:
    name: str
    instances: list[Instance]
    _rr: int = 0
    # The inference component the variant hosts, and its scale-to-zero state: copies is the
    # desired copy count (0 or 1 here); warming while the copy's instances are starting.
    inference_component: str | None = None
    idle_s: float | None = None
    copies: int = 1
    warming: bool = False
    last_used_s: float = field(default_factory=time.monotonic)
    scaled_out_at_s: float = 0.0

    def scale_in_to_zero(self, idle_for_s: float) -> None:
        self.copies = 0
        for inst in self.instances:
            inst.healthy = False
        log.info(
            "inference component %s scaled to zero after %.0f s idle: releasing its model",
            self.inference_component,
            idle_for_s,
        )

    def scale_out_from_zero(self) -> None:
        self.copies = 1
        self.warming = True
        self.scaled_out_at_s = time.monotonic()
        log.info(
            "inference component %s scaling out from zero: a request found no copy",
            self.inference_component,
        )

    def pick(self, exclude: set[str]) -> Instance | None:
        candidates = [i for i in self.instances if i.healthy and i.url not in exclude]
        if not candidates:
            return None
        self._rr += 1
        # Least outstanding requests; ties rotate so idle instances share the load.
        n = len(candidates)
        rotated = candidates[self._rr % n :] + candidates[: self._rr % n]
        return min(rotated, key=lambda i: i.outstanding)


@dataclass
class Endpoint:
    name: str
    variants: list[Variant]
    container_timeout_s: float = 60.0
    log_group: str = field(default="")

    def __post_init__(self) -> None:
        self.log_group = self.log_group or f"/aws/sagemaker/Endpoints/{self.name}"


def scale_idle_components(endpoints: Iterable[Endpoint]) -> None:
    """Scale to zero each inference component idle for its idle period."""
    now = time.monotonic()
    for endpoint in endpoints:
        for variant in endpoint.variants:
            if variant.idle_s is None or variant.copies == 0 or variant.warming:
                continue
            if any(i.outstanding for i in variant.instances):
                variant.last_used_s = now
                continue
            if now - variant.last_used_s >= variant.idle_s:
                variant.scale_in_to_zero(now - variant.last_used_s)


def choose_variant(endpoint: Endpoint, target: str | None, component: str | None) -> Variant:
    """The variant a request goes to: its inference component's (InferenceComponentName), the
    TargetVariant, else the endpoint's one variant; SageMaker's ValidationError otherwise."""
    hosts_components = any(v.inference_component for v in endpoint.variants)
    if component or hosts_components:
        for variant in endpoint.variants:
            if component and variant.inference_component == component:
                return _with_capacity(variant)
        if not component:
            raise RuntimeError_(
                "ValidationError",
                400,
                f"Endpoint {endpoint.name} hosts inference components: specify one with "
                "InferenceComponentName.",
            )
        raise RuntimeError_(
            "ValidationError",
            400,
            f"Inference Component {component} not found on endpoint {endpoint.name}.",
        )
    if target:
        for variant in endpoint.variants:
            if variant.name == target:
                return variant
        names = [v.name for v in endpoint.variants]
        raise RuntimeError_(
            "ValidationError",
            400,
            f"Variant {target} not found for endpoint {endpoint.name} (variants: {names}).",
        )
    (variant,) = endpoint.variants  # the template reader admits one variant per endpoint
    return variant


def _with_capacity(variant: Variant) -> Variant:
    """The variant, or SageMaker's no-capacity error while its component has no copy.

    The first such request starts a copy (what the NoCapacityInvocationFailures alarm's step
    policy does on AWS, a minute later); requests fail the same way until it answers.
    """
    variant.last_used_s = time.monotonic()
    if variant.copies == 0:
        variant.scale_out_from_zero()
    elif not variant.warming:
        return variant
    raise RuntimeError_("ValidationError", 400, NO_CAPACITY_MESSAGE)


def endpoints_from_config(config: dict[str, Any]) -> dict[str, Endpoint]:
    """``{"endpoints": {name: {"container_timeout_s": 60, "variants": [{"name",
    "instances": [url, ...], "inference_component", "idle_s"}]}}}`` (what ``up`` writes) →
    Endpoint objects."""
    endpoints = {}
    for name, spec in config["endpoints"].items():
        variants = [
            Variant(
                name=v["name"],
                instances=[
                    Instance(url=url.rstrip("/"), instance_id=f"i-local-{v['name']}-{i}")
                    for i, url in enumerate(v["instances"])
                ],
                inference_component=v.get("inference_component"),
                idle_s=v.get("idle_s"),
            )
            for v in spec["variants"]
        ]
        endpoints[name] = Endpoint(
            name=name,
            variants=variants,
            container_timeout_s=float(spec.get("container_timeout_s", 60)),
        )
    return endpoints

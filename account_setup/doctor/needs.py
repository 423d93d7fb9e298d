"""What a stage needs from the account, read from its serving config (no AWS call)."""

from __future__ import annotations

from dataclasses import dataclass

from stacks.capacity import update_headroom
from stacks.config import ServingConfig


def lambda_reservation(config: ServingConfig) -> int:
    """Concurrency the gateway function takes out of the account's unreserved pool.

    Provisioned concurrency on the alias counts against the unreserved pool; a reserved
    concurrency on the function, when set, holds the provisioned part too, so the larger of the
    two is what leaves the pool. tests/infra checks this against the synthesized template.
    """
    return max(config.lambda_reserved_concurrency or 0, config.provisioned_concurrency)


@dataclass(frozen=True)
class EndpointNeed:
    """Instances of ``instance_type`` the endpoint needs: at rest, and during a model update
    (always on: blue/green starts a second fleet as large as the first; scale to zero: a rolling
    update starts a batch of copies beside the others)."""

    instance_type: str
    create: int  # the first deploy creates the variant with this many
    update_at_rest: int  # a model update while scaled in
    update_at_peak: int  # a model update while scaled out to max_instances

    @classmethod
    def of(cls, config: ServingConfig) -> EndpointNeed:
        if config.capacity_mode == "scale_to_zero":
            # A deploy starts one copy; an update rolls the copies it has.
            at_rest = config.initial_instance_count
            return cls(
                instance_type=config.instance_type,
                create=config.initial_instance_count,
                update_at_rest=at_rest + update_headroom(at_rest),
                update_at_peak=config.max_instances + update_headroom(config.max_instances),
            )
        at_rest = max(config.initial_instance_count, config.min_instances)
        return cls(
            instance_type=config.instance_type,
            create=config.initial_instance_count,
            update_at_rest=2 * at_rest,
            update_at_peak=2 * config.max_instances,
        )

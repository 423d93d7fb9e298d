"""Scale to zero on the supervisor's side: stop and start an inference component's instances as
the runtime API's desired copy count says."""

from __future__ import annotations

import asyncio
from typing import Any


async def follow_capacity(
    supervisor: Any, runtime_url: str, models: list[Any], interval_s: float = 0.2
) -> None:
    """Run each component's instances while it has a copy, stop them while it has none.

    The runtime API decides (idle period, a request finding no copy); this process owns the
    instances' processes, so it stops them (freeing the model's memory) and starts them again.
    """
    import aiohttp

    by_variant: dict[str, list[Any]] = {}
    for child in models:
        by_variant.setdefault(child.extra["variant"], []).append(child)
    async with aiohttp.ClientSession() as session:
        while True:
            await asyncio.sleep(interval_s)
            try:
                async with session.get(
                    f"{runtime_url}/_local/capacity", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    components = (await resp.json())["components"]
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                continue  # the runtime API is restarting
            for component in components:
                children = by_variant.get(component["variant"], [])
                running = [c for c in children if c.proc is not None]
                if component["copies"] == 0 and running:
                    print(
                        f"scale to zero: stopping {len(running)} instance process(es) of "
                        f"{component['component']}",
                        flush=True,
                    )
                    await asyncio.gather(*(supervisor.park(c, 30) for c in running))
                elif component["copies"] > 0 and len(running) < len(children):
                    print(f"scaling out from zero: starting {component['component']}", flush=True)
                    for child in children:
                        if child.proc is None:
                            await supervisor.start(child)

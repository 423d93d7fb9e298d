"""How a scale-to-zero endpoint's capacity grows during a model update (no AWS calls).

An inference component is updated by rolling batches of its copies: "for each step, SageMaker AI
provisions capacity on the new endpoint fleet, routes traffic to that fleet, and terminates
capacity on the old endpoint fleet" (InferenceComponentRollingUpdatePolicy, SageMaker API
reference). With one copy per instance, a batch needs as many extra instances as it has copies,
so the endpoint's managed instance scaling must allow them, and the account's quota must cover
them (``make doctor``).
"""

from __future__ import annotations

import math

# The batch of a rolling update, in percent of the copy count: the largest AWS accepts (5-50%).
ROLLING_BATCH_PERCENT = 50


def update_headroom(copies: int) -> int:
    """Extra instances a rolling update of ``copies`` copies starts beside them (at least 1)."""
    return max(1, math.ceil(copies * ROLLING_BATCH_PERCENT / 100))

"""API Gateway's stage throttle, on a stage of its own: the token bucket starts full and only
this module's requests take from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from local_stage import harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RATE_RPS, BURST = 1, 5
REQUESTS = 30  # more than the burst plus what the bucket refills even on a slow machine


@pytest.fixture(scope="module")
def throttled_stage(digits_artifact: Path, tmp_path_factory: pytest.TempPathFactory):
    app_dir = harness.synth(
        tmp_path_factory.mktemp("throttled") / "cdk.out",
        {
            **harness.DIGITS_CONTEXT,
            "artifact_path": str(digits_artifact),
            "initial_instance_count": "1",
            "throttle_rate_limit": str(RATE_RPS),
            "throttle_burst_limit": str(BURST),
        },
    )
    # No start-up smoke request: it would take a token before the test counts them.
    with harness.start_stage(app_dir, tmp_path_factory.mktemp("throttled-run")) as running:
        yield running


def test_past_the_stage_throttle_api_gateway_answers_429(throttled_stage, http):
    stage = throttled_stage
    statuses = [
        http.get(stage.url + "/health", headers={"x-api-key": stage.key}, timeout=60)
        for _ in range(REQUESTS)
    ]

    codes = [r.status_code for r in statuses]
    assert set(codes) <= {200, 429}, codes
    # The bucket holds BURST tokens and refills at RATE_RPS: the first BURST requests pass.
    assert codes[:BURST] == [200] * BURST, codes
    throttled = [r for r in statuses if r.status_code == 429]
    assert len(throttled) >= REQUESTS // 2, codes
    assert throttled[0].json()["error"]["code"] == "TooManyRequests"

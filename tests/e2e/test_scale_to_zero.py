"""Scale to zero through the whole local stage over real HTTP: dev's template (an inference
component that may go to 0 copies) with a short idle period. Idle → the model's processes are
stopped → the next request gets 503 ModelStarting with Retry-After → the model starts → 200."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from local_stage import harness
from local_stage.template import IDLE_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IDLE_S = 4


@pytest.fixture(scope="module")
def zero_stage(digits_artifact: Path, tmp_path_factory: pytest.TempPathFactory):
    app_dir = harness.synth(
        tmp_path_factory.mktemp("zero") / "cdk.out",
        {
            **harness.DIGITS_CONTEXT,
            "artifact_path": str(digits_artifact),
            # dev as cdk.json configures it
            "capacity_mode": "scale_to_zero",
            "min_instances": "0",
            "initial_instance_count": "1",
            "throttle_rate_limit": "5000",
            "throttle_burst_limit": "5000",
        },
    )
    os.environ[IDLE_ENV] = str(IDLE_S)
    try:
        with harness.start_stage(app_dir, tmp_path_factory.mktemp("zero-run")) as running:
            yield running
    finally:
        os.environ.pop(IDLE_ENV, None)


def _predict(http, stage, png: bytes):
    return http.post(
        stage.url + "/predict",
        data=png,
        headers={"x-api-key": stage.key, "Content-Type": "image/png"},
        timeout=60,
    )


def _running_models(stage) -> list[dict]:
    return [p for p in stage.processes("model-server") if p["running"]]


def test_idle_stage_scales_to_zero_and_the_next_request_starts_the_model(
    zero_stage, digits_data: Path, http
):
    stage = zero_stage
    png = sorted((digits_data / "test" / "7").glob("*.png"))[0].read_bytes()
    # Given a stage that starts warm, as a fresh deploy does (CopyCount 1)
    assert _predict(http, stage, png).status_code == 200
    assert _running_models(stage)

    # When nobody calls it for longer than its idle period
    deadline = time.monotonic() + IDLE_S + 30
    while _running_models(stage):
        assert time.monotonic() < deadline, "the model's processes were never stopped"
        time.sleep(0.5)
    assert "scaled to zero after" in stage.log()

    # Then the next request is told the model is starting, and when to retry
    cold = _predict(http, stage, png)
    assert cold.status_code == 503, cold.text
    assert cold.headers["Retry-After"] == "60"
    error = cold.json()["error"]
    assert error["code"] == "ModelStarting"
    assert "model is starting" in error["message"]
    assert "retry after 60 seconds" in error["message"]

    # And the model comes back and serves requests
    started = time.monotonic()
    while True:
        warm = _predict(http, stage, png)
        if warm.status_code == 200:
            break
        assert warm.status_code == 503 and warm.json()["error"]["code"] == "ModelStarting"
        assert time.monotonic() - started < 240, "the model never came back"
        time.sleep(0.5)
    cold_start_s = time.monotonic() - started
    assert warm.json()["predictions"]
    assert "scaling out from zero" in stage.log()
    print(f"local cold start from zero: {cold_start_s:.1f} s")

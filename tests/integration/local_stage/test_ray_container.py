"""A PyTorch artifact in real Ray Serve behind the container's adapter, over real HTTP.

One Ray Serve container per module (Ray takes seconds to start): the tiny test artifact with one
replica, batches of up to 8 and a 20 ms window, and ``RAYSERVE_BACKEND_TIMEOUT=2`` so the slow-model
test is quick. The replica-crash test runs last: it kills the replica Serve then replaces.
"""

from __future__ import annotations

import functools
import io
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from container_contract.ray_serve import RayContainer
from model_export.containers import PyTorchContainer
from reliability.fault_model import build_torch_artifact
from tests.support.artifacts import HTTP_TIMEOUT_S

pytestmark = pytest.mark.slow
post = functools.partial(requests.post, timeout=HTTP_TIMEOUT_S)
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def ray(tmp_path_factory: pytest.TempPathFactory):
    model_dir = build_torch_artifact(tmp_path_factory.mktemp("ray") / "model")
    env = {**os.environ, "RAYSERVE_BACKEND_TIMEOUT": "2"}
    with RayContainer(model_dir, env=env, log_path=model_dir.parent / "ray.log") as container:
        yield container


def invoke(ray: RayContainer, body: object, headers: dict[str, str] = JSON) -> requests.Response:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return post(ray.url + "/invocations", data=data, headers=headers)


def test_ping_and_the_handlers_answer_through_the_adapter(ray):
    assert requests.get(ray.url + "/ping", timeout=5).status_code == 200

    resp = invoke(ray, {"instances": [[1, 2, 3, 4], [0, 0, 0, 1]]})

    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    predictions = resp.json()["predictions"]
    assert len(predictions) == 2
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-5 for p in predictions)


def test_answers_equal_the_in_process_handlers_model_export_verifies_with(ray):
    body = json.dumps({"instances": [[0.5, -1, 2, 0.25]]}).encode()

    served = invoke(ray, body).json()["predictions"]
    local = PyTorchContainer(ray.model_dir).invoke(body, "application/json").json()["predictions"]

    assert [p["label"] for p in served] == [p["label"] for p in local]
    np.testing.assert_allclose(
        [p["probabilities"] for p in served], [p["probabilities"] for p in local], atol=1e-6
    )


def test_accept_and_content_type_reach_the_handlers_and_errors_keep_their_status(ray):
    # Accept is forwarded: text/csv is one of the handler's answers.
    as_csv = invoke(ray, {"instances": [[1, 2, 3, 4]]}, {**JSON, "Accept": "text/csv"})
    # The toolkit hands input_fn the header as is: "; charset=utf-8" is not application/json.
    charset = invoke(ray, "[[1,2,3,4]]", {"Content-Type": "application/json; charset=utf-8"})
    refused = invoke(ray, {"fail": "nope"})

    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"].startswith("text/csv")
    assert as_csv.text in ("a", "b", "c")
    assert charset.status_code == 500
    assert "unsupported content type application/json; charset=utf-8" in charset.json()["message"]
    assert refused.status_code == 500
    assert refused.json() == {
        "code": 500,
        "type": "InternalServerError",
        "message": "ValueError: the model refused this input: nope",
    }


def test_a_model_failure_is_a_500_with_the_error(ray):
    # A .npy of the wrong width reaches the model and fails there: a 500, never a 200.
    buf = io.BytesIO()
    np.save(buf, np.zeros((1, 5), dtype=np.float32))
    wrong_shape = invoke(ray, buf.getvalue(), {"Content-Type": "application/x-npy"})

    assert wrong_shape.status_code == 500
    assert wrong_shape.json()["type"] == "InternalServerError"
    # The replica's traceback reaches the container's output (CloudWatch on the endpoint), not
    # only a log file inside the container. Ray forwards worker output to it asynchronously.
    deadline = time.monotonic() + 10
    while "invocation failed (500)" not in ray.log_tail(5000) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "invocation failed (500)" in ray.log_tail(5000)


def test_concurrent_requests_reach_predict_fn_as_one_batch_with_the_same_answers(ray):
    rows = [[[i, i + 1, i + 2, i + 3]] for i in range(8)]
    singles = [invoke(ray, {"instances": r}).json()["predictions"] for r in rows]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda r: invoke(ray, {"instances": r}).json(), rows))

    assert max(a["max_batch_rows"] for a in answers) > 1  # Serve batched them
    for single, batched in zip(singles, answers, strict=True):
        (one,), (many,) = single, batched["predictions"]
        assert one["label"] == many["label"]
        # Batch-size dependent kernels may change the last digits: never compare exactly.
        np.testing.assert_allclose(one["probabilities"], many["probabilities"], atol=1e-6)


def test_a_lone_request_does_not_wait_out_the_batch_window(ray):
    # The window is 20 ms; a request alone on the replica goes to predict_fn at once.
    timings = []
    for _ in range(15):
        started = time.perf_counter()
        assert invoke(ray, {"instances": [[1, 2, 3, 4]]}).status_code == 200
        timings.append(time.perf_counter() - started)

    assert statistics.median(timings) < 0.015, timings


def test_a_model_slower_than_the_backend_timeout_is_a_504_from_the_adapter(ray):
    started = time.perf_counter()
    slow = invoke(ray, {"sleep_s": 3.5})
    elapsed = time.perf_counter() - started

    assert slow.status_code == 504
    assert slow.json() == {"error": "Request timeout"}
    assert 1.9 < elapsed < 3.4
    # The replica kept serving meanwhile (input_fn runs off its event loop).
    assert invoke(ray, {"instances": [[1, 2, 3, 4]]}).status_code == 200


def test_a_crashed_replica_is_replaced_and_its_request_gets_a_clear_5xx(ray):
    started = time.perf_counter()
    crashed = invoke(ray, {"crash": True})
    answered_s = time.perf_counter() - started

    assert 500 <= crashed.status_code < 600
    assert answered_s < 30  # an answer, not a hang
    # Serve starts a new replica; requests succeed again.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if invoke(ray, {"instances": [[1, 2, 3, 4]]}).status_code == 200:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no replica answered after the crash:\n{ray.log_tail()}")

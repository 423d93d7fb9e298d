"""The model server's PyTorch flavour over real HTTP: the toolkit's contract, batching, limits."""

from __future__ import annotations

import functools
import io
import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from local_stage.testing import HTTP_TIMEOUT_S

pytestmark = pytest.mark.slow
post = functools.partial(requests.post, timeout=HTTP_TIMEOUT_S)
get = functools.partial(requests.get, timeout=HTTP_TIMEOUT_S)

JSON = {"Content-Type": "application/json"}


def test_ping_and_user_handlers_answer_a_batch_of_rows(torch_server):
    server = torch_server
    assert get(server.url + "/ping").status_code == 200

    resp = post(server.url + "/invocations", data="[[1,2,3,4],[0,0,0,1]]", headers=JSON)

    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    predictions = resp.json()["predictions"]
    assert len(predictions) == 2
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-4 for p in predictions)


def test_content_type_is_matched_exactly_and_user_errors_are_500_with_the_message(torch_server):
    server = torch_server

    # The toolkit hands input_fn the header as is: "; charset=utf-8" is not application/json.
    charset = post(
        server.url + "/invocations",
        data="[[1,2,3,4]]",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    refused = post(server.url + "/invocations", data='{"fail": "nope"}', headers=JSON)

    assert charset.status_code == 500
    assert "unsupported content type application/json; charset=utf-8" in charset.json()["message"]
    assert refused.status_code == 500
    assert "the model refused this input: nope" in refused.json()["message"]


def test_default_handlers_serve_torchscript_json_csv_and_npy(model_server, torchscript_model_dir):
    server = model_server(torchscript_model_dir, "pytorch")
    rows = [[1, 2, 3, 4], [4, 3, 2, 1]]

    as_json = post(server.url + "/invocations", data=json.dumps(rows), headers=JSON)
    as_csv = post(
        server.url + "/invocations",
        data="1,2,3,4\n4,3,2,1",
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )
    buf = io.BytesIO()
    np.save(buf, np.array(rows, dtype=np.float32))
    as_npy = post(
        server.url + "/invocations",
        data=buf.getvalue(),
        headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
    )
    unsupported = post(
        server.url + "/invocations", data=b"x", headers={"Content-Type": "image/png"}
    )

    assert as_json.status_code == 200
    expected = np.array(as_json.json())
    assert expected.shape == (2, 3)
    assert as_csv.status_code == 200 and as_csv.headers["Content-Type"] == "text/csv"
    np.testing.assert_allclose(
        np.loadtxt(io.StringIO(as_csv.text), delimiter=","), expected, rtol=1e-5
    )
    assert as_npy.status_code == 200
    np.testing.assert_allclose(np.load(io.BytesIO(as_npy.content)), expected, rtol=1e-5)
    assert unsupported.status_code == 500
    assert "Content type image/png is not supported" in unsupported.json()["message"]


def test_concurrent_requests_reach_predict_fn_as_one_batch_with_unchanged_answers(
    tuned_torch_server,
):
    server = tuned_torch_server
    rows = [[[i, i + 1, i + 2, i + 3]] for i in range(4)]
    singles = [
        post(server.url + "/invocations", data=json.dumps(r), headers=JSON).json() for r in rows
    ]
    before = get(server.url + "/_local/stats").json()

    with ThreadPoolExecutor(4) as pool:
        batched = list(
            pool.map(
                lambda r: post(
                    server.url + "/invocations", data=json.dumps(r), headers=JSON
                ).json(),
                rows,
            )
        )
    stats = get(server.url + "/_local/stats").json()

    assert batched == singles  # same answers, each to its own request
    assert stats["items_run"] - before["items_run"] == 4
    assert stats["batches_run"] - before["batches_run"] < 4
    assert stats["max_batch_seen"] > 1 and stats["max_batch_seen"] <= 4


def test_requests_past_the_bound_are_refused_at_once_and_slow_ones_time_out(
    tuned_torch_server,
):
    server = tuned_torch_server
    slow = json.dumps({"sleep_s": 1.0})

    def send(body: str) -> requests.Response:
        return post(server.url + "/invocations", data=body, headers=JSON)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(send, [slow] * 10))
    statuses = sorted(a.status_code for a in answers)
    overloaded = [a for a in answers if a.headers.get("X-Local-Stage-Error") == "overloaded"]
    hang = send(json.dumps({"sleep_s": 3.0}))

    assert 200 in statuses
    assert overloaded and all(a.status_code == 503 for a in overloaded)
    assert hang.status_code == 504
    assert hang.headers["X-Local-Stage-Error"] == "timeout"


def test_a_worker_stuck_past_the_timeout_exits_for_the_supervisor_to_replace(
    model_server, torch_model_dir
):
    """A cheap input_fn runs on the event loop; when one call then blocks, nothing else (not
    even /ping) is answered. The watchdog ends the worker, as TorchServe would."""
    from local_stage.model_server.server import (
        INLINE_MAX_CPU_S,
        INLINE_MAX_WALL_S,
        WATCHDOG_EXIT_CODE,
    )

    server = model_server(torch_model_dir, "pytorch", "--request-timeout-s", "1")

    def prepare_runs_inline() -> bool:
        cost = requests.get(server.url + "/_local/stats", timeout=10).json()["step_cost_ms"]
        prepare = cost["prepare"]
        return (
            prepare is not None
            and prepare["cpu"] < INLINE_MAX_CPU_S * 1e3
            and prepare["wall"] < INLINE_MAX_WALL_S * 1e3
        )

    # Cheap calls until input_fn's moving-average cost says it runs on the event loop (the
    # first calls' start-up cost decays 10% a call; a busy machine may need more of them).
    for _ in range(300):
        assert post(server.url + "/invocations", data="[[1,2,3,4]]", headers=JSON).ok
        if prepare_runs_inline():
            break
    assert prepare_runs_inline(), "input_fn never became cheap enough to run inline"
    start = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.post(
            server.url + "/invocations",
            data=json.dumps({"sleep_s": 6.0}),
            headers=JSON,
            timeout=HTTP_TIMEOUT_S,
        )
    assert server.proc.wait(timeout=10) == WATCHDOG_EXIT_CODE
    assert time.monotonic() - start < 5  # 1 s timeout + 1 s grace, not the 6 s sleep
    assert "watchdog: the event loop has not run" in server.log()


def test_sigterm_drains_the_request_in_flight(model_server, torch_model_dir):
    server = model_server(torch_model_dir, "pytorch", "--threads", "1")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            requests.post,
            server.url + "/invocations",
            data=json.dumps({"sleep_s": 1.0}),
            headers=JSON,
        )
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        answer = pending.result(timeout=10)

    assert answer.status_code == 200
    assert server.proc.wait(timeout=10) == 0


def test_answers_match_model_exports_container_emulation(torch_server, torch_model_dir):
    """model_export's in-process emulation (what `verify` trusts) and the server must agree."""
    from model_export.containers import PyTorchContainer

    container = PyTorchContainer(torch_model_dir)
    cases = [
        ("[[1,2,3,4],[4,3,2,1]]", "application/json", "application/json"),
        ("[[1,2,3,4]]", "application/json", "text/csv"),
        ('{"fail": "x"}', "application/json", None),
        ("[[1,2,3,4]]", "application/json; charset=utf-8", None),
    ]
    for body, content_type, accept in cases:
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        served = post(torch_server.url + "/invocations", data=body, headers=headers)
        emulated = container.invoke(body.encode(), content_type, accept)
        assert served.status_code == emulated.status, (body, content_type)
        if emulated.status == 200:
            assert served.content == emulated.body
            assert served.headers["Content-Type"] == emulated.content_type

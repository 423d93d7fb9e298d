"""The model server's TF Serving flavour over real HTTP (CONTRACTS.md section 2)."""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from tests.support.artifacts import HTTP_TIMEOUT_S

pytestmark = pytest.mark.slow
post = functools.partial(requests.post, timeout=HTTP_TIMEOUT_S)
get = functools.partial(requests.get, timeout=HTTP_TIMEOUT_S)

ROW = [1.0, 2.0, 3.0, 4.0]
# Answers to the same rows in batches of different sizes: equal to float tolerance.
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)


def _post(url: str, body: str | bytes, content_type: str | None, **headers: str):
    if content_type:
        headers["Content-Type"] = content_type
    return post(url + "/invocations", data=body, headers=headers)


@pytest.fixture(scope="module")
def tf_server(module_server, tf_artifacts):
    return module_server(tf_artifacts["plain"], "tensorflow")


def test_request_formats_of_the_container(tf_server):
    server = tf_server
    url = server.url

    instances = _post(url, json.dumps({"instances": [ROW, ROW]}), "application/json")
    inputs = _post(url, json.dumps({"inputs": {"x": [ROW]}}), "application/json")
    bare = _post(url, json.dumps(ROW), "application/json")  # one instance, wrapped
    rows = _post(url, json.dumps([ROW, ROW]), "application/json")  # "[[" = the instances list
    lines = _post(url, json.dumps(ROW) + "\n" + json.dumps(ROW), "application/jsonlines")
    csv = _post(url, "1,2,3,4\n1,2,3,4", "text/csv")

    assert instances.status_code == 200
    preds = instances.json()["predictions"]
    assert len(preds) == 2 and len(preds[0]) == 3
    # Same rows, same answers, to float tolerance: a batch of one and a batch of two may take
    # different kernels, which round differently in the last digits.
    assert inputs.json().keys() == {"outputs"}
    close(inputs.json()["outputs"], [preds[0]])
    for answer in (bare, rows, lines, csv):
        assert answer.json().keys() == {"predictions"}
    close(bare.json()["predictions"], [preds[0]])
    for answer in (rows, lines, csv):
        close(answer.json()["predictions"], preds)


def test_unsupported_content_type_is_415_and_bad_shapes_are_400(tf_server):
    server = tf_server

    png = _post(server.url, b"\x89PNG", "image/png")
    charset = _post(server.url, "[1,2,3,4]", "application/json; charset=utf-8")
    short = _post(server.url, json.dumps({"instances": [[1, 2, 3]]}), "application/json")
    no_key = _post(
        server.url,
        json.dumps({"instances": [ROW]}),
        "application/json",
        **{"X-Amzn-SageMaker-Custom-Attributes": "tfs-model-name=other"},
    )

    assert png.status_code == 415
    assert png.json() == {"error": "Unsupported Media Type: image/png"}
    assert charset.status_code == 415  # the container compares the header exactly
    assert short.status_code == 400 and "shape [1, 3]" in short.json()["error"]
    assert no_key.status_code == 404 and "other" in no_key.json()["error"]


def test_input_and_output_handlers_and_batching(model_server, tf_artifacts):
    server = model_server(
        tf_artifacts["handlers"],
        "tensorflow",
        env={
            "SAGEMAKER_TFS_ENABLE_BATCHING": "true",
            "SAGEMAKER_TFS_MAX_BATCH_SIZE": "4",
            "SAGEMAKER_TFS_BATCH_TIMEOUT_MICROS": "20000",
        },
    )
    one = _post(server.url, json.dumps([ROW]), "application/json")
    with ThreadPoolExecutor(8) as pool:
        many = list(
            pool.map(
                lambda _: _post(server.url, json.dumps([ROW]), "application/json").json(), range(8)
            )
        )
    refused = _post(server.url, "1,2,3,4", "text/csv")
    stats = get(server.url + "/_local/stats").json()

    assert one.status_code == 200
    assert set(one.json()) == {"labels", "probabilities"}
    assert all(m == one.json() for m in many)
    assert stats["max_batch_seen"] > 1
    # input_handler raised: the container answers 500 with the handler's message.
    assert refused.status_code == 500
    assert "unsupported content type text/csv" in refused.json()["error"]


REST_HANDLER_PY = '''
import http.client
from urllib.parse import urlsplit

_CONNECTIONS = {}


def handler(data, context):
    """The container's one-function form: call TF Serving's REST API, return its answer.

    A kept-alive connection makes each call cheap in CPU, the case where the server would be
    tempted to run it on its event loop."""
    url = urlsplit(context.rest_uri)
    conn = _CONNECTIONS.get(url.netloc)
    if conn is None:
        conn = _CONNECTIONS[url.netloc] = http.client.HTTPConnection(url.netloc, timeout=10)
    conn.request("POST", url.path, body=data.read(), headers={"Content-Type": "application/json"})
    return conn.getresponse().read(), "application/json"
'''


def test_a_handler_calling_tf_servings_rest_api_never_blocks_the_server(
    model_server, tf_artifacts, tmp_path
):
    """handler() posts to this very server: were it run on the event loop (it is cheap once
    warm), the loop would wait on itself. Many calls in a row (enough for the slow first one to
    leave the cost average) must all come back."""
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tf_artifacts["plain"], model_dir)
    (model_dir / "code").mkdir(exist_ok=True)
    (model_dir / "code" / "inference.py").write_text(REST_HANDLER_PY)
    server = model_server(model_dir, "tensorflow", "--request-timeout-s", "5")

    answers = [
        _post(server.url, json.dumps({"instances": [ROW]}), "application/json") for _ in range(120)
    ]

    assert [a.status_code for a in answers] == [200] * 120
    # A blocked loop shows as a call that waited for the handler's own 10 s socket timeout.
    assert max(a.elapsed.total_seconds() for a in answers) < 2
    assert all("predictions" in a.json() for a in answers)

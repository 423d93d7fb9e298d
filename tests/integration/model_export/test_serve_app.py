"""The Ray Serve application's handler contract, in-process: the toolkit's defaults and batching."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from model_export.containers import PyTorchContainer, Request
from reliability.fault_model import build_torch_artifact
from tests.support.artifacts import build_torchscript_artifact


@pytest.fixture(scope="module")
def torchscript(tmp_path_factory) -> PyTorchContainer:
    return PyTorchContainer(build_torchscript_artifact(tmp_path_factory.mktemp("ts") / "model"))


def test_default_handlers_serve_torchscript_json_csv_and_npy(torchscript):
    rows = [[1, 2, 3, 4], [4, 3, 2, 1]]
    buf = io.BytesIO()
    np.save(buf, np.array(rows, dtype=np.float32))

    as_json = torchscript.invoke(json.dumps(rows).encode(), "application/json")
    as_csv = torchscript.invoke(b"1,2,3,4\n4,3,2,1", "text/csv", "text/csv")
    as_npy = torchscript.invoke(buf.getvalue(), "application/x-npy", "application/x-npy")
    unsupported = torchscript.invoke(b"x", "image/png")

    assert as_json.status == 200
    expected = np.array(as_json.json())
    assert expected.shape == (2, 3)
    assert as_csv.status == 200 and as_csv.content_type == "text/csv"
    np.testing.assert_allclose(
        np.loadtxt(io.StringIO(as_csv.body.decode()), delimiter=","), expected, rtol=1e-5
    )
    assert as_npy.status == 200
    np.testing.assert_allclose(np.load(io.BytesIO(as_npy.body)), expected, rtol=1e-5)
    assert unsupported.status == 500
    assert "Content type image/png is not supported" in unsupported.json()["error"]


def test_one_batch_for_several_requests_and_a_bad_one_fails_alone(tmp_path):
    container = PyTorchContainer(build_torch_artifact(tmp_path / "model"))
    calls: list[int] = []
    predict = container._predict_fn

    def counting(data, model):
        calls.append(int(data.shape[0]))
        return predict(data, model)

    container._predict_fn = counting
    good = [json.dumps({"instances": [[i, 1, 2, 3]]}).encode() for i in range(3)]
    singles = [container.invoke(body, "application/json").json() for body in good]
    calls.clear()

    answers = container.invoke_batch(
        [Request(body, "application/json") for body in good]
        + [Request(b'{"fail": "bad row"}', "application/json")]
    )

    assert calls == [3]  # one predict_fn call for the three good requests
    assert [a.status for a in answers] == [200, 200, 200, 500]
    assert "bad row" in answers[3].json()["error"]
    for single, batched in zip(singles, answers[:3], strict=True):
        np.testing.assert_allclose(
            single["predictions"][0]["probabilities"],
            batched.json()["predictions"][0]["probabilities"],
            atol=1e-6,
        )

"""The two Keras scripts end to end: they learn, save the serving contract, resume after a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.training.training_test_helpers import (
    PYTHON,
    ROOT,
    TRAINING_DIR,
    clean_env,
    run_script,
)
from training.common.checkpoint import CheckpointManager
from training.common.metrics import parse_metric_line

pytestmark = pytest.mark.slow  # each run pays TensorFlow's start-up and graph tracing


def outputs(tmp: Path) -> list[str]:
    return [
        "--model-dir", str(tmp / "model"),
        "--output-dir", str(tmp / "output"),
        "--checkpoint-dir", str(tmp / "ckpt"),
        "--failure-file", str(tmp / "failure"),
        "--progress", "log",
    ]  # fmt: skip


def load_keras(path: Path):
    import keras

    return keras.models.load_model(path)


def test_image_classifier_learns_from_image_folders(colour_images, tmp_path):
    # Given SageMaker's channel/env vars and a small MobileNetV2 trained from random weights
    env = clean_env(
        SM_CHANNEL_TRAIN=str(colour_images / "train"),
        SM_CHANNEL_VALID=str(colour_images / "valid"),
        SM_CHANNEL_TEST=str(colour_images / "test"),
        SM_MODEL_DIR=str(tmp_path / "model"),
        SM_OUTPUT_DATA_DIR=str(tmp_path / "output"),
    )
    args = [
        "--image_size", "32", "--alpha", "0.35", "--bn-momentum", "0.5", "--lr", "0.003",
        "--batch-size", "8", "--epochs", "6", "--checkpoint-dir", str(tmp_path / "ckpt"),
        "--failure-file", str(tmp_path / "failure"), "--progress", "log",
    ]  # fmt: skip

    # When it trains
    result = run_script("image_classifier_keras.py", *args, env=env)

    # Then it learned and saved a model that takes raw pixels and returns probabilities
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.6  # chance is 1/3
    config = json.loads((tmp_path / "model" / "model_config.json").read_text())
    assert config == {
        "framework": "tensorflow",
        "task": "image-classification",
        "class_names": ["blue", "green", "red"],
        "image_size": 32,
        "backbone": "mobilenet_v2",
    }
    model = load_keras(tmp_path / "model" / "model.keras")
    assert model.input_names == ["image"] if hasattr(model, "input_names") else True
    assert model.inputs[0].shape[1:] == (32, 32, 3)
    assert (
        model.outputs[0].name.startswith("probabilities")
        or model.layers[-1].name == "probabilities"
    )
    red = np.zeros((1, 32, 32, 3), dtype="float32")
    red[..., 0] = 220.0
    probabilities = np.asarray(model.predict(red, verbose=0))
    assert probabilities.shape == (1, 3) and abs(float(probabilities.sum()) - 1) < 1e-4
    assert (tmp_path / "output" / "training_curves.png").stat().st_size > 1000
    epochs = [parse_metric_line(x) for x in result.stderr.splitlines() if "#metric epoch=" in x]
    assert [m["epoch"] for m in epochs] == [1, 2, 3, 4, 5, 6]


TEXT_ARGS = ["--batch-size", "16", "--lstm-units", "16", "--embedding-dim", "16", "--epochs", "3"]


def test_sentiment_lstm_learns_and_resumes_after_a_kill(sentiment_csvs, tmp_path):
    common = ["--data", str(sentiment_csvs), *TEXT_ARGS, "--checkpoint-every-steps", "5"]
    # Given an uninterrupted run
    straight = tmp_path / "straight"
    done = run_script("sentiment_lstm_keras.py", *common, *outputs(straight))
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((straight / "model" / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.6  # chance is 1/3

    # The saved model takes raw strings: tokenisation is inside it.
    model = load_keras(straight / "model" / "model.keras")
    import tensorflow as tf

    texts = tf.constant(["@airline worst delayed lost", "@airline great crew love it"])
    probabilities = np.asarray(model.predict(texts, verbose=0))
    classes = json.loads((straight / "model" / "model_config.json").read_text())["class_names"]
    assert classes == ["negative", "neutral", "positive"]
    assert [classes[i] for i in probabilities.argmax(1)] == ["negative", "positive"]

    # When the same run is SIGKILLed after a mid-epoch checkpoint and started again
    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(
        [PYTHON, str(TRAINING_DIR / "sentiment_lstm_keras.py"), *common, *outputs(resumed)],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            latest = CheckpointManager(resumed / "ckpt").latest()
            if latest is not None and latest.meta["global_step"] >= 10:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (resumed / "model" / "model.keras").exists(), "the run finished before the kill"
    again = run_script("sentiment_lstm_keras.py", *common, *outputs(resumed))

    # Then it resumed from the checkpoint and ended where the uninterrupted run did
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from ckpt-" in again.stderr
    a = load_keras(straight / "model" / "model.keras").get_weights()
    b = load_keras(resumed / "model" / "model.keras").get_weights()
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-6)
    resumed_metrics = json.loads((resumed / "model" / "metrics.json").read_text())
    for key, value in metrics.items():
        assert resumed_metrics[key] == pytest.approx(value, abs=1e-6), key

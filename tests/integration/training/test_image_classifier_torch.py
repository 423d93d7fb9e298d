"""image_classifier_torch.py end to end: it learns, honours script mode, resumes, runs DDP."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from contracts.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from tests.integration.training.training_test_helpers import (
    PYTHON,
    ROOT,
    TRAINING_DIR,
    clean_env,
    run_script,
)
from training.common.checkpoint import CheckpointManager
from training.common.metrics import parse_metric_line

SCRIPT = "image_classifier_torch.py"
FAST = ["--arch", "small_cnn", "--image-size", "16", "--workers", "0", "--progress", "log"]


def outputs(tmp: Path) -> list[str]:
    return [
        "--model-dir", str(tmp / "model"),
        "--output-dir", str(tmp / "output"),
        "--checkpoint-dir", str(tmp / "ckpt"),
        "--failure-file", str(tmp / "failure"),
    ]  # fmt: skip


def metric_lines(stderr: str) -> list[dict[str, float]]:
    return [parse_metric_line(line) for line in stderr.splitlines() if "#metric" in line]


def load_model(model_dir: Path) -> torch.nn.Module:
    from training import torch_models

    config = json.loads((model_dir / "model_config.json").read_text())
    model = torch_models.build_model(config["arch"], config["num_classes"])
    model.load_state_dict(torch.load(model_dir / "model.pth", weights_only=True))
    return model


@pytest.mark.slow
def test_learns_under_sagemaker_env_and_writes_the_model_dir_contract(colour_images, tmp_path):
    # Given SageMaker's env vars for data and outputs and its `--key value` hyperparameter forms
    # (and a DataLoader worker process, with the decoded-image cache)
    env = clean_env(
        SM_CHANNEL_TRAIN=str(colour_images / "train"),
        SM_CHANNEL_VALID=str(colour_images / "valid"),
        SM_CHANNEL_TEST=str(colour_images / "test"),
        SM_MODEL_DIR=str(tmp_path / "sm_model"),
        SM_OUTPUT_DATA_DIR=str(tmp_path / "sm_output"),
        SM_NUM_GPUS="0",
        SM_HOSTS='["algo-1"]',
        SM_CURRENT_HOST="algo-1",
    )
    args = [
        "--arch", '"small_cnn"', "--image_size", "16", "--workers", "1", "--epochs", "3",
        "--batch_size", "16", "--lr", "0.003", "--profile", "true", "--profile-steps", "3",
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--failure-file", str(tmp_path / "failure"),
    ]  # fmt: skip

    # When it trains
    result = run_script(SCRIPT, *args, env=env)

    # Then it learned, and wrote what model_export consumes where SageMaker looks for it
    assert result.returncode == 0, result.stderr[-3000:]
    model_dir, out = tmp_path / "sm_model", tmp_path / "sm_output"
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.8  # chance is 1/3
    assert metrics["valid_accuracy"] > 0.8
    config = json.loads((model_dir / "model_config.json").read_text())
    assert config == {
        "framework": "pytorch",
        "task": "image-classification",
        "arch": "small_cnn",
        "num_classes": 3,
        "class_names": ["blue", "green", "red"],
        "image_size": 16,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }
    model = load_model(model_dir).eval()
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 3)
    # One metric line per epoch plus the test line, parseable by the SageMaker regexes' format.
    epochs = [m for m in metric_lines(result.stderr) if "epoch" in m]
    assert [m["epoch"] for m in epochs] == [1, 2, 3]
    assert {"train_loss", "train_accuracy", "valid_loss", "valid_accuracy"} <= set(epochs[0])
    assert any("test_accuracy" in m for m in metric_lines(result.stderr))
    assert (out / "training_curves.png").stat().st_size > 1000
    assert json.loads((out / "health_report.json").read_text())["ok"] is True
    # --profile: a TensorBoard trace and the data-vs-compute summary.
    summary = json.loads((out / "profile_summary.json").read_text())
    assert 0 <= summary["data_wait_fraction"] <= 1 and summary["steps"] > 0
    assert list((out / "profile").glob("*.json")), "no torch.profiler trace written"
    assert not (tmp_path / "failure").exists()


def wait_for_checkpoint(directory: Path, min_step: int, proc: subprocess.Popen, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        latest = CheckpointManager(directory).latest()
        if latest is not None and latest.meta["global_step"] >= min_step:
            return latest
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint at step >= {min_step} before the run ended")


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result_as_an_uninterrupted_one(colour_images, tmp_path):
    common = [
        "--data", str(colour_images), *FAST, "--epochs", "3", "--batch-size", "16",
        "--lr", "0.003", "--checkpoint-every-steps", "2",
    ]  # fmt: skip
    # Given an uninterrupted run
    straight = tmp_path / "straight"
    done = run_script(SCRIPT, *common, *outputs(straight))
    assert done.returncode == 0, done.stderr[-3000:]

    # When the same run is SIGKILLed mid-epoch (as a spot reclaim does) and started again
    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(
        [PYTHON, str(TRAINING_DIR / SCRIPT), *common, *outputs(resumed)],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        killed_at = wait_for_checkpoint(resumed / "ckpt", 3, proc, timeout_s=120)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (resumed / "model" / "model.pth").exists(), "the run finished before the kill"
    again = run_script(SCRIPT, *common, *outputs(resumed))

    # Then it resumed from the checkpoint, not from scratch, and ended bit-for-bit the same
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from ckpt-" in again.stderr
    assert killed_at.meta["global_step"] >= 3
    a, b = load_model(straight / "model"), load_model(resumed / "model")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    metrics_a = json.loads((straight / "model" / "metrics.json").read_text())
    assert metrics_a == json.loads((resumed / "model" / "metrics.json").read_text())
    history = json.loads((resumed / "output" / "history.json").read_text())
    assert len(history["valid_accuracy"]) == 3


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_shards_data_and_rank0_writes(colour_images, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(PYTHON).parent)) or "torchrun"
    result = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            str(TRAINING_DIR / SCRIPT),
            "--data",
            str(colour_images),
            *FAST,
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--lr",
            "0.003",
            *outputs(tmp_path),
        ],  # fmt: skip
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world 2" in result.stderr
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["valid_accuracy"] > 0.8
    # 96 training images over 2 ranks in batches of 8: 6 steps per rank per epoch (12 in one
    # process); rank 0 counted its own steps only.
    report = json.loads((tmp_path / "output" / "health_report.json").read_text())
    assert report["time"]["steps"] == 2 * 6
    checkpoints = CheckpointManager(tmp_path / "ckpt").list()
    assert checkpoints and checkpoints[-1].meta["fingerprint"]["world_size"] == 2
    # Only rank 0 printed the metric lines (other ranks log warnings only).
    assert len([m for m in metric_lines(result.stderr) if "epoch" in m]) == 2


def test_lr_far_too_high_trips_the_health_checks(colour_images, tmp_path):
    broken = [
        "--data", str(colour_images), *FAST, "--epochs", "2", "--batch-size", "8",
        "--optimizer", "sgd", "--lr", "50", "--lr-schedule", "constant",
        "--health-every-steps", "1",
    ]  # fmt: skip
    # Findings are warnings and a report by default...
    warned = run_script(SCRIPT, *broken, *outputs(tmp_path / "warn"))
    assert warned.returncode == 0, warned.stderr[-3000:]
    report = json.loads((tmp_path / "warn" / "output" / "health_report.json").read_text())
    assert report["ok"] is False
    assert "exploding_gradients" in {f["rule"] for f in report["findings"]}
    assert "WARNING" in warned.stderr and "exploding_gradients" in warned.stderr
    # ...and stop the run with --health-fatal, with the reason where SageMaker shows it.
    fatal = run_script(SCRIPT, *broken, "--health-fatal", *outputs(tmp_path / "fatal"))
    assert fatal.returncode == 1
    assert "exploding_gradients" in (tmp_path / "fatal" / "failure").read_text()
    assert not (tmp_path / "fatal" / "model" / "model.pth").exists()

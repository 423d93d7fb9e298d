"""The whole local stage, started once per session with a real digits model.

Real data path: ``training/prepare_digits.py`` writes scikit-learn's handwritten digits as PNG
files; a small CNN (``training/torch_models.py``) is trained on them with the serving
preprocessing, exported by ``model_export`` into the PyTorch container's layout, synthesized by
the real CDK app (``app.py``, as ``cdk synth -c ...`` runs it) and served from that cloud
assembly with the real ``lambda_src/`` handler.
Every process is stopped (Ctrl-C, as a person would) and checked gone at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local_stage.cli import free_port

REPO = Path(__file__).resolve().parents[2]
STACK = "MlServing-dev-digits"
IMAGE_SIZE = 16


def _train_digits(data: Path, model_dir: Path) -> None:
    import numpy as np
    import torch

    sys.path.insert(0, str(REPO / "training"))
    import torch_models

    from model_export.preprocess import torch_eval_input

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    classes = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    xs, ys = [], []
    for label, name in enumerate(classes):
        for png in sorted((data / "train" / name).glob("*.png")):
            xs.append(torch_eval_input(png.read_bytes(), IMAGE_SIZE, mean, std))
            ys.append(label)
    x, y = torch.from_numpy(np.stack(xs)), torch.tensor(ys)
    torch.manual_seed(0)
    model = torch_models.build_model("small_cnn", len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(6):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model_dir.mkdir(parents=True)
    torch.save(model.state_dict(), model_dir / "model.pth")
    config = {
        "framework": "pytorch",
        "task": "image-classification",
        "arch": "small_cnn",
        "num_classes": len(classes),
        "class_names": classes,
        "image_size": IMAGE_SIZE,
        "mean": mean,
        "std": std,
    }
    (model_dir / "model_config.json").write_text(json.dumps(config))
    (model_dir / "metrics.json").write_text(json.dumps({"train_steps": 6}))


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("digits") / "data"
    subprocess.run(
        [sys.executable, "training/prepare_digits.py", "--out", str(data)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return data


@pytest.fixture(scope="session")
def digits_assembly(digits_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model_export.pytorch_export import export_pytorch

    base = tmp_path_factory.mktemp("stack")
    _train_digits(digits_data, base / "trained")
    result = export_pytorch(base / "trained", name="digits", out_dir=base / "artifacts")
    out = base / "cdk.out"
    context = {
        **json.loads((REPO / "cdk.json").read_text())["context"],
        # As `cdk synth -c key=value` passes them:
        "artifact_path": str(result.tarball),
        "container_env": json.dumps(
            {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_TS_BATCH_SIZE": "8",
                "SAGEMAKER_TS_MAX_BATCH_DELAY": "5",
            }
        ),
        "initial_instance_count": "2",
        "throttle_rate_limit": "20",
        "throttle_burst_limit": "30",
    }
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(out),
        "CDK_DEFAULT_ACCOUNT": "123456789012",
        "CDK_DEFAULT_REGION": "us-east-1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    synth = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert synth.returncode == 0, synth.stderr[-3000:]
    return out


class Stage:
    def __init__(self, proc: subprocess.Popen[bytes], state_path: Path, log_path: Path):
        self.proc = proc
        self.state_path = state_path
        self.log_path = log_path

    @property
    def state(self) -> dict:
        return json.loads(self.state_path.read_text())

    @property
    def url(self) -> str:
        return self.state["api_url"]

    @property
    def key(self) -> str:
        return self.state["api_key"]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def stage(digits_assembly: Path, digits_data: Path, tmp_path_factory: pytest.TempPathFactory):
    run = tmp_path_factory.mktemp("run")
    log_path = run / "up.log"
    sample = sorted((digits_data / "test" / "7").glob("*.png"))[0]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local_stage",
            "up",
            "--stack",
            STACK,
            "--app-dir",
            str(digits_assembly),
            "--port",
            str(free_port()),
            "--run-dir",
            str(run),
            "--sample",
            str(sample),
        ],
        cwd=REPO,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    state_path = run / "state.json"
    stage = Stage(proc, state_path, log_path)
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C stops everything" not in stage.log():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"local stage did not come up:\n{stage.log()}")
            time.sleep(0.2)
        yield stage
    finally:
        pids = [p["pid"] for p in stage.state["processes"]] if state_path.exists() else []
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        leftovers = [pid for pid in pids if pid and _alive(pid)]
        assert code == 0, stage.log()
        assert not leftovers, f"processes left running: {leftovers}"


@pytest.fixture
def http():
    session = requests.Session()
    yield session
    session.close()

"""The real stack on this machine, for the reliability scenarios and the end-to-end tests.

- ``digits_data`` writes scikit-learn's handwritten digits as PNG files
  (``training/prepare_digits.py``);
- ``digits_assembly`` trains a small CNN on them with the serving preprocessing, exports it with
  ``model_export`` into the PyTorch container's layout and synthesizes the real CDK app
  (``app.py``, as ``cdk synth -c key=value`` runs it) into a cloud assembly;
- ``synth`` does the last step for any artifact and context;
- ``start_stage`` runs ``python -m local_stage up`` on that assembly and stops it (Ctrl-C, as a
  person would), checking that no process is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from container_contract.ports import PortPool
from contracts.naming import stack_name
from contracts.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from model_export.serve_config import ServeSettings

REPO = Path(__file__).resolve().parents[1]
DIGITS_STACK = stack_name("dev", "digits")
IMAGE_SIZE = 16

_PORTS = PortPool()  # the stages' API front ports, claimed for this process's life


def digits_data(out: Path) -> Path:
    """scikit-learn's digits as PNG files under ``out/{train,test}/<class>/``."""
    if not (out / "train").is_dir():
        subprocess.run(
            [sys.executable, "training/prepare_digits.py", "--out", str(out)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    return out


def train_digits(data: Path, model_dir: Path, epochs: int = 6) -> Path:
    """A small CNN trained on the digits with the serving preprocessing (seconds on a CPU)."""
    import numpy as np
    import torch

    from model_export.preprocess import torch_eval_input
    from training import torch_models

    mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
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
    for _ in range(epochs):
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
    (model_dir / "metrics.json").write_text(json.dumps({"train_steps": epochs}))
    return model_dir


def synth(out: Path, context: Mapping[str, Any]) -> Path:
    """``cdk synth`` of the real app into ``out`` with cdk.json's context plus ``context``."""
    full = {**json.loads((REPO / "cdk.json").read_text())["context"], **context}
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(full),
        "CDK_OUTDIR": str(out),
        "CDK_DEFAULT_ACCOUNT": "123456789012",
        "CDK_DEFAULT_REGION": "us-east-1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise RuntimeError(f"synth failed:\n{result.stderr[-3000:]}")
    return out


# Two instances share this machine's cores: one replica each, batches of up to 8.
DIGITS_SERVE = ServeSettings(replicas=1, max_batch_size=8, batch_wait_ms=5.0)
DIGITS_CONTEXT: dict[str, str] = {
    # As `cdk synth -c key=value` passes them:
    "container_env": json.dumps({"SAGEMAKER_PROGRAM": "inference.py"}),
    # The suites measure and break an always-on endpoint's instances (dev scales to zero by
    # default; tests/e2e/test_scale_to_zero.py covers that).
    "capacity_mode": "always_on",
    "min_instances": "1",
    "initial_instance_count": "2",
    "throttle_rate_limit": "20",
    "throttle_burst_limit": "30",
}


def digits_assembly(workdir: Path, context: Mapping[str, str] | None = None) -> Path:
    """The digits model trained, exported and synthesized into ``workdir/cdk.out``."""
    from model_export.pytorch_export import export_pytorch

    data = digits_data(workdir / "data")
    trained = train_digits(data, workdir / "trained")
    result = export_pytorch(
        trained, name="digits", out_dir=workdir / "artifacts", serve=DIGITS_SERVE
    )
    return synth(
        workdir / "cdk.out",
        {**DIGITS_CONTEXT, "artifact_path": str(result.tarball), **(context or {})},
    )


class Stage:
    """A running ``local_stage up``: its URL, API key, processes (state.json) and log."""

    def __init__(self, proc: subprocess.Popen[bytes], run_dir: Path, log_path: Path):
        self.proc = proc
        self.run_dir = run_dir
        self.state_path = run_dir / "state.json"
        self.log_path = log_path

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text())

    @property
    def url(self) -> str:
        return self.state["api_url"]

    @property
    def key(self) -> str:
        return self.state["api_key"]

    def processes(self, role: str) -> list[dict[str, Any]]:
        """state.json's entries of one role: model-server, runtime-api or api-front."""
        return [p for p in self.state["processes"] if p["role"] == role]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def start_stage(
    app_dir: Path,
    run_dir: Path,
    *,
    stack: str = DIGITS_STACK,
    sample: Path | None = None,
    extra_args: Sequence[str] = (),
    start_timeout_s: float = 240,
) -> Iterator[Stage]:
    """``python -m local_stage up`` on ``app_dir``; on exit Ctrl-C, and check nothing is left."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "up.log"
    args = [
        sys.executable,
        "-m",
        "local_stage",
        "up",
        "--stack",
        stack,
        "--app-dir",
        str(app_dir),
        "--port",
        # Claimed, not merely free: the stage binds it only after its Ray containers are up, and
        # Ray's processes bind ephemeral ports meanwhile (its metrics agent once took this one).
        str(_PORTS.take(1)[0]),
        "--run-dir",
        str(run_dir),
        *(["--sample", str(sample)] if sample else ["--no-smoke"]),
        *extra_args,
    ]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(args, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)
    stage = Stage(proc, run_dir, log_path)
    try:
        deadline = time.monotonic() + start_timeout_s
        while "Ctrl-C stops everything" not in stage.log():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"local stage did not come up:\n{stage.log()[-5000:]}")
            time.sleep(0.2)
        yield stage
    finally:
        pids = [p["pid"] for p in stage.state["processes"]] if stage.state_path.exists() else []
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        leftovers = [pid for pid in pids if pid and alive(pid)]
        if code != 0 or leftovers:
            raise RuntimeError(
                f"local stage stopped with code {code}, processes left running: {leftovers}\n"
                f"{stage.log()[-5000:]}"
            )

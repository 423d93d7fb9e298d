"""What the serving benchmarks share: artifacts, the raw forward, load generation, timing.

Shared so that every serving benchmark measures the same way (same artifact, same load, same
clock), and their figures in BENCHMARKS.md can be compared:

- ``make_artifact``: a PyTorch artifact exported by ``model_export`` (random weights) and a PNG;
- ``raw_ceiling`` / ``raw_forward_fn``: in-process throughput at the best batch size, and one raw
  request (PNG decode + preprocessing + forward at batch 1) with a torch thread per core;
- ``throughput`` (in ``bench/serving/load_generation.py``): N concurrent clients (wrk with
  ``bench/wrk_post.lua``; the in-process aiohttp client without it);
- ``one_client``: the served p50 against a raw forward in alternating blocks (each after a 50 ms
  idle gap, so OpenMP threads spinning after a parallel region do not leak into the other
  block);
- ``bench_full_path``: one-client p50 through the whole local stage, alternating per request
  between the model container's port, the runtime API and the API front.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Re-exported: the benchmarks reach them as serving_common's.
from bench.serving.load_generation import (  # noqa: F401
    LeanClient,
    load,
    parse_wrk,
    percentiles_ms,
    run_wrk,
    throughput,
    wrk_duration_s,
    wrk_version,
)
from container_contract.ports import free_port
from contracts.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from local_stage import harness

REPO = Path(__file__).resolve().parents[1]

MEAN, STD = list(IMAGENET_MEAN), list(IMAGENET_STD)
CPUS = os.cpu_count() or 1
BLOCK_S = 0.5  # length of one raw or served block of the one-client measurement
GAP_S = 0.05  # idle time before each block: longer than OpenMP's spin after a parallel region


def make_artifact(arch: str, size: int, work: Path) -> tuple[Path, bytes]:
    import torch
    from PIL import Image

    from model_export.pytorch_export import export_pytorch
    from training import torch_models

    torch.manual_seed(0)
    model_dir = work / f"{arch}-trained"
    model_dir.mkdir(parents=True)
    torch.save(torch_models.build_model(arch, 10).state_dict(), model_dir / "model.pth")
    config = {
        "framework": "pytorch",
        "task": "image-classification",
        "arch": arch,
        "num_classes": 10,
        "class_names": [str(i) for i in range(10)],
        "image_size": size,
        "mean": MEAN,
        "std": STD,
    }
    (model_dir / "model_config.json").write_text(json.dumps(config))
    (model_dir / "metrics.json").write_text("{}")
    result = export_pytorch(model_dir, name=arch, out_dir=work / f"{arch}-artifact")
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return result.tarball, buf.getvalue()


def raw_model(arch: str) -> Any:
    """The model in eval mode, with a torch thread per core (the raw forward at its best)."""
    import torch

    from training import torch_models

    torch.set_num_threads(CPUS)
    return torch_models.build_model(arch, 10).eval()


def raw_ceiling(model: Any, size: int, png: bytes, seconds: float) -> dict[str, float]:
    """Best in-process images/s over batch sizes (the input decoded and preprocessed once)."""
    import torch

    from model_export.preprocess import torch_eval_input

    x1 = torch.from_numpy(torch_eval_input(png, size, MEAN, STD))[None]
    by_batch: dict[int, float] = {}
    with torch.no_grad():
        # Doubling the batch until throughput stops growing: the ceiling is the model's best,
        # not the best of a fixed list (a small model still gains past batch 32).
        for bs in (1, 2, 4, 8, 16, 32, 64, 128, 256):
            x = x1.repeat(bs, 1, 1, 1)
            model(x)
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / 6 or n < 3 * bs:
                model(x)
                n += bs
            by_batch[bs] = n / (time.perf_counter() - start)
            if bs >= 32 and by_batch[bs] < 0.95 * max(by_batch.values()):
                break
    return {"ceiling_ips": max(by_batch.values()), **{f"bs{k}": v for k, v in by_batch.items()}}


def raw_forward_fn(model: Any, size: int, png: bytes) -> Callable[[], bool]:
    """One raw request: PNG decode + preprocessing + forward at batch 1."""
    import torch

    from model_export.preprocess import torch_eval_input

    def once() -> bool:
        with torch.no_grad():
            model(torch.from_numpy(torch_eval_input(png, size, MEAN, STD))[None])
        return True

    return once


def start(
    argv: list[str], env: dict[str, str] | None = None, log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """A child in the repository root; its output goes to log_path (default: discarded)."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            argv,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL,
        )
    finally:
        if log_path:
            out.close()  # type: ignore[union-attr]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    stop_all([proc], sig)


def stop_all(procs: list[subprocess.Popen[bytes]], sig: int = signal.SIGTERM) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def warm_up(client: LeanClient, path: str, body: bytes, headers: dict[str, str]) -> None:
    """Half a second of requests (the first forward passes and allocations are slow)."""
    stop_at = time.perf_counter() + 0.5
    n = 0
    while n < 3 or time.perf_counter() < stop_at:
        status, data = client.post(path, body, headers)
        if status != 200:
            raise RuntimeError(f"warm-up request to {path}: {status} {data[:300]!r}")
        n += 1


def other_threads_cpu_s() -> float:
    """CPU time of this process's threads other than the calling one."""
    return time.process_time() - time.thread_time()


def timed_block(fn: Callable[[], bool]) -> dict[str, Any]:
    """After an idle gap, call fn for BLOCK_S (at least twice). Latencies of the successful
    calls but the first, the number of failed ones, and the block's wall time and CPU time of
    this process's other threads (the gap left out)."""
    time.sleep(GAP_S)
    latencies: list[float] = []
    errors, n = 0, 0
    cpu0, started = other_threads_cpu_s(), time.perf_counter()
    stop_at = started + BLOCK_S
    while n < 2 or time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        ok = fn()
        elapsed = time.perf_counter() - t0
        if n > 0:
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1
        n += 1
    return {
        "latencies": latencies,
        "errors": errors,
        "wall_s": time.perf_counter() - started,
        "other_cpu_s": other_threads_cpu_s() - cpu0,
    }


def one_client(
    raw_once: Callable[[], bool], served_once: Callable[[], bool], seconds: float
) -> dict[str, Any]:
    """Raw forward vs served request p50, in alternating blocks over ``seconds``."""
    raw: list[float] = []
    served: list[float] = []
    errors = 0
    other_cpu_s = served_s = 0.0
    for _ in range(max(1, round(seconds / (2 * BLOCK_S)))):
        raw += timed_block(raw_once)["latencies"]
        block = timed_block(served_once)
        served += block["latencies"]
        errors += block["errors"]
        other_cpu_s += block["other_cpu_s"]
        served_s += block["wall_s"]
    raw_p50 = statistics.median(raw) * 1000
    served_p50 = statistics.median(served) * 1000 if served else math.nan
    return {
        "raw_p50_ms": raw_p50,
        "served_p50_ms": served_p50,
        "diff_ms": served_p50 - raw_p50,
        "raw_n": len(raw),
        "served_n": len(served),
        "errors": errors,
        "other_threads_cpu_pct": max(0.0, 100 * other_cpu_s / served_s),
    }


def bench_full_path(tarball: Path, png: bytes, work: Path, seconds: float) -> dict[str, Any]:
    """p50 at one client: model container, runtime API and API front, alternating per request."""
    out = harness.synth(
        work / "cdk.out",
        {
            "artifact_path": str(tarball),
            "stage": "dev",
            "model": "digits",
            # The always-on path, as the earlier measurements ran it.
            "capacity_mode": "always_on",
            "min_instances": "1",
            "throttle_rate_limit": "10000",
            "throttle_burst_limit": "5000",
        },
    )
    port = free_port()
    run = work / "run"
    proc = start(
        [
            sys.executable,
            "-m",
            "local_stage",
            "up",
            "--stack",
            "MlServing-dev-digits",
            "--app-dir",
            str(out),
            "--port",
            str(port),
            "--api-key",
            "bench",
            "--run-dir",
            str(run),
            "--no-smoke",
        ],
        log_path=work / "logs" / "local-stage-up.log",
    )
    try:
        deadline = time.monotonic() + 240
        while not (run / "state.json").exists() or "api_url" not in json.loads(
            (run / "state.json").read_text()
        ):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(
                    f"local stage did not come up:\n{log_tail(work / 'logs' / 'local-stage-up.log')}"
                )
            time.sleep(0.3)
        state = json.loads((run / "state.json").read_text())
        # Several model entries (instances, or TF workers sharing a port): the first one.
        model_procs = [p for p in state["processes"] if p.get("role") == "model-server"]
        model_port = model_procs[0]["port"]
        png_headers = {"Content-Type": "image/png"}
        endpoint = urllib.parse.quote(state["endpoint_name"], safe="")
        targets = {
            "model container": (
                LeanClient(f"http://127.0.0.1:{model_port}"),
                "/invocations",
                png_headers,
            ),
            "runtime API": (
                LeanClient(state["runtime_url"]),
                f"/endpoints/{endpoint}/invocations",
                png_headers,
            ),
            "API front": (
                LeanClient(state["api_url"]),
                "/predict",
                {**png_headers, "x-api-key": state.get("api_key", "bench")},
            ),
        }
        for client, path, headers in targets.values():
            warm_up(client, path, png, headers)
        names = list(targets)
        latencies: dict[str, list[float]] = {name: [] for name in names}
        errors = dict.fromkeys(names, 0)
        cpu0, started = other_threads_cpu_s(), time.perf_counter()
        rounds = 0
        while time.perf_counter() - started < seconds:
            for name in names[rounds % 3 :] + names[: rounds % 3]:  # each one first in turn
                client, path, headers = targets[name]
                t0 = time.perf_counter()
                status, _ = client.post(path, png, headers)
                if status == 200:
                    latencies[name].append(time.perf_counter() - t0)
                else:
                    errors[name] += 1
            rounds += 1
        other_cpu_pct = max(
            0.0, 100 * (other_threads_cpu_s() - cpu0) / (time.perf_counter() - started)
        )
        for client, _, _ in targets.values():
            client.close()
        result: dict[str, Any] = {
            "targets": {
                name: {**percentiles_ms(latencies[name]), "n": len(latencies[name])}
                for name in names
            },
            "errors": errors,
            "other_threads_cpu_pct": other_cpu_pct,
            "model_processes": len(model_procs),
        }
        p50 = {name: result["targets"][name]["p50_ms"] for name in names}
        result["hops_ms"] = {
            "runtime API − model container": p50["runtime API"] - p50["model container"],
            "API front − runtime API": p50["API front"] - p50["runtime API"],
            "API front − model container": p50["API front"] - p50["model container"],
        }
        return result
    finally:
        stop(proc, signal.SIGINT)

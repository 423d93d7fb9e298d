"""Local stage performance, measured side by side in one run (issue 7's goals).

For the default model (small_cnn, the digits classifier) and a compute-heavy one (ResNet-18 at
224x224, random weights), both exported by ``model_export`` into the PyTorch container's layout:

- ceiling: raw in-process forward throughput of the same model at its best batch size;
- model server throughput with N concurrent clients posting PNG images, batching on and off;
- p50 latency at one client vs one raw forward pass (batch 1) plus its preprocessing;
- full local path (HTTP → API front → Lambda handler → runtime API → model server) p50 at one
  client vs the model server called directly.

    .venv/bin/python bench/local_throughput.py [--seconds 10] [--clients 32] [--out bench/results/local.md]

Clients run in this process on the same CPU as the server, so on a 2-core machine the ratios are
conservative (the client's own CPU time is taken from the server's).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "training"))

from local_stage.cli import free_port, unpack_artifact  # noqa: E402
from local_stage.testing import PYTORCH_IMAGE, write_cloud_assembly  # noqa: E402

log = logging.getLogger("bench.local")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def make_artifact(arch: str, size: int, work: Path) -> tuple[Path, bytes]:
    import torch
    import torch_models
    from PIL import Image

    from model_export.pytorch_export import export_pytorch

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


def raw_forward(arch: str, size: int, png: bytes, seconds: float) -> dict[str, float]:
    """Best in-process images/s over batch sizes, and the p50 of one batch-1 forward."""
    import torch
    import torch_models

    from model_export.preprocess import torch_eval_input

    torch.set_num_threads(os.cpu_count() or 1)
    model = torch_models.build_model(arch, 10).eval()
    x1 = torch.from_numpy(torch_eval_input(png, size, MEAN, STD))[None]
    best = 0.0
    by_batch = {}
    with torch.no_grad():
        for bs in (1, 2, 4, 8, 16, 32):
            x = x1.repeat(bs, 1, 1, 1)
            model(x)
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / 6:
                model(x)
                n += bs
            by_batch[bs] = n / (time.perf_counter() - start)
            best = max(best, by_batch[bs])
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            x = torch.from_numpy(torch_eval_input(png, size, MEAN, STD))[None]
            model(x)
            times.append(time.perf_counter() - t0)
    return {
        "ceiling_ips": best,
        "forward_p50_ms": statistics.median(times) * 1000,
        **{f"bs{k}": v for k, v in by_batch.items()},
    }


async def load(
    url: str, body: bytes, headers: dict[str, str], clients: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(url, data=body, headers=headers) as resp:  # warm-up
            assert resp.status == 200, await resp.text()
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "errors": errors,
    }


def start(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ping(url: str, timeout_s: float = 180) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def bench_server(
    model_dir: Path, png: bytes, batch: int, clients: int, seconds: float
) -> dict[str, float]:
    port = free_port()
    proc = start(
        [
            sys.executable,
            "-m",
            "local_stage.model_server",
            "--model-dir",
            str(model_dir),
            "--flavour",
            "pytorch",
            "--port",
            str(port),
            "--max-batch-size",
            str(batch),
            "--max-batch-delay-ms",
            "0",
            "--max-queue",
            "1000",
        ]
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ping(url + "/ping")
        headers = {"Content-Type": "image/png"}
        many = asyncio.run(load(url + "/invocations", png, headers, clients, seconds))
        one = asyncio.run(load(url + "/invocations", png, headers, 1, seconds / 2))
        return {"rps": many["rps"], "p50_1_ms": one["p50_ms"], "errors": many["errors"]}
    finally:
        stop(proc)


def bench_full_path(tarball: Path, png: bytes, work: Path, seconds: float) -> dict[str, float]:
    out = write_cloud_assembly(
        work / "cdk.out",
        stack_name="MlServing-bench-digits",
        model_tarball=tarball,
        lambda_dir=REPO / "lambda_src",
        image=PYTORCH_IMAGE,
        throttle_rate=100000,
        throttle_burst=100000,
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
            "MlServing-bench-digits",
            "--app-dir",
            str(out),
            "--port",
            str(port),
            "--api-key",
            "bench",
            "--run-dir",
            str(run),
            "--no-smoke",
            "--max-batch-size",
            "1",
        ]
    )
    try:
        deadline = time.monotonic() + 240
        while not (run / "state.json").exists() or "api_url" not in json.loads(
            (run / "state.json").read_text()
        ):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("local stage did not come up")
            time.sleep(0.3)
        state = json.loads((run / "state.json").read_text())
        model_port = next(p["port"] for p in state["processes"] if p.get("role") == "model-server")
        direct = asyncio.run(
            load(
                f"http://127.0.0.1:{model_port}/invocations",
                png,
                {"Content-Type": "image/png"},
                1,
                seconds,
            )
        )
        full = asyncio.run(
            load(
                state["api_url"] + "/predict",
                png,
                {"Content-Type": "image/png", "x-api-key": "bench"},
                1,
                seconds,
            )
        )
        return {
            "direct_p50_ms": direct["p50_ms"],
            "full_p50_ms": full["p50_ms"],
            "full_errors": full["errors"],
        }
    finally:
        stop(proc, signal.SIGINT)


def chart(rows: list, full: dict, path: Path) -> None:
    """Throughput as a fraction of the raw ceiling, batching on and off, against the goals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=[2, 1])
    labels = [label for label, *_ in rows]
    xs = np.arange(len(rows))
    on = [r[2]["rps"] / r[1]["ceiling_ips"] for r in rows]
    off = [r[3]["rps"] / r[1]["ceiling_ips"] for r in rows]
    left.bar(xs - 0.2, on, 0.4, label="batching on")
    left.bar(xs + 0.2, off, 0.4, label="batching off")
    for x, goal in zip(xs, (0.5, 0.9), strict=False):
        left.hlines(goal, x - 0.45, x + 0.45, colors="black", linestyles="dashed")
    left.set_xticks(xs, labels)
    left.set_ylim(0, 1.05)
    left.set_ylabel("model-server throughput / raw forward ceiling")
    left.set_title("32 clients (dashed: goal)")
    left.legend()
    right.bar(["model server", "full local path"], [full["direct_p50_ms"], full["full_p50_ms"]])
    right.set_ylabel("p50 latency, one client (ms)")
    right.set_title("default model")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="per measurement (default: 10)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench/results/local.md",
        help="markdown results (default: bench/results/local.md)",
    )
    args = p.parse_args()
    logging.basicConfig(level="INFO", format="%(message)s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for arch, size, label in (
            ("small_cnn", 32, "default (small_cnn 32x32)"),
            ("resnet18", 224, "heavy (ResNet-18 224x224)"),
        ):
            tarball, png = make_artifact(arch, size, work)
            model_dir = unpack_artifact(tarball, work / f"{arch}-model")
            raw = raw_forward(arch, size, png, args.seconds)
            log.info("%s raw: %s", arch, raw)
            on = bench_server(model_dir, png, 16, args.clients, args.seconds)
            off = bench_server(model_dir, png, 1, args.clients, args.seconds)
            log.info("%s server batching on %s off %s", arch, on, off)
            rows.append((label, raw, on, off))
            if arch == "small_cnn":
                full = bench_full_path(tarball, png, work, args.seconds)
                log.info("full path: %s", full)
    lines = [
        "# Local stage benchmark",
        "",
        f"`bench/local_throughput.py --seconds {args.seconds:g} --clients {args.clients}`, "
        f"{os.cpu_count()} CPU cores, PyTorch container flavour, PNG requests "
        "(decode + preprocess + forward + JSON encode per request). Clients share the CPU.",
        "",
        "| model | raw ceiling (img/s, best batch) | server, batching on (img/s) | ratio | "
        "server, batching off (img/s) | ratio | raw forward p50 (ms, bs 1 incl. preprocessing) |"
        " server p50 @1 client (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, raw, on, off in rows:
        lines.append(
            f"| {label} | {raw['ceiling_ips']:.0f} | {on['rps']:.0f} | "
            f"{on['rps'] / raw['ceiling_ips']:.2f} | {off['rps']:.0f} | "
            f"{off['rps'] / raw['ceiling_ips']:.2f} | {raw['forward_p50_ms']:.2f} | "
            f"{off['p50_1_ms']:.2f} |"
        )
    lines += [
        "",
        f"Full local path (API front → Lambda handler → runtime API → model server), one client, "
        f"default model: p50 {full['full_p50_ms']:.2f} ms vs {full['direct_p50_ms']:.2f} ms "
        f"calling the model server directly: **+{full['full_p50_ms'] - full['direct_p50_ms']:.2f}"
        " ms**.",
        "",
        "Raw forward throughput by batch size (img/s): "
        + "; ".join(
            f"{label}: " + ", ".join(f"{k}={v:.0f}" for k, v in raw.items() if k.startswith("bs"))
            for label, raw, _, _ in rows
        ),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png_path = args.out.with_suffix(".png")
    chart(rows, full, png_path)
    args.out.with_suffix(".json").write_text(
        json.dumps({"rows": rows, "full_path": full}, indent=1)
    )
    lines.insert(-1, f"![throughput ratios and latency]({png_path.name})\n")
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

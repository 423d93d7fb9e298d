"""Does the PyTorch input pipeline starve compute? Files vs in-memory tensors, side by side.

Trains the digits default (small_cnn, 32 px, CPU) for the same steps from two sources:

- files: the training script's own pipeline (``ImageFiles`` + ``EpochBatches`` + DataLoader
  workers, then per-batch normalisation): PNG decode and resize every step, as
  ``image_classifier_torch.py`` runs;
- memory: the same images pre-decoded into one tensor, batches sliced from it (no input cost).

The two alternate in short slices (10 steps files, 10 steps memory, ...) so load from other
processes hits both alike; each round's throughput is total samples / total time of its slices,
and the result is the median of the per-round ratios. Goal: files >= 0.8x memory (reading from disk must not starve the model), with
the script's default worker count; 0 and 2 workers are measured alongside for reference.

    .venv/bin/python bench/training_input_pipeline.py [--rounds 5] [--slices 6]

Writes bench/results/training.md and bench/results/training_input_pipeline.png.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from training import image_classifier_torch as script
from training import torch_models
from training.common import images
from training.torch_training import data as pipeline

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "bench" / "results"


def train_steps(model, optimizer, batches, steps: int) -> tuple[int, float]:
    """(samples, seconds) of ``steps`` training steps drawn from ``batches``."""
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    iterator = iter(batches)
    samples = 0
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(iterator)
        if x.dtype == torch.uint8:  # the file pipeline normalises per batch, as the script does
            x, y = pipeline.to_device(x, y, torch.device("cpu"), channels_last=False)
        optimizer.zero_grad(set_to_none=True)
        criterion(model(x), y).backward()
        optimizer.step()
        samples += len(y)
    return samples, time.perf_counter() - start


def file_batches(dataset, batch_size: int, workers: int, seed: int):
    sampler = pipeline.EpochBatches(len(dataset), batch_size, rank=0, world=1, seed=seed)
    args = argparse.Namespace(workers=workers, seed=seed)
    loader = pipeline.make_loader(dataset, sampler, args, torch.device("cpu"))
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def memory_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
    epoch = 0
    while True:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + epoch))
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            yield x[index], y[index]
        epoch += 1


def measure(
    paths, labels, x, y, classes, workers: int, cache: bool, args
) -> list[dict[str, float]]:
    dataset = pipeline.ImageFiles(paths, labels, 32, "none", seed=0, cache=cache)
    files_iter = file_batches(dataset, args.batch_size, workers, seed=0)
    memory_iter = memory_batches(x, y, args.batch_size, seed=0)
    torch.manual_seed(0)
    model = torch_models.build_model("small_cnn", len(classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    # Warm-up: one epoch from files (workers start; the decoded-image cache, when on, fills:
    # a one-off cost per run), a few steps from memory.
    train_steps(model, optimizer, files_iter, math.ceil(len(paths) / args.batch_size))
    train_steps(model, optimizer, memory_iter, 5)
    rounds = []
    for _ in range(args.rounds):
        totals = {"files": [0, 0.0], "memory": [0, 0.0]}
        for _ in range(args.slices):
            for name, source in (("files", files_iter), ("memory", memory_iter)):
                samples, seconds = train_steps(model, optimizer, source, args.slice_steps)
                totals[name][0] += samples
                totals[name][1] += seconds
        files, memory = (totals[k][0] / totals[k][1] for k in ("files", "memory"))
        rounds.append({"files": files, "memory": memory, "ratio": files / memory})
        line = {
            "workers": workers,
            "cache": cache,
            **{k: round(v, 3) for k, v in rounds[-1].items()},
        }
        print(json.dumps(line), flush=True)
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slices", type=int, default=6, help="files/memory slices per round")
    parser.add_argument("--slice-steps", type=int, default=10, help="training steps per slice")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    default_workers = script.parse_args([]).workers

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits"
        subprocess.run(
            [sys.executable, str(ROOT / "training" / "prepare_digits.py"), "--out", str(data)],
            check=True,
            capture_output=True,
        )
        paths, labels, classes = images.scan(data / "train")
        dataset = pipeline.ImageFiles(paths, labels, 32, "none", seed=0)
        x = pipeline.normalize(torch.stack([dataset[(i, -1)][0] for i in range(len(dataset))]))
        y = torch.tensor(labels)
        # The script's default (decoded-image cache on: digits fit), then without the cache
        # (every step decodes PNGs), in the default way and with one worker process.
        variants = [(default_workers, True), (default_workers, False), (1, False)]
        by_workers = {
            f"{w} worker(s), cache {'on' if c else 'off'}": measure(
                paths, labels, x, y, classes, w, c, args
            )
            for w, c in variants
        }

    summary = {}
    for workers, rounds in by_workers.items():
        summary[workers] = {
            "files_samples_per_s": round(statistics.median(r["files"] for r in rounds), 1),
            "memory_samples_per_s": round(statistics.median(r["memory"] for r in rounds), 1),
            "median_ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
        }
    result = {
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "default": f"{default_workers} worker(s), cache on",
        "batch_size": args.batch_size,
        "by_workers": summary,
        "goal": "files >= 0.8x memory with the script's defaults",
        "pass": summary[f"{default_workers} worker(s), cache on"]["median_ratio"] >= 0.8,
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_results(result, by_workers)
    return 0 if result["pass"] else 1


def write_results(result: dict, by_workers: dict[str, list[dict]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    labels = [w.replace(", ", "\n") for w in by_workers]
    ratios = [result["by_workers"][w]["median_ratio"] for w in by_workers]
    ax.bar(labels, ratios, color=["tab:blue" if r >= 0.8 else "tab:red" for r in ratios])
    ax.axhline(0.8, color="black", linestyle="--", label="goal 0.8x")
    ax.set_ylabel("files / in-memory throughput")
    ax.set_title("small_cnn on 32 px digit PNGs, CPU (median of rounds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "training_input_pipeline.png", dpi=100)
    plt.close(fig)
    rows = "\n".join(
        f"| {w}{' (default)' if w == result['default'] else ''} | "
        f"{s['files_samples_per_s']:.0f} | {s['memory_samples_per_s']:.0f} | "
        f"**{s['median_ratio']:.2f}x** |"
        for w, s in result["by_workers"].items()
    )
    default = result["by_workers"][result["default"]]["median_ratio"]
    (RESULTS / "training.md").write_text(
        f"""# Training input pipeline (CPU)

`bench/training_input_pipeline.py`: the digits default (`small_cnn`, 32 px PNGs, batch
{result["batch_size"]}, {result["cpus"]} CPUs, {result["torch_threads"]} torch threads) trained
from the training script's own file pipeline (Pillow decode + resize in DataLoader workers,
per-batch normalisation; by default decoded images are cached after the first epoch when they fit
in memory, `--cache-images auto`) and from the same images pre-decoded into one float tensor. The
two alternate in slices of 10 steps so load from other processes hits both alike, after one
warm-up epoch (worker start-up and the cache fill are one-off costs per run).

| file pipeline | files (samples/s) | memory (samples/s) | files / memory |
|---|---|---|---|
{rows}

**Default ({result["default"]}): {default:.2f}x** (goal >= 0.8x:
{"met" if result["pass"] else "NOT met"}).

![files / memory ratio](training_input_pipeline.png)

AMP + channels-last vs fp32 on a GPU: not measured here (needs a GPU); both default on
only when CUDA is present (`--amp auto`, `--channels-last auto`).
""",
        encoding="utf-8",
    )


if __name__ == "__main__":
    sys.exit(main())

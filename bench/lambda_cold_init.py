"""Cold init of the Lambda gateway vs the bare `import boto3; boto3.client("sagemaker-runtime")`.

Each sample is a fresh Python process; the variants are interleaved round by round so machine load
hits them alike. A process times its own init with perf_counter (interpreter start-up, the same for
every variant, is excluded and reported separately as the whole-process time).

Variants:
  bare     import boto3; boto3.client("sagemaker-runtime")          (the baseline)
  gateway  import prediction_gateway.handler  (config validation, Powertools Logger + Metrics, the client)
  +tracer  gateway plus Powertools Tracer with botocore patching     (why the Tracer is not used)

    .venv/bin/python bench/lambda_cold_init.py --rounds 25 --out bench/results
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NotRequired, TypedDict

REPO = Path(__file__).resolve().parents[1]
LAMBDA_SRC = REPO / "lambda_src"
TARGET_RATIO = 1.3

_TIMED = """
import time
t0 = time.perf_counter()
{body}
t1 = time.perf_counter()
print("INIT_MS", (t1 - t0) * 1000.0)
"""
VARIANTS = {
    "bare": 'import boto3\nboto3.client("sagemaker-runtime")',
    "gateway": "import prediction_gateway.handler",
    "+tracer": (
        "import prediction_gateway.handler\n"
        "from aws_lambda_powertools import Tracer\n"
        "Tracer(service='prediction-api', patch_modules=['botocore'])"
    ),
}

log = logging.getLogger("bench.lambda_cold_init")


def child_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))
    }
    env.update(
        {
            "ENDPOINT_NAME": "MlServing-dev-digits-endpoint",
            # Lambda sets both; boto3 1.43 reads only AWS_DEFAULT_REGION.
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_LAMBDA_FUNCTION_NAME": "bench",  # turns the Tracer on, as inside Lambda
            "POWERTOOLS_SERVICE_NAME": "prediction-api",
            "POWERTOOLS_METRICS_NAMESPACE": "MlServing",
            "PYTHONPATH": str(LAMBDA_SRC),
        }
    )
    return env


def sample(variant: str, env: dict[str, str]) -> tuple[float, float]:
    """(init ms measured inside the process, whole-process wall ms)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _TIMED.format(body=VARIANTS[variant])],
        cwd=LAMBDA_SRC,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall_ms = (time.perf_counter() - start) * 1000.0
    if result.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{result.stderr[-2000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("INIT_MS"))
    return float(line.split()[1]), wall_ms


class Summary(TypedDict):
    median: float
    p90: float
    min: float


class VariantResult(TypedDict):
    """One variant's line in ``lambda_cold_init.json``; the ratios only for ``gateway``."""

    init_ms: Summary
    process_ms: Summary
    samples: list[float]
    ratio_of_medians: NotRequired[float]
    median_paired_ratio: NotRequired[float]


def summarize(values: list[float]) -> Summary:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))],
        "min": ordered[0],
    }


def chart(results: dict[str, VariantResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    medians = [results[n]["init_ms"]["median"] for n in names]
    mins = [results[n]["init_ms"]["min"] for n in names]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(names, medians, color=["#888888", "#2a7ab9", "#c0504d"][: len(names)], label="median")
    ax.scatter(names, mins, color="black", zorder=3, s=12, label="min")
    limit = results["bare"]["init_ms"]["median"] * TARGET_RATIO
    ax.axhline(limit, color="#2a7ab9", linestyle="--", linewidth=1, label="1.3x bare")
    ax.set_ylabel("cold init (ms)")
    ax.set_title("Lambda gateway cold init, fresh processes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=25, help="fresh processes per variant (default: 25)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help=f"what to measure (default: {' '.join(VARIANTS)})",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write JSON + chart PNG here (default: print only)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    env = child_env()
    for variant in args.variants:  # warm the page cache and .pyc files; not counted
        sample(variant, env)
    init: dict[str, list[float]] = {v: [] for v in args.variants}
    wall: dict[str, list[float]] = {v: [] for v in args.variants}
    for i in range(args.rounds):
        for variant in args.variants:
            init_ms, wall_ms = sample(variant, env)
            init[variant].append(init_ms)
            wall[variant].append(wall_ms)
        log.info("round %d/%d done", i + 1, args.rounds)
    results: dict[str, VariantResult] = {
        v: {"init_ms": summarize(init[v]), "process_ms": summarize(wall[v]), "samples": init[v]}
        for v in args.variants
    }
    bare = results["bare"]["init_ms"]["median"] if "bare" in results else None
    for variant, r in results.items():
        vs_bare = f"{r['init_ms']['median'] / bare:.2f}x" if bare else "n/a"
        log.info(
            "%-8s init median %7.1f ms  p90 %7.1f  min %7.1f  | process median %7.1f ms | %s bare",
            variant,
            r["init_ms"]["median"],
            r["init_ms"]["p90"],
            r["init_ms"]["min"],
            r["process_ms"]["median"],
            vs_bare,
        )
    if bare and "gateway" in results:
        ratio = results["gateway"]["init_ms"]["median"] / bare
        # Paired: each round's gateway sample over the same round's bare sample (load-robust).
        paired = statistics.median(
            g / b for g, b in zip(init["gateway"], init["bare"], strict=True)
        )
        results["gateway"]["ratio_of_medians"] = ratio
        results["gateway"]["median_paired_ratio"] = paired
        verdict = "PASS" if max(ratio, paired) <= TARGET_RATIO else "FAIL"
        log.info(
            "gateway / bare = %.2fx (medians), %.2fx (median of paired rounds); target <= %.1fx: %s",
            ratio,
            paired,
            TARGET_RATIO,
            verdict,
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "lambda_cold_init.json").write_text(json.dumps(results, indent=2) + "\n")
        if "bare" in results:
            chart(results, args.out / "lambda_cold_init.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

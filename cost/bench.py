"""Per-prediction inputs from what `make bench` measured (bench/results/*.json), or labelled
assumptions where it measured nothing for the model.

Each figure carries where it came from (file, entry, field) so the estimate can show it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
SERVING_FILE = "ray_serve.json"
LAMBDA_FILE = "lambda_overhead.json"
# The request shape whose Lambda overhead stands for a prediction: a small JSON body, the digits
# model's own shape; image bodies cost the handler more (see bench/results/lambda.md).
LAMBDA_ROW = "small JSON (2 instances)"

# Assumptions, used where bench has no figure; each is printed with the estimate.
# The handler's own time per request when lambda_overhead.json is missing (its measured p50 on
# the development VM was about 2 ms).
ASSUMED_HANDLER_MS = 5.0
# The model's time per request when no one-client measurement exists for it.
ASSUMED_MODEL_MS = 50.0
# The network round trip from the Lambda to the endpoint and SageMaker's own overhead
# (OverheadLatency in CloudWatch), which no local benchmark can measure.
ASSUMED_SAGEMAKER_OVERHEAD_MS = 10.0


@dataclass(frozen=True)
class Figure:
    value: float
    source: str  # "bench/results/x.json: entry → field" or "assumption: why"
    measured: bool


@dataclass(frozen=True)
class Throughput:
    """Predictions per second one bench machine of ``cpus`` CPUs served."""

    rps: Figure
    cpus: int
    model_ms: Figure  # one client's served p50: the endpoint's share of a request's latency


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _config_cpus(config: str) -> int | None:
    """CPUs of a Ray Serve run from its label: "2 replicas x 1 CPU", "1 replica x 2 CPUs"."""
    match = re.fullmatch(r"\s*(\d+) replicas? x (\d+) CPUs?\s*", config)
    return int(match[1]) * int(match[2]) if match else None


def _best_run(entry: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    runs = [
        (run, cpus)
        for run in entry.get("runs") or []
        if isinstance(run.get("rps"), int | float)
        and not run.get("errors")
        and (cpus := _config_cpus(str(run.get("config", "")))) is not None
    ]
    return max(runs, key=lambda rc: rc[0]["rps"]) if runs else None


def serving_throughput(model: str, results: Path = RESULTS) -> Throughput:
    """The model's best error-free Ray Serve run, or the slowest measured model as a labelled
    assumption (a conservative stand-in: most unmeasured models are heavier than digits)."""
    path = results / SERVING_FILE
    data = _load(path)
    entries = [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
    rel = f"bench/results/{SERVING_FILE}"
    for entry in entries:
        if entry.get("model") == model and (best := _best_run(entry)):
            run, cpus = best
            one = (run.get("one_client") or {}).get("served_p50_ms")
            return Throughput(
                rps=Figure(
                    float(run["rps"]),
                    f"{rel}: model {model}, {run['config']}, batching {run.get('batching')}: rps",
                    True,
                ),
                cpus=cpus,
                model_ms=Figure(float(one), f"{rel}: model {model}: one_client.served_p50_ms", True)
                if isinstance(one, int | float)
                else Figure(ASSUMED_MODEL_MS, "assumption: no one-client latency measured", False),
            )
    stand_ins = [(e, b) for e in entries if (b := _best_run(e))]
    if not stand_ins:
        raise LookupError(
            f"no throughput measured for model {model} (nor any model) in {rel}: run "
            "`python bench/ray_serve.py` (make bench), or pass --throughput-rps"
        )
    entry, (run, cpus) = min(stand_ins, key=lambda eb: eb[1][0]["rps"] / eb[1][1])
    label = entry.get("model")
    return Throughput(
        rps=Figure(
            float(run["rps"]),
            f"assumption: model {model} NOT MEASURED; stands in the slowest measured model "
            f"({label}, {rel}, {run['config']}: rps)",
            False,
        ),
        cpus=cpus,
        model_ms=Figure(
            float((run.get("one_client") or {}).get("served_p50_ms") or ASSUMED_MODEL_MS),
            f"assumption: model {model} NOT MEASURED; the latency of {label}",
            False,
        ),
    )


def handler_ms(results: Path = RESULTS) -> Figure:
    row = (_load(results / LAMBDA_FILE) or {}).get(LAMBDA_ROW) or {}
    value = row.get("handler_p50_ms")
    if isinstance(value, int | float):
        return Figure(
            float(value), f"bench/results/{LAMBDA_FILE}: {LAMBDA_ROW} → handler_p50_ms", True
        )
    return Figure(
        ASSUMED_HANDLER_MS, f"assumption: bench/results/{LAMBDA_FILE} has no {LAMBDA_ROW}", False
    )


def sagemaker_overhead_ms() -> Figure:
    return Figure(
        ASSUMED_SAGEMAKER_OVERHEAD_MS,
        "assumption: network + SageMaker overhead per invocation (not measurable locally)",
        False,
    )

"""What a run leaves behind: the model dir (weights, config, metrics, serving layout), the training
curves, the health report and, with ``--profile``, the profiler's trace and summary."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from training import torch_models
from training.common import env, serving
from training.common.checkpoint import publish_model_dir
from training.common.health import HealthMonitor
from training.common.plotting import plot_history
from training.common.timing import TimeBreakdown, write_summary
from training.torch_training.data import MEAN, STD, Splits
from training.torch_training.distributed import Dist

# The entry script's logger: its log lines keep one name whichever module writes them.
log = logging.getLogger("image_classifier_torch")


def profiler_context(args: argparse.Namespace, ctx: Dist) -> Any:
    if not args.profile:
        return contextlib.nullcontext(None)
    from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

    activities = [ProfilerActivity.CPU]
    if ctx.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    return profile(
        activities=activities,
        schedule=schedule(wait=0, warmup=2, active=args.profile_steps, repeat=1),
        on_trace_ready=tensorboard_trace_handler(
            str(args.output_dir / "profile"), worker_name=f"rank{ctx.rank}"
        ),
    )


def write_outputs(
    args: argparse.Namespace,
    splits: Splits,
    *,
    best_state: dict[str, torch.Tensor],
    metrics: dict[str, Any],
    history: dict[str, list[float]],
    health: HealthMonitor,
    timing: TimeBreakdown,
    profiler: Any,
) -> None:
    config = {
        "framework": "pytorch",
        "task": "image-classification",
        "arch": args.arch,
        "num_classes": len(splits.class_names),
        "class_names": splits.class_names,
        "image_size": args.image_size,
        "mean": list(MEAN),
        "std": list(STD),
    }

    def fill(folder: Path) -> None:
        torch.save({k: v.to("cpu") for k, v in best_state.items()}, folder / "model.pth")
        (folder / "model_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        if args.export:
            serving.publish(
                folder,
                framework="pytorch",
                name=args.serving_name,
                arch_module=Path(torch_models.__file__),
            )

    publish_model_dir(args.model_dir, fill, in_place=env.in_sagemaker())
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history, indent=2), encoding="utf-8")
    plot_history(
        history, out / "training_curves.png", f"{args.arch} on {len(splits.class_names)} classes"
    )
    health.write_report(out / "health_report.json", {"time": timing.summary()})
    if profiler is not None:
        write_profile_summary(out, timing, profiler)
    log.info("model saved to %s; curves, health report in %s", args.model_dir, out)


def write_profile_summary(out: Path, timing: TimeBreakdown, profiler: Any) -> None:
    summary = timing.summary()
    try:
        averages = profiler.key_averages()
        top = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
        summary["top_ops_self_cpu_ms"] = {
            e.key: round(e.self_cpu_time_total / 1000, 3) for e in top
        }
    except (AssertionError, RuntimeError) as exc:  # too few steps for the profiler's schedule
        summary["top_ops_self_cpu_ms"] = f"unavailable: {exc}"
    summary["trace_dir"] = str(out / "profile")
    summary["view_with"] = f"tensorboard --logdir {out / 'profile'} (torch-tb-profiler plugin)"
    write_summary(out / "profile_summary.json", summary)
    log.info(
        "profile: %.0f%% of step time waiting for data, %.0f%% compute (%d steps, %.1f samples/s);"
        " trace in %s",
        100 * (summary["data_wait_fraction"] or 0),
        100 * (1 - (summary["data_wait_fraction"] or 0)),
        summary["steps"],
        summary["samples_per_s"] or 0,
        out / "profile",
    )

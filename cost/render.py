"""Output: a plain aligned table for the terminal, and a stacked bar chart for the docs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cost.estimate import Estimate


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def _grid(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def table(est: Estimate) -> str:
    """One stage: each item's idle monthly cost, cost per million predictions, and inputs."""
    lines = [
        f"Cost estimate: stage {est.stage}, model {est.model}, region {est.region} "
        f"({est.capacity_mode}: {est.min_instances}..{est.max_instances} x {est.instance_type})",
        "",
    ]
    rows = [["item", "idle $/month", "$ per 1M predictions", "inputs"]]
    for i in est.items:
        rows.append([i.name, _usd(i.idle_monthly_usd), _usd(i.per_million_usd), i.inputs])
    rows.append(["total", _usd(est.idle_monthly_usd), _usd(est.per_million_usd), ""])
    lines += _grid(rows, right={1, 2})
    lines += [
        "",
        f"Endpoint at its maximum ({est.max_instances} x {est.instance_type}) all month: "
        f"{_usd(est.max_instances_monthly_usd)}",
        "",
        "Per-prediction inputs:",
    ]
    lines += [f"  {name} = {f['value']:g}: {f['source']}" for name, f in est.figures.items()]
    lines.append("Prices (cost/prices.json, entered by hand: re-check before relying on them):")
    lines += [f"  {key}: {text}" for key, text in est.sources.items()]
    lines += [f"Note: {n}" for n in est.notes]
    return "\n".join(lines)


def comparison(estimates: Sequence[Estimate]) -> str:
    """Stages side by side: idle monthly and per million, item by item."""
    first = estimates[0]
    header = ["item"]
    for e in estimates:
        header += [f"{e.stage} idle/mo", f"{e.stage} per 1M"]
    rows = [header]
    names = [i.name for i in first.items]
    for e in estimates[1:]:
        names += [i.name for i in e.items if i.name not in names]
    for name in names:
        row = [name]
        for e in estimates:
            item = next((i for i in e.items if i.name == name), None)
            row += [_usd(item.idle_monthly_usd), _usd(item.per_million_usd)] if item else ["-", "-"]
        rows.append(row)
    total = ["total"]
    for e in estimates:
        total += [_usd(e.idle_monthly_usd), _usd(e.per_million_usd)]
    rows.append(total)
    ceiling = ["endpoint at max, /mo"]
    for e in estimates:
        ceiling += [_usd(e.max_instances_monthly_usd), ""]
    rows.append(ceiling)
    lines = [
        f"Cost by stage: model {first.model}, region {first.region} (USD; prices in "
        "cost/prices.json, entered by hand)",
        "",
        *_grid(rows, right=set(range(1, len(header)))),
        "",
    ]
    for e in estimates:
        lines.append(
            f"{e.stage}: {e.capacity_mode}, {e.min_instances}..{e.max_instances} x "
            f"{e.instance_type}"
        )
        lines += [f"  note: {n}" for n in e.notes]
    return "\n".join(lines)


def chart(estimates: Sequence[Estimate], out: Path) -> Path:
    """Two stacked bar panels (idle $/month, $ per 1M predictions), one bar per stage."""
    import matplotlib  # requirements-ml.txt; only the chart needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    for e in estimates:
        names += [i.name for i in e.items if i.name not in names]
    stages = [e.stage for e in estimates]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    panels = (
        ("Idle, USD per month", lambda i: i.idle_monthly_usd),
        ("USD per million predictions", lambda i: i.per_million_usd),
    )
    cmap = plt.get_cmap("tab20")
    for ax, (title, value) in zip(axes, panels, strict=True):
        bottoms = [0.0] * len(estimates)
        for n, name in enumerate(names):
            heights = [next((value(i) for i in e.items if i.name == name), 0.0) for e in estimates]
            if not any(heights):
                continue
            ax.bar(stages, heights, bottom=bottoms, label=name, color=cmap(n % 20))
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        for x, total in enumerate(bottoms):
            ax.annotate(f"${total:,.2f}", (x, total), ha="center", va="bottom")
        ax.margins(y=0.12)
        ax.set_title(title)
        ax.set_ylabel("USD")
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=4, fontsize=8)
    first = estimates[0]
    fig.suptitle(
        f"Model {first.model}, {first.region}: list prices entered by hand (cost/prices.json)"
    )
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

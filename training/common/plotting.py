"""Training-curve plots (PNG) for the output dir."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def plot_history(history: Mapping[str, Sequence[float]], path: Path, title: str) -> Path:
    """Plot per-epoch ``train_*`` / ``valid_*`` series: one panel per metric (loss, accuracy)."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a container; must precede pyplot
    import matplotlib.pyplot as plt

    metrics = sorted({name.split("_", 1)[1] for name in history if "_" in name})
    fig, axes = plt.subplots(1, max(len(metrics), 1), figsize=(5 * max(len(metrics), 1), 3.6))
    axes = [axes] if not hasattr(axes, "__len__") else list(axes)
    for ax, metric in zip(axes, metrics, strict=False):
        for split in ("train", "valid"):
            values = list(history.get(f"{split}_{metric}", []))
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

"""Charts for RELIABILITY.md: load per step, and each fault's requests over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

OK, THROTTLED, CLIENT_ERROR, SERVER_ERROR, NO_ANSWER = (
    "#2a9d8f",
    "#e9c46a",
    "#f4a261",
    "#e63946",
    "#6c757d",
)


def status_colour(status: int) -> str:
    if status == 0:
        return NO_ANSWER
    if status < 400:
        return OK
    if status == 429:
        return THROTTLED
    return CLIENT_ERROR if status < 500 else SERVER_ERROR


def load_chart(steps: Sequence[dict[str, Any]], throttle_rps: float, burst: int, out: Path) -> Path:
    """Per step: answered requests per second by status (stacked), offered load, and p50/p99.

    ``steps``: ``{"users", "offered_rps", "seconds", "statuses": {status: count},
    "no_response", "p50_ms", "p99_ms"}`` each.
    """
    fig, (rates, latency) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{s['users']}\n({s['offered_rps']:g}/s)" for s in steps]
    x = range(len(steps))
    bottom = [0.0] * len(steps)
    kinds = [
        ("200", OK, lambda st: st.get(200, 0)),
        ("429", THROTTLED, lambda st: st.get(429, 0)),
        (
            "other 4xx",
            CLIENT_ERROR,
            lambda st: sum(v for k, v in st.items() if 400 <= k < 500 and k != 429),
        ),
        ("5xx", SERVER_ERROR, lambda st: sum(v for k, v in st.items() if k >= 500)),
    ]
    for name, colour, count in kinds:
        values = [count(s["statuses"]) / max(s["seconds"], 1e-9) for s in steps]
        rates.bar(x, values, bottom=bottom, color=colour, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    missing = [s["no_response"] / max(s["seconds"], 1e-9) for s in steps]
    rates.bar(x, missing, bottom=bottom, color=NO_ANSWER, label="no response")
    rates.axhline(throttle_rps, color="black", linestyle="--", linewidth=1)
    rates.annotate(
        f"throttle {throttle_rps:g}/s (burst {burst})",
        (0, throttle_rps),
        textcoords="offset points",
        xytext=(0, 4),
        fontsize=8,
    )
    rates.set_xticks(list(x), labels)
    rates.set_xlabel("locust users (offered load)")
    rates.set_ylabel("answers per second")
    rates.set_title("Answers by status")
    rates.legend(fontsize=8)

    latency.plot(x, [s["p50_ms"] for s in steps], marker="o", label="p50")
    latency.plot(x, [s["p99_ms"] for s in steps], marker="o", label="p99")
    latency.set_xticks(list(x), labels)
    latency.set_xlabel("locust users (offered load)")
    latency.set_ylabel("latency, ms (all answers)")
    latency.set_ylim(bottom=0)
    latency.set_title("Latency")
    latency.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def faults_chart(runs: Sequence[dict[str, Any]], out: Path) -> Path:
    """One panel per fault (its first run): every request at its send time (relative to the
    fault) against its latency, coloured by status; the fault and the recovery window marked.

    ``runs``: ``{"name", "fault_at", "recovery_s", "records": [(sent, ended, status), ...]}``.
    """
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.6), squeeze=False)
    for ax, run in zip(axes[0], runs, strict=True):
        fault_at = run["fault_at"]
        for colour in (OK, THROTTLED, CLIENT_ERROR, SERVER_ERROR, NO_ANSWER):
            points = [
                (sent - fault_at, (ended - sent) * 1000)
                for sent, ended, status in run["records"]
                if status_colour(status) == colour
            ]
            if points:
                ax.scatter(*zip(*points, strict=True), s=8, color=colour)
        ax.axvline(0, color="black", linewidth=1)
        if run["recovery_s"] > 0:
            ax.axvspan(0, run["recovery_s"], color=SERVER_ERROR, alpha=0.12)
        ax.set_yscale("log")
        ax.set_title(run["name"], fontsize=9)
        ax.set_xlabel("request sent, s after the fault")
    axes[0][0].set_ylabel("latency, ms")
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=c, label=n)
        for n, c in (("200", OK), ("4xx", CLIENT_ERROR), ("5xx", SERVER_ERROR))
    ]
    fig.legend(handles=handles, loc="upper right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

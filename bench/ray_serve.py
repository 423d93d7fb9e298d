"""Ray Serve (AWS's PyTorch serving container, run locally) against the raw forward pass.

One run, side by side, on the same exported artifact and the same machine:

- raw: in-process forward throughput at the model's best batch size (the ceiling), and one raw
  request (PNG decode + preprocessing + forward at batch 1);
- Ray Serve behind the container's adapter (``container_contract.ray_serve``, the fast HAProxy
  ingress), the artifact's ``config.yaml`` rewritten per configuration: batching on
  (``@serve.batch``, 16 requests, 2 ms) and off;
- N concurrent clients (wrk, ``bench/wrk_post.lua``) posting PNGs to ``/invocations``, and the
  one-client p50 against a raw forward in alternating blocks (``serving_common.one_client``);
- digits only: one-client p50 through the whole local stage (model container, runtime API, API
  front with the real Lambda), alternating per request.

The local model server's PyTorch flavour it replaced was measured beside it in the same run
before it was removed (BENCHMARKS.md, commit noted there).

    .venv/bin/python bench/ray_serve.py [--seconds 10] [--clients 32] [--models digits,resnet18]
        [--out bench/results/ray_serve.json]

Prints a Markdown table and writes JSON (+ a PNG chart beside it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import serving_common as lt
from container_contract.artifact import unpack_artifact
from container_contract.ray_serve import RayContainer
from model_export.serve_config import CONFIG_NAME, ServeSettings

REPO = Path(__file__).resolve().parents[1]

log = logging.getLogger("bench.ray_serve")
MODELS = {"digits": ("small_cnn", 32), "resnet18": ("resnet18", 224)}
HEADERS = {"Content-Type": "image/png"}


def ray_configs(arch: str) -> list[tuple[str, ServeSettings]]:
    cpus = lt.CPUS
    if arch == "resnet18":
        # Compute-bound: one replica with every core; a batch keeps them busy.
        on = ServeSettings(replicas=1, cpus_per_replica=cpus, max_batch_size=16, batch_wait_ms=2)
        off = ServeSettings(replicas=1, cpus_per_replica=cpus, max_batch_size=1, batch_wait_ms=0)
        return [(f"1 replica x {cpus} CPUs", on), (f"1 replica x {cpus} CPUs", off)]
    on = ServeSettings(replicas=cpus, cpus_per_replica=1, max_batch_size=16, batch_wait_ms=2)
    off = ServeSettings(replicas=cpus, cpus_per_replica=1, max_batch_size=1, batch_wait_ms=0)
    return [(f"{cpus} replicas x 1 CPU", on), (f"{cpus} replicas x 1 CPU", off)]


@contextlib.contextmanager
def ray_serving(model_dir: Path, settings: ServeSettings, work: Path) -> Iterator[RayContainer]:
    """The artifact in Ray Serve with ``settings`` written into its config.yaml."""
    copy = work / f"ray-{time.monotonic_ns()}"
    shutil.copytree(model_dir, copy)
    (copy / CONFIG_NAME).write_text(settings.config_yaml(), encoding="utf-8")
    with RayContainer(copy, log_path=work / f"{copy.name}.log") as container:
        yield container


def measure(url: str, png: bytes, args: argparse.Namespace) -> dict[str, Any]:
    client = lt.LeanClient(url)
    lt.warm_up(client, "/invocations", png, HEADERS)
    client.close()
    return lt.throughput(url + "/invocations", png, HEADERS, args.clients, args.seconds)


def one_client_vs_raw(url: str, raw_once: Any, png: bytes, seconds: float) -> dict[str, Any]:
    time.sleep(1.0)  # let the load generator's last requests drain
    client = lt.LeanClient(url)

    def served_once() -> bool:
        return client.post("/invocations", png, HEADERS)[0] == 200

    try:
        return lt.one_client(raw_once, served_once, seconds)
    finally:
        client.close()


def bench_model(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    arch, size = MODELS[name]
    tarball, png = lt.make_artifact(arch, size, work)
    model_dir = unpack_artifact(tarball, work / f"{arch}-model")
    model = lt.raw_model(arch)
    raw = lt.raw_ceiling(model, size, png, args.seconds)
    raw_once = lt.raw_forward_fn(model, size, png)
    result: dict[str, Any] = {"model": name, "arch": arch, "size": size, "raw": raw, "runs": []}
    log.info("%s raw ceiling %.0f images/s", name, raw["ceiling_ips"])
    for label, settings in ray_configs(arch):
        batching = "on" if settings.max_batch_size > 1 else "off"
        with ray_serving(model_dir, settings, work) as ray:
            run: dict[str, Any] = {"server": "ray-serve", "config": label, "batching": batching}
            run.update(measure(ray.url, png, args))
            run["started_s"] = ray.started_s
            if batching == "on":
                # The lone-request path of the batching configuration (the deployed default).
                run["one_client"] = one_client_vs_raw(ray.url, raw_once, png, args.seconds)
        log.info("%s", run)
        result["runs"].append(run)
    if name == "digits":
        (work / "full" / "logs").mkdir(parents=True, exist_ok=True)
        result["full_path"] = lt.bench_full_path(tarball, png, work / "full", args.seconds)
        log.info("full path: %s", result["full_path"])
    return result


def table(results: list[dict[str, Any]], clients: int) -> str:
    lines = [
        f"| model | server | configuration | batching | req/s at {clients} clients | "
        "x raw ceiling | p50 / p99 ms | one client: served p50 − raw p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in results:
        ceiling = model["raw"]["ceiling_ips"]
        lines.append(
            f"| {model['model']} | raw in-process | best batch | – | {ceiling:,.0f} images/s | "
            "1.00 | – | – |"
        )
        for run in model["runs"]:
            one = run.get("one_client")
            one_text = (
                f"{one['served_p50_ms']:.2f} − {one['raw_p50_ms']:.2f} = {one['diff_ms']:.2f} ms"
                if one
                else "–"
            )
            errors = run.get("errors", 0)
            lines.append(
                f"| {model['model']} | {run['server']} | {run['config']} | {run['batching']} | "
                f"{run['rps']:,.0f}{f' ({errors} errors)' if errors else ''} | "
                f"{run['rps'] / ceiling:.2f} | {run['p50_ms']:.1f} / {run['p99_ms']:.1f} | "
                f"{one_text} |"
            )
    return "\n".join(lines)


def chart(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, model in zip(axes[0], results, strict=True):
        ceiling = model["raw"]["ceiling_ips"]
        labels = [f"{r['server']}\nbatching {r['batching']}" for r in model["runs"]]
        ratios = [r["rps"] / ceiling for r in model["runs"]]
        colors = ["tab:blue" if r["server"] == "ray-serve" else "tab:gray" for r in model["runs"]]
        ax.bar(labels, ratios, color=colors)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="raw ceiling")
        ax.set_title(f"{model['model']} ({model['arch']} {model['size']}²)")
        ax.set_ylabel("throughput / raw in-process ceiling")
        ax.tick_params(axis="x", labelsize=8)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="per measurement (default 10)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--models", default="digits,resnet18", help="digits,resnet18 (default both)")
    p.add_argument("--out", type=Path, default=REPO / "bench/results/ray_serve.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if lt.wrk_version() is None:
        log.warning("wrk is not on PATH: the Python load generator takes CPU from the servers")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        results = [bench_model(m, args, Path(tmp)) for m in args.models.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    chart(results, args.out.with_suffix(".png"))
    print(table(results, args.clients))
    for model in results:
        if "full_path" in model:
            print("\none client, whole local stage (p50 ms):")
            for target, values in model["full_path"]["targets"].items():
                print(f"- {target}: {values['p50_ms']:.2f}")
    print(f"\nresults: {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

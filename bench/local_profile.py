"""Where the model server's CPU time goes outside the model (issue 7), profiled with py-spy.

Serves the default model (small_cnn, 32x32 PNGs) with batching on, drives it with 32 concurrent
clients from this process, and samples the server with py-spy for the whole load. Every sample is
attributed to the innermost frame of a known kind (the model's forward pass, PNG decoding,
preprocessing, JSON, HTTP, the event loop, thread hand-offs), so the table answers "if the model
took no time, what would?".

    .venv/bin/python bench/local_profile.py [--seconds 10] [--clients 32]

Needs py-spy (requirements-dev.txt) and permission to trace a child process (root, or
ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "training"))

import local_throughput as lt  # noqa: E402

# First match wins, checked from the innermost frame outwards. (label, substrings of "file:func")
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("model forward (torch)", ("torch/nn/", "torch_models", "predict_fn")),
    ("PNG decode (Pillow)", ("PIL/",)),
    ("preprocessing (numpy)", ("preprocess", "numpy/", "input_fn")),
    ("JSON encode/decode", ("json/", "output_fn")),
    ("HTTP parsing and responses (aiohttp)", ("aiohttp/", "multidict", "yarl")),
    ("event loop and sockets (asyncio)", ("asyncio/", "selectors")),
    ("thread hand-offs (concurrent.futures, threading)", ("concurrent/futures", "threading")),
    ("batching and server code (local_stage)", ("local_stage/",)),
)


def categorise(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for label, needles in CATEGORIES:
            if any(n in frame for n in needles):
                return label
    return "other (interpreter, logging, idle threads)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="load duration (default: 10)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (default: 32)")
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="model-server workers, one torch thread each (default: the CPU count, the "
        "default model's best configuration in local_throughput.py)",
    )
    p.add_argument(
        "--out", type=Path, default=REPO / "bench/results/local_profile.md", help="markdown out"
    )
    args = p.parse_args()
    py_spy = Path(sys.executable).parent / "py-spy"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tarball, png = lt.make_artifact("small_cnn", 32, work)
        model_dir = lt.unpack_artifact(tarball, work / "model")
        with lt.model_servers(
            model_dir, batch=16, workers=args.workers, threads=1, logs=work / "logs"
        ) as (url, pids):
            spies, raws = [], []
            for pid in pids:
                raws.append(work / f"profile-{pid}.txt")
                spies.append(
                    subprocess.Popen(
                        [
                            str(py_spy),
                            "record",
                            "--pid",
                            str(pid),
                            "--format",
                            "raw",
                            "--output",
                            str(raws[-1]),
                            "--rate",
                            "200",
                            "--nonblocking",
                            "--duration",
                            str(int(args.seconds)),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )  # fmt: skip
                )
            result = lt.throughput(
                url + "/invocations", png, {"Content-Type": "image/png"}, args.clients,
                args.seconds,
            )  # fmt: skip
            for spy in spies:
                _, err = spy.communicate(timeout=60)
                if spy.returncode != 0:
                    print(err.decode(errors="replace"), file=sys.stderr)
                    return 1
        totals: collections.Counter[str] = collections.Counter()
        for raw in raws:
            for line in raw.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if stack and count.isdigit():
                    totals[categorise(stack)] += int(count)
    generator = "wrk" if lt.wrk_version() else "an in-process aiohttp client"
    busy = sum(n for label, n in totals.items() if not label.startswith("other"))
    all_samples = sum(totals.values())
    lines = [
        "# Where the model server's time goes (default model, 32 clients)",
        "",
        f"`bench/local_profile.py --seconds {args.seconds:g} --clients {args.clients} "
        f"--workers {args.workers}`: {result['rps']:.0f} requests/s from {generator} to "
        f"{args.workers} model-server workers (one torch thread each) while py-spy sampled every "
        f"worker's threads ({all_samples} samples; py-spy leaves out threads that are idle, "
        "waiting on a lock or a socket, so the shares approximate CPU time).",
        "",
        "| where | share of samples | share of the attributed ones |",
        "|---|---:|---:|",
    ]
    for label, n in totals.most_common():
        attributed = f"{100 * n / busy:.0f}%" if not label.startswith("other") and busy else ""
        lines.append(f"| {label} | {100 * n / all_samples:.0f}% | {attributed} |")
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

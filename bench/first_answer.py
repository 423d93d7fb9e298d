"""Time from `python -m local_stage up` to the first answered prediction through the API.

    .venv/bin/python bench/first_answer.py [--app-dir cdk.out] [--stack MlServing-dev-digits]
        [--image data/digits/test/7/<any>.png] [--runs 3]

Starts the whole local stage (model container, runtime API, API front) on free ports, posts a PNG
to ``/predict`` every 50 ms from the moment the process starts, and prints the seconds until the
first 200, then stops the stage. This is what a person waits for after `make local`'s synth.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_answer_s(app_dir: str, stack: str, image: bytes, timeout_s: float) -> float:
    port = free_port()
    key = "bench-first-answer-key-0123456789"
    run_dir = tempfile.mkdtemp(prefix="first-answer-")
    argv = [sys.executable, "-m", "local_stage", "up", "--stack", stack, "--app-dir", app_dir]
    argv += ["--port", str(port), "--api-key", key, "--no-smoke", "--run-dir", run_dir]
    began = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        while time.perf_counter() - began < timeout_s:
            if proc.poll() is not None:
                raise RuntimeError(f"local_stage up exited with {proc.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request(
                    "POST",
                    "/dev/predict",
                    body=image,
                    headers={"x-api-key": key, "Content-Type": "image/png"},
                )
                if conn.getresponse().status == 200:
                    return time.perf_counter() - began
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no 200 within {timeout_s} s")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--app-dir", default="cdk.out")
    p.add_argument("--stack", default="MlServing-dev-digits")
    p.add_argument("--image", type=Path, default=None)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--timeout-s", type=float, default=300)
    args = p.parse_args()
    template = Path(args.app_dir) / f"{args.stack}.template.json"
    if not template.is_file():
        # `make bench` runs every script; this one needs a synthesized stack.
        print(f"skipped: {template} not found; run `make synth` (or `make local`) first")
        return 0
    pngs = sorted(Path("data/digits/test/7").glob("*.png"))
    if args.image is None and not pngs:
        print("skipped: no data/digits/test/7/*.png; run `make artifacts` first, or pass --image")
        return 0
    image_path = args.image or pngs[0]
    image = image_path.read_bytes()
    times = [
        first_answer_s(args.app_dir, args.stack, image, args.timeout_s) for _ in range(args.runs)
    ]
    print(
        f"first answer after: {', '.join(f'{t:.1f}' for t in times)} s "
        f"(median {statistics.median(times):.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where Ray Serve's per-request CPU goes: CPU per process and py-spy profiles under load.

    .venv/bin/python bench/ray_serve_profile.py [--seconds 10] [--clients 32]
        [--out bench/results/ray_serve_profile.md]

Serves the digits-sized model (small_cnn, 32x32, random weights) in Ray Serve behind the
container's adapter (2 replicas x 1 CPU, batching on), drives it with wrk, and reports (1) the CPU
seconds each process used per request (adapter, HAProxy, each replica, Ray's own processes),
(2) throughput through the adapter and straight to Serve's port (the adapter's share), and (3)
the top functions by own time in the adapter and one replica (py-spy, sampled under the load).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import serving_common as lt
from container_contract.artifact import unpack_artifact
from container_contract.ray_serve import RayContainer, descendants
from model_export.serve_config import CONFIG_NAME, ServeSettings

REPO = Path(__file__).resolve().parents[1]

HEADERS = {"Content-Type": "image/png"}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def label(name: str) -> str:
    if "container_contract.ray_serve" in name:
        return "adapter + Ray driver (aiohttp)"
    if "haproxy" in name:
        return "HAProxy"
    if "ServeReplica" in name:
        return "replica"
    if "ServeController" in name:
        return "Serve controller"
    if "ProxyActor" in name:
        return "Serve proxy actor (idle with HAProxy)"
    for key in ("raylet", "gcs_server", "DashboardAgent", "RuntimeEnvAgent", "monitor"):
        if key in name:
            return "Ray: " + key
    return "other: " + name[:40]


def pyspy_top(pid: int, seconds: float, out: Path) -> list[tuple[str, float]]:
    """py-spy's samples of ``pid`` for ``seconds``: the 12 functions with most own time (%)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    subprocess.run(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        capture_output=True,
        check=False,
        timeout=seconds + 60,
    )
    own: collections.Counter[str] = collections.Counter()
    total = 0
    if not out.exists():
        return []
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        leaf = stack.split(";")[-1]
        leaf = re.sub(r"\s*\(/[^)]*/(site-packages|lib/python3\.\d+)/", " (", leaf)
        own[leaf] += int(count)
        total += int(count)
    return [(fn, 100 * n / total) for fn, n in own.most_common(12)] if total else []


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--out", type=Path, default=REPO / "bench/results/ray_serve_profile.md")
    args = p.parse_args()
    lines = []
    with tempfile.TemporaryDirectory(prefix="ray-profile-") as tmp:
        work = Path(tmp)
        tarball, png = lt.make_artifact("small_cnn", 32, work)
        model_dir = unpack_artifact(tarball, work / "model")
        settings = ServeSettings(replicas=2, cpus_per_replica=1, max_batch_size=16)
        (model_dir / CONFIG_NAME).write_text(settings.config_yaml())
        with RayContainer(model_dir, log_path=work / "ray.log") as ray:
            running = re.search(r"RUNNING on :(\d+)", ray.log_tail(200))
            if running is None:
                raise RuntimeError(
                    "the container's log does not name Serve's HTTP port ('Ray Serve application "
                    "RUNNING on :<port>' is not in its last 200 lines): was the log line changed?"
                )
            serve_port = int(running.group(1))
            client = lt.LeanClient(ray.url)
            lt.warm_up(client, "/invocations", png, HEADERS)
            client.close()
            # The container's own process (the adapter and Ray's driver) and everything below it.
            pids = {ray.proc.pid: "python -m container_contract.ray_serve"}
            pids.update(descendants(ray.proc.pid))
            before = {pid: cpu_ticks(pid) for pid in pids}
            via_adapter = lt.throughput(
                ray.url + "/invocations", png, HEADERS, args.clients, args.seconds
            )
            after = {pid: cpu_ticks(pid) for pid in pids}
            direct = lt.throughput(
                f"http://127.0.0.1:{serve_port}/", png, HEADERS, args.clients, args.seconds
            )
            requests = via_adapter["requests"]
            # CPU seconds per process label (floats, so not a Counter, whose counts are ints).
            by_label: collections.defaultdict[str, float] = collections.defaultdict(float)
            for pid, name in pids.items():
                by_label[label(name)] += (after[pid] - before[pid]) / TICK
            lines += [
                f"Digits-sized model, Ray Serve 2 replicas x 1 CPU, batching on (16, 2 ms), "
                f"{args.clients} clients (wrk), {os.cpu_count()} CPUs.",
                "",
                f"- through the adapter (:{ray.port} /invocations): {via_adapter['rps']:,.0f} "
                f"req/s, p50 {via_adapter['p50_ms']:.1f} ms",
                f"- straight to Serve's HAProxy (:{serve_port} /): {direct['rps']:,.0f} req/s, "
                f"p50 {direct['p50_ms']:.1f} ms",
                "",
                "| process | CPU s | CPU µs per request |",
                "|---|---|---|",
            ]
            for name, cpu_s in sorted(by_label.items(), key=lambda item: item[1], reverse=True):
                lines.append(f"| {name} | {cpu_s:.2f} | {1e6 * cpu_s / requests:,.0f} |")
            total = sum(by_label.values())
            lines.append(f"| **all** | {total:.2f} | {1e6 * total / requests:,.0f} |")
            # Profiles under a fresh load.
            replica = next(pid for pid, name in pids.items() if "ServeReplica" in name)
            loader = (
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        (
                            "import sys; from bench import serving_common as lt;"
                            f"lt.throughput({ray.url + '/invocations'!r}, open(sys.argv[1], 'rb').read(),"
                            f" {HEADERS!r}, {args.clients}, {args.seconds + 4})"
                        ),
                        str(work / "img.png"),
                    ],
                )
                if (work / "img.png").write_bytes(png)
                else None
            )
            time.sleep(1)
            for title, pid in (("adapter", ray.proc.pid), ("one replica", replica)):
                top = pyspy_top(pid, min(4.0, args.seconds / 2), work / f"{pid}.txt")
                lines += ["", f"py-spy, {title} (pid {pid}): own time, top functions", ""]
                lines += [f"- {pct:.1f}% {fn}" for fn, pct in top] or ["- (no samples)"]
            if loader is not None:
                loader.wait(args.seconds + 60)
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

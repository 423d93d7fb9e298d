"""HTTP load for the serving benchmarks: one lean keep-alive client, N concurrent clients (wrk
with ``bench/wrk_post.lua`` when it is on PATH, the in-process aiohttp client without it), and
latency percentiles.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

REPO = Path(__file__).resolve().parents[2]
WRK_SCRIPT = REPO / "bench/wrk_post.lua"


class LeanClient:
    """One blocking keep-alive HTTP/1.1 connection (TCP_NODELAY): little CPU per request."""

    def __init__(self, base_url: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.conn.connect()
            assert self.conn.sock is not None
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.conn.request("POST", self.base_path + path, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp.status, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def percentiles_ms(latencies_s: list[float]) -> dict[str, float]:
    if not latencies_s:
        return {"p50_ms": math.nan, "p90_ms": math.nan, "p99_ms": math.nan}
    p50, p90, p99 = np.percentile(latencies_s, [50, 90, 99]) * 1000
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99)}


async def load(
    url: str, body: bytes, headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    """The in-process aiohttp load generator (the fallback without wrk)."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status < 400
            except (aiohttp.ClientError, OSError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(url, data=body, headers=headers) as resp:  # warm-up
            assert resp.status == 200, await resp.text()
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
        **percentiles_ms(latencies),
        "errors": errors,
        "error_detail": f"{errors} failed" if errors else "",
    }


@functools.cache
def wrk_version() -> str | None:
    """wrk's version ("4.1.0"), or None when wrk is not on PATH."""
    path = shutil.which("wrk")
    if path is None:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\d+\.\d+(\.\d+)?", out.stdout + out.stderr)
    return found.group(0) if found else "(unknown version)"


def wrk_duration_s(seconds: float) -> int:
    return max(1, math.ceil(seconds))  # wrk takes whole seconds


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _wrk_ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if found is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(found.group(1)) * _UNIT_MS[found.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, latency percentiles and errors from ``wrk --latency`` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    done = re.search(r"^\s*(\d+) requests in ", out, re.M)
    if rps is None or done is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    pct = {int(p): _wrk_ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    counts = {"non-2xx": int(non2xx.group(1)) if non2xx else 0}
    if sock:
        counts.update(
            zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)
        )
    errors = sum(counts.values())
    return {
        "rps": float(rps.group(1)),
        "requests": int(done.group(1)),
        "p50_ms": pct.get(50, math.nan),
        "p90_ms": pct.get(90, math.nan),
        "p99_ms": pct.get(99, math.nan),
        "errors": errors,
        "error_detail": ", ".join(f"{n} {kind}" for kind, n in counts.items() if n),
    }


def run_wrk(
    url: str, body: bytes, headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    assert wrk is not None
    extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    duration = wrk_duration_s(seconds)
    with tempfile.NamedTemporaryFile(suffix=".body") as body_file:
        body_file.write(body)
        body_file.flush()
        env = {
            **os.environ,
            "WRK_BODY_FILE": body_file.name,
            "WRK_CONTENT_TYPE": content_type or "image/png",
            "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in extra.items()),
        }
        # --timeout: as the model server's own per-request limit; wrk's default (2 s) would count
        # the heavy model's queued requests at 32 clients as timeouts.
        argv = [wrk, "-t1", f"-c{clients}", f"-d{duration}s", "--timeout", "60s", "--latency"]
        proc = subprocess.run(
            [*argv, "-s", str(WRK_SCRIPT), url],
            env=env,
            capture_output=True,
            text=True,
            timeout=duration + 120,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return parse_wrk(proc.stdout)


def throughput(
    url: str, body: bytes, headers: dict[str, str], clients: int, seconds: float
) -> dict[str, Any]:
    """N concurrent clients: wrk when it is on PATH, else the in-process aiohttp client."""
    if wrk_version() is not None:
        return run_wrk(url, body, headers, clients, seconds)
    return asyncio.run(load(url, body, headers, clients, seconds))

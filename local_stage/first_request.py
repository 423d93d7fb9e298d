"""What ``up`` shows once the stack runs: a first real request through the API (a sample image or
the text model's example text) and the curl line a person can try next."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path


def find_sample(model_name: str, project_root: Path) -> Path | None:
    """The first image under data/<model>/test (else valid, train), for the first request."""
    for folder in ("test", "valid", "train"):
        base = project_root / "data" / model_name / folder
        if base.is_dir():
            for path in sorted(base.glob("*/*.png")) + sorted(base.glob("*/*.jpg")):
                return path
    return None


def example_text(model_dir: Path) -> str | None:
    """A text model's example text from its manifest; None for other models (or no manifest)."""
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("task") != "text-classification":
        return None
    instances = (manifest.get("example") or {}).get("body", {}).get("instances") or []
    text = instances[0] if instances and isinstance(instances[0], str) else ""
    return text or "the flight was great"


def try_command(url: str, api_key: str, sample: Path | None, example_text: str | None) -> str:
    """The curl line printed at start-up: one text (text/plain) for a text model, else an image."""
    head = f"curl -sS -X POST {shlex.quote(url + '/predict')} -H {shlex.quote('x-api-key: ' + api_key)}"
    if example_text is not None:
        return f"{head} -H 'Content-Type: text/plain' --data-binary {shlex.quote(example_text)}"
    example = sample or Path("digit.png")
    ctype = "image/jpeg" if example.suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return f"{head} -H 'Content-Type: {ctype}' --data-binary @{shlex.quote(str(example))}"


async def smoke_text_request(url: str, api_key: str, text: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(
            f"{url}/predict",
            data=text.encode("utf-8"),
            headers={"x-api-key": api_key, "Content-Type": "text/plain; charset=utf-8"},
        ) as resp:
            body = await resp.text()
            elapsed_ms = (time.perf_counter() - started) * 1000
    return f"POST text/plain {text!r} -> {resp.status} in {elapsed_ms:.0f} ms: {body[:300]}"


async def smoke_request(url: str, api_key: str, sample: Path | None) -> str:
    import aiohttp

    if sample is None:
        return "no sample image found (data/<model>/test/<class>/*.png); skipped the first request"
    content_type = "image/png" if sample.suffix.lower() == ".png" else "image/jpeg"
    expected = sample.parent.name
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.post(
            f"{url}/predict",
            data=sample.read_bytes(),
            headers={"x-api-key": api_key, "Content-Type": content_type},
        ) as resp:
            text = await resp.text()
            elapsed_ms = (time.perf_counter() - started) * 1000
    verdict = ""
    if resp.status == 200:
        verdict = f" (the image's folder says {expected!r})"
    return f"POST {sample} -> {resp.status} in {elapsed_ms:.0f} ms: {text[:300]}{verdict}"

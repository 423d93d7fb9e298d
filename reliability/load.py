"""Load: locust drives the local stage at increasing concurrency, below and far above the throttle.

The digits model is trained, exported and synthesized with a known, modest API throttle
(``THROTTLE_RATE_RPS`` / ``THROTTLE_BURST``) and served by the local stage. Locust runs as its own
process (``reliability/locustfile.py``, headless, FastHttpUser) posting real digit PNGs to
``POST /predict`` with the API key; each user keeps a fixed pace, so a step's offered load is
users x pace. Every request's status, latency and (for non-200s) body come back through locust's
request event into a JSON-lines file parsed here; a request that got no HTTP answer (refused,
reset, timed out, or never completed) counts as "no response".
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stage import harness
from reliability import plots
from reliability.report import Section, Table

log = logging.getLogger(__name__)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
THROTTLE_RATE_RPS = 25  # the stage's method throttle and the usage plan's, requests per second
THROTTLE_BURST = 10  # token bucket capacity
USER_RPS = 5.0  # each locust user's pace
# (users, seconds) per step; offered load = users x USER_RPS.
QUICK_STEPS = [(1, 5.0), (3, 5.0), (12, 6.0)]
FULL_STEPS = [(1, 15.0), (3, 15.0), (6, 15.0), (12, 15.0), (24, 15.0)]
BELOW = 0.8  # a step offering at most this share of the rate is "below the throttle"
ABOVE = 1.5  # a step offering at least this multiple of the rate is "above the throttle"


@dataclass
class Step:
    users: int
    seconds: float
    records: list[dict[str, Any]] = field(default_factory=list)
    attempted: int = 0

    @property
    def span_s(self) -> float:
        """From the step's first request to its last (locust's shape ticks once a second, so a
        step's real length differs from the configured one by up to a second)."""
        starts = [r["start"] for r in self.records]
        return max(starts) - min(starts) if len(starts) > 1 else self.seconds

    @property
    def offered_rps(self) -> float:
        return self.users * USER_RPS

    @property
    def kind(self) -> str:
        if self.offered_rps <= BELOW * THROTTLE_RATE_RPS:
            return "below"
        if self.offered_rps >= ABOVE * THROTTLE_RATE_RPS:
            return "above"
        return "near"

    def statuses(self) -> Counter[int]:
        return Counter(r["status"] for r in self.records if r["status"])

    @property
    def no_response(self) -> int:
        failed = sum(1 for r in self.records if not r["status"])
        never_completed = max(0, self.attempted - len(self.records))
        return failed + never_completed

    def latency_ms(self, q: float) -> float:
        values = sorted(r["ms"] for r in self.records if r["status"])
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]


def drive(url: str, key: str, images: Path, steps: list[Step], out: Path) -> str:
    """Run locust over ``steps``; fill each step's records; return locust's own output."""
    records = out / "records.jsonl"
    records.unlink(missing_ok=True)
    env = {
        **os.environ,
        "RELIABILITY_STEPS": ",".join(f"{s.users}:{s.seconds:g}" for s in steps),
        "RELIABILITY_USER_RPS": str(USER_RPS),
        "RELIABILITY_API_KEY": key,
        "RELIABILITY_IMAGES": str(images),
        "RELIABILITY_RECORDS": str(records),
    }
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        url,
        "--only-summary",
        # Users finish the request they are in when the last step ends (never cut off).
        "--stop-timeout",
        "45",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    total_s = sum(s.seconds for s in steps)
    result = subprocess.run(
        argv,
        cwd=harness.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=total_s + 120,
        check=False,
    )
    output = (result.stdout + result.stderr)[-4000:]
    if result.returncode != 0:
        raise RuntimeError(f"locust exited with {result.returncode}:\n{output}")
    attempted: dict[str, int] = {}
    for line in records.read_text().splitlines():
        record = json.loads(line)
        if "attempted" in record:
            attempted = record["attempted"]
            continue
        steps[record["step"]].records.append(record)
    if not attempted:
        raise RuntimeError(f"locust did not report how many requests it started:\n{output}")
    for index, step in enumerate(steps):
        step.attempted = int(attempted.get(str(index), 0))
    return output


def _statuses(counter: Counter[int]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(counter.items())) or "none"


def _bodies(step: Step, keep: Any, limit: int = 3) -> list[str]:
    return [f"{r['status']} {r['body'] or r['error']}" for r in step.records if keep(r)][:limit]


def throttled_error(app_dir: Path) -> dict[str, Any]:
    """The ``error`` object of the 429 the template declares for THROTTLED (its
    GatewayResponse), else API Gateway's own ``{"message": "Too Many Requests"}``."""
    from local_stage.template import load_stack

    spec = load_stack(app_dir, harness.DIGITS_STACK).api.gateway_responses.get("THROTTLED")
    if spec is None or not spec.template:
        return {"message": "Too Many Requests"}
    doc = json.loads(spec.template.replace("$context.requestId", "x"))
    return doc.get("error", doc)


def _error_of(body: str) -> Any:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc.get("error", doc) if isinstance(doc, dict) else None


def evaluate(section: Section, steps: list[Step], throttled: dict[str, Any]) -> None:
    """The scenario's pass criteria, from the steps' records; ``throttled``: the 429's error."""
    table_rows: list[Sequence[Any]] = []
    for step in steps:
        statuses = step.statuses()
        table_rows.append(
            [
                step.users,
                step.offered_rps,
                step.kind,
                step.span_s,
                len(step.records),
                len(step.records) / step.span_s,
                statuses.get(200, 0) / step.span_s,
                step.latency_ms(0.5),
                step.latency_ms(0.99),
                _statuses(statuses),
                step.no_response,
            ]
        )
    section.tables.append(
        Table(
            "Each step: locust users (each paced at "
            f"{USER_RPS:g} req/s), the load they offered against a throttle of "
            f"{THROTTLE_RATE_RPS} req/s (burst {THROTTLE_BURST}), what came back, and latency "
            "(ms, every answered request)",
            [
                "users",
                "offered req/s",
                "vs throttle",
                "seconds",
                "requests",
                "req/s",
                "200 req/s",
                "p50 ms",
                "p99 ms",
                "statuses",
                "no response",
            ],
            table_rows,
        )
    )

    server_errors = {
        i: _bodies(s, lambda r: r["status"] >= 500)
        for i, s in enumerate(steps)
        if any(r["status"] >= 500 for r in s.records)
    }
    section.check(
        "no 5xx at any step",
        not server_errors,
        "; ".join(f"{steps[i].users} users: {b}" for i, b in server_errors.items())
        or f"{sum(len(s.records) for s in steps)} answers, none 5xx",
    )

    below = [s for s in steps if s.kind == "below"]
    below_bad = [(s, _bodies(s, lambda r: r["status"] != 200)) for s in below]
    below_bad = [(s, b) for s, b in below_bad if b]
    section.check(
        f"below the throttle (offered <= {BELOW:g} x {THROTTLE_RATE_RPS} req/s) every request "
        "answered 200",
        bool(below) and not below_bad,
        "; ".join(f"{s.users} users: {_statuses(s.statuses())}, e.g. {b}" for s, b in below_bad)
        or ", ".join(f"{s.users} users: {len(s.records)} x 200" for s in below)
        or "no step was below the throttle",
    )

    above = [s for s in steps if s.kind == "above"]

    def not_throttle_answer(r: dict[str, Any]) -> bool:
        if r["status"] == 200:
            return False
        return r["status"] != 429 or _error_of(r["body"]) != throttled

    above_bad = [(s, _bodies(s, not_throttle_answer)) for s in above]
    above_bad = [(s, b) for s, b in above_bad if b]
    counts = {s.users: s.statuses().get(429, 0) for s in above}
    section.check(
        f"above the throttle (offered >= {ABOVE:g} x the rate) every request was answered, each "
        f"200 or the template's THROTTLED 429 {json.dumps(throttled)}, and the throttle did "
        "engage",
        bool(above) and not above_bad and all(counts.values()),
        "; ".join(f"{s.users} users: e.g. {b}" for s, b in above_bad)
        or ", ".join(f"{u} users: {n} x 429" for u, n in counts.items())
        or "no step was above the throttle",
    )

    missing = {s.users: s.no_response for s in steps if s.no_response}
    examples = [b for s in steps for b in _bodies(s, lambda r: not r["status"], 2)]
    section.check(
        "every request got a response (no refused, reset, timed-out or unfinished request)",
        not missing,
        (
            f"without a response: {missing} (users: count); e.g. {examples}"
            if missing
            else f"{sum(s.attempted for s in steps)} started, "
            f"{sum(len(s.records) for s in steps)} answered"
        ),
    )

    bounds = []
    within = True
    for s in above:
        accepted = s.statuses().get(200, 0)
        # The bucket holds at most the burst when the step begins and refills at the rate over
        # the step's span (first to last request); 1 request of slack for the span's edge.
        most = THROTTLE_RATE_RPS * s.span_s + THROTTLE_BURST + 1
        least = 0.8 * THROTTLE_RATE_RPS * s.span_s
        ok = least <= accepted <= most
        within &= ok
        bounds.append(
            f"{s.users} users: {accepted} x 200 in {s.span_s:.2f} s = "
            f"{accepted / s.span_s:.1f} req/s (allowed {least:.0f}..{most:.0f}: rate x seconds "
            "+ burst)"
        )
    section.check(
        f"above the throttle the accepted (200) count matches the configured {THROTTLE_RATE_RPS} "
        f"req/s x seconds + burst {THROTTLE_BURST} (at least 80% of rate x seconds, at most "
        "the allowance)",
        bool(above) and within,
        "; ".join(bounds) or "no step was above the throttle",
    )


def run(quick: bool, workdir: Path) -> Section:
    steps = [Step(u, s) for u, s in (QUICK_STEPS if quick else FULL_STEPS)]
    section = Section(
        key="load",
        title="Load",
        method=(
            "The digits CNN is trained, exported and synthesized by the real CDK app with an API "
            f"throttle of {THROTTLE_RATE_RPS} req/s, burst {THROTTLE_BURST} (stage method "
            "throttle and usage plan), and served by the local stage (API front with the "
            "template's token buckets, the real Lambda handler, runtime API, two model-server "
            "instances). Locust (FastHttpUser, headless, its own process, `reliability/"
            "locustfile.py`) posts real digit PNGs to `POST /predict` with the API key over "
            f"loopback. Each user keeps a pace of {USER_RPS:g} req/s, so a step's offered load is "
            "users x pace; the steps run one after another for a fixed time each "
            f"({', '.join(f'{s.users} users for {s.seconds:g} s' for s in steps)}). Every "
            "request's status, latency and body come back through locust's request event; a "
            "request without an HTTP answer (refused, reset, timed out after "
            "40 s, or started and never finished) counts as no response. Below the throttle every request "
            "must succeed; far above it every request must still be answered, 200 or the 429 "
            "the template declares for THROTTLED (its GatewayResponse), and the accepted count "
            "must match the configured rate and burst."
        ),
    )
    app = harness.digits_assembly(
        workdir,
        {
            "throttle_rate_limit": str(THROTTLE_RATE_RPS),
            "throttle_burst_limit": str(THROTTLE_BURST),
        },
    )
    images = workdir / "images"
    images.mkdir()
    for digit in sorted((workdir / "data" / "test").iterdir()):
        for png in sorted(digit.glob("*.png"))[:3]:
            shutil.copyfile(png, images / f"{digit.name}-{png.name}")
    with harness.start_stage(app, workdir / "run") as stage:
        output = drive(stage.url, stage.key, images, steps, workdir)
        restarts = sum(p["restarts"] for p in stage.state["processes"])
    log.info("locust:\n%s", output)
    evaluate(section, steps, throttled_error(app))
    chart = plots.load_chart(
        [
            {
                "users": s.users,
                "offered_rps": s.offered_rps,
                "seconds": s.span_s,
                "statuses": s.statuses(),
                "no_response": s.no_response,
                "p50_ms": s.latency_ms(0.5),
                "p99_ms": s.latency_ms(0.99),
            }
            for s in steps
        ],
        THROTTLE_RATE_RPS,
        THROTTLE_BURST,
        workdir / "load.png",
    )
    section.figures.append(
        (
            "Answers per second by status and latency per step; the dashed line is the throttle",
            chart,
        )
    )
    section.check(
        "no local-stage process crashed or restarted under load",
        restarts == 0,
        f"{restarts} restarts in state.json",
    )
    section.notes.append(
        "The 429s are API Gateway's token buckets (stage method throttle and usage plan, both "
        f"{THROTTLE_RATE_RPS} req/s, burst {THROTTLE_BURST}), answered before the Lambda runs; "
        "the model behind them never saw more than the throttle let through. Latency is "
        "loopback on a shared machine, locust included: a shape, not AWS's figures."
    )
    return section

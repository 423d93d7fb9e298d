"""Faults under load: a Ray Serve replica killed, the model too slow, the model raising, the
runtime API killed; for each, which requests failed, how, and how long until every request
succeeded again.

The real CDK app is synthesized around the local stage's test model
(``local_stage.testing.build_torch_artifact``: a tiny model for AWS's Ray Serve container whose
``inference.py`` obeys control inputs: ``sleep_s`` sleeps, ``fail`` raises ``ValueError``) and
served by the local stage with the real Lambda handler, which passes an ``{"instances": ...}``
body to the endpoint byte for byte, so every fault travels the whole path a client's request
takes. A steady load from client threads (each paced) runs below the throttle; mid-run one fault
is injected and every request's send time, end time, status and body are recorded.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from container_contract.ray_serve import replica_pids
from local_stage import harness
from local_stage.testing import build_torch_artifact, pack
from reliability import plots
from reliability.report import Section, Table

log = logging.getLogger(__name__)

CLIENTS = 4  # client threads
CLIENT_RPS = 6.0  # each client's pace: 24 req/s in all, far below the throttle
THROTTLE_RATE_RPS = 200
THROTTLE_BURST = 400
READ_TIMEOUT_S = 2.0  # the Lambda's InvokeEndpoint read timeout here (25 s on AWS)
SLOW_S = 5.0  # how long the slow request makes the model sleep: past the read timeout
BUSY_S = 0.9  # model time of the requests in flight when a worker is killed (under the timeout)
CLIENT_TIMEOUT_S = 40.0  # past API Gateway's 29 s: a request still open now has hung
# A failed request counts as in flight at the fault if it was sent before the fault and ended
# after it; this much slack covers the clocks of the two threads involved.
IN_FLIGHT_SLACK_S = 0.05
BODY = {"instances": [[0.1, 0.2, 0.3, 0.4]]}


@dataclass
class Record:
    sent: float  # seconds since the run began
    ended: float
    status: int  # 0: no HTTP answer
    body: str
    control: str = ""  # "" for the steady load; the fault's own requests say which

    def error(self) -> tuple[str, str]:
        """(code, message) of an error answer, as the Lambda or API Gateway shaped it."""
        try:
            doc = json.loads(self.body)
        except ValueError:
            return "", self.body[:200]
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            return str(doc["error"].get("code", "")), str(doc["error"].get("message", ""))
        if isinstance(doc, dict) and "message" in doc:
            return "", str(doc["message"])
        return "", self.body[:200]


@dataclass
class Outcome:
    name: str
    records: list[Record]
    fault_at: float  # seconds since the run began
    outage_until: float | None = None  # a restarted process accepting connections again
    restarted: str = ""  # what the supervisor restarted, and how fast
    notes: str = ""
    extra_checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.status != 200]

    def at_fault(self, r: Record) -> bool:
        """Sent before the fault and still open when it struck, or sent while the restarted
        process was not yet back, or one of the fault's own requests."""
        if r.control:
            return True
        if r.sent <= self.fault_at + IN_FLIGHT_SLACK_S and r.ended >= self.fault_at:
            return True
        return self.outage_until is not None and self.fault_at <= r.sent <= self.outage_until

    def in_flight(self) -> int:
        """Requests open when the fault struck (whatever their outcome)."""
        return sum(1 for r in self.records if r.sent <= self.fault_at <= r.ended)

    def slowest_ok_s(self) -> float:
        """The longest successful steady-load request sent after the fault."""
        return max(
            (
                r.ended - r.sent
                for r in self.records
                if r.status == 200 and not r.control and r.sent >= self.fault_at
            ),
            default=0.0,
        )

    def recovery_s(self) -> float:
        """From the fault until the last failed request ended; every request after succeeded."""
        if not self.failed:
            return 0.0
        return max(r.ended for r in self.failed) - self.fault_at

    def after_recovery(self) -> list[Record]:
        last = self.fault_at + self.recovery_s()
        return [r for r in self.records if r.sent > last]


class Load:
    """Client threads posting ``BODY`` at a steady pace; every request recorded."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url + "/predict"
        self.headers = {"x-api-key": key, "Content-Type": "application/json"}
        self.t0 = time.monotonic()
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def send(self, session: requests.Session, body: dict[str, Any], control: str = "") -> Record:
        sent = self.now()
        try:
            resp = session.post(
                self.url, data=json.dumps(body), headers=self.headers, timeout=CLIENT_TIMEOUT_S
            )
            status, text = resp.status_code, resp.text
        except requests.RequestException as exc:
            status, text = 0, f"{type(exc).__name__}: {exc}"
        record = Record(sent, self.now(), status, text[:500], control)
        with self.lock:
            self.records.append(record)
        return record

    def _client(self, index: int) -> None:
        period_s = 1.0 / CLIENT_RPS
        # Spread the clients' first requests over one period.
        next_at = time.monotonic() + period_s * index / CLIENTS
        with requests.Session() as session:
            while not self.stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    break
                next_at = max(next_at + period_s, time.monotonic())
                self.send(session, BODY)

    def __enter__(self) -> Load:
        for i in range(CLIENTS):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(CLIENT_TIMEOUT_S + 5)


def _process(stage: harness.Stage, role: str, **match: Any) -> dict[str, Any]:
    for p in stage.processes(role):
        if all(p.get(k) == v for k, v in match.items()):
            return p
    raise RuntimeError(f"no {role} process {match} in {stage.state_path}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _wait_restarted(
    stage: harness.Stage, role: str, old_pid: int, load: Load, timeout_s: float, **match: Any
) -> tuple[float | None, int]:
    """(when the replacement accepted connections, its pid) or (None, 0) if it never did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            proc = _process(stage, role, **match)
        except (RuntimeError, ValueError, OSError):  # state.json being replaced
            proc = {}
        running = proc.get("pid") not in (None, old_pid) and proc.get("running")
        if running and _accepts(proc["port"]):
            return load.now(), proc["pid"]
        time.sleep(0.02)
    return None, 0


# ---- the faults ------------------------------------------------------------------------------


def _replica_back(port: int, root: int, old: int) -> bool:
    """A new replica runs in the container and the instance answers a request."""
    current = replica_pids(root)
    if not current or old in current:
        return False
    try:
        resp = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(BODY),
            headers={"Content-Type": "application/json"},
            timeout=2,
        )
    except requests.RequestException:
        return False
    return resp.status_code == 200


def kill_worker(stage: harness.Stage, load: Load, post_s: float) -> Outcome:
    instance = _process(stage, "model-server", instance=0)
    (victim, *_) = replica_pids(instance["pid"]) or [0]
    if not victim:
        raise RuntimeError(f"no Serve replica runs under {instance['name']} ({instance['pid']})")
    # Work in flight on every replica when the kill strikes: a few requests whose model call
    # takes BUSY_S (well under the read timeout), sent just before it.
    busy: list[threading.Thread] = []
    for _ in range(2 * CLIENTS):
        thread = threading.Thread(target=_send_once, args=(load, {**BODY, "sleep_s": BUSY_S}))
        thread.start()
        busy.append(thread)
    time.sleep(BUSY_S / 3)
    fault_at = load.now()
    os.kill(victim, signal.SIGKILL)
    back_at = None
    deadline = time.monotonic() + post_s + 60
    while time.monotonic() < deadline:
        if _replica_back(instance["port"], instance["pid"], victim):
            back_at = load.now()
            break
        time.sleep(0.1)
    time.sleep(max(0.0, fault_at + post_s - load.now()))
    for thread in busy:
        thread.join(CLIENT_TIMEOUT_S)
    # While Serve replaces the instance's only replica, requests routed there wait for it: those
    # that outlive the Lambda's read timeout fail, as requests to a restarting process do.
    outcome = Outcome("SIGKILL one Ray Serve replica", [], fault_at, outage_until=back_at)
    outcome.restarted = (
        f"Serve replaced the replica of {instance['name']}; answering after "
        f"{back_at - fault_at:.1f} s"
        if back_at is not None
        else f"no replica of {instance['name']} answered within {post_s + 60:g} s"
    )
    outcome.notes = (
        "the killed replica's requests in flight get Serve's 5xx from the container, which the "
        "Lambda reports as a model failure (502); the instance's container (Ray, the adapter) "
        "keeps running and answers /ping while Serve starts a new replica, so requests routed to "
        "it meanwhile wait for the new replica, and those that outlive the Lambda's read timeout "
        f"({READ_TIMEOUT_S:g} s here, 25 s on AWS) get 504"
    )
    outcome.extra_checks.append(
        ("Serve replaced the killed replica", back_at is not None, outcome.restarted)
    )
    return outcome


def _send_once(load: Load, body: dict[str, Any]) -> None:
    with requests.Session() as session:
        load.send(session, body, control="busy")


def slow_model(stage: harness.Stage, load: Load, post_s: float) -> Outcome:
    before = {p["name"]: p["restarts"] for p in stage.processes("model-server")}
    fault_at = load.now()
    with requests.Session() as session:
        slow = load.send(session, {**BODY, "sleep_s": SLOW_S}, control="slow")
    time.sleep(max(0.0, fault_at + SLOW_S + post_s - load.now()))
    after = {p["name"]: p["restarts"] for p in stage.processes("model-server")}
    outcome = Outcome(
        f"model slow past the timeout ({SLOW_S:g} s vs {READ_TIMEOUT_S:g} s)", [], fault_at
    )
    code, message = slow.error()
    outcome.extra_checks.append(
        (
            "the slow request was answered 504 with a timeout error",
            slow.status == 504 and "timeout" in (code + message).lower(),
            f"{slow.status} {code}: {message} after {slow.ended - slow.sent:.1f} s",
        )
    )
    outcome.extra_checks.append(
        (
            "the model server kept serving through and after the slow request (no restart)",
            before == after,
            f"restarts before {before}, after {after}",
        )
    )
    return outcome


def failing_model(stage: harness.Stage, load: Load, post_s: float) -> Outcome:
    fault_at = load.now()
    controls = []
    with requests.Session() as session:
        for i in range(3):
            body = {**BODY, "fail": f"reliability fault {i}"}
            controls.append(load.send(session, body, control="fail"))
            time.sleep(0.3)
    time.sleep(max(0.0, fault_at + post_s - load.now()))
    outcome = Outcome("model raises (ValueError in input_fn)", [], fault_at)
    named = [
        r for r in controls if r.status >= 400 and "the model refused this input" in r.error()[1]
    ]
    outcome.extra_checks.append(
        (
            "each request the model raised on failed with an error naming the model's exception",
            len(named) == len(controls),
            "; ".join(f"{r.status} {r.error()[0]}: {r.error()[1]}" for r in controls),
        )
    )
    return outcome


def kill_runtime_api(stage: harness.Stage, load: Load, post_s: float) -> Outcome:
    victim = _process(stage, "runtime-api")
    fault_at = load.now()
    os.kill(victim["pid"], signal.SIGKILL)
    back_at, _ = _wait_restarted(stage, "runtime-api", victim["pid"], load, post_s + 30)
    time.sleep(max(0.0, fault_at + post_s - load.now()))
    outcome = Outcome("SIGKILL the runtime API", [], fault_at, outage_until=back_at)
    outcome.restarted = (
        f"runtime API restarted and accepting after {back_at - fault_at:.2f} s"
        if back_at is not None
        else f"runtime API was not back within {post_s + 30:g} s"
    )
    outcome.extra_checks.append(
        ("the supervisor restarted the runtime API", back_at is not None, outcome.restarted)
    )
    return outcome


FAULTS: list[Callable[[harness.Stage, Load, float], Outcome]] = [
    kill_worker,
    slow_model,
    failing_model,
    kill_runtime_api,
]


def inject(
    stage: harness.Stage, fault: Callable[..., Outcome], pre_s: float, post_s: float
) -> Outcome:
    with Load(stage.url, stage.key) as load:
        time.sleep(pre_s)
        outcome = fault(stage, load, post_s)
    outcome.records = sorted(load.records, key=lambda r: r.sent)
    return outcome


# ---- the report --------------------------------------------------------------------------------


def _failure_kinds(records: list[Record]) -> str:
    kinds = Counter(f"{r.status} {r.error()[0] or r.error()[1][:40]}".strip() for r in records)
    return ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "none"


def evaluate(section: Section, outcomes: list[Outcome]) -> None:
    rows = []
    for o in outcomes:
        failed = o.failed
        stray = [r for r in failed if not o.at_fault(r)]
        rows.append(
            [
                o.name,
                len(o.records),
                o.in_flight(),
                len(failed),
                _failure_kinds(failed),
                len(stray),
                o.recovery_s(),
                o.slowest_ok_s(),
                o.restarted or "-",
            ]
        )
        section.check(
            f"{o.name}: only requests in flight at the fault failed",
            not stray,
            (
                f"{len(stray)} failed outside it, e.g. "
                + "; ".join(
                    f"sent {r.sent - o.fault_at:+.2f} s, ended {r.ended - o.fault_at:+.2f} s: "
                    f"{r.status} {r.body[:150]}"
                    for r in stray[:3]
                )
                if stray
                else f"{len(failed)} failed, all in flight at the fault"
                + (
                    f" or sent while it was restarting (until {o.outage_until - o.fault_at:.2f} s)"
                    if o.outage_until is not None
                    else ""
                )
            ),
        )
        unclear = [
            r for r in failed if r.status < 400 or not r.error()[1] or r.error()[1] == r.body[:200]
        ]
        section.check(
            f"{o.name}: each failed request got a clear error (an HTTP error status with a JSON "
            "message)",
            not unclear,
            "; ".join(f"{r.status} {r.body[:150]}" for r in unclear[:3])
            or (_failure_kinds(failed) if failed else "nothing failed"),
        )
        after = o.after_recovery()
        section.check(
            f"{o.name}: service recovered by itself (every request after the last failure "
            "succeeded, at least 10 of them)",
            len(after) >= 10 and all(r.status == 200 for r in after),
            f"{len(after)} requests after {o.recovery_s():.2f} s, "
            f"{sum(r.status == 200 for r in after)} succeeded",
        )
        for name, passed, detail in o.extra_checks:
            section.check(f"{o.name}: {name}", passed, detail)
        if o.notes:
            section.notes.append(f"{o.name}: {o.notes}.")
    section.tables.append(
        Table(
            "Each fault under a steady load: requests sent during the run, those open when the "
            "fault struck, those that failed and how (status and error code), how many failed "
            "without being in flight at the fault, the seconds from the fault until the last "
            "failed request ended (after it, every request succeeded), the slowest successful "
            "request sent after the fault, and what the supervisor restarted",
            [
                "fault",
                "requests",
                "in flight at fault",
                "failed",
                "failures (status code)",
                "failed, not in flight",
                "recovery s",
                "slowest 200 after fault, s",
                "restart",
            ],
            rows,
        )
    )


def build_assembly(workdir: Path) -> Path:
    model_dir = build_torch_artifact(workdir / "model")
    tarball = pack(model_dir, workdir / "artifacts" / "faults" / "model.tar.gz")
    return harness.synth(
        workdir / "cdk.out",
        {
            **harness.DIGITS_CONTEXT,
            "artifact_path": str(tarball),
            "framework": "pytorch",
            "framework_version": "1.4",
            "endpoint_content_type": "application/json",
            "container_env": json.dumps({"SAGEMAKER_PROGRAM": "inference.py"}),
            "throttle_rate_limit": str(THROTTLE_RATE_RPS),
            "throttle_burst_limit": str(THROTTLE_BURST),
        },
    )


def run(quick: bool, workdir: Path) -> Section:
    rounds = 1 if quick else 3
    pre_s, post_s = (1.5, 4.0) if quick else (3.0, 10.0)
    section = Section(
        key="faults",
        title="Faults",
        method=(
            "The real CDK app is synthesized around a tiny model for AWS's Ray Serve container "
            "whose `inference.py` obeys control inputs (`sleep_s` sleeps, `fail` raises "
            "ValueError) and served by the local stage (two instances, each real Ray Serve with "
            "one replica behind the container's adapter, "
            "runtime API, API front with the real Lambda handler, its InvokeEndpoint read "
            f"timeout set to {READ_TIMEOUT_S:g} s instead of 25 s to keep the run short). "
            f"{CLIENTS} client threads each post `{json.dumps(BODY)}` to `POST /predict` at "
            f"{CLIENT_RPS:g} req/s ({CLIENTS * CLIENT_RPS:g} req/s, far below the "
            f"{THROTTLE_RATE_RPS} req/s throttle) and record every request's send and end time, "
            f"status and body. After {pre_s:g} s one fault is injected; the load goes on for "
            f"{post_s:g} s more ({rounds} run(s) per fault): SIGKILL of one Serve replica "
            "(`ray::ServeReplica`, under an instance's pid from state.json); one request whose "
            "model call sleeps "
            f"{SLOW_S:g} s; three requests the model raises on; SIGKILL of the runtime API. A "
            "failed request is in flight at the fault if it was sent before the fault and "
            "ended after it, was one of the fault's own requests, or (a killed process) was sent "
            "before the supervisor's replacement accepted connections."
        ),
    )
    app = build_assembly(workdir)
    outcomes: list[Outcome] = []
    extra = ["--instances", "2"]
    extra += ["--lambda-env", f"INVOKE_READ_TIMEOUT_S={READ_TIMEOUT_S:g}"]
    with harness.start_stage(app, workdir / "run", extra_args=extra) as stage:
        for _ in range(rounds):
            for fault in FAULTS:
                outcome = inject(stage, fault, pre_s, post_s)
                log.info(
                    "%s: %d failed of %d", outcome.name, len(outcome.failed), len(outcome.records)
                )
                outcomes.append(outcome)
    evaluate(section, outcomes)
    first: dict[str, Outcome] = {}
    for outcome in outcomes:
        first.setdefault(outcome.name, outcome)
    chart = plots.faults_chart(
        [
            {
                "name": o.name,
                "fault_at": o.fault_at,
                "recovery_s": o.recovery_s(),
                "records": [(r.sent, r.ended, r.status) for r in o.records],
            }
            for o in first.values()
        ],
        workdir / "faults.png",
    )
    section.figures.append(
        (
            "Every request of each fault's first run: when it was sent (0 = the fault) and how "
            "long it took, by status; the shaded span is the time to recovery",
            chart,
        )
    )
    return section

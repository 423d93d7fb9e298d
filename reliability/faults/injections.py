"""The faults, each injected under a steady load: a replica killed, the model slow or raising,
the runtime API killed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from container_contract.ray_serve import replica_pids
from local_stage import harness
from reliability.faults.processes import replica_back, stage_process, wait_restarted
from reliability.faults.records import Outcome
from reliability.faults.traffic import BODY, CLIENT_TIMEOUT_S, CLIENTS, Load

READ_TIMEOUT_S = 2.0  # the Lambda's InvokeEndpoint read timeout here (25 s on AWS)
SLOW_S = 5.0  # how long the slow request makes the model sleep: past the read timeout
BUSY_S = 0.9  # model time of the requests in flight when a worker is killed (under the timeout)


def kill_worker(stage: harness.Stage, load: Load, post_s: float) -> Outcome:
    instance = stage_process(stage, "model-server", instance=0)
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
        if replica_back(instance["port"], instance["pid"], victim):
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
    victim = stage_process(stage, "runtime-api")
    fault_at = load.now()
    os.kill(victim["pid"], signal.SIGKILL)
    back_at, _ = wait_restarted(stage, "runtime-api", victim["pid"], load, post_s + 30)
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

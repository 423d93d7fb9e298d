"""The faults scenario: the test model's stage, every fault injected in turn, the report section."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from local_stage import harness
from model_export.tarball import write_tarball
from reliability import plots
from reliability.fault_model import build_torch_artifact
from reliability.faults.evaluation import evaluate
from reliability.faults.injections import FAULTS, READ_TIMEOUT_S, SLOW_S, inject
from reliability.faults.records import Outcome
from reliability.faults.traffic import BODY, CLIENT_RPS, CLIENTS
from reliability.report import Section

log = logging.getLogger(__name__)

THROTTLE_RATE_RPS = 200
THROTTLE_BURST = 400


def build_assembly(workdir: Path) -> Path:
    model_dir = build_torch_artifact(workdir / "model")
    tarball = workdir / "artifacts" / "faults" / "model.tar.gz"
    write_tarball(model_dir, tarball)
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

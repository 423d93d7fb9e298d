"""schemathesis (v4, its Python engine) over the published OpenAPI document, against a live URL."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from reliability.bad_input.error_body import HTTP_TIMEOUT_S, HttpTally
from stacks.openapi import OPENAPI_PATH

# Checks we leave out of schemathesis' defaults, and why (the notes repeat this).
EXCLUDED_CHECKS = {
    "positive_data_acceptance": "a schema-valid body is not always one the model can serve: "
    '`{"instances": [null]}` fits the published schema (instances are model-specific) and the '
    "model rightly answers 400 ModelRejectedInput",
    "unsupported_method": "API Gateway answers a method a resource does not define as an unknown "
    "route (our 404 NotFound GatewayResponse), never 405; the REST API cannot do otherwise "
    "without a mock method per resource",
}


@dataclass
class SchemathesisResult:
    tally: HttpTally
    check_runs: Counter[str]
    check_failures: dict[str, list[str]]
    errors: list[str]
    phases: list[str]
    seconds: float


def run_schemathesis(url: str, api_key: str, max_examples: int) -> SchemathesisResult:
    import schemathesis
    from schemathesis.engine import events, from_schema

    document = json.loads(OPENAPI_PATH.read_text())
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=url, headers={"x-api-key": api_key})
    schema.config.generation.update(max_examples=max_examples)
    schema.config.checks.update(excluded_check_names=list(EXCLUDED_CHECKS))
    schema.config.update(request_timeout=HTTP_TIMEOUT_S)
    tally = HttpTally()

    def after_call(context: Any, case: Any, response: Any) -> None:
        what = f"{case.method} {case.path} ({case.media_type or 'no body'})"
        tally.add(
            what,
            response.status_code,
            response.headers.get("content-type", [None])[0],
            response.content,
        )

    schema.hook(after_call)
    check_runs: Counter[str] = Counter()
    failures: dict[str, list[str]] = {}
    errors: list[str] = []
    phases: list[str] = []
    start = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    check_runs[node.name] += 1
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        failures.setdefault(node.name, []).append(
                            f"{event.recorder.label}: {failure.title}: {failure.message[:300]}"
                        )
        elif isinstance(event, events.PhaseStarted):
            phases.append(str(event.phase.name.value))
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.title}: {str(event.value)[:300]}")
        elif isinstance(event, events.FatalError):
            errors.append(f"fatal: {event.exception!r}")
    return SchemathesisResult(tally, check_runs, failures, errors, phases, time.monotonic() - start)

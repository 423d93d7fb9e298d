"""The bad-input scenario: three runs against one local stage, and their section of the report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from local_stage import harness
from reliability.bad_input.error_body import HttpTally
from reliability.bad_input.handler_fuzz import FuzzResult, run_handler_fuzz
from reliability.bad_input.probes import ProbeOutcome, probes, run_probes
from reliability.bad_input.schemathesis_run import (
    EXCLUDED_CHECKS,
    SchemathesisResult,
    run_schemathesis,
)
from reliability.report import Section, Table

# High enough that schemathesis' bursts are never throttled (throttling is the load scenario's).
CONTEXT = {"throttle_rate_limit": "2000", "throttle_burst_limit": "4000"}
QUICK = {"schemathesis_examples": 8, "fuzz_events": 250}
FULL = {"schemathesis_examples": 100, "fuzz_events": 3000}


def _first(items: list[str], n: int = 3) -> str:
    return "; ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _statuses(counter: Counter[int]) -> str:
    return ", ".join(f"{status}: {count}" for status, count in sorted(counter.items()))


def run(quick: bool, workdir: Path) -> Section:
    sizes = QUICK if quick else FULL
    section = Section(key="bad_input", title="Bad input", method=_method(sizes))
    app = harness.digits_assembly(workdir, CONTEXT)
    with harness.start_stage(app, workdir / "run") as stage:
        state = stage.state
        st_result = run_schemathesis(stage.url, stage.key, sizes["schemathesis_examples"])
        probe_tally = HttpTally()
        probe_outcomes = run_probes(stage.url, stage.key, probe_tally)
        fuzz = run_handler_fuzz(state["endpoint_name"], state["runtime_url"], sizes["fuzz_events"])
        restarts = sum(p.get("restarts", 0) for p in stage.state["processes"])

    _add_tables(section, st_result, probe_tally, probe_outcomes, fuzz)
    _add_checks(section, st_result, probe_tally, probe_outcomes, fuzz, restarts)
    section.notes.append(
        "Checks left out of schemathesis' defaults: "
        + "; ".join(f"`{name}`: {why}" for name, why in EXCLUDED_CHECKS.items())
        + "."
    )
    return section


def _method(sizes: dict[str, int]) -> str:
    return (
        "The API's published OpenAPI 3.0 description (`lambda_src/openapi.json`; API "
        "Gateway's request model is generated from it, so the two cannot drift) drives "
        f"schemathesis {_schemathesis_version()} against the local stage serving the real "
        "digits model (API front with API Gateway's validation, API key and GatewayResponses; "
        "the real Lambda handler; runtime API; model server), throttle raised out of the way. "
        "Its phases (explicit examples, coverage: boundary values, missing headers and API "
        "key, negative bodies; hypothesis fuzzing) run with "
        f"{sizes['schemathesis_examples']} examples per operation and its default checks "
        "(no 5xx, documented status, content type, headers and response schema, negative "
        "data rejected, auth enforced) except the ones named below. Then "
        f"{len(probes())} raw HTTP probes send what schemathesis cannot (invalid UTF-8, UTF-16, "
        "NaN, 5000-deep nesting, 7-11 MB bodies, wrong charsets, non-image images, no or "
        "wrong API key). Last, the unmodified `lambda_src` handler is imported in-process "
        f"and fed {sizes['fuzz_events']} hypothesis-generated events: the REST API "
        "samples of `tests/events/` with fields missing or of the wrong type, "
        "non-object events, huge bodies (7 MB text, 10 MB base64, 200,000-deep arrays), "
        "invalid base64, odd Unicode (NUL, lone surrogates, BOM, bidi overrides, unassigned "
        "code points) and odd headers; its SageMaker client talks to the stage's runtime API "
        "and the real model. Every answer >= 400 is validated with jsonschema against the "
        "document's `Error` schema; every request is a client's fault against a healthy "
        "stack, so any 5xx counts as a failure."
    )


def _add_tables(
    section: Section,
    st_result: SchemathesisResult,
    probe_tally: HttpTally,
    probe_outcomes: list[ProbeOutcome],
    fuzz: FuzzResult,
) -> None:
    tally = st_result.tally
    section.tables.append(
        Table(
            "HTTP against the local stage",
            ["source", "requests", "statuses", "5xx", "error bodies off the documented shape"],
            [
                [
                    "schemathesis",
                    tally.requests,
                    _statuses(tally.statuses),
                    len(tally.server_errors),
                    len(tally.bad_bodies),
                ],
                [
                    "raw probes",
                    probe_tally.requests,
                    _statuses(probe_tally.statuses),
                    len(probe_tally.server_errors),
                    len(probe_tally.bad_bodies),
                ],
            ],
        )
    )
    section.tables.append(
        Table(
            f"schemathesis checks (phases: {', '.join(st_result.phases)}; {st_result.seconds:.0f} s)",
            ["check", "runs", "failures"],
            [
                [name, runs, len(st_result.check_failures.get(name, []))]
                for name, runs in sorted(st_result.check_runs.items())
            ],
        )
    )
    section.tables.append(
        Table(
            "Raw probes",
            ["probe", "status", "expected"],
            [[o.name, o.status, "/".join(map(str, sorted(o.expected)))] for o in probe_outcomes],
        )
    )
    section.tables.append(
        Table(
            f"Handler fuzz ({fuzz.seconds:.0f} s)",
            [
                "events",
                "statuses",
                "5xx",
                "crashes (raised)",
                "malformed responses",
                "error bodies off the documented shape",
            ],
            [
                [
                    fuzz.events,
                    _statuses(fuzz.statuses),
                    len(fuzz.server_errors),
                    len(fuzz.crashes),
                    len(fuzz.malformed),
                    len(fuzz.bad_bodies),
                ]
            ],
        )
    )
    section.tables.append(
        Table(
            "Handler fuzz: error codes answered",
            ["code", "answers"],
            [[code, n] for code, n in fuzz.codes.most_common()],
        )
    )


def _add_checks(
    section: Section,
    st_result: SchemathesisResult,
    probe_tally: HttpTally,
    probe_outcomes: list[ProbeOutcome],
    fuzz: FuzzResult,
    restarts: int,
) -> None:
    tally = st_result.tally
    all_failures = [f for fs in st_result.check_failures.values() for f in fs]
    section.check(
        "schemathesis ran every operation and found no failure",
        st_result.check_runs["not_a_server_error"] > 0
        and not all_failures
        and not st_result.errors,
        f"{tally.requests} requests, {sum(st_result.check_runs.values())} check runs"
        + (f"; failures: {_first(all_failures)}" if all_failures else "")
        + (f"; errors: {_first(st_result.errors)}" if st_result.errors else ""),
    )
    server_errors = tally.server_errors + probe_tally.server_errors + fuzz.server_errors
    section.check(
        "zero 5xx for client faults (HTTP and handler)",
        not server_errors,
        f"{len(server_errors)} of {tally.requests + probe_tally.requests + fuzz.events}"
        + (f": {_first(server_errors)}" if server_errors else ""),
    )
    crashes = fuzz.crashes + fuzz.malformed
    section.check(
        "zero crashes: nothing raised out of the handler, every answer a valid proxy response, "
        "no stage process restarted",
        fuzz.events > 0 and not crashes and restarts == 0,
        f"{len(fuzz.crashes)} raised, {len(fuzz.malformed)} malformed of {fuzz.events} events; "
        f"{restarts} restarts" + (f": {_first(crashes)}" if crashes else ""),
    )
    bad_bodies = tally.bad_bodies + probe_tally.bad_bodies + fuzz.bad_bodies
    errors_seen = sum(
        n for s, n in (tally.statuses + probe_tally.statuses + fuzz.statuses).items() if s >= 400
    )
    section.check(
        "every error body is in the documented shape (OpenAPI Error schema)",
        errors_seen > 0 and not bad_bodies,
        f"{errors_seen} error answers checked"
        + (f"; off: {_first(bad_bodies)}" if bad_bodies else ""),
    )
    wrong = [f"{o.name}: {o.problem}" for o in probe_outcomes if o.problem]
    section.check(
        "every raw probe got its documented status and error body",
        not wrong,
        f"{len(probe_outcomes)} probes" + (f"; {_first(wrong, 5)}" if wrong else ""),
    )


def _schemathesis_version() -> str:
    from importlib.metadata import version

    return version("schemathesis")

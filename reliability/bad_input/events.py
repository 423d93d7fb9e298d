"""Hypothesis events for the handler fuzz: the REST API samples of ``tests/events/`` broken."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from local_stage import harness
from reliability.bad_input.probes import PNG_SIGNATURE

EVENTS = harness.REPO / "tests" / "events"


def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def event_strategy() -> Any:
    """Hypothesis events: real REST API (v1) samples with their parts broken."""
    from hypothesis import strategies as st

    samples = [_sample(p.name) for p in sorted(EVENTS.glob("*.json"))]
    odd_text = _odd_text(st)
    json_value = _json_value(st, odd_text)
    anything = json_value | st.lists(json_value, max_size=2)
    events = _events(
        st,
        samples=samples,
        odd_text=odd_text,
        anything=anything,
        bodies=_bodies(st, odd_text, json_value),
        content_types=_content_types(st, odd_text),
    )
    # Mostly events (nine in ten), the rest not an event at all.
    return st.integers(0, 9).flatmap(lambda n: events() if n else anything | st.just(None))


def _odd_text(st: Any) -> Any:
    return st.text(
        # Letters, marks, symbols, controls (NUL), format characters, private use, unassigned and
        # lone surrogates (Cs): what a JSON string can carry as a \u escape.
        alphabet=st.characters(
            categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co", "Cn", "Cs"]
        ),
        max_size=40,
    ) | st.sampled_from(["\x00", "\ud800", "\udfff", "\ufeff{}", "\u202e", "\U0010ffff", "a\x00b"])


def _json_value(st: Any, odd_text: Any) -> Any:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | odd_text
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["instances", "inputs", "image", "images", "text", "texts", "b64"])
                | odd_text,
                inner,
                max_size=4,
            )
        ),
        max_leaves=10,
    )


def _dumps(doc: Any) -> str:
    return json.dumps(doc, allow_nan=True)


def _bodies(st: Any, odd_text: Any, json_value: Any) -> Any:
    """Request bodies: none, odd text, JSON of any shape or of the API's keys, bad base64, huge."""
    b64_png = base64.b64encode(PNG_SIGNATURE + bytes(40)).decode()
    huge = [
        json.dumps({"texts": ["a" * (7 * 2**20)]}),
        json.dumps({"images": [base64.b64encode(bytes(5 * 2**20)).decode()] * 2}),
        base64.b64encode(PNG_SIGNATURE + bytes(7 * 2**20)).decode(),
        "[" * 200_000 + "]" * 200_000,
        '{"instances": ' + "[" * 100_000 + "1" + "]" * 100_000 + "}",
        "x" * (6 * 2**20 + 1),
    ]
    shaped = st.fixed_dictionaries(
        {},
        optional={
            key: json_value | st.just(b64_png) | st.lists(st.just(b64_png), max_size=3)
            for key in ("instances", "inputs", "image", "images", "text", "texts")
        },
    )
    return st.one_of(
        st.none(),
        odd_text,
        json_value.map(_dumps),
        shaped.map(_dumps),
        st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
        st.sampled_from(["!!!!", "AAA", "A===", "====", "YQ", b64_png + "\n", "data:;base64,AAAA"]),
        st.sampled_from(huge),
        st.integers()
        | st.lists(st.integers(), max_size=2)
        | st.dictionaries(odd_text, odd_text, max_size=2),
    )


def _content_types(st: Any, odd_text: Any) -> Any:
    odd_content_types = (
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=UTF-8",
                "image/png",
                "image/jpeg",
                "application/json; charset=utf-16",
                "APPLICATION/JSON",
                "image/*",
                "",
                ";",
                "text/csv",
            ]
        )
        | odd_text
        | st.none()
        | st.integers()
    )
    # Half the events say JSON, so the body's own faults are reached, not only the 415.
    return st.booleans().flatmap(
        lambda json_ct: st.just("application/json") if json_ct else odd_content_types
    )


def _events(
    st: Any,
    *,
    samples: list[dict[str, Any]],
    odd_text: Any,
    anything: Any,
    bodies: Any,
    content_types: Any,
) -> Any:
    """A sample event with its headers, body, method, path and top-level fields broken."""
    header_values = odd_text | st.none() | st.integers() | st.lists(odd_text, max_size=2)

    @st.composite
    def events(draw: Any) -> Any:
        event = copy.deepcopy(draw(st.sampled_from(samples)))
        headers = event.get("headers") or {}
        headers.pop("content-type", None)
        headers.pop("Content-Type", None)
        ct = draw(content_types)
        if ct is not None:
            headers[draw(st.sampled_from(["Content-Type", "content-type", "CONTENT-TYPE"]))] = ct
        if draw(st.booleans()):
            headers[draw(st.sampled_from(["Accept", "accept"]) | odd_text)] = draw(header_values)
        if draw(st.integers(0, 4)) == 0:
            headers = draw(st.none() | st.lists(odd_text, max_size=2) | odd_text)
        event["headers"] = headers
        event["body"] = draw(bodies)
        event["isBase64Encoded"] = draw(st.booleans() | st.sampled_from([None, "true", 1, "false"]))
        if draw(st.integers(0, 3)) == 0:
            method = draw(
                st.sampled_from(["GET", "POST", "OPTIONS", "DELETE", "post"])
                | odd_text
                | st.none()
                | st.integers()
            )
            event["httpMethod"] = method
        if draw(st.integers(0, 3)) == 0:
            path = draw(
                st.sampled_from(
                    ["/predict", "/health", "/predict/", "//predict", "/Predict", "/{proxy+}"]
                )
                | odd_text
                | st.none()
            )
            for key in ("path", "resource"):
                event[key] = path
        # Missing or replaced top-level fields, in about one event in three.
        for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2]))):
            key = draw(st.sampled_from(sorted(event)))
            if draw(st.booleans()):
                event.pop(key)
            else:
                event[key] = draw(anything)
        ctx = event.get("requestContext")
        if isinstance(ctx, dict) and ctx and draw(st.integers(0, 4)) == 0:
            ctx[draw(st.sampled_from(sorted(ctx)))] = draw(anything)
        return event

    return events

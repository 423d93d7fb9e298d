"""The documented error body (the OpenAPI document's ``Error`` schema) and a tally of HTTP
answers against it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import jsonschema

from stacks.openapi import draft4_schema

HTTP_TIMEOUT_S = 60


def error_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(draft4_schema("Error"))


def error_body_problem(status: int, content_type: str | None, body: bytes | str) -> str | None:
    """Why an error answer is not the documented error body; None when it is."""
    if status < 400:
        return None
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        return f"Content-Type {content_type!r}, not application/json"
    try:
        doc = json.loads(body)
    except ValueError as err:
        return f"body is not JSON ({err})"
    errors = sorted(error_validator().iter_errors(doc), key=str)
    if errors:
        return f"body {str(body)[:200]!r} fails the Error schema: {errors[0].message}"
    return None


@dataclass
class HttpTally:
    """Counts over HTTP answers: statuses, 5xx and error bodies off the documented shape."""

    statuses: Counter[int] = field(default_factory=Counter)
    bad_bodies: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def add(self, what: str, status: int, content_type: str | None, body: bytes | str) -> None:
        self.statuses[status] += 1
        problem = error_body_problem(status, content_type, body)
        if problem:
            self.bad_bodies.append(f"{what} -> {status}: {problem}")
        if status >= 500:
            self.server_errors.append(f"{what} -> {status} {str(body)[:200]!r}")

"""Bad input: the published OpenAPI description fuzzed over HTTP, and the Lambda handler fuzzed
with malformed events.

1. **schemathesis** (v4, its Python engine) reads ``lambda_src/openapi.json`` (the document API
   Gateway's request model is built from) and runs its phases (explicit examples, coverage:
   boundary values, missing and wrong headers, no API key, negative bodies; hypothesis fuzzing)
   against the local stage serving the real digits model.
2. **Raw probes**: requests schemathesis cannot express (invalid UTF-8, a body over API Gateway's
   10 MB, a wrong charset, a missing Content-Type, ...) with the status each must get.
3. **Handler fuzz**: the unmodified ``lambda_src`` handler, imported in-process with the
   function's environment as the template sets it, gets hypothesis-generated events (REST API
   samples from ``tests/events/`` mutated: missing or ``None`` fields, wrong types,
   huge bodies, bad base64, odd Unicode, odd headers). Its SageMaker client talks to the stage's
   runtime API and the real model (no stub), so what reaches the model is answered by the model.

Every answer with a status >= 400 must be the documented error body (validated with jsonschema
against the document's ``Error`` schema). Every request here is a client's fault against a healthy
stack, so any 5xx is a failure, as is an exception escaping the handler.
"""

from reliability.bad_input.error_body import error_body_problem
from reliability.bad_input.events import event_strategy
from reliability.bad_input.probes import probes
from reliability.bad_input.scenario import CONTEXT, FULL, QUICK, run

__all__ = ["CONTEXT", "FULL", "QUICK", "error_body_problem", "event_strategy", "probes", "run"]

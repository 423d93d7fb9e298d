"""The one metric log-line format, and the SageMaker metric definitions that parse it.

Every training script logs its metrics with :func:`format_metrics`; the launchers hand
:func:`metric_definitions` to SageMaker (training jobs and hyperparameter tuning), whose regexes are
applied to each line of the job's log. Keeping both here means they cannot drift apart.

A line looks like::

    #metric epoch=3 train_loss=0.412 train_accuracy=0.871 valid_loss=0.455 valid_accuracy=0.85
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

PREFIX = "#metric"

# The metrics every reference script reports. `epoch` lets SageMaker plot the others against it.
STANDARD_METRICS: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "valid_loss",
    "valid_accuracy",
    "test_loss",
    "test_accuracy",
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# A float as Python prints it: 0.5, 1e-05, -3.2E+10, nan and inf are not emitted (see below).
_NUMBER = r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"


def format_metrics(values: Mapping[str, float | int]) -> str:
    """Return the log line for ``values``; names must be lower_snake_case and values finite."""
    parts = [PREFIX]
    for name, value in values.items():
        if not _NAME.match(name):
            raise ValueError(f"metric name {name!r} must be lower_snake_case (a-z, 0-9, _)")
        number = float(value)
        if not math.isfinite(number):
            # SageMaker's regexes cannot parse nan/inf; a non-finite loss is reported by the
            # training-health checks instead.
            continue
        text = str(int(number)) if isinstance(value, int) else f"{number:.6g}"
        parts.append(f"{name}={text}")
    return " ".join(parts)


def metric_regex(name: str) -> str:
    """The regex SageMaker applies to a log line to extract metric ``name`` (group 1)."""
    if not _NAME.match(name):
        raise ValueError(f"metric name {name!r} must be lower_snake_case (a-z, 0-9, _)")
    return rf"{re.escape(PREFIX)}\b.*?\b{name}=({_NUMBER})"


def metric_definitions(names: Iterable[str] = STANDARD_METRICS) -> list[dict[str, str]]:
    """SageMaker ``MetricDefinitions`` entries (``{"Name": ..., "Regex": ...}``) for ``names``."""
    return [{"Name": name, "Regex": metric_regex(name)} for name in names]


def parse_metric_line(line: str) -> dict[str, float]:
    """Parse one log line back into ``{name: value}``; lines without the prefix give ``{}``."""
    start = line.find(PREFIX)
    if start < 0:
        return {}
    result: dict[str, float] = {}
    for token in line[start + len(PREFIX) :].split():
        name, sep, value = token.partition("=")
        if sep and _NAME.match(name):
            try:
                result[name] = float(value)
            except ValueError:
                continue
    return result

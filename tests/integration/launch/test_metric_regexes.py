"""The metric regexes the launcher sends match the real log lines of a real (tiny) training run.

Runs training/image_classifier_torch.py on the digits data with ``--smoke true`` and the digits
model's launcher hyperparameters, passed the way SageMaker passes them (``--key value``), then
applies every regex of the training job's MetricDefinitions to the run's log.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from training.common.metrics import metric_definitions, parse_metric_line
from training.launch.models import get_model

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "training" / "image_classifier_torch.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCRIPT.is_file(), reason="training/image_classifier_torch.py not here"),
]


@pytest.fixture(scope="module")
def log_lines(tmp_path_factory) -> list[str]:
    tmp = tmp_path_factory.mktemp("digits")
    subprocess.run(
        [sys.executable, str(ROOT / "training/prepare_digits.py"), "--out", str(tmp / "data")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    hyperparameters = get_model("digits").hyperparameters
    hp_args = [arg for key, value in hyperparameters.items() for arg in (f"--{key}", str(value))]
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--data",
            str(tmp / "data"),
            *hp_args,
            "--smoke",
            "true",
            "--workers",
            "0",
            "--model-dir",
            str(tmp / "model"),
            "--output-dir",
            str(tmp / "output"),
            "--checkpoint-dir",
            str(tmp / "checkpoints"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return (result.stdout + result.stderr).splitlines()


def test_every_reported_metric_is_extracted_with_its_value(log_lines: list[str]) -> None:
    metric_lines = [line for line in log_lines if "#metric" in line]
    assert metric_lines, "the run logged no #metric line"
    definitions = metric_definitions()
    seen: set[str] = set()
    for line in metric_lines:
        expected = parse_metric_line(line)
        for definition in definitions:
            match = re.search(definition["Regex"], line)
            if definition["Name"] in expected:
                assert match, f"{definition['Name']} not extracted from {line!r}"
                assert float(match.group(1)) == pytest.approx(expected[definition["Name"]])
                seen.add(definition["Name"])
            else:
                assert match is None, f"{definition['Name']} wrongly found in {line!r}"
    # the tuning objective and the curves SageMaker plots all come through
    assert {"epoch", "train_loss", "valid_loss", "valid_accuracy", "test_accuracy"} <= seen


def test_no_other_log_line_yields_a_metric(log_lines: list[str]) -> None:
    for line in log_lines:
        if "#metric" not in line:
            assert not any(re.search(d["Regex"], line) for d in metric_definitions()), line

"""`python -m cost` on a template file: the table, --json, and the errors, without ML imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.cost_templates import SCALE_TO_ZERO, template

ROOT = Path(__file__).resolve().parents[3]


def cost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cost", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_json_for_a_scale_to_zero_template(tmp_path: Path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template(SCALE_TO_ZERO)))
    result = cost("--template", str(path), "--stage", "dev", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["capacity_mode"] == "scale_to_zero"
    assert out["min_instances"] == 0 and out["max_instances"] == 3
    instances = next(i for i in out["items"] if i["name"] == "SageMaker instances")
    assert instances["idle_monthly_usd"] == 0.0 and instances["per_million_usd"] > 0
    assert "ray_serve.json" in out["figures"]["bench_rps"]["source"]


def test_the_table_shows_items_totals_and_inputs(tmp_path: Path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template(SCALE_TO_ZERO)))
    result = cost("--template", str(path), "--region", "eu-west-1")
    assert result.returncode == 0, result.stderr
    for text in ("idle $/month", "$ per 1M predictions", "total", "bench_rps", "entered"):
        assert text in result.stdout


def test_an_unpriced_region_fails_before_any_synth():
    result = cost("--region", "ap-south-1")
    assert result.returncode == 2
    assert "ap-south-1" in result.stderr and "copy one region's block" in result.stderr


def test_the_cost_table_imports_no_ml_framework_nor_the_cdk():
    code = (
        "import sys, cost.__main__, cost.estimate, cost.template, cost.bench, cost.render; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'aws_cdk', 'matplotlib') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

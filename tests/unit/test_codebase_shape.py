"""The codebase's shape, as the README's layout section promises it: product modules stay small,
or say why not. The import graph is checked by `lint-imports` (`make lint`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = (
    "stacks",
    "lambda_src",
    "contracts",
    "container_contract",
    "model_export",
    "training",
    "local_stage",
    "account_setup",
    "cost",
    "reliability",
    "bench",
)
MAX_LINES = 400
# A module over MAX_LINES says why in a paragraph of its docstring that starts with this.
SIZE_REASON = "Size:"


def _product_modules() -> list[Path]:
    modules = [REPO / "app.py"]
    for package in PRODUCT:
        modules += sorted((REPO / package).rglob("*.py"))
    return [m for m in modules if "__pycache__" not in m.parts]


@pytest.mark.parametrize("module", _product_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_a_long_module_says_why_it_is_one_module(module: Path):
    lines = module.read_text(encoding="utf-8").count("\n")
    if lines <= MAX_LINES:
        return
    docstring = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))) or ""
    assert re.search(rf"^{SIZE_REASON} \S", docstring, re.MULTILINE), (
        f"{module.relative_to(REPO)} has {lines} lines (over {MAX_LINES}): split it by concern, "
        f"or say in a '{SIZE_REASON} ...' paragraph of its docstring why it stays one module"
    )

"""The unit layer's rule: no TensorFlow and no torch.

Unit tests check logic in well under a minute; a test that builds, trains or serves a Keras or
torch model belongs in tests/integration/<same area>/. Importing either framework costs seconds
and hundreds of MB, so a unit run that ends with one of them in ``sys.modules`` fails, naming the
modules, even when every test passed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HEAVY_FRAMEWORKS = ("tensorflow", "torch", "keras")
UNIT_DIR = Path(__file__).resolve().parent


def heavy_modules_loaded() -> list[str]:
    return [name for name in HEAVY_FRAMEWORKS if name in sys.modules]


def _in_unit_layer(arg: str) -> bool:
    path = Path(arg.partition("::")[0]).resolve()
    return path == UNIT_DIR or UNIT_DIR in path.parents


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    loaded = heavy_modules_loaded()
    # Only when this run was unit tests alone: `make test` runs every layer in one session.
    if not loaded or not all(_in_unit_layer(arg) for arg in session.config.args):
        return
    print(
        f"\nerror: the unit tests imported {', '.join(loaded)}. Unit tests import neither "
        "TensorFlow nor torch (tests/unit/conftest.py); move a test that needs a real model "
        "to tests/integration/<same area>/.",
        file=sys.stderr,
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

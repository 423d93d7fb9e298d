"""contracts/ is importable by everything: standard library only, and each fact in one place."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import contracts
from contracts import bucket, frameworks, naming

ROOT = Path(__file__).resolve().parents[2]


def test_every_contracts_module_imports_without_site_packages():
    """``-S``: no site-packages, so a third-party import anywhere in contracts/ fails here."""
    modules = [f"contracts.{m.name}" for m in pkgutil.iter_modules(contracts.__path__)]
    assert "contracts.naming" in modules

    result = subprocess.run(
        [sys.executable, "-S", "-c", "; ".join(f"import {m}" for m in modules)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr


def test_the_stack_name_the_launcher_reads_outputs_under_is_the_one_the_app_deploys():
    from stacks.config import STAGES
    from training.launch import settings

    assert settings.stack_name("prod", "malaria") == naming.stack_name("prod", "malaria")
    assert naming.stack_name("dev", "digits").startswith(naming.STACK_PREFIX)
    assert settings.STAGES is STAGES is naming.STAGES


def test_every_bucket_prefix_lies_under_the_one_the_ci_role_may_write():
    prefixes = [bucket.DATASETS_PREFIX, bucket.WEIGHTS_PREFIX, bucket.CODE_PREFIX]
    prefixes += [bucket.OUTPUT_PREFIX, bucket.CHECKPOINT_PREFIX]
    assert all(p.startswith(bucket.TRAINING_PREFIX) and p.endswith("/") for p in prefixes)


def test_each_framework_serves_from_the_image_family_the_stack_resolves():
    from stacks.artifact import IMAGE_FAMILY

    assert IMAGE_FAMILY == {"pytorch": "ray-serve", "tensorflow": "tensorflow"}
    assert set(frameworks.TRAINING) == set(frameworks.SERVING)

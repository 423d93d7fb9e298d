"""How many model-server workers an instance gets: the flag, the container env, the default."""

from __future__ import annotations

import argparse
import os

import pytest

from local_stage.cli import model_server_workers
from local_stage.errors import LocalStageError


def workers(flag: int | None, env: dict[str, str], *, flavour: str = "pytorch", instances: int = 1):
    return model_server_workers(argparse.Namespace(workers=flag), flavour, env, instances)


def test_the_flag_wins_over_the_container_env():
    assert workers(3, {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) == 3


def test_the_pytorch_container_env_sets_the_count():
    assert workers(None, {"SAGEMAKER_MODEL_SERVER_WORKERS": " 2 "}) == 2


def test_unset_means_one_per_core_shared_by_the_instances():
    cores = os.cpu_count() or 1
    assert workers(None, {}) == cores
    assert workers(None, {}, instances=cores * 2) == 1  # never zero


def test_the_tf_serving_container_is_one_process():
    assert workers(None, {"SAGEMAKER_MODEL_SERVER_WORKERS": "4"}, flavour="tensorflow") == 1


@pytest.mark.parametrize(
    ("flag", "env", "message"),
    [
        (None, {"SAGEMAKER_MODEL_SERVER_WORKERS": "two"}, "not a whole number"),
        (None, {"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "at least 1"),
        (0, {}, "--workers: the worker count must be at least 1"),
    ],
)
def test_bad_counts_are_refused_with_the_setting_named(flag, env, message):
    with pytest.raises(LocalStageError, match=message) as err:
        workers(flag, env)
    if env:
        assert "SAGEMAKER_MODEL_SERVER_WORKERS" in str(err.value)

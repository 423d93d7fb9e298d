"""How many model-server workers an instance gets: the flag (TF Serving emulation), else one."""

from __future__ import annotations

import argparse

import pytest

from local_stage.errors import LocalStageError
from local_stage.model_instances import model_server_workers


def workers(flag: int | None, *, flavour: str = "tensorflow", instances: int = 1) -> int:
    return model_server_workers(argparse.Namespace(workers=flag), flavour, {}, instances)


def test_the_tf_serving_container_is_one_process_unless_the_flag_says_more():
    assert workers(None) == 1
    assert workers(3) == 3


def test_pytorch_instances_are_one_ray_serve_container_whose_replicas_config_yaml_sets():
    assert workers(3, flavour="pytorch") == 1


def test_a_bad_count_is_refused_with_the_flag_named():
    with pytest.raises(LocalStageError, match="--workers: the worker count must be at least 1"):
        workers(0)

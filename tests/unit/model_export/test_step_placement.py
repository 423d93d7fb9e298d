"""Where the Ray Serve replica runs input_fn/output_fn: on its event loop, or in its thread pool."""

from __future__ import annotations

import logging
import time

import pytest

from model_export.serving.ray_serve_app import StepPlacement


def test_on_a_cpu_instance_steps_run_on_the_loop_from_the_first_request():
    placement = StepPlacement(spare_cores=False)

    assert placement.inline("prepare")
    assert placement.timed("prepare", True, lambda x: x + 1, 1) == 2
    assert placement.inline("prepare")


def test_a_step_that_keeps_blocking_the_loop_moves_to_the_pool_for_good(caplog):
    placement = StepPlacement(spare_cores=False, blocking_wall_s=0.05)

    placement.note("finish", cpu_s=0.2, wall_s=0.2, on_loop=True)  # first call: one-off costs
    assert placement.inline("finish")
    placement.note("finish", cpu_s=0.001, wall_s=0.001, on_loop=True)
    placement.note("finish", cpu_s=0.001, wall_s=0.08, on_loop=True)  # one slow call: averaged
    assert placement.inline("finish")
    serve_log = logging.getLogger("ray.serve")  # Ray's logger does not propagate to the root
    serve_log.addHandler(caplog.handler)
    try:
        for _ in range(8):
            placement.note("finish", cpu_s=0.0001, wall_s=0.1, on_loop=True)  # e.g. sleeping
    finally:
        serve_log.removeHandler(caplog.handler)
    assert not placement.inline("finish")
    assert "finish holds the replica's event loop" in caplog.text
    placement.note("finish", cpu_s=0.0001, wall_s=0.0001, on_loop=False)
    assert not placement.inline("finish")
    assert placement.inline("prepare")  # steps are judged one by one


def test_with_spare_cores_only_a_cheap_step_runs_on_the_loop():
    placement = StepPlacement(spare_cores=True, inline_cpu_s=0.001)
    assert not placement.inline("prepare")  # unknown cost: the pool

    placement.note("prepare", cpu_s=0.5, wall_s=0.5, on_loop=False)  # first call, not counted
    placement.note("prepare", cpu_s=0.0002, wall_s=0.004, on_loop=False)  # GIL waits don't count
    assert placement.inline("prepare")

    placement.note("finish", cpu_s=0.0, wall_s=0.0, on_loop=False)
    for _ in range(3):
        placement.note("finish", cpu_s=0.004, wall_s=0.004, on_loop=False)
    assert not placement.inline("finish")


def test_timed_counts_cpu_time_not_waiting():
    placement = StepPlacement(spare_cores=True, inline_cpu_s=0.001)
    for _ in range(2):
        placement.timed("prepare", False, time.sleep, 0.02)

    assert placement.inline("prepare")  # 20 ms asleep, next to no CPU


def test_a_step_that_raises_is_still_timed():
    placement = StepPlacement(spare_cores=True)

    def boom() -> None:
        raise ValueError("bad input")

    for _ in range(2):
        with pytest.raises(ValueError):
            placement.timed("prepare", False, boom)
    assert placement.inline("prepare")

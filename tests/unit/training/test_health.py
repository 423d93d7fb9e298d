"""Training-health rules fire on the failures they name, and only then."""

import json
import math

import pytest

from training.common.health import HealthCheckError, HealthConfig, HealthMonitor


def monitor(**overrides):
    return HealthMonitor(HealthConfig(**overrides))


def rules(m):
    return {f["rule"] for f in m.findings}


def test_a_healthy_run_has_no_findings():
    m = monitor(window_checks=3)
    for step, loss in enumerate([2.0, 1.8, 1.6, 1.3, 1.1, 0.9, 0.8, 0.7, 0.6], start=1):
        m.record_timing(0.01, 0.1)
        m.check_step(epoch=1, global_step=step, loss=loss, grad_norm=1.5)
    for epoch, (train, valid) in enumerate([(1.0, 1.1), (0.8, 0.9), (0.6, 0.7)], start=1):
        m.check_epoch(epoch=epoch, train_loss=train, valid_loss=valid)
    assert m.findings == []


@pytest.mark.parametrize(
    ("loss", "grad_norm", "rule"),
    [(math.nan, 1.0, "exploding_gradients"), (1.0, 5e3, "exploding_gradients"),
     (1.0, math.inf, "exploding_gradients")],
)  # fmt: skip
def test_exploding(loss, grad_norm, rule):
    m = monitor()
    m.check_step(epoch=1, global_step=1, loss=loss, grad_norm=grad_norm)
    assert rules(m) == {rule}


def test_vanishing_needs_consecutive_checks():
    m = monitor(vanishing_checks=3)
    for step, norm in enumerate([1e-9, 1e-9, 1.0, 1e-9, 1e-9], start=1):
        m.check_step(epoch=1, global_step=step, loss=1.0, grad_norm=norm)
    assert m.findings == []
    m.check_step(epoch=1, global_step=6, loss=1.0, grad_norm=1e-9)
    assert rules(m) == {"vanishing_gradients"}


def test_stalled_input_pipeline():
    m = monitor(max_data_wait_fraction=0.5)
    m.record_timing(0.9, 1.0)
    m.check_step(epoch=1, global_step=1, loss=1.0, grad_norm=1.0)
    assert rules(m) == {"stalled_input_pipeline"}


def test_flat_step_loss_is_not_decreasing():
    m = monitor(window_checks=3)
    for step in range(1, 7):
        m.check_step(epoch=1, global_step=step, loss=2.3, grad_norm=1.0)
    assert rules(m) == {"loss_not_decreasing"}


def test_overfitting_is_valid_rising_while_train_falls():
    m = monitor(patience_epochs=2)
    for epoch, (train, valid) in enumerate([(1.0, 0.9), (0.7, 0.95), (0.5, 1.1)], start=1):
        m.check_epoch(epoch=epoch, train_loss=train, valid_loss=valid)
    assert rules(m) == {"overfitting"}


def test_repeats_are_counted_once_reported_and_state_survives_a_checkpoint(tmp_path):
    m = monitor()
    for step in (1, 2, 3):
        m.check_step(epoch=1, global_step=step, loss=1.0, grad_norm=1e6)
    restored = monitor()
    restored.load_state_dict(json.loads(json.dumps(m.state_dict())))
    assert len(restored.findings) == 1 and restored.report()["counts"] == {"exploding_gradients": 3}
    restored.write_report(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is False


def test_fatal_stops_at_the_first_finding():
    m = monitor(fatal=True)
    with pytest.raises(HealthCheckError, match="exploding_gradients"):
        m.check_step(epoch=1, global_step=1, loss=math.inf, grad_norm=1.0)

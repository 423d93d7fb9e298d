"""image_classifier_torch's main() called in-process (no interpreter start-up per case): the
error contract and checkpoint-settings guard, on tiny smoke runs."""

from __future__ import annotations

import json
import logging

import pytest

from training import image_classifier_torch as script
from training.common import cli

FAST = ["--arch", "small_cnn", "--image-size", "16", "--workers", "0", "--progress", "log"]


def run(tmp_path, *argv: str) -> int:
    args = script.parse_args(
        [
            *argv,
            *FAST,
            "--model-dir",
            str(tmp_path / "model"),
            "--output-dir",
            str(tmp_path / "output"),
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
            "--failure-file",
            str(tmp_path / "failure"),
        ]  # fmt: skip
    )
    return cli.run(script.main, args)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "/nonexistent/data"], "no train data"),
        (["--train", "/nonexistent/train"], "does not exist"),
        (["--data", "{images}", "--pretrained-weights", "/nonexistent.pth"], "is not a file"),
        (["--data", "{images}/train"], "no train data"),  # pointed at a split, not the root
    ],
)
def test_bad_input_is_one_clear_line_and_a_failure_file(
    colour_images, tmp_path, caplog, argv, message
):
    argv = [a.replace("{images}", str(colour_images)) for a in argv]
    with caplog.at_level(logging.ERROR):
        status = run(tmp_path, *argv)
    assert status == cli.EXIT_USAGE
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0].getMessage()
    assert errors[0].exc_info is None  # no traceback for bad input
    assert message in (tmp_path / "failure").read_text()


def test_checkpoint_from_other_settings_is_refused_with_advice(colour_images, tmp_path, caplog):
    data = ["--data", str(colour_images), "--smoke", "--batch-size", "8"]
    assert run(tmp_path, *data) == 0
    assert json.loads((tmp_path / "model" / "metrics.json").read_text())["best_epoch"] == 1

    with caplog.at_level(logging.ERROR):
        assert run(tmp_path, *data, "--lr", "0.1") == cli.EXIT_USAGE
    assert "--resume false" in caplog.text and "lr: checkpoint 0.001, now 0.1" in caplog.text
    assert "other settings" in (tmp_path / "failure").read_text()

    # --resume false starts over (and clears the old checkpoints) instead.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert run(tmp_path, *data, "--lr", "0.1", "--resume", "false") == 0
    assert "resuming" not in caplog.text


def test_sagemaker_hyperparameter_forms_and_env_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "o"))
    args = script.parse_args(
        ["--batch_size", "12", "--arch", '"resnet18"', "--freeze_backbone", "false",
         "--amp", "auto", "--lr", '"0.01"', "--checkpoint_every_steps", "5"]
    )  # fmt: skip
    assert (args.batch_size, args.arch, args.freeze_backbone, args.lr) == (
        12,
        "resnet18",
        False,
        0.01,
    )
    assert args.amp is None and args.checkpoint_every_steps == 5
    assert args.model_dir == tmp_path / "m" and args.output_dir == tmp_path / "o"
    assert args.image_size == 224 and args.augment == "flip_crop"  # the ResNet defaults


def test_help_states_every_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--epochs", "--batch-size", "--lr", "--seed", "--checkpoint-every-steps",
                 "--health-fatal", "--profile", "--amp", "--channels-last", "--workers"):  # fmt: skip
        assert flag in text
    assert "(default: 10)" in text  # epochs

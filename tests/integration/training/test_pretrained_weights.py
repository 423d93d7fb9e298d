"""Pretrained weights reach the transfer-learning scripts from the flag or the job's ``pretrained``
channel, and a run without them says so in its log and its health report."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from training import image_classifier_torch as script
from training import torch_models
from training.common import cli

FAST = ["--image-size", "32", "--workers", "0", "--progress", "log", "--smoke",
        "--batch-size", "8"]  # fmt: skip


def run(tmp_path, *argv: str) -> int:
    args = script.parse_args(
        [*argv, *FAST,
         "--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "output"),
         "--checkpoint-dir", str(tmp_path / "ckpt"), "--failure-file", str(tmp_path / "failure")]
    )  # fmt: skip
    return cli.run(script.main, args)


def health(tmp_path) -> dict:
    return json.loads((tmp_path / "output" / "health_report.json").read_text())


@pytest.fixture(scope="module")
def imagenet_resnet18(tmp_path_factory):
    """A state_dict in torchvision's ImageNet format (1000-class head) in a channel folder."""
    folder = tmp_path_factory.mktemp("channel")
    torch.manual_seed(7)
    state = torch_models.build_model("resnet18", 1000).state_dict()
    torch.save(state, folder / "resnet18-f37072fd.pth")
    return folder, state


def test_the_pretrained_channel_is_loaded_and_the_backbone_stays_frozen(
    colour_images, imagenet_resnet18, tmp_path, monkeypatch, caplog
) -> None:
    # Given a SageMaker job whose 'pretrained' channel holds ImageNet-format weights
    folder, state = imagenet_resnet18
    monkeypatch.setenv("SM_CHANNEL_PRETRAINED", str(folder))
    # When it trains with no weights flag
    with caplog.at_level(logging.INFO):
        assert run(tmp_path, "--data", str(colour_images), "--arch", "resnet18") == 0
    # Then the backbone started from those weights and (auto) stayed frozen, the head is new
    trained = torch.load(tmp_path / "model" / "model.pth", weights_only=True)
    assert torch.equal(trained["conv1.weight"], state["conv1.weight"])
    assert torch.equal(trained["layer4.1.bn2.running_mean"], state["layer4.1.bn2.running_mean"])
    assert trained["fc.weight"].shape == (3, 512)
    report = health(tmp_path)
    assert report["pretrained_weights"]["source"] == "channel"
    assert report["pretrained_weights"]["file"] == "resnet18-f37072fd.pth"
    assert len(report["pretrained_weights"]["sha256"]) == 64
    assert "no_pretrained_weights" not in report["counts"]
    assert "pretrained weights from channel" in caplog.text


def test_the_flag_wins_over_the_channel_and_backbone_weights_is_an_alias(
    colour_images, imagenet_resnet18, tmp_path, monkeypatch
) -> None:
    folder, _ = imagenet_resnet18
    monkeypatch.setenv("SM_CHANNEL_PRETRAINED", str(tmp_path / "missing-channel"))
    weights = folder / "resnet18-f37072fd.pth"
    args = script.parse_args(["--data", str(colour_images), "--backbone-weights", str(weights)])
    assert (args.pretrained.path, args.pretrained.source) == (weights, "flag")
    assert args.freeze_backbone is True
    args = script.parse_args(["--data", str(colour_images), "--pretrained_weights", str(folder)])
    assert args.pretrained.path == weights  # a folder with one weights file


def test_transfer_learning_without_weights_warns_and_reports_it(
    colour_images, tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.delenv("SM_CHANNEL_PRETRAINED", raising=False)
    with caplog.at_level(logging.WARNING):
        assert run(tmp_path, "--data", str(colour_images), "--arch", "resnet18") == 0
    assert "transfer learning without pretrained weights" in caplog.text
    assert "python -m training.weights fetch resnet18" in caplog.text
    report = health(tmp_path)
    assert report["ok"] is False
    assert report["counts"]["no_pretrained_weights"] == 1
    assert report["pretrained_weights"]["source"] == "missing"


def test_pretrained_weights_none_is_explicit_and_quiet(colour_images, tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        status = run(tmp_path, "--data", str(colour_images), "--arch", "resnet18",
                     "--pretrained-weights", "none")  # fmt: skip
    assert status == 0
    assert "without pretrained weights" not in caplog.text
    report = health(tmp_path)
    assert report["pretrained_weights"]["source"] == "none"
    assert "no_pretrained_weights" not in report["counts"]


def test_the_small_digits_cnn_is_not_transfer_learning(colour_images, tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        assert run(tmp_path, "--data", str(colour_images), "--arch", "small_cnn") == 0
    assert "without pretrained weights" not in caplog.text
    assert "no_pretrained_weights" not in health(tmp_path)["counts"]


def test_a_channel_with_several_weights_files_is_a_clear_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "a.pth").write_bytes(b"1")
    (tmp_path / "b.pth").write_bytes(b"2")
    monkeypatch.setenv("SM_CHANNEL_PRETRAINED", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(["--data", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "must hold one weights file (.h5, .keras, .pt, .pth): a.pth, b.pth" in (
        capsys.readouterr().err
    )

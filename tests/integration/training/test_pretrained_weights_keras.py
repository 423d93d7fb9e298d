"""The Keras image script takes its backbone weights from the ``pretrained`` channel (or the
flag, with ``--backbone-weights`` kept as an alias) and builds the backbone from them."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # imports TensorFlow


def test_backbone_weights_come_from_the_channel(colour_images, tmp_path, monkeypatch) -> None:
    import keras

    from training import image_classifier_keras as script

    # Given a no-top MobileNetV2 weights file in the job's 'pretrained' channel
    channel = tmp_path / "pretrained"
    channel.mkdir()
    source = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35, pooling="avg"
    )
    source.save_weights(channel / "mobilenet_v2_no_top.weights.h5")
    monkeypatch.setenv("SM_CHANNEL_PRETRAINED", str(channel))

    # When the script builds its model
    args = script.parse_args(["--data", str(colour_images), "--image-size", "32",
                              "--alpha", "0.35"])  # fmt: skip
    model = script.build_model(args, num_classes=3)

    # Then the backbone holds those weights, frozen (the auto default with pretrained weights)
    assert args.pretrained.source == "channel" and args.freeze_backbone is True
    backbone = next(layer for layer in model.layers if layer.name.startswith("mobilenetv2"))
    assert not backbone.trainable
    for mine, theirs in zip(backbone.weights, source.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())

    # --backbone-weights still works, and 'none' wins over the channel
    args = script.parse_args(["--data", str(colour_images), "--backbone-weights", "none"])
    assert (args.pretrained.path, args.pretrained.source, args.freeze_backbone) == (
        None, "none", False,
    )  # fmt: skip

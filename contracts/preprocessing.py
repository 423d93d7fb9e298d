"""The input normalisation the image models are trained and served with.

ImageNet's per-channel mean and standard deviation (RGB, on pixels scaled to [0, 1]): what the
torchvision/Keras pretrained backbones expect, and what the training script writes into
``model_config.json`` for the serving code to apply. The artifact's own ``code/`` carries the
values it was trained with (from ``model_config.json``), never this module.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

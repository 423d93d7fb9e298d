"""The PyTorch image-classifier architectures: ``build_model(arch, num_classes)``.

Self-contained on purpose (imports only torch and the standard library): model_export copies this
file into the artifact's ``code/`` so the serving container rebuilds the exact same module that
training saved a ``state_dict`` for.

The ResNets use torchvision's module names, so their ``state_dict`` keys are torchvision's
(``conv1.weight``, ``layer1.0.bn1.running_mean``, ``layer2.0.downsample.0.weight``, ``fc.bias``)
and a checkpoint saved by ``torchvision.models.resnet50(...).state_dict()`` loads into them.
torchvision itself is used when it imports; its wheels for this project's CPU torch do not
(``operator torchvision::nms does not exist``), hence the in-project copy. Every architecture names
its classification head ``fc``: that is what transfer learning replaces and what
``freeze_backbone`` leaves trainable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch
from torch import nn

ARCHS: tuple[str, ...] = ("small_cnn", "resnet18", "resnet34", "resnet50")
HEAD_PREFIX = "fc."

# Set to 1 to use the in-project ResNets even where torchvision imports (tests compare the two).
_DISABLE_TORCHVISION_ENV = "TORCH_MODELS_NO_TORCHVISION"


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock`` (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck`` (ResNet-50, "v1.5": the stride sits on the 3x3 conv)."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ``ResNet`` with the same attribute names (and so the same state_dict keys)."""

    def __init__(
        self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], num_classes: int
    ) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        # torchvision's initialisation, so a from-scratch model trains the same either way.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        blocks: int,
        stride: int = 1,
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers.extend(block(self.inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SmallCNN(nn.Module):
    """A three-block CNN for small images (the digits default): trains in seconds on a CPU.

    Global average pooling makes it work at any input size of 8 pixels or more.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )

        self.features = nn.Sequential(
            block(3, width),
            nn.MaxPool2d(2),
            block(width, width * 2),
            nn.MaxPool2d(2),
            block(width * 2, width * 4),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(width * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.features(x), 1)))


_RESNETS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


def _torchvision_builder(arch: str) -> Callable[..., nn.Module] | None:
    """torchvision's constructor for ``arch`` when torchvision imports and works, else None."""
    if os.environ.get(_DISABLE_TORCHVISION_ENV) == "1":
        return None
    try:
        from torchvision import models  # optional, and slow to import
    except Exception:  # a broken install raises RuntimeError
        return None
    return getattr(models, arch, None)


def build_model(arch: str, num_classes: int) -> nn.Module:
    """A freshly initialised ``arch`` with a ``num_classes``-way linear head named ``fc``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if arch == "small_cnn":
        return SmallCNN(num_classes)
    builder = _torchvision_builder(arch)
    if builder is not None:
        return builder(weights=None, num_classes=num_classes)
    block, layers = _RESNETS[arch]
    return ResNet(block, layers, num_classes)


def load_backbone_weights(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, skip_head: bool = True
) -> list[str]:
    """Copy pretrained weights into ``model``, leaving its new head alone; return skipped keys.

    ``state_dict`` is e.g. a torchvision ImageNet checkpoint (1000-class ``fc``). Keys of the head
    (and any whose shape differs) are skipped; every other key of ``model`` must be present, so a
    checkpoint of the wrong architecture fails loudly instead of training from random weights.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.startswith(HEAD_PREFIX)]
    if missing:
        shown = ", ".join(missing[:5])
        raise ValueError(
            f"the pretrained weights lack {len(missing)} of the model's keys (e.g. {shown}): "
            "they are for a different architecture"
        )
    skipped: list[str] = []
    to_load: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key not in own or (skip_head and key.startswith(HEAD_PREFIX)):
            skipped.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            if not key.startswith(HEAD_PREFIX):
                raise ValueError(
                    f"pretrained weight {key} has shape {tuple(value.shape)}, "
                    f"the model expects {tuple(own[key].shape)}"
                )
            skipped.append(key)
        else:
            to_load[key] = value
    model.load_state_dict(to_load, strict=False)
    return skipped


def freeze_backbone(model: nn.Module) -> int:
    """Make every parameter except the ``fc`` head untrainable; return how many were frozen.

    BatchNorm running statistics still update in train mode; call ``freeze_batchnorm_stats``
    each time the model is put in train mode to keep them fixed too.
    """
    frozen = 0
    for name, param in model.named_parameters():
        if not name.startswith(HEAD_PREFIX):
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def freeze_batchnorm_stats(model: nn.Module) -> None:
    """Put BatchNorm layers in eval mode so a frozen backbone's statistics stay pretrained."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()

"""A tiny architecture module with training/torch_models.py's build_model contract (for tests)."""

import torch
from torch import nn

ARCHS = ("tiny_cnn",)


class TinyCNN(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))


def build_model(arch, num_classes):
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}")
    return TinyCNN(num_classes)

"""Small PyTorch models of the kinds tinyc is built for (used by the demo, tests and benchmarks).

- SmallCNN: a plain 2-D ConvNet (conv-BN-ReLU, max pool, global average pool, linear).
- MobileNetV2Tiny: MobileNetV2's inverted-residual blocks (1x1 expand, depthwise 3x3, linear
  1x1 projection, residual add, ReLU6) at a width a Nucleo board holds.
- EEG3DCNN: a 3-D CNN of inverted-residual, depthwise-separable 3-D blocks, the shape of the
  EEG emotion-recognition models tinyc's users deploy (input: 1 x bands x electrodes-grid x time).
- GroupMaxPool: the group pooling of rotation-equivariant networks in plain torch
  (examples/equivariant.py).
"""

from __future__ import annotations

import torch
from torch import nn


def _bn_act(channels: int, dims: int) -> list[nn.Module]:
    norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
    return [norm(channels), nn.ReLU6()]


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> depthwise k x k -> 1x1 linear projection (+ residual)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            conv(cin, hidden, 1, bias=False), *_bn_act(hidden, dims),
            conv(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            *_bn_act(hidden, dims),
            conv(hidden, cout, 1, bias=False), norm(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(x).mean(dim=(2, 3))
        return self.head(y)


class MobileNetV2Tiny(nn.Module):
    """Stem, five inverted-residual blocks (two with stride 2), 1x1 head, global average pool,
    linear classifier.  `stem_stride=1` keeps small inputs (8x8 digits) from vanishing."""

    def __init__(self, classes: int = 10, width: int = 8, in_channels: int = 3,
                 stem_stride: int = 2) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 2 * w, 3, stride=stem_stride, padding=1,
                                            bias=False),
                                  *_bn_act(2 * w, 2))
        self.blocks = nn.Sequential(
            InvertedResidual(2 * w, w, 1, 1),
            InvertedResidual(w, 2 * w, 2, 4),
            InvertedResidual(2 * w, 2 * w, 1, 4),
            InvertedResidual(2 * w, 4 * w, 2, 4),
            InvertedResidual(4 * w, 4 * w, 1, 4),
        )
        self.head = nn.Sequential(nn.Conv2d(4 * w, 8 * w, 1, bias=False), *_bn_act(8 * w, 2))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(8 * w, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.blocks(self.stem(x)))
        y = nn.functional.adaptive_avg_pool2d(y, 1).flatten(1)
        return self.classifier(y)


class EEG3DCNN(nn.Module):
    """Input [N, 1, bands, grid_h * grid_w positions as H x W, time] -> emotion classes."""

    def __init__(self, classes: int = 4, width: int = 8) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv3d(1, w, 3, padding=1, bias=False), *_bn_act(w, 3))
        self.blocks = nn.Sequential(
            InvertedResidual(w, w, 1, 2, dims=3),
            nn.MaxPool3d(2),
            InvertedResidual(w, 2 * w, 2, 2, dims=3),
            InvertedResidual(2 * w, 2 * w, 1, 2, dims=3),
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = nn.Linear(2 * w, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.blocks(self.stem(x))).flatten(1))


class GroupMaxPool(nn.Module):
    """[N, G * size, H, W] -> [N, G, H, W]: the maximum over each group of `size` consecutive
    channels at every pixel (e2cnn's MaxPoolChannels: the group pooling of regular fields),
    as a reshape and a max pool that tinyc compiles in float and int8."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        groups = x.reshape(n, c // self.size, self.size, h * w)
        return nn.functional.max_pool2d(groups, (self.size, 1)).reshape(n, c // self.size, h, w)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm layers non-trivial statistics, as a trained model has (seeded)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean = torch.randn(n, generator=g) * 0.1
            m.running_var = torch.rand(n, generator=g) + 0.5
    return model.eval()


def build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    """A seeded instance of one of the models, in eval mode, with its input shape."""
    torch.manual_seed(seed)
    models = {
        "small_cnn": (SmallCNN, (1, 3, 32, 32)),
        "mobilenetv2_tiny": (MobileNetV2Tiny, (1, 3, 32, 32)),
        "eeg3dcnn": (EEG3DCNN, (1, 1, 8, 9, 16)),
    }
    cls, shape = models[name]
    return randomize_batchnorm(cls(), seed), shape

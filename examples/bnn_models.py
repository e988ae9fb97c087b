"""Binarized networks built with tinyc.nn, with the float models they are compared to, and the
small seeded data and training loops the examples and tests use.

- DigitsBNN: a binarized 2-D CNN for scikit-learn's 8x8 digits (shipped with scikit-learn, no
  download).  Every layer is binary: the 0..16 pixel values become binary planes through a
  learned thermometer (SignSTE with one threshold per plane, the RSign of ReActNet), then three
  binary convolutions with BatchNorm and max pooling and a binary linear layer with a per-class
  scale and bias.  All of it is integer arithmetic or the exact output transform
  fl(fl(dot * scale) + bias), so the compiled C computes the logits bit for bit.
- EEGNet: an EEG-style 3-D CNN (input [N, 1, bands, grid rows, grid cols]) of inverted-residual,
  depthwise-separable 3-D blocks (1x1x1 expand, 3x3x3 depthwise, 1x1x1 projection, residual
  add).  `binary=True` makes every block convolution a tinyc.nn binary convolution with
  BatchNorm (the block's input binarized by a learned per-channel threshold; the residual stream
  and the first and last layers stay real, as in Bi-Real Net / ReActNet); `binary=False` is the
  float network (ReLU6) that tinyc also compiles as float and as int8.
- EEG_SIZES: widths giving the three sizes of the examples (about 6k, 14k and 25k parameters).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tinyc import nn as tnn

EEG_SHAPE = (1, 1, 4, 9, 9)  # [N, 1, frequency bands, 9 x 9 electrode grid]
EEG_CLASSES = 3
EEG_SIZES = {"6k": (8, 3), "14k": (14, 3), "25k": (20, 3)}  # name: (width, expand ratio)


# ------------------------------------------------------------------------------------------------
# Digits
# ------------------------------------------------------------------------------------------------


class DigitsBNN(nn.Module):
    """8x8 digits, pixel values 0..16, [N, 1, 8, 8] -> 10 logits; binary throughout."""

    def __init__(self, planes: int = 8, width: int = 32) -> None:
        super().__init__()
        self.planes = planes
        self.thermometer = tnn.SignSTE(planes, learnable_threshold=True)
        with torch.no_grad():
            self.thermometer.threshold.copy_(torch.linspace(1.0, 15.0, planes))
        w = width
        self.features = nn.Sequential(
            tnn.BinaryConv2d(planes, w, 3, padding=1, input_is_binary=True, scale="mean_abs"),
            nn.BatchNorm2d(w),
            tnn.BinaryConv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.MaxPool2d(2),
            tnn.BinaryConv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.MaxPool2d(2),
            nn.Flatten(),
            tnn.BinaryLinear(2 * w * 4, 10, bias=True, scale="mean_abs"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.thermometer(x.expand(-1, self.planes, -1, -1)))


def digits_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): scikit-learn's 1,797 digits, a seeded 80/20 split,
    images float32 [N, 1, 8, 8] with the original pixel values 0..16."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, random_state=seed, stratify=digits.target)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, lr: float,
          seed: int = 0, batch: int = 64) -> nn.Module:
    """Adam with cross-entropy, seeded shuffling; returns the model in eval mode."""
    torch.manual_seed(seed)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-len(xs) // batch))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs))
        for i in range(0, len(xs), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xs[idx]), ys[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits.reshape(len(labels), -1), axis=1) == labels))


def torch_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def trained_digits_bnn(epochs: int = 12, seed: int = 0) -> tuple[DigitsBNN, tuple]:
    """A DigitsBNN trained on the training split (seconds on a CPU), and the data."""
    data = digits_data(seed)
    torch.manual_seed(seed)
    model = DigitsBNN()
    return train(model, data[0], data[1], epochs, lr=1e-2, seed=seed), data


# ------------------------------------------------------------------------------------------------
# EEG-style 3-D CNN
# ------------------------------------------------------------------------------------------------


class InvertedResidual3d(nn.Module):
    """1x1x1 expand -> 3x3x3 depthwise (stride) -> 1x1x1 linear projection (+ residual).

    Float: conv-BN-ReLU6, conv-BN-ReLU6, conv-BN.  Binary: each convolution a tinyc.nn binary
    convolution with its own learned input threshold, followed by BatchNorm; the binarization
    before each convolution is the activation.  Expand -> BN -> sign and depthwise -> BN -> sign
    compile to convolutions writing packed bits (BN + sign as integer thresholds); the
    projection's BN output is real, for the residual add."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, binary: bool) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        if binary:
            def conv(i, o, k, s=1, g=1):
                return tnn.BinaryConv3d(i, o, k, stride=s, padding=k // 2, groups=g,
                                        learnable_threshold=True)

            def act(c):
                return []
        else:
            def conv(i, o, k, s=1, g=1):
                return nn.Conv3d(i, o, k, stride=s, padding=k // 2, groups=g, bias=False)

            def act(c):
                return [nn.ReLU6()]
        self.block = nn.Sequential(
            conv(cin, hidden, 1), nn.BatchNorm3d(hidden), *act(hidden),
            conv(hidden, hidden, 3, stride, hidden), nn.BatchNorm3d(hidden), *act(hidden),
            conv(hidden, cout, 1), nn.BatchNorm3d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y


class EEGNet(nn.Module):
    """[N, 1, bands, 9, 9] -> classes: a real 3x3x3 stem, three inverted-residual blocks
    (the second with stride 2), global average pooling and a real linear classifier."""

    def __init__(self, width: int, expand: int, binary: bool, classes: int = EEG_CLASSES
                 ) -> None:
        super().__init__()
        w = width
        stem_act = [] if binary else [nn.ReLU6()]
        self.stem = nn.Sequential(nn.Conv3d(1, w, 3, padding=1, bias=False), nn.BatchNorm3d(w),
                                  *stem_act)
        self.blocks = nn.Sequential(
            InvertedResidual3d(w, w, 1, expand, binary),
            InvertedResidual3d(w, 2 * w, 2, expand, binary),
            InvertedResidual3d(2 * w, 2 * w, 1, expand, binary),
        )
        self.classifier = nn.Linear(2 * w, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(x))
        return self.classifier(y.mean(dim=(2, 3, 4)))


def eeg_data(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic EEG-style samples [count, 1, 4, 9, 9] and labels: band power maps over the
    9 x 9 electrode grid, noise plus a class-dependent spatial pattern (frontal asymmetry in one
    band per class).  Stands in for a recorded data set, which tinyc does not ship."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, EEG_CLASSES, count)
    x = rng.standard_normal((count, 1, 4, 9, 9)).astype(np.float32)
    rows = np.arange(9)[:, None]
    cols = np.arange(9)[None, :]
    for c in range(EEG_CLASSES):
        pattern = np.exp(-((rows - 2) ** 2 + (cols - 2 - 2 * c) ** 2) / 4.0)
        x[y == c, 0, c + 1] += 1.5 * pattern.astype(np.float32)
    return x, y.astype(np.int64)


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def trained_eeg(size: str, binary: bool, epochs: int = 3, seed: int = 0
                ) -> tuple[EEGNet, tuple[np.ndarray, np.ndarray]]:
    """An EEGNet of one of EEG_SIZES trained briefly (seconds) on synthetic data, so that its
    BatchNorm statistics and thresholds are those of a trained model, and 128 held-out
    samples."""
    x, y = eeg_data(384, seed)
    torch.manual_seed(seed)
    width, expand = EEG_SIZES[size]
    model = EEGNet(width, expand, binary)
    train(model, x[:256], y[:256], epochs, lr=1e-2, seed=seed, batch=32)
    return model, (x[256:], y[256:])

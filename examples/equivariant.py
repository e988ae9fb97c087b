"""A C4 rotation-equivariant CNN on digits: built with e2cnn, exported to plain PyTorch, pruned by
whole fields, deployed float / hybrid int8 / static int8, validated on rotated digits.

    .venv/bin/python examples/equivariant.py [OUTDIR] [--epochs 8] [--keep 0.75]
                                                (default out/equivariant; under a minute)

The network (e2cnn 0.2.3, `pip install e2cnn`) has regular fields of the rotation group C4:
every field is 4 channels, the responses of one filter rotated by 0, 90, 180 and 270 degrees.
Four R2Conv-InnerBatchNorm-ReLU layers (2x2 max pooling after the second and third), group
pooling (max over each field's 4 channels) and spatial averaging make it invariant to rotations
of the 8x8 image by multiples of 90 degrees; a linear layer classifies.  It is trained on the
upright training digits only.  Then:
  export  e2cnn's `.export()` turns it into torch.nn.Conv2d / BatchNorm2d / ReLU / MaxPool2d;
          its group pooling (e2cnn's MaxPoolChannels) becomes examples/models.py's
          GroupMaxPool, the same computation in plain torch (so the models saved in OUTDIR
          load with examples/ on PYTHONPATH, as `tinyc validate` on the command line needs);
  prune   each convolution keeps the `--keep` fraction of its fields with the largest L1 norm
          (of the filters with BatchNorm folded in, as deployed): their 4 output channels stay,
          the others are cut out of the weights, the BatchNorm, the next convolution's input
          channels and the classifier's inputs.  Whole fields go, never single channels, so the
          pruned network is exactly as equivariant.  It is then fine-tuned in plain torch on
          the training digits in all four orientations and projected back onto exactly
          equivariant weights (each field's filters made exact rotated copies of their group
          average, BatchNorm shared per field, as e2cnn's InnerBatchNorm does);
  deploy  three builds with tinyc for nucleo-f446re: float; hybrid int8 (PyTorch
          `quantize_dynamic` on the Linear layer: int8 weights, float activations quantized at
          run time); static int8 (`tinyc compile --quantize int8`, calibrated on training
          digits: per-channel weight scales are equal within a field, whose filters are rotated
          copies, so the integer arithmetic keeps the symmetry exactly).
Each build's C is validated (tinyc.validate, host build) on the held-out digits rotated by 0, 90,
180 and 270 degrees.  The table gives the accuracy per rotation, the top-1 agreement of each
rotation's predictions with the upright ones, and the largest change of any output under
rotation.  An invariant classifier cannot use orientation (a 6 and an upside-down 9 differ only
in how they are written); the last line names the classes the float build gets wrong most.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass, field
from pathlib import Path

import e2cnn.gspaces
import e2cnn.nn as enn
import numpy as np
import torch
from bnn_models import accuracy, digits_data, parameters, torch_logits, train
from torch import nn

from models import GroupMaxPool
from tinyc import validate as v
from tinyc.boards import load_board
from tinyc.errors import TinycError
from tinyc.project import Quantization, compile_model

BOARD = "nucleo-f446re"
INPUT_SHAPE = "1x1x8x8"
CLASSES = 10
GROUP = 4  # C4: a regular field is 4 channels
ROTATIONS = (0, 90, 180, 270)
FIELDS = (8, 8, 12, 16)  # regular fields per convolution
POOL_AFTER = (False, True, True, False)  # 2x2 max pooling after the convolution
CALIBRATION_SAMPLES = 64


class C4Net(nn.Module):
    """The e2cnn network: [N, 1, 8, 8] images -> class logits, invariant to 90-degree turns."""

    def __init__(self, fields: tuple[int, ...] = FIELDS, classes: int = CLASSES) -> None:
        super().__init__()
        gspace = e2cnn.gspaces.Rot2dOnR2(N=GROUP)
        self.input_type = enn.FieldType(gspace, [gspace.trivial_repr])
        layers, current = [], self.input_type
        for count, pool in zip(fields, POOL_AFTER, strict=True):
            out = enn.FieldType(gspace, count * [gspace.regular_repr])
            layers += [enn.R2Conv(current, out, 3, padding=1, bias=False),
                       enn.InnerBatchNorm(out), enn.ReLU(out)]
            if pool:
                layers.append(enn.PointwiseMaxPool(out, 2))
            current = out
        layers.append(enn.GroupPooling(current))
        self.body = enn.SequentialModule(*layers)
        self.classifier = nn.Linear(fields[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(enn.GeometricTensor(x, self.input_type)).tensor
        return self.classifier(y.mean(dim=(2, 3)))


def export_plain(net: C4Net) -> nn.Sequential:
    """e2cnn's export of the body (its last module, e2cnn's MaxPoolChannels, replaced by the
    same computation in plain torch), then spatial averaging and the classifier."""
    body = list(net.body.export().children())[:-1]
    head = [GroupMaxPool(GROUP), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            copy.deepcopy(net.classifier)]
    return nn.Sequential(*body, *head).eval()


def strongest_fields(conv: nn.Conv2d, norm: nn.BatchNorm2d, keep: float) -> torch.Tensor:
    """Indices (ascending) of the round(keep * fields) output fields whose filters have the
    largest L1 norm with the BatchNorm folded in (the filters the deployed C runs)."""
    gain = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach().abs()
    folded = conv.weight.detach().abs().sum(dim=(1, 2, 3)) * gain
    norms = folded.reshape(-1, GROUP).sum(dim=1)
    count = max(1, round(keep * len(norms)))
    return torch.sort(torch.argsort(norms, descending=True)[:count]).values


def field_channels(fields: torch.Tensor) -> torch.Tensor:
    return (fields[:, None] * GROUP + torch.arange(GROUP)).reshape(-1)


def _keep(module: nn.Module, name: str, index: torch.Tensor, dim: int) -> None:
    value = getattr(module, name)
    if value is None:
        return
    kept = value.detach().index_select(dim, index).clone()
    setattr(module, name, nn.Parameter(kept) if isinstance(value, nn.Parameter) else kept)


def prune_fields(model: nn.Sequential, keep: float) -> nn.Sequential:
    """A copy of the exported network with each convolution's weakest fields removed: output
    channels, the following BatchNorm's channels, the next convolution's input channels and the
    classifier's input features (one per field after the group pooling)."""
    model = copy.deepcopy(model)
    fields = channels = None
    modules = list(model)
    for i, module in enumerate(modules):
        if isinstance(module, nn.Conv2d):
            if channels is not None:
                _keep(module, "weight", channels, 1)
                module.in_channels = len(channels)
            fields = strongest_fields(module, modules[i + 1], keep)
            channels = field_channels(fields)
            _keep(module, "weight", channels, 0)
            _keep(module, "bias", channels, 0)
            module.out_channels = len(channels)
        elif isinstance(module, nn.BatchNorm2d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                _keep(module, name, channels, 0)
            module.num_features = len(channels)
        elif isinstance(module, nn.Linear):
            _keep(module, "weight", fields, 1)
            module.in_features = len(fields)
    return model.eval()


def equivariant_filters(weight: torch.Tensor) -> torch.Tensor:
    """The projection of a [4 Fo, 4 Fi (or 1), k, k] convolution weight onto the C4-equivariant
    ones: the group average of the base filters (output rotation 0), then every output
    rotation r generated from them exactly, W[f, r, f', r'] = rot90^r(W[f, 0, f', r' - r])
    (e2cnn's convention for regular fields; the first layer reads one trivial channel)."""
    fo, cin = weight.shape[0] // GROUP, weight.shape[1]
    gi = GROUP if cin > 1 else 1
    w = weight.reshape(fo, GROUP, cin // gi, gi, *weight.shape[2:])

    def turned(j: int) -> torch.Tensor:  # the weight after the group element j acts on it
        return torch.rot90(w.roll(-j, 1).roll(-j, 3), -j, (4, 5))

    base = torch.stack([turned(j)[:, 0] for j in range(GROUP)]).mean(dim=0)
    copies = [torch.rot90(base.roll(r, 2), r, (3, 4)) for r in range(GROUP)]
    return torch.stack(copies, dim=1).reshape(weight.shape)


def symmetrize(model: nn.Sequential) -> None:
    """Make every convolution and BatchNorm exactly C4-equivariant again (after training in plain
    torch): filters by equivariant_filters, BatchNorm parameters and statistics averaged over
    each field's 4 channels (e2cnn's InnerBatchNorm shares them per field)."""
    with torch.no_grad():
        for module in model:
            if isinstance(module, nn.Conv2d):
                module.weight.copy_(equivariant_filters(module.weight))
            elif isinstance(module, nn.BatchNorm2d):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    values = getattr(module, name)
                    values.copy_(values.reshape(-1, GROUP).mean(dim=1).repeat_interleave(GROUP))


def finetune(model: nn.Sequential, x: np.ndarray, y: np.ndarray, epochs: int) -> None:
    """Train the pruned plain network on every image in all 4 orientations (so its updates are
    symmetric up to float rounding), then project it back onto exact equivariance."""
    turns = np.concatenate([rotated(x, d) for d in ROTATIONS])
    train(model, turns, np.tile(y, len(ROTATIONS)), epochs, lr=1e-3)
    symmetrize(model)


def rotated(x: np.ndarray, degrees: int) -> np.ndarray:
    """[N, 1, H, W] images turned counter-clockwise by a multiple of 90 degrees."""
    return np.ascontiguousarray(np.rot90(x, degrees // 90, axes=(2, 3)))


@dataclass
class Build:
    """One deployment of the pruned network and its validation on every rotation."""

    name: str
    model: nn.Module
    quantize: bool = False
    report: dict | None = None
    by_rotation: dict[int, v.Deployment] = field(default_factory=dict)
    error: str | None = None


def builds_of(pruned: nn.Sequential) -> list[Build]:
    hybrid = torch.ao.quantization.quantize_dynamic(pruned, {nn.Linear}, dtype=torch.qint8)
    return [Build("float", pruned), Build("hybrid int8", hybrid),
            Build("static int8", pruned, quantize=True)]


def deploy(build: Build, outdir: Path, calibration: Path, test: tuple[np.ndarray, np.ndarray]
           ) -> None:
    """Compile the build once and validate its C on each rotation of the test digits; a build
    tinyc refuses keeps its one-line error."""
    path = outdir / f"{build.name.replace(' ', '_')}.pt"
    torch.save(build.model, str(path))
    try:
        compiled = compile_model(path, load_board(BOARD), input_shape=INPUT_SHAPE,
                                 quantize=Quantization(calibration) if build.quantize else None)
        for degrees in ROTATIONS:
            data = v.Dataset(rotated(test[0], degrees)[:, None], test[1], CLASSES)
            build.by_rotation[degrees] = v.validate_compiled(
                compiled, data, f"{build.name} {degrees}", progress=False)
    except TinycError as exc:
        build.error = str(exc)
        return
    build.report = compiled.report


@dataclass
class Result:
    net_params: int
    plain_params: int
    pruned_params: int
    torch_accuracy: dict[str, dict[int, float]]  # model -> rotation -> accuracy
    export_error: float  # max |exported - e2cnn| logit over the test digits
    builds: list[Build]


def run(outdir: Path, epochs: int = 8, keep: float = 0.75, fields: tuple[int, ...] = FIELDS,
        finetune_epochs: int = 2) -> Result:
    outdir.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = digits_data()
    x_train, x_test = x_train / 16, x_test / 16
    torch.manual_seed(0)
    net = train(C4Net(fields), x_train, y_train, epochs, lr=3e-3)
    plain = export_plain(net)
    pruned = prune_fields(plain, keep)
    finetune(pruned, x_train, y_train, finetune_epochs)
    models = {"e2cnn": net, "exported": plain, "pruned+tuned": pruned}
    torch_accuracy = {name: {d: accuracy(torch_logits(m, rotated(x_test, d)), y_test)
                             for d in ROTATIONS} for name, m in models.items()}
    export_error = float(np.abs(torch_logits(net, x_test) - torch_logits(plain, x_test)).max())
    calibration = outdir / "calibration.npy"
    np.save(calibration, x_train[:CALIBRATION_SAMPLES])
    builds = builds_of(pruned)
    for build in builds:
        deploy(build, outdir, calibration, (x_test, y_test))
    return Result(parameters(net), parameters(plain), parameters(pruned), torch_accuracy,
                  export_error, builds)


def invariance(build: Build) -> tuple[dict[int, float], float]:
    """Top-1 agreement of each rotation's predictions with the upright ones (tinyc.validate's
    agreement), and the largest change of any raw C output under rotation."""
    upright = build.by_rotation[0]
    agree = {d: v.agreement(upright.deployed, dep.deployed)["top1_agreement"]
             for d, dep in build.by_rotation.items() if d}
    change = max(float(np.abs(dep.host.outputs.astype(np.float64)
                              - upright.host.outputs.astype(np.float64)).max())
                 for dep in build.by_rotation.values())
    return agree, change


def table_lines(result: Result, keep: float) -> list[str]:
    samples = len(result.builds[0].by_rotation[0].deployed["predictions"]) \
        if result.builds[0].by_rotation else 0
    rots = " ".join(f"{f'{d} deg':>7}" for d in ROTATIONS)
    lines = [
        f"C4-equivariant CNN (e2cnn) on {samples} held-out digits turned by 0/90/180/270 deg; "
        f"{BOARD}",
        f"e2cnn net: {result.net_params:,} trained parameters; exported to plain PyTorch: "
        f"{result.plain_params:,} (max |logit change| {result.export_error:.1e});",
        f"pruned to {keep:.0%} of the fields and fine-tuned: {result.pruned_params:,}",
        f"{'model':<22} {'weights B':>9} {'arena B':>7} {rots}  {'agree with 0 deg':<16} "
        f"{'max|d|':>7}",
    ]
    for name, by_rotation in result.torch_accuracy.items():
        accs = " ".join(f"{by_rotation[d]:>7.1%}" for d in ROTATIONS)
        lines.append(f"{'PyTorch ' + name:<22} {'':>9} {'':>7} {accs}")
    for build in result.builds:
        label = f"C {build.name}"
        if build.error is not None:
            lines.append(f"{label:<22} not deployed: {build.error}")
            continue
        agree, change = invariance(build)
        accs = " ".join(f"{build.by_rotation[d].deployed['accuracy']:>7.1%}" for d in ROTATIONS)
        agreement = "/".join(f"{agree[d]:.1%}" for d in ROTATIONS[1:])
        lines.append(f"{label:<22} {build.report['weight_bytes']:>9,} "
                     f"{build.report['arena_bytes']:>7,} {accs}  {agreement:<16} {change:>7.2g}")
    lines.append("C: the deployed C (host build, tinyc.validate); agree: predictions at 90/180/"
                 "270 deg vs 0 deg;")
    lines.append("max|d|: largest change of an output under rotation (float outputs: logits; "
                 "static int8: code steps)")
    upright = result.builds[0].by_rotation.get(0)
    if upright is not None:
        worst = ", ".join(f"{w['class']}: {w['accuracy']:.1%}"
                          for w in upright.deployed["worst_classes"][:3])
        lines.append(f"worst classes of C float, upright: {worst}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="out/equivariant", type=Path)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--keep", type=float, default=0.75,
                        help="fraction of each convolution's fields kept by pruning")
    args = parser.parse_args()
    result = run(args.outdir, args.epochs, args.keep)
    print("\n".join(table_lines(result, args.keep)))


if __name__ == "__main__":
    main()

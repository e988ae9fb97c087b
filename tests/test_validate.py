"""`tinyc validate` and the HTML report, end to end through the command line.

A small CNN is trained for a few seconds on scikit-learn's 8x8 digits (shipped with the
package, offline; a seeded synthetic 10-class 8x8 dataset when scikit-learn is missing), saved
as TorchScript, and validated as deployed: the float build must reach exactly PyTorch's own
accuracy, the int8 build must agree with tinyc's int8 simulation on every sample, and the
report must open in headless Chromium.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import tinyc
from tinyc.errors import TinycError
from tinyc.validate import ECE_BINS, agreement, gini, metrics, reliability

SHAPE = "1x1x8x8"


def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        prototypes = rng.random((10, 8, 8)) > 0.6
        y = rng.integers(0, 10, 1500)
        x = prototypes[y] * 0.8 + rng.normal(0, 0.35, (1500, 8, 8))
        return x.astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64)
    d = load_digits()
    return (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), d.target.astype(np.int64)


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> dict[str, Path]:
    """The trained model (TorchScript), the dataset, calibration samples and PyTorch's
    predictions."""
    tmp = tmp_path_factory.mktemp("digits")
    torch.manual_seed(0)
    torch.set_num_threads(1)  # pytest -n 2 runs two of these: threads would only contend
    x, y = _digits()
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(10):
        for i in range(0, len(x), 128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[i:i + 128]), yt[i:i + 128]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(xt).numpy()
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 1, 8, 8)), str(tmp / "cnn.pt"))
    np.save(tmp / "X.npy", x)
    np.save(tmp / "y.npy", y)
    np.save(tmp / "calib.npy", x[:200])
    np.save(tmp / "logits.npy", logits)
    return {"dir": tmp, "model": tmp / "cnn.pt", "X": tmp / "X.npy", "y": tmp / "y.npy",
            "calib": tmp / "calib.npy", "logits": tmp / "logits.npy"}


def _validate_all(digits) -> dict:
    """One run of the real command: float build, its int8 build, 4 samples on QEMU, HTML."""
    html = digits["dir"] / "report.html"
    result = tinyc("validate", digits["model"], "--input-shape", SHAPE, "--data", digits["X"],
                   "--labels", digits["y"], "--compare", f"{digits['model']}@int8",
                   "--calibration", digits["calib"], "--on-target", "4", "--html", html,
                   "--json")
    assert result.code == 0, result.stderr[-2000:]
    return {"json": result.json(), "html": html}


def _check_float_build_matches_pytorch(digits, validated) -> None:
    report = validated["json"]
    logits = np.load(digits["logits"])
    labels = np.load(digits["y"])
    torch_accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    float_build = report["deployments"][0]
    assert report["samples"] == len(labels)
    assert float_build["label"] == "cnn float"
    assert float_build["reference_name"] == "torch"
    assert float_build["deployed"]["accuracy"] == pytest.approx(torch_accuracy, abs=1e-12)
    assert float_build["reference"]["accuracy"] == pytest.approx(torch_accuracy, abs=1e-12)
    assert float_build["top1_agreement"] == 1.0
    assert float_build["error_jaccard"] == 1.0
    assert float_build["deployed"]["probability_rule"] == "softmax"
    assert float_build["deployed"]["accuracy"] > 0.9
    assert float_build["throughput"] > 1000  # samples/s; thousands of samples take seconds


def _check_int8_build_metrics(validated) -> None:
    int8 = validated["json"]["deployments"][1]
    assert int8["label"] == "cnn int8"
    assert int8["reference_name"] == "tinyc int8 simulation"
    assert int8["top1_agreement"] == 1.0  # the C is bit-exact to the simulation
    assert int8["weight_bytes"] < validated["json"]["deployments"][0]["weight_bytes"]
    for side in ("deployed", "reference"):
        m = int8[side]
        assert 0.8 < m["accuracy"] <= 1
        assert len(m["per_class"]) == 10
        assert len(m["worst_classes"]) == 5
        assert m["worst_classes"][0]["accuracy"] == min(m["per_class"])
        assert 0 <= m["gini"] < 1
        assert 0 <= m["ece"] < 1
        assert len(m["reliability"]) == ECE_BINS
        assert sum(b["count"] for b in m["reliability"]) == validated["json"]["samples"]
    assert 0.9 <= int8["vs_first"]["top1_agreement"] <= 1
    assert 0 <= int8["vs_first"]["error_jaccard"] <= 1


def _check_on_target_matches_host(validated) -> None:
    for d in validated["json"]["deployments"]:
        target = d["on_target"]
        assert target["board"] == "qemu-m4"
        assert target["samples"] == 4
        assert target["unit"] == "instructions" and target["per_inference"] > 0
        # Per layer, from the profiling build (whose hooks add a few instructions per layer).
        counts = target["layer_counts"]
        assert len(counts) >= 5 and min(counts) >= 0
        assert abs(sum(counts) - target["per_inference"]) <= 0.1 * target["per_inference"]


def test_validate_digits(digits, tmp_path) -> None:
    """The float and int8 builds over the whole dataset, 4 samples on QEMU, the HTML report in
    Chromium (one test: the command runs once, on one worker)."""
    validated = _validate_all(digits)
    _check_float_build_matches_pytorch(digits, validated)
    _check_int8_build_metrics(validated)
    _check_on_target_matches_host(validated)
    _check_html_renders_in_chromium(validated, tmp_path)


def test_text_output(digits, tmp_path) -> None:
    np.save(tmp_path / "X.npy", np.load(digits["X"])[:300])
    np.save(tmp_path / "y.npy", np.load(digits["y"])[:300])
    result = tinyc("validate", digits["model"], "--input-shape", SHAPE, "--data",
                   tmp_path / "X.npy", "--labels", tmp_path / "y.npy")
    assert result.code == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tinyc validate:") and "10 classes" in lines[0]
    assert lines[2].startswith("cnn float")
    assert "worst classes" in result.stdout
    assert max(len(line) for line in lines) <= 132


@pytest.mark.parametrize("case", ["length", "shape", "nan", "classes"])
def test_bad_input(digits, tmp_path, case: str) -> None:
    x, y = np.load(digits["X"])[:50], np.load(digits["y"])[:50]
    expected = {"length": "49 labels for 50 samples", "shape": "does not match the model input",
                "nan": "contains NaN values", "classes": "but the model outputs 10 class"}[case]
    if case == "length":
        y = y[:49]
    elif case == "shape":
        x = x[:, :, :7, :]
    elif case == "nan":
        x = x.copy()
        x[3, 0, 2, 2] = np.nan
    else:
        y = y.copy()
        y[0] = 12
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "y.npy", y)
    result = tinyc("validate", digits["model"], "--input-shape", SHAPE, "--data",
                   tmp_path / "X.npy", "--labels", tmp_path / "y.npy")
    assert result.code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyc: error: "), result.stderr
    assert expected in lines[0]


def _assert_self_contained(text: str) -> None:
    lowered = text.lower()
    assert "<script" not in lowered and "@import" not in lowered and "<link" not in lowered
    assert "src=" not in lowered and "url(" not in lowered
    assert lowered.count("http") == lowered.count('xmlns="http://www.w3.org/2000/svg"')


def test_compile_html(digits, tmp_path) -> None:
    html = tmp_path / "compile.html"
    result = tinyc("compile", digits["model"], "--input-shape", SHAPE, "-o", tmp_path / "out",
                   "--html", html)
    assert result.code == 0, result.stderr
    text = html.read_text()
    _assert_self_contained(text)
    assert "Memory plan" in text and "Per-layer cost" in text and "against qemu-m4" in text
    assert "Reliability diagram" not in text  # no dataset, no validation figures
    assert text.count("<svg") == 3


def test_bench_html(digits, tmp_path) -> None:
    """`tinyc bench --html`: the report with the instructions bench measured, layer by layer."""
    html = tmp_path / "bench.html"
    result = tinyc("bench", digits["model"], "--input-shape", SHAPE, "--html", html, "--json")
    assert result.code == 0, result.stderr[-2000:]
    layers = result.json()["layers"]
    text = html.read_text()
    _assert_self_contained(text)
    _measured_layers(text, [[layer["count"] for layer in layers]])
    for layer in layers:
        if layer["macs"]:
            assert f"({layer['count'] / layer['macs']:.2f}/MAC)" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _png_colours(png: bytes) -> int:
    """Distinct byte values in the decoded image data (1 would mean one flat colour)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        kind = png[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


def _measured_layers(html: str, counts: list[list[int]]) -> None:
    """The per-layer cost figures show each measured layer's instructions (a bar each, its
    count and instructions per MAC in the bar's tooltip)."""
    bars = re.findall(r'<rect [^>]*class="instructions"><title>([\d,]+) instructions', html)
    assert [int(b.replace(",", "")) for b in bars] == [c for build in counts for c in build]
    assert len(bars) == len(re.findall(r"<title>[\d,]+ MACs</title>", html))  # every layer
    assert html.count("Instructions per layer measured on qemu-m4") == len(counts)


def _browser(browser: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120)


def _check_html_renders_in_chromium(validated, tmp_path) -> None:
    text = validated["html"].read_text()
    _assert_self_contained(text)
    assert "Reliability diagram" in text and "Per-class accuracy" in text
    assert text.count("<svg") == 2 * 2 + 3 * 2  # per deployment: 2 validation + 3 build figures
    counts = [d["on_target"]["layer_counts"] for d in validated["json"]["deployments"]]
    _measured_layers(text, counts)
    assert text.count('class="peak"') == 2  # the memory plans mark their peak layer
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    shot = tmp_path / "report.png"
    uri = validated["html"].resolve().as_uri()
    proc = _browser(browser, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", uri)
    assert shot.is_file(), proc.stderr[-2000:]
    png = shot.read_bytes()
    assert len(png) > 20_000
    assert _png_colours(png) > 50
    # The page as Chromium parsed it still holds every instruction bar and the peak markers.
    dom = _browser(browser, tmp_path, "--dump-dom", uri)
    assert dom.returncode == 0, dom.stderr[-2000:]
    _measured_layers(dom.stdout, counts)
    assert dom.stdout.count('class="peak"') == 2


def test_metrics_by_hand() -> None:
    # Gini of (1, 0): |1-0| * 2 / (2 * 4 * 0.5) = 0.5; equal accuracies: 0.
    assert gini(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert gini(np.array([0.7, 0.7, 0.7])) == 0.0
    # Two samples at confidence 0.9 (one right), one at 0.3 (right): ECE = 2/3*0.4 + 1/3*0.7.
    ece, bins = reliability(np.array([0.9, 0.9, 0.3]), np.array([True, False, True]))
    assert ece == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.7)
    assert [b["count"] for b in bins if b["count"]] == [1, 2]
    # Probabilities are taken as they are; logits go through softmax.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    m = metrics(probs, np.array([0, 0, 0]), 2)
    assert m["probability_rule"] == "as is" and m["accuracy"] == pytest.approx(2 / 3)
    assert m["per_class"] == [pytest.approx(2 / 3), None]
    other = metrics(np.log(probs), np.array([1, 0, 0]), 2)
    assert other["probability_rule"] == "softmax"
    both = agreement(m, other)
    assert both["top1_agreement"] == 1.0
    assert both["error_jaccard"] == pytest.approx(1 / 2)  # errors {1} and {0, 1}


def test_process_pool_matches_one_process(digits, tmp_path, monkeypatch) -> None:
    """The pool path (taken for slow models) gives the same bytes as the in-process path."""
    from tinyc import validate
    from tinyc.boards import load_board
    from tinyc.firmware import open_project
    from tinyc.project import compile_model, write_project

    compiled = compile_model(digits["model"], load_board("qemu-m4"), "model", SHAPE)
    write_project(compiled, tmp_path / "project")
    project = open_project(tmp_path / "project")
    lib = validate.build_library(tmp_path / "project", project.report, tmp_path)
    x = np.load(digits["X"])[:1000]
    serial = validate.run_host(lib, x, 1, progress=False)
    monkeypatch.setattr(validate, "PARALLEL_SECONDS", 0.0)
    pooled = validate.run_host(lib, x, 2, progress=False)
    assert serial.workers == 1 and pooled.workers == 2
    assert np.array_equal(serial.outputs, pooled.outputs)
    # --on-target: QEMU agrees with the host build, and a differing output is an error.
    checked = validate.on_target_check(project, serial.outputs, x, 2)
    assert checked["samples"] == 2 and checked["identical"] == 2
    wrong = serial.outputs.copy()
    wrong[1, 3] += 1.0
    with pytest.raises(TinycError, match="1 of 2 samples differ from the host build"):
        validate.on_target_check(project, wrong, x, 2)

"""Build the Larq Compute Engine fixtures of tests/test_lce.py (run in .venv-lce).

    bash scripts/setup_lce_env.sh
    TF_USE_LEGACY_KERAS=1 .venv-lce/bin/python tests/data/lce/make_fixtures.py

Each model is a small Larq Keras model with random (seeded) weights and BatchNorm statistics,
converted by `larq_compute_engine.convert_keras_model` into a .tflite holding LCE's custom ops
(LceQuantize, LceBconv2d, LceBMaxPool2d, LceDequantize).  Beside each `<name>.tflite` goes
`<name>.npz` with the fixed inputs (`input`, [samples, *input shape], float32) and the outputs
of LCE's own interpreter (`output`, one row per sample), which are the reference the tests hold
tinyc's generated C to.  The interpreter is LCE's x86 build with its default kernels (optimized
BGEMM; the grouped model uses LCE's reference kernel, which has the same output transforms).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import larq as lq
import larq_compute_engine as lce
import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent
SAMPLES = 3
BINARY = {"input_quantizer": "ste_sign", "kernel_quantizer": "ste_sign",
          "kernel_constraint": "weight_clip", "use_bias": False}
layers = tf.keras.layers


def qconv(filters: int, kernel: int = 3, **kw) -> layers.Layer:
    return lq.layers.QuantConv2D(filters, kernel, **BINARY, **kw)


def batch_norm() -> layers.Layer:
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-3)


def one_pad_chain(x):
    """Binary -> binary (bitpacked output, thresholds), one-padding, stride 2, float output."""
    x = qconv(40, padding="same", pad_values=1.0)(x)
    x = batch_norm()(x)
    x = qconv(24, strides=2, padding="same", pad_values=1.0)(x)
    x = batch_norm()(x)
    x = layers.GlobalAveragePooling2D()(x)
    return layers.Dense(10)(x)


def float_first_maxpool_zero_pad(x):
    """Float first layer, valid binary conv with bitpacked output into a binary max pool, then
    a zero-padded binary conv with float output and a float last layer."""
    x = layers.Conv2D(16, 3, padding="same")(x)
    x = batch_norm()(x)
    x = qconv(35, padding="valid")(x)
    x = batch_norm()(x)
    x = layers.MaxPool2D(2)(x)
    x = qconv(33, padding="same", pad_values=0.0)(x)
    x = batch_norm()(x)
    x = layers.Flatten()(x)
    return layers.Dense(6)(x)


def bconv_float_out(x):
    """One binary conv whose float output (BatchNorm folded into the multiplier and bias) is
    the model output: the float transform alone."""
    x = qconv(20, strides=2, padding="same", pad_values=1.0)(x)
    return batch_norm()(x)


def bconv_zero_pad_out(x):
    """Zero padding (LCE's correction of the one-padded result) with float output."""
    x = qconv(7, padding="same", pad_values=0.0)(x)
    return batch_norm()(x)


def dilated_grouped_relu(x):
    """Dilation 2, two groups of 32 input channels, one-padding, and a ReLU that LCE fuses
    into the binary conv (a clamp of the integer dot; multiplier 1, bias 0)."""
    x = qconv(10, dilation_rate=2, groups=2, padding="same", pad_values=1.0)(x)
    return layers.ReLU()(x)


def binary_out(x):
    """Bitpacked output thresholds alone: the signs of a binary conv + BatchNorm (with
    negative BN scales), stride 2 valid, read back as +/-1 by LceDequantize."""
    x = qconv(45, strides=2, padding="valid")(x)
    x = batch_norm()(x)
    x = lq.quantizers.SteSign()(x)
    return layers.MaxPool2D(2, padding="same")(x)


# LCE's default kernel (optimized BGEMM) has no grouped convolutions: that model runs on
# LCE's reference kernel, which computes the same output transforms.
REFERENCE_KERNEL = ("dilated_grouped_relu",)
MODELS: dict[str, tuple[tuple[int, int, int], Callable]] = {
    "one_pad_chain": ((10, 10, 5), one_pad_chain),
    "float_first_maxpool_zero_pad": ((9, 9, 3), float_first_maxpool_zero_pad),
    "bconv_float_out": ((9, 7, 37), bconv_float_out),
    "bconv_zero_pad_out": ((6, 6, 12), bconv_zero_pad_out),
    "dilated_grouped_relu": ((7, 8, 64), dilated_grouped_relu),
    "binary_out": ((9, 9, 33), binary_out),
}


def randomize(model: tf.keras.Model, rng: np.random.Generator) -> None:
    """Random weights and BatchNorm statistics (some BN scales negative, so thresholds flip)."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            gamma = rng.uniform(0.2, 1.5, c) * rng.choice([-1.0, 1.0], c, p=[0.3, 0.7])
            layer.set_weights([gamma, rng.normal(0, 1, c), rng.normal(0, 4, c),
                               rng.uniform(0.5, 30, c)])
        elif layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])


def build(name: str, shape: tuple[int, int, int], body: Callable, seed: int) -> None:
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input(shape, batch_size=1)
    model = tf.keras.Model(inp, body(inp), name=name)
    rng = np.random.default_rng(seed)
    randomize(model, rng)
    flatbuffer = lce.convert_keras_model(model)
    # Multiples of 1/8: small files, and exact zeros, whose sign is +1 in LCE (x < 0 sets
    # the bit) as in tinyc.
    x = (np.round(rng.normal(0, 1, (SAMPLES, *shape)) * 8) / 8).astype(np.float32)
    interpreter = lce.testing.Interpreter(flatbuffer,
                                          use_reference_bconv=name in REFERENCE_KERNEL)
    y = np.asarray(interpreter.predict(x))
    keras_y = model.predict(x, verbose=0)
    (HERE / f"{name}.tflite").write_bytes(flatbuffer)
    np.savez_compressed(HERE / f"{name}.npz", input=x, output=y)
    print(f"{name}: {len(flatbuffer)} bytes, output {list(y.shape)}, max |lce - keras| = "
          f"{float(np.abs(y - keras_y).max()):.3g}")


def main() -> int:
    for seed, (name, (shape, body)) in enumerate(MODELS.items()):
        build(name, shape, body, seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

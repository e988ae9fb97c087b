"""Dynamic-range ("hybrid") layers: float activations, int8 weights (runtime_c/tc_hybrid.h).

NumPy references of tc_conv_hybrid and tc_fully_connected_hybrid with TFLite's arithmetic:
symmetric per-batch quantization of the input at run time, an integer dot product, then
y = float(acc) * float32(s_x * s_w[c]) + bias, clamped.
"""

from __future__ import annotations

import numpy as np

from tinyc.quant import arith


def quantize_symmetric(x: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """TFLite's SymmetricQuantizeFloats on one batch: (int8 codes, scale), float32 math."""
    x = np.asarray(x, np.float32)
    rng = np.float32(np.abs(x).max()) if x.size else np.float32(0)
    if rng == 0:
        return np.zeros(x.shape, np.int8), np.float32(1.0)
    inv = np.float32(127.0) / rng
    v = (x * inv).astype(np.float32)
    q = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(q, -127, 127).astype(np.int8), np.float32(rng / np.float32(127.0))


def _finish(acc: np.ndarray, s_x: np.float32, p: dict, bias: np.ndarray | None) -> np.ndarray:
    scales = np.asarray(p["weight_scale"], np.float32)
    scale = (s_x * scales).astype(np.float32)  # per channel, last axis
    y = (acc.astype(np.float32) * scale).astype(np.float32)
    if bias is not None:
        y = (y + np.asarray(bias, np.float32)).astype(np.float32)
    return np.clip(y, np.float32(p["act_min"]), np.float32(p["act_max"])).astype(np.float32)


def conv_hybrid(p: dict, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    c = {k.split(".", 1)[1]: v for k, v in p.items() if k.startswith("conv.")}
    n = c["batch"]
    outs = []
    for b in range(n):
        xq, s_x = quantize_symmetric(x.reshape(n, -1)[b])
        geometry = c | {"batch": 1, "input_offset": 0, "output_offset": 0,
                        "per_channel": 0, "multiplier": (1 << 30,), "shift": (1,),
                        "act_min": -(2**31), "act_max": 2**31 - 1}
        acc = _accumulate(geometry, xq, w)
        outs.append(_finish(acc, s_x, p, bias))
    return np.concatenate(outs)


def _accumulate(c: dict, xq: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The int32 accumulators of tc_conv_s8's loop nest (input offset 0), before
    requantization."""
    groups, oc = c["groups"], c["out_c"]
    cig, cog = c["in_c"] // groups, oc // groups
    w = w.reshape(oc, c["k_d"], c["k_h"], c["k_w"], cig).astype(np.int64)
    acc = np.zeros((1, c["out_d"], c["out_h"], c["out_w"], oc), dtype=np.int64)
    for (kd, kh, kw), patch in arith._padded_taps(c, xq):
        xg = patch.reshape(*patch.shape[:-1], groups, cig)
        wg = w[:, kd, kh, kw, :].reshape(groups, cog, cig)
        acc += np.einsum("...gc,goc->...go", xg, wg).reshape(acc.shape)
    return acc


def fully_connected_hybrid(p: dict, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None
                           ) -> np.ndarray:
    rows = x.reshape(p["batch"], p["in_features"])
    wi = w.reshape(p["out_features"], p["in_features"]).astype(np.int64)
    out = []
    for row in rows:
        xq, s_x = quantize_symmetric(row)
        out.append(_finish(xq.astype(np.int64) @ wi.T, s_x, p, bias))
    return np.stack(out)

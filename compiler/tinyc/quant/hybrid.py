"""Dynamic-range ("hybrid") layers: float activations, int8 weights (runtime_c/tc_hybrid.h).

NumPy references of tc_conv_hybrid and tc_fully_connected_hybrid.  Two input quantizations:
  * TFLite's (CONV_2D / FULLY_CONNECTED with int8 filters): symmetric per-batch quantization of
    the input at run time, an integer dot product, y = float(acc) * float32(s_x * s_w[c]) + bias;
  * PyTorch's `quantize_dynamic` Linear (fbgemm, `input_qmax` > 0): asymmetric uint8
    quantization of the whole input tensor with fbgemm's ChooseQuantizationParams (range
    [0, input_qmax], 127 with reduce_range), acc = sum q * w - zp * sum w, and
    y = fma(float(acc), float32(s_x * s_w[c]), bias): one rounding, as fbgemm's fused
    multiply-add (fma32 below).
"""

from __future__ import annotations

from fractions import Fraction

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


SMALL_SCALE = np.float32(6.1e-5)  # fbgemm's SMALL_SCALE_THRESHOLD


def torch_dynamic_qparams(x: np.ndarray, qmax: int) -> tuple[np.float32, int]:
    """PyTorch / fbgemm's ChooseQuantizationParams(min(x, 0), max(x, 0), 0, qmax) for the
    dynamic quantization of an input: the scale in float64 (stored as float32), raised to
    SMALL_SCALE with the range stretched alike when smaller, and the zero point taken from
    whichever end adds the smaller terms, rounded half to even into [0, qmax]."""
    lo = np.float32(min(np.float32(x.min()), np.float32(0)))
    hi = np.float32(max(np.float32(x.max()), np.float32(0)))
    scale = (np.float64(hi) - np.float64(lo)) / qmax
    if np.float32(scale) == 0 or np.isinf(np.float32(1) / np.float32(scale)):
        scale = 0.1
    if scale < np.float64(SMALL_SCALE):
        amplifier = np.float32(SMALL_SCALE / np.float32(scale))
        scale = np.float64(SMALL_SCALE)
        if lo == 0:
            hi = np.float32(SMALL_SCALE * np.float32(qmax))
        elif hi == 0:
            lo = np.float32(-SMALL_SCALE * np.float32(qmax))
        else:
            lo, hi = np.float32(lo * amplifier), np.float32(hi * amplifier)
    from_min, from_max = -np.float64(lo) / scale, qmax - np.float64(hi) / scale
    error_min, error_max = -abs(np.float64(lo) / scale), qmax - abs(np.float64(hi) / scale)
    zero_point = from_min if error_min < error_max else from_max
    return np.float32(scale), int(np.clip(np.rint(zero_point), 0, qmax))


def quantize_asymmetric(x: np.ndarray, qmax: int) -> tuple[np.ndarray, np.float32, int]:
    """fbgemm's Quantize: q = clamp(rint(x * float32(1 / s)) + zp, 0, 255), half to even."""
    scale, zero_point = torch_dynamic_qparams(x, qmax)
    v = (np.asarray(x, np.float32) * (np.float32(1) / scale)).astype(np.float32)
    return np.clip(np.rint(v) + zero_point, 0, 255).astype(np.uint8), scale, zero_point


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


def fma32(a: np.ndarray, m: np.ndarray, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add, fl(a * m + c) with one rounding, for float32 operands.
    a * m is exact in float64 (24 + 24 bits); the sum is exact in float64 unless its error
    term (TwoSum) is non-zero, and only those elements are redone in exact rationals."""
    a, m, c = np.broadcast_arrays(*(np.asarray(v, np.float32).astype(np.float64)
                                    for v in (a, m, c)))
    prod = a * m
    total = prod + c
    virtual = total - prod
    error = (prod - (total - virtual)) + (c - virtual)
    out = total.astype(np.float32)
    for i in zip(*np.nonzero(error), strict=True):
        exact = Fraction(float(prod[i])) + Fraction(float(c[i]))
        out[i] = _fraction_to_float32(exact)
    return out


def _fraction_to_float32(value: Fraction) -> np.float32:
    """Round an exact rational to the nearest float32 (half to even)."""
    if value == 0:
        return np.float32(0)
    lo = np.float32(float(value))  # float64 rounding first, then the float32 neighbours
    candidates = [np.nextafter(lo, np.float32(-np.inf)), lo, np.nextafter(lo, np.float32(np.inf))]
    best = min(candidates, key=lambda f: (abs(Fraction(float(f)) - value),
                                          int(np.float32(f).view(np.uint32)) & 1))
    return np.float32(best)


def _torch_fully_connected(p: dict, x: np.ndarray, wi: np.ndarray, bias: np.ndarray | None
                           ) -> np.ndarray:
    """PyTorch's dynamic quantized Linear (fbgemm), the input_qmax > 0 form."""
    q, s_x, zp = quantize_asymmetric(x, p["input_qmax"])
    acc = q.astype(np.int64) @ wi.T - zp * wi.sum(axis=1)
    m = (s_x * np.asarray(p["weight_scale"], np.float32)).astype(np.float32)
    c = np.zeros(acc.shape[-1], np.float32) if bias is None else np.asarray(bias, np.float32)
    y = fma32(acc.astype(np.float32), m, c)
    return np.clip(y, np.float32(p["act_min"]), np.float32(p["act_max"])).astype(np.float32)


def fully_connected_hybrid(p: dict, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None
                           ) -> np.ndarray:
    rows = x.reshape(p["batch"], p["in_features"])
    wi = w.reshape(p["out_features"], p["in_features"]).astype(np.int64)
    if p.get("input_qmax", 0):
        return _torch_fully_connected(p, rows, wi, bias)
    out = []
    for row in rows:
        xq, s_x = quantize_symmetric(row)
        out.append(_finish(xq.astype(np.int64) @ wi.T, s_x, p, bias))
    return np.stack(out)

"""Binarized networks: compile-time helpers and the NumPy reference of every binary kernel.

The conventions are those of runtime_c/tc_binary.h (Larq Compute Engine's), restated here for
the Python side:

  * values are in {-1, +1}; packed, bit 1 means -1 and bit 0 means +1;
  * packing runs along the last (channel) axis into uint32 words, channel c in bit c % 32 of
    word c // 32, and the padding bits of the last word are zero;
  * binarizing a real x is sign(x) with sign(0) = +1, i.e. bit = x < threshold (threshold 0, or
    a per-channel learned threshold as in ReActNet's RSign);
  * a dot product of N valid bits is N - 2 * popcount(x ^ w), in integers.

Everything here is plain NumPy (no torch): the compiler packs weights, precomputes the padding
correction tables and folds BatchNorm into the output transforms with it, and simulates a binary
graph with the `*_dot` references and the `transform_*` functions, which reproduce the C kernels
bit for bit (the references compute from unpacked +/-1 integers, independently of the packed
algorithm, so they also check it).

Geometry is canonical 3-D (D, H, W) like the C kernels: 1-D and 2-D operators have leading
axes of size 1; `BConvGeometry` and `BPoolGeometry` accept 1 to 3 spatial values and fill the
missing leading axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

WORD_BITS = 32
# float(dot) is exact up to here: the limit of N for the _f32 output transform.
MAX_FLOAT_EXACT_N = 2**24
MAX_N = 2**31 - 1  # int32 accumulator


def words(bits: int) -> int:
    """uint32 words holding `bits` packed values."""
    return (bits + WORD_BITS - 1) // WORD_BITS


# ------------------------------------------------------------------------------------------------
# Packing
# ------------------------------------------------------------------------------------------------


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """bool [..., C] -> uint32 [..., words(C)]: bits[..., c] in bit c % 32 of word c // 32, the
    padding bits zero.  Shifts and ORs only."""
    bits = np.asarray(bits, dtype=bool)
    c = bits.shape[-1]
    lead = bits.shape[:-1]
    lanes = np.zeros((*lead, words(c) * WORD_BITS), dtype=np.uint32)
    lanes[..., :c] = bits
    lanes = lanes.reshape(*lead, words(c), WORD_BITS) << np.arange(WORD_BITS, dtype=np.uint32)
    return np.bitwise_or.reduce(lanes, axis=-1).astype(np.uint32)


def unpack_bits(packed: np.ndarray, channels: int) -> np.ndarray:
    """uint32 [..., words(channels)] -> bool [..., channels] (padding bits ignored)."""
    packed = np.asarray(packed, dtype=np.uint32)
    assert packed.shape[-1] == words(channels), f"{packed.shape} holds not {channels} bits"
    lanes = (packed[..., None] >> np.arange(WORD_BITS, dtype=np.uint32)) & np.uint32(1)
    return lanes.reshape(*packed.shape[:-1], -1)[..., :channels].astype(bool)


def sign_bits(x: np.ndarray, threshold: float | np.ndarray = 0.0) -> np.ndarray:
    """The bits of sign(x - threshold) with sign(0) = +1: True (-1) where x < threshold.  The
    threshold broadcasts along the last axis (per channel).  NaN gives False (+1)."""
    return np.asarray(x) < np.asarray(threshold)


def pack_signs(x: np.ndarray, threshold: float | np.ndarray = 0.0) -> np.ndarray:
    """pack_bits(sign_bits(x, threshold)): what tc_bitpack_f32 / tc_bitpack_s8 compute."""
    return pack_bits(sign_bits(x, threshold))


def bits_to_pm1(bits: np.ndarray) -> np.ndarray:
    """bool bits -> int8 values, -1 where the bit is set, else +1."""
    return np.where(np.asarray(bits, dtype=bool), np.int8(-1), np.int8(1))


def pm1_to_bits(values: np.ndarray) -> np.ndarray:
    """+/-1 values -> bool bits (True for -1)."""
    return np.asarray(values) < 0


def s8_sign_threshold(zero_point: int, scale: float, alpha: float = 0.0) -> int:
    """tc_bitpack_s8's threshold t for int8 data (scale s > 0, zero point z): the real value
    s * (q - z) is below alpha exactly when q < t = ceil(z + alpha / s) (exact arithmetic)."""
    if not scale > 0:
        raise ValueError(f"int8 scale must be positive, got {scale}")
    return math.ceil(Fraction(int(zero_point)) + Fraction(float(alpha)) / Fraction(float(scale)))


# ------------------------------------------------------------------------------------------------
# Geometry
# ------------------------------------------------------------------------------------------------


def _canonical3(values: Sequence[int] | int, fill: int, name: str) -> tuple[int, int, int]:
    values = (values,) if isinstance(values, int | np.integer) else tuple(values)
    if not 1 <= len(values) <= 3:
        raise ValueError(f"{name}: 1 to 3 spatial values expected, got {values}")
    return tuple(int(v) for v in (fill,) * (3 - len(values)) + values)  # type: ignore[return-value]


def _out_size(size: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    return (size + pb + pe - d * (k - 1) - 1) // s + 1


def _tap_valid(size: int, o: int, k: int, s: int, d: int, pb: int) -> np.ndarray:
    """bool [k]: which taps of output position o's window lie inside [0, size)."""
    i = o * s - pb + np.arange(k) * d
    return (i >= 0) & (i < size)


@dataclass(frozen=True)
class _Window:
    """The sliding window shared by binary convolution and pooling (tc_window_range's)."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int, int]
    strides: tuple[int, int, int]
    dilations: tuple[int, int, int]
    pads_begin: tuple[int, int, int]
    pads_end: tuple[int, int, int]

    def _canonicalise(self) -> None:
        fills = {"in_shape": 1, "kernel": 1, "strides": 1, "dilations": 1, "pads_begin": 0,
                 "pads_end": 0}
        for name, fill in fills.items():
            object.__setattr__(self, name, _canonical3(getattr(self, name), fill, name))
        if min(self.in_shape + self.kernel + self.strides + self.dilations) < 1:
            raise ValueError(f"sizes, kernel, strides and dilations must be >= 1: {self}")
        if min(self.pads_begin + self.pads_end) < 0:
            raise ValueError(f"negative padding: {self}")
        if min(self.out_shape) < 1:
            raise ValueError(f"empty output {self.out_shape}: {self}")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return tuple(  # type: ignore[return-value]
            _out_size(*a) for a in zip(self.in_shape, self.kernel, self.strides, self.dilations,
                                       self.pads_begin, self.pads_end, strict=True)
        )

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1] * self.kernel[2]

    def _axis(self, a: int) -> tuple[int, int, int, int, int, int]:
        """(in, out, kernel, stride, dilation, pad_begin) of axis a."""
        return (self.in_shape[a], self.out_shape[a], self.kernel[a], self.strides[a],
                self.dilations[a], self.pads_begin[a])

    def padding_classes(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(lead, trail) per axis: the number of leading output positions whose window starts
        before the input, and of trailing ones whose window ends past it (tc_binary.h)."""
        lead, trail = [], []
        for a in range(3):
            size, out, k, s, d, pb = self._axis(a)
            starts = np.arange(out) * s - pb
            lead.append(int(np.sum(starts < 0)))
            trail.append(int(np.sum(starts + (k - 1) * d >= size)))
        return tuple(lead), tuple(trail)  # type: ignore[return-value]

    def _spatial_params(self) -> dict[str, int]:
        fields = {"in": self.in_shape, "out": self.out_shape, "k": self.kernel,
                  "stride": self.strides, "dilation": self.dilations, "pad": self.pads_begin}
        return {f"{key}_{axis}": int(values[i]) for key, values in fields.items()
                for i, axis in enumerate("dhw")}


@dataclass(frozen=True)
class BConvGeometry(_Window):
    """A binary convolution: window, channels, groups and padding semantics.

    pad_value is the value the padded positions stand for: 0 (PyTorch's zero padding of sign(x),
    no table needed), +1 (Larq's pad_values=1) or -1.  Dense packed input, weights as one bit
    stream per output channel (tc_binary.h).
    """

    in_c: int = 1
    out_c: int = 1
    groups: int = 1
    pad_value: int = 0

    def __post_init__(self) -> None:
        self._canonicalise()
        if self.in_c % self.groups or self.out_c % self.groups:
            raise ValueError(f"groups {self.groups} must divide in_c {self.in_c} and out_c "
                             f"{self.out_c}")
        if self.pad_value not in (-1, 0, 1):
            raise ValueError(f"pad_value must be -1, 0 or +1, got {self.pad_value}")
        if self.n_max > MAX_N:
            raise ValueError(f"{self.n_max} bits per dot product overflow int32")

    @property
    def cig(self) -> int:
        return self.in_c // self.groups

    @property
    def cog(self) -> int:
        return self.out_c // self.groups

    @property
    def n_max(self) -> int:
        """The largest |dot|: every tap's bits (padded taps included)."""
        return self.taps * self.cig

    @property
    def weight_row_words(self) -> int:
        return words(self.taps * self.cig)

    def c_params(self, batch: int, act_min: float = -math.inf, act_max: float = math.inf,
                 out_min: int = -128, out_max: int = 127, out_shift: int = 0
                 ) -> dict[str, int | float]:
        """The fields of tc_bconv_params_t."""
        lead, trail = self.padding_classes()
        params: dict[str, int | float] = {"batch": int(batch)}
        params |= self._spatial_params()
        params |= {"in_c": self.in_c, "out_c": self.out_c, "groups": self.groups}
        params |= {f"lead_{axis}": lead[i] for i, axis in enumerate("dhw")}
        params |= {f"trail_{axis}": trail[i] for i, axis in enumerate("dhw")}
        params |= {"act_min": act_min, "act_max": act_max, "out_min": out_min,
                   "out_max": out_max, "out_shift": out_shift}
        return params


@dataclass(frozen=True)
class BPoolGeometry(_Window):
    """A binary max pool over `channels` packed channels (padding ignored: -infinity)."""

    channels: int = 1

    def __post_init__(self) -> None:
        self._canonicalise()

    def c_params(self, batch: int) -> dict[str, int]:
        """The fields of tc_bmaxpool_params_t."""
        return {"batch": int(batch), **self._spatial_params(), "c": self.channels}


def conv_geometry(in_shape: Sequence[int], in_c: int, out_c: int, kernel: Sequence[int],
                  strides: Sequence[int] | None = None, dilations: Sequence[int] | None = None,
                  pads_begin: Sequence[int] | None = None,
                  pads_end: Sequence[int] | None = None, groups: int = 1,
                  pad_value: int = 0) -> BConvGeometry:
    """BConvGeometry with defaults (stride 1, dilation 1, no padding) for any spatial rank."""
    rank = len(kernel)
    return BConvGeometry(
        in_shape=tuple(in_shape), kernel=tuple(kernel), strides=tuple(strides or (1,) * rank),
        dilations=tuple(dilations or (1,) * rank), pads_begin=tuple(pads_begin or (0,) * rank),
        pads_end=tuple(pads_end or (0,) * rank), in_c=in_c, out_c=out_c, groups=groups,
        pad_value=pad_value,
    )


def pool_geometry(in_shape: Sequence[int], channels: int, kernel: Sequence[int],
                  strides: Sequence[int] | None = None, dilations: Sequence[int] | None = None,
                  pads_begin: Sequence[int] | None = None,
                  pads_end: Sequence[int] | None = None) -> BPoolGeometry:
    """BPoolGeometry with defaults (stride = kernel as in PyTorch, dilation 1, no padding)."""
    rank = len(kernel)
    return BPoolGeometry(
        in_shape=tuple(in_shape), kernel=tuple(kernel), strides=tuple(strides or kernel),
        dilations=tuple(dilations or (1,) * rank), pads_begin=tuple(pads_begin or (0,) * rank),
        pads_end=tuple(pads_end or (0,) * rank), channels=channels,
    )


# ------------------------------------------------------------------------------------------------
# Weights and tables
# ------------------------------------------------------------------------------------------------


def conv_weight_channels_last(w: np.ndarray) -> np.ndarray:
    """PyTorch / ONNX weight [out_c, cig, *K] (1 to 3 spatial axes) -> canonical
    [out_c, k_d, k_h, k_w, cig]."""
    w = np.asarray(w)
    spatial = w.shape[2:]
    w = w.reshape(w.shape[0], w.shape[1], *(1,) * (3 - len(spatial)), *spatial)
    return np.ascontiguousarray(np.moveaxis(w, 1, -1))


def pack_conv_weights(w: np.ndarray) -> np.ndarray:
    """Canonical weights [out_c, k_d, k_h, k_w, cig] (real or +/-1; sign with sign(0) = +1) ->
    uint32 [out_c, words(k_d * k_h * k_w * cig)]: each output channel's bits in row-major order
    (kd, kh, kw, ic) as one bit stream, padding bits zero (tc_binary.h)."""
    w = np.asarray(w)
    return pack_bits(sign_bits(w.reshape(w.shape[0], -1)))


def unpack_conv_weights(packed: np.ndarray, geom: BConvGeometry) -> np.ndarray:
    """The inverse of pack_conv_weights, as int8 +/-1 [out_c, k_d, k_h, k_w, cig]."""
    bits = unpack_bits(packed, geom.taps * geom.cig)
    return bits_to_pm1(bits).reshape(geom.out_c, *geom.kernel, geom.cig)


def pack_fc_weights(w: np.ndarray) -> np.ndarray:
    """Weights [out_c, in_c] (real or +/-1) -> uint32 [out_c, words(in_c)]."""
    return pack_bits(sign_bits(np.asarray(w)))


def _class_positions(geom: _Window, a: int) -> list[int | None]:
    """A representative output position of each padding class along axis a (None: the
    interior class when there is no interior position; its row is never read)."""
    lead, trail = geom.padding_classes()
    out = geom.out_shape[a]
    positions: list[int | None] = list(range(lead[a]))
    positions.append(lead[a] if lead[a] < out - trail[a] else None)
    positions += [out - trail[a] + j for j in range(trail[a])]
    return positions


def padding_correction(geom: BConvGeometry, w: np.ndarray) -> np.ndarray | None:
    """The pad_corr table of tc_bconv_*: int32 [cls_d, cls_h, cls_w, out_c] with
    pad_value * (sum over the class's padded taps and ic of w[oc, tap, ic]), or None for zero
    padding (pad_value 0), which needs no table.  w: canonical [out_c, k_d, k_h, k_w, cig],
    real (its signs are used) or +/-1."""
    if geom.pad_value == 0:
        return None
    wsum = bits_to_pm1(sign_bits(w)).astype(np.int64).sum(axis=-1)  # [out_c, kd, kh, kw]
    per_axis = [_class_positions(geom, a) for a in range(3)]
    table = np.zeros((*(len(p) for p in per_axis), geom.out_c), dtype=np.int64)
    for cls in np.ndindex(*table.shape[:3]):
        pos = [per_axis[a][cls[a]] for a in range(3)]
        if any(p is None for p in pos):
            continue
        valid = [_tap_valid(geom.in_shape[a], pos[a], geom.kernel[a], geom.strides[a],
                            geom.dilations[a], geom.pads_begin[a]) for a in range(3)]
        padded = ~(valid[0][:, None, None] & valid[1][None, :, None] & valid[2][None, None, :])
        table[cls] = geom.pad_value * wsum[:, padded].sum(axis=-1)
    return table.astype(np.int32)


# ------------------------------------------------------------------------------------------------
# Folding BatchNorm, scales and signs into the output transforms
# ------------------------------------------------------------------------------------------------


def fold_batch_norm(gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
                    eps: float, scale: np.ndarray | None = None,
                    bias: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mul, bias) float32 [out_c] of the _f32 / _s8 transforms for BN(dot * scale + bias):
    a = gamma / sqrt(var + eps), mul = scale * a, bias = (bias - mean) * a + beta, computed in
    float64 and rounded once to float32.  (The deployed fl(fl(dot * mul) + bias) can differ from
    a float32 evaluation of the unfolded graph by a few ulp; exact equality holds for the unfused
    binary layer, dot * scale (+ bias), and for the sign thresholds.)"""
    a = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + float(eps))
    s = np.ones_like(a) if scale is None else np.asarray(scale, np.float64)
    b = np.zeros_like(a) if bias is None else np.asarray(bias, np.float64)
    mul = s * a
    add = (b - np.asarray(mean, np.float64)) * a + np.asarray(beta, np.float64)
    return mul.astype(np.float32), add.astype(np.float32)


@dataclass(frozen=True)
class RequantS8:
    """The _s8 transform's fixed-point constants: y = clamp((dot * mul + bias) >> shift,
    out_min, out_max) with int32 mul, bias [out_c] and one shift per layer."""

    mul: np.ndarray
    bias: np.ndarray
    shift: int


def requant_s8(mul: np.ndarray, bias: np.ndarray, out_scale: float, out_zero_point: int,
               n_max: int, out_min: int = -128, out_max: int = 127) -> RequantS8:
    """The _s8 transform for an int8 consumer of scale s and zero point z of the real output
    dot * mul + bias (|dot| <= n_max): the quantized value r = dot * m + b with m = mul / s and
    b = bias / s + z (float64), rounded half up and clamped, in fixed point:
    M = round(m * 2^S), B = round(b * 2^S) + 2^(S-1), S the largest shift (at most 30) for which
    |dot * M + B| < 2^31 on every channel.  The fixed-point value differs from r + 1/2 by at
    most (n_max + 1) * 2^-(S+1), so y is round-half-up(r), clamped, except that an r within
    that distance of a rounding boundary (k + 1/2) may round the other way.  Channels whose
    output is constant over the dots (r beyond the clamp range by more than |m| * n_max) get a
    b at that bound, so they do not cost the others precision."""
    m = np.asarray(mul, np.float64) / float(out_scale)
    b = np.asarray(bias, np.float64) / float(out_scale) + int(out_zero_point)
    if not (np.isfinite(m).all() and np.isfinite(b).all()):
        raise ValueError("requant_s8: mul and bias must be finite")
    span = np.abs(m) * n_max + 1.0
    b = np.clip(b, out_min - span, out_max + span)
    limit = 2**31 - 1
    for shift in range(30, -1, -1):
        fixed_m = np.round(m * 2.0**shift).astype(np.int64)
        fixed_b = np.round(b * 2.0**shift).astype(np.int64) + (1 << shift >> 1)
        reach = np.abs(fixed_m).astype(np.float64) * n_max + np.abs(fixed_b)  # no int64 wrap
        if (reach <= limit).all():
            return RequantS8(fixed_m.astype(np.int32), fixed_b.astype(np.int32), shift)
    raise ValueError(f"requant_s8: |mul / scale| * {n_max} exceeds 2^31: the int8 output "
                     "cannot be formed in 32 bits")


def sign_thresholds(mul: np.ndarray, bias: np.ndarray, n_max: int,
                    threshold: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(thr int32 [out_c], flip bool [out_c]) of the _b1 transform for the output
    sign(mul * dot + bias - threshold) with sign(0) = +1, in EXACT real arithmetic on the given
    (float32 or float64) values: the bit (-1) is set exactly when mul * dot + bias < threshold.

      mul > 0:  bit = dot < ceil(r)                  r = (threshold - bias) / mul
      mul < 0:  bit = not (dot < floor(r) + 1)       (flip)
      mul = 0:  bit = bias < threshold, constant     (thr = -(n_max + 1), flip = that)
    A tie (mul * dot + bias == threshold) gives +1 (bit 0) in every case.  thr is clamped to
    [-(n_max + 1), n_max + 1], which changes nothing for |dot| <= n_max.  Non-finite values
    raise ValueError.  A float32 evaluation of mul * dot + bias can disagree only within
    rounding of a tie; sign_thresholds_from_function reproduces such an evaluation instead."""
    mul = np.asarray(mul)
    bias = np.broadcast_to(np.asarray(bias), mul.shape)
    thr_in = np.broadcast_to(np.asarray(threshold), mul.shape)
    if not (np.isfinite(mul).all() and np.isfinite(bias).all() and np.isfinite(thr_in).all()):
        raise ValueError("sign_thresholds: mul, bias and threshold must be finite")
    limit = n_max + 1
    thr = np.empty(mul.shape, dtype=np.int64)
    flip = np.zeros(mul.shape, dtype=bool)
    for c in range(mul.size):
        a = Fraction(float(mul.flat[c]))
        b = Fraction(float(bias.flat[c])) - Fraction(float(thr_in.flat[c]))
        if a > 0:
            t = math.ceil(-b / a)
        elif a < 0:
            t = math.floor(-b / a) + 1
            flip.flat[c] = True
        else:
            t = -limit
            flip.flat[c] = b < 0
        thr.flat[c] = min(max(t, -limit), limit)
    return thr.astype(np.int32), flip


def sign_thresholds_from_function(f: Callable[[np.ndarray], np.ndarray], n_max: int,
                                  out_c: int) -> tuple[np.ndarray, np.ndarray]:
    """(thr, flip) that reproduce sign(f(dot)) (sign(0) = +1, bit = f(dot) < 0) for every
    integer dot in [-n_max, n_max], whatever arithmetic f uses: f maps int32 [2 * n_max + 1,
    out_c] (each row one dot value for all channels) to values of that shape, e.g. the float32
    evaluation of the graph's Mul -> BatchNormalization -> (Sub threshold).  Any composition of
    correctly rounded monotone operations is monotone, so each channel's bits form a step;
    ValueError when they do not (or f gives NaN)."""
    dots = np.arange(-n_max, n_max + 1, dtype=np.int32)[:, None] * np.ones(out_c, np.int32)
    values = np.asarray(f(dots))
    if values.shape != dots.shape:
        raise ValueError(f"f returned shape {values.shape}, expected {dots.shape}")
    if np.isnan(values).any():
        raise ValueError("f returned NaN")
    bits = values < 0
    limit = n_max + 1
    thr = np.full(out_c, -limit, dtype=np.int64)
    flip = np.zeros(out_c, dtype=bool)
    for c in range(out_c):
        col = bits[:, c]
        changes = np.flatnonzero(col[1:] != col[:-1])
        if len(changes) > 1:
            raise ValueError(f"channel {c}: sign(f(dot)) is not a step function of dot")
        if len(changes) == 0:  # constant
            flip[c] = bool(col[0])
        elif col[0]:  # -1 ... -1, +1 ... +1: bit = dot < first +1
            thr[c] = int(dots[changes[0] + 1, c])
        else:  # +1 ... +1, -1 ... -1: bit = not (dot < first -1)
            thr[c] = int(dots[changes[0] + 1, c])
            flip[c] = True
    return thr.astype(np.int32), flip


def pack_flip(flip: np.ndarray) -> np.ndarray:
    """The flip argument of the _b1 kernels: uint32 [words(out_c)], padding bits zero."""
    return pack_bits(np.asarray(flip, dtype=bool))


# ------------------------------------------------------------------------------------------------
# NumPy references of the kernels (integer-exact)
# ------------------------------------------------------------------------------------------------


def _np_pads(geom: _Window) -> list[tuple[int, int]]:
    """np.pad widths of an [N, D, H, W, C] tensor for the window's padding."""
    return [(0, 0), *zip(geom.pads_begin, geom.pads_end, strict=True), (0, 0)]


def _tap_window(tap: tuple[int, ...], geom: _Window) -> tuple[slice, ...]:
    """The (D, H, W) slices of the padded input that tap `tap` of every output window reads."""
    return tuple(
        slice(tap[a] * geom.dilations[a],
              tap[a] * geom.dilations[a] + (geom.out_shape[a] - 1) * geom.strides[a] + 1,
              geom.strides[a])
        for a in range(3)
    )


def bconv_dot(x: np.ndarray, w: np.ndarray, geom: BConvGeometry) -> np.ndarray:
    """int32 [N, out_d, out_h, out_w, out_c]: the dot products of tc_bconv_*, from +/-1 values
    x [N, D, H, W, in_c] and w [out_c, k_d, k_h, k_w, cig] (canonical), padded positions standing
    for geom.pad_value (0: they contribute nothing).  Direct: pad, then one matmul per tap."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    assert x.shape[1:] == (*geom.in_shape, geom.in_c), f"x {x.shape} vs {geom}"
    assert w.shape == (geom.out_c, *geom.kernel, geom.cig), f"w {w.shape} vs {geom}"
    pads = _np_pads(geom)
    xp = np.pad(x, pads, constant_values=geom.pad_value)
    out = geom.out_shape
    y = np.zeros((x.shape[0], *out, geom.out_c), dtype=np.int64)
    cig, cog = geom.cig, geom.cog
    for tap in np.ndindex(*geom.kernel):
        patch = xp[(slice(None), *_tap_window(tap, geom))]
        for g in range(geom.groups):
            wg = w[g * cog:(g + 1) * cog][(slice(None), *tap)]  # [cog, cig]
            y[..., g * cog:(g + 1) * cog] += patch[..., g * cig:(g + 1) * cig] @ wg.T
    return y.astype(np.int32)


def bconv_dot_packed(x: np.ndarray, w: np.ndarray, geom: BConvGeometry) -> np.ndarray:
    """bconv_dot from the kernel's operands: packed x uint32 [N, D, H, W, words(in_c)] and
    packed w uint32 [out_c, words(taps * cig)]."""
    xs = bits_to_pm1(unpack_bits(x, geom.in_c))
    return bconv_dot(xs, unpack_conv_weights(w, geom), geom)


def bfc_dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """int32 [batch, out_c]: the dot products of tc_bfc_*, from +/-1 x [batch, in_c] and
    w [out_c, in_c]."""
    return (np.asarray(x, np.int64) @ np.asarray(w, np.int64).T).astype(np.int32)


def bfc_dot_packed(x: np.ndarray, w: np.ndarray, in_c: int) -> np.ndarray:
    """bfc_dot from packed x uint32 [batch, words(in_c)] and w uint32 [out_c, words(in_c)]."""
    return bfc_dot(bits_to_pm1(unpack_bits(x, in_c)), bits_to_pm1(unpack_bits(w, in_c)))


def bmaxpool(x: np.ndarray, geom: BPoolGeometry) -> np.ndarray:
    """int8 +/-1 [N, out_d, out_h, out_w, channels]: max pooling of +/-1 x [N, D, H, W, channels]
    ignoring padded taps (PyTorch's -infinity padding); a window with no tap inside gives -1."""
    x = np.asarray(x, dtype=np.int8)
    pads = _np_pads(geom)
    xp = np.pad(x, pads, constant_values=-2)  # below -1: never the max of a real tap
    out = geom.out_shape
    y = np.full((x.shape[0], *out, geom.channels), -2, dtype=np.int8)
    for tap in np.ndindex(*geom.kernel):
        y = np.maximum(y, xp[(slice(None), *_tap_window(tap, geom))])
    return np.where(y < -1, np.int8(-1), y)


def bmaxpool_packed(x: np.ndarray, geom: BPoolGeometry) -> np.ndarray:
    """bmaxpool on packed words, as packed words (what tc_bmaxpool_b1 writes)."""
    y = bmaxpool(bits_to_pm1(unpack_bits(x, geom.channels)), geom)
    return pack_bits(pm1_to_bits(y))


def _float32(v: np.ndarray | float) -> np.ndarray:
    return np.asarray(v, dtype=np.float32)


def transform_f32(dot: np.ndarray, mul: np.ndarray, bias: np.ndarray,
                  act_min: float = -math.inf, act_max: float = math.inf) -> np.ndarray:
    """The _f32 transform: clamp(fl(fl(float(dot) * mul) + bias), act_min, act_max), float32,
    per channel along the last axis; the clamp is min(max(v, lo), hi) like tc_clamp_f32."""
    v = np.asarray(dot).astype(np.float32) * _float32(mul)
    v = v + _float32(bias)
    v = np.where(v < np.float32(act_min), np.float32(act_min), v)
    return np.where(v > np.float32(act_max), np.float32(act_max), v).astype(np.float32)


def transform_s8(dot: np.ndarray, mul: np.ndarray, bias: np.ndarray, shift: int,
                 out_min: int = -128, out_max: int = 127) -> np.ndarray:
    """The _s8 transform: clamp((dot * mul + bias) >> shift, out_min, out_max) as int8, the
    shift arithmetic (floor), per channel along the last axis (RequantS8's constants)."""
    v = (np.asarray(dot, np.int64) * np.asarray(mul, np.int64) + np.asarray(bias, np.int64))
    assert (np.abs(v) < 2**31).all(), "the _s8 transform overflows int32"
    return np.clip(v >> int(shift), out_min, out_max).astype(np.int8)


def transform_b1(dot: np.ndarray, thr: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """The _b1 transform as bits (True = -1): (dot < thr) XOR flip, per channel."""
    return (np.asarray(dot) < np.asarray(thr)) ^ np.asarray(flip, dtype=bool)

"""TFLite Micro's int8 arithmetic, bit for bit: multipliers, kernel parameters, NumPy references.

Three layers, each matching runtime_c/ exactly:

1. Fixed-point primitives (`srdhm`, `rounding_divide_by_pot`, `multiply_by_quantized_multiplier`,
   the gemmlowp exp / reciprocal / logistic / tanh helpers), vectorised over NumPy arrays, the
   twins of runtime_c/tc_requant.h.  Arrays hold int32 values in int64 so that no step
   overflows; every place where TFLM's int32 arithmetic wraps is wrapped explicitly (`wrap32`).
2. `quantize_multiplier` (TFLite's QuantizeMultiplier) and one `<kernel>_params` function per
   int8 kernel: it computes, from scales and zero points, the quantization fields of the
   kernel's C parameter struct, under the C field names.  Each reproduces how TFLM's Prepare
   derives them: the float32 scales widened to double, every ratio in double (checked
   against the installed TFLM with scales where a float32 derivation gives other bytes; some
   TFLM source trees compute SUB, FC, LEAKY_RELU and HARD_SWISH ratios in float32, the
   installed one does not), and quantize_value's float32 division where TFLM quantizes a
   float.  Geometry fields (shapes, strides, paddings) are the compiler's business and are
   merged into the same dict.
3. One NumPy reference per kernel, `<kernel>_s8(p, *inputs)`, taking the full struct dict
   (geometry + quantization, C field names) and dense arrays in the kernel's layouts, returning
   the dense output.  The compiler uses them to simulate a quantized graph exactly.

Arrays pointed to by the C structs (per-channel multipliers and shifts) are tuples of ints here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

# TFLite's ActivationFunctionType codes, also accepted by name.
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}

Params = dict[str, object]

# --------------------------------------------------------------------------------------------
# 1. Fixed-point primitives (int32 values held in int64 arrays)
# --------------------------------------------------------------------------------------------


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap32(x) -> np.ndarray:
    """x modulo 2^32 as a signed int32 value (two's complement wrap-around)."""
    return ((_i64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap16(x) -> np.ndarray:
    """x modulo 2^16 as a signed int16 value."""
    return ((_i64(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


def _trunc_div_pow2(x: np.ndarray, bits: int) -> np.ndarray:
    """x / 2^bits truncated towards zero (C integer division)."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


def srdhm(a, b) -> np.ndarray:
    """Saturating rounding doubling high multiply: round(a*b / 2^31), ties half up, with
    INT32_MIN * INT32_MIN saturated to INT32_MAX (tc_sat_rounding_doubling_high_mul)."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    result = _trunc_div_pow2(ab + nudge, 31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, result)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """x / 2^exponent rounded to nearest, ties half away from zero (0 <= exponent <= 62: int64;
    the C takes exponents above 31 only in tc_softmax_s8)."""
    x, exponent = _i64(x), _i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier with double rounding, as
    tc_multiply_by_quantized_multiplier: x is shifted left by max(shift, 0) with int32
    wrap-around, multiplied by srdhm, then rounding-shifted right by max(-shift, 0).
    multiplier and shift may be per-element arrays."""
    shift = _i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(srdhm(wrap32(_i64(x) << left), multiplier), right)


def saturating_shift_left(x, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent >= 1."""
    x = _i64(x)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, x << exponent))


def rounding_half_sum(a, b) -> np.ndarray:
    """(a + b) / 2 rounded half away from zero."""
    total = _i64(a) + _i64(b)
    sign = np.where(total >= 0, 1, -1)
    return _trunc_div_pow2(total + sign, 1)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    constant_term, constant_1_over_3 = 1895147668, 715827883
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


_EXP_BARREL = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: exp(a) for Q(integer_bits) values a <= 0, as Q0."""
    a = _i64(a)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod = (a & (one_quarter - 1)) - one_quarter
    scaled = saturating_shift_left(a_mod, integer_bits) if integer_bits > 0 else a_mod
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(scaled)
    remainder = a_mod - a
    for k, multiplier in enumerate(_EXP_BARREL):
        exponent = k - 2
        if integer_bits > exponent:
            bit = (remainder & (1 << (fractional_bits + exponent))) != 0
            result = np.where(bit, srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_half_denominator(a: np.ndarray) -> np.ndarray:
    """Q2 reciprocal of d = (1 + a) / 2 by three Newton-Raphson steps (gemmlowp)."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = 1515870810 + srdhm(half_denominator, -1010580540)
    for _ in range(3):
        one_minus = (1 << 29) - srdhm(half_denominator, x)  # 1.0 in Q2 minus d * x
        x = x + saturating_shift_left(srdhm(x, one_minus), 2)
    return x


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: 1 / (1 + a) for Q0 a in [0, 1), as Q0."""
    return saturating_shift_left(_newton_reciprocal_half_denominator(_i64(a)), 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    """gemmlowp: (1 - a) / (1 + a) for Q0 a in [0, 1), as Q0."""
    return saturating_shift_left(_newton_reciprocal_half_denominator(_i64(a)) - (1 << 29), 2)


def fixed_point_logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic of Q(integer_bits) values, as Q0."""
    a = _i64(a)
    positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-np.abs(a), integer_bits))
    return np.where(a == 0, 1 << 30, np.where(a > 0, positive, INT32_MAX - positive))


def fixed_point_tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh of Q(integer_bits) values, as Q0."""
    a = _i64(a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(-np.abs(a), integer_bits + 1))
    return np.where(a == 0, 0, np.where(a < 0, -t, t))


def srdhm16(a, b) -> np.ndarray:
    """int16 saturating rounding doubling high multiply (ties half up)."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    result = wrap16(_trunc_div_pow2(ab + nudge, 15))
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, result)


def sdhm16(a, b) -> np.ndarray:
    """int16 saturating doubling high multiply, truncating towards zero (Arm SQDMULH)."""
    a, b = _i64(a), _i64(b)
    result = wrap16(_trunc_div_pow2(a * b, 15))
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, result)


def rounding_divide_by_pot16(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT on int16 lanes (mask and sums truncated to 16 bits)."""
    x, exponent = _i64(x), _i64(exponent)
    mask = wrap16((np.int64(1) << exponent) - 1)
    remainder = wrap16(x & mask)
    threshold = wrap16((mask >> 1) + (x < 0))
    return wrap16((x >> exponent) + (remainder > threshold))


def saturating_left_shift16(x, amount: int) -> np.ndarray:
    return np.clip(_i64(x) << amount, INT16_MIN, INT16_MAX)


# --------------------------------------------------------------------------------------------
# 2. Multipliers and kernel parameters
# --------------------------------------------------------------------------------------------


def tflite_round(x: float) -> float:
    """std::round: to nearest, ties half away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def f32(x) -> np.float32:
    """A value as float32 (TFLite stores scales as float32)."""
    return np.float32(x)


def widen(scale: float) -> float:
    """A float32 value (a scale, beta, alpha) widened to double, as TFLM's
    static_cast<double>(params.scale)."""
    return float(np.float32(scale))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: (multiplier, shift) with real ~= multiplier * 2^shift / 2^31.

    frexp gives real = q * 2^shift, q in [0.5, 1); multiplier = round(q * 2^31) (ties away from
    zero); a multiplier that rounds up to 2^31 becomes 2^30 with shift + 1; shift < -31 flushes
    to (0, 0); real == 0 gives (0, 0).  Negative reals give negative multipliers."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(tflite_round(q * (1 << 31)))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: requires 0 < real < 1 (shift <= 0)."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} is not in (0, 1)")
    return quantize_multiplier(real)


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierGreaterThanOne: requires real > 1 (shift >= 0)."""
    if not real > 1.0:
        raise ValueError(f"multiplier {real} is not > 1")
    return quantize_multiplier(real)


def input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
                 ) -> int:
    """TFLite's CalculateInputRadius: the largest |input - zero_point| (or |diff|) that the
    fixed-point rescaling cannot overflow, floor((2^ib - 1) * 2^(31 - ib) / 2^left_shift)."""
    value = ((1 << input_integer_bits) - 1) * 2.0 ** (total_signed_bits - input_integer_bits)
    return math.floor(value / 2.0 ** input_left_shift)


def quantize_value(value: float, scale: float, zero_point: int) -> int:
    """zero_point + round(value / scale) with the division in float32 (TFLite)."""
    return zero_point + int(tflite_round(float(f32(value) / f32(scale))))


def fused_activation_range(activation: int | str, scale: float, zero_point: int
                           ) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int8 output: the [act_min, act_max]
    clamp of a fused activation (NONE, RELU, RELU_N1_TO_1, RELU6, by name or TFLite code)."""
    name = ACTIVATIONS.get(activation, activation) if isinstance(activation, int) else activation
    bounds = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0),
              "RELU_N1_TO_1": (-1.0, 1.0)}
    if name not in bounds:
        raise ValueError(f"unsupported fused activation {activation!r}")
    lo, hi = bounds[name]
    act_min = INT8_MIN if lo is None else max(INT8_MIN, quantize_value(lo, scale, zero_point))
    act_max = INT8_MAX if hi is None else min(INT8_MAX, quantize_value(hi, scale, zero_point))
    return act_min, act_max


def _channel_multipliers(reals: Sequence[float]) -> Params:
    pairs = [quantize_multiplier(r) for r in reals]
    return {"per_channel": int(len(pairs) > 1),
            "multiplier": tuple(m for m, _ in pairs), "shift": tuple(s for _, s in pairs)}


def conv_params(input_scale: float, input_zero_point: int, weight_scales: Sequence[float],
                output_scale: float, output_zero_point: int, act_min: int = INT8_MIN,
                act_max: int = INT8_MAX) -> Params:
    """tc_conv_s8 / tc_depthwise_conv_s8 (TFLM PopulateConvolutionQuantizationParams): per
    output channel, quantize_multiplier(double(s_in) * double(s_w[c]) / double(s_out)).  One
    weight scale gives per_channel = 0 and one-element arrays."""
    reals = [widen(input_scale) * widen(s) / widen(output_scale)
             for s in np.atleast_1d(weight_scales)]
    return {"input_offset": -int(input_zero_point), "output_offset": int(output_zero_point),
            "act_min": int(act_min), "act_max": int(act_max), **_channel_multipliers(reals)}


def fully_connected_params(input_scale: float, input_zero_point: int,
                           weight_scales: Sequence[float], output_scale: float,
                           output_zero_point: int, act_min: int = INT8_MIN,
                           act_max: int = INT8_MAX) -> Params:
    """tc_fully_connected_s8 (TFLM CalculateOpDataFullyConnected): the same fields and
    arithmetic as conv_params, per channel or with a single weight scale."""
    return conv_params(input_scale, input_zero_point, weight_scales, output_scale,
                       output_zero_point, act_min, act_max)


ADD_LEFT_SHIFT = 20  # TFLM's headroom shift for 8-bit ADD / SUB


def add_params(input1_scale: float, input1_zero_point: int, input2_scale: float,
               input2_zero_point: int, output_scale: float, output_zero_point: int,
               act_min: int = INT8_MIN, act_max: int = INT8_MAX) -> Params:
    """tc_add_s8 and tc_sub_s8 (TFLM CalculateOpDataAdd / CalculateOpDataSub): both inputs are
    rescaled to the common scale 2 * max(s1, s2) / 2^20 (multipliers s_i / (2 max), below
    1), their sum or difference to the output (2 max / (2^20 s_out)); all in double."""
    s1, s2, so = widen(input1_scale), widen(input2_scale), widen(output_scale)
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(s1 / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(s2 / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one_exp(
        twice_max / ((1 << ADD_LEFT_SHIFT) * so))
    return {"input1_offset": -int(input1_zero_point), "input2_offset": -int(input2_zero_point),
            "output_offset": int(output_zero_point), "left_shift": ADD_LEFT_SHIFT,
            "input1_multiplier": m1, "input1_shift": sh1, "input2_multiplier": m2,
            "input2_shift": sh2, "output_multiplier": mo, "output_shift": sho,
            "act_min": int(act_min), "act_max": int(act_max)}


sub_params = add_params  # SUB's Prepare is ADD's; tc_sub_s8 takes the same struct


def mul_params(input1_scale: float, input1_zero_point: int, input2_scale: float,
               input2_zero_point: int, output_scale: float, output_zero_point: int,
               act_min: int = INT8_MIN, act_max: int = INT8_MAX) -> Params:
    """tc_mul_s8 (TFLM CalculateOpDataMul): quantize_multiplier(s1 * s2 / s_out) in double."""
    multiplier, shift = quantize_multiplier(
        widen(input1_scale) * widen(input2_scale) / widen(output_scale))
    return {"input1_offset": -int(input1_zero_point), "input2_offset": -int(input2_zero_point),
            "output_offset": int(output_zero_point), "output_multiplier": multiplier,
            "output_shift": shift, "act_min": int(act_min), "act_max": int(act_max)}


def pool_params(act_min: int = INT8_MIN, act_max: int = INT8_MAX) -> Params:
    """tc_max_pool_s8 / tc_avg_pool_s8: input and output share scale and zero point (TFLite),
    so only the fused activation's clamp is quantization-dependent."""
    return {"act_min": int(act_min), "act_max": int(act_max)}


def mean_params(input_scale: float, input_zero_point: int, output_scale: float,
                output_zero_point: int, count: int) -> Params:
    """tc_mean_s8 (TFLM QuantizedMeanOrSum): quantize_multiplier(s_in / s_out), then 1/count
    folded into it: with k = min(floor(log2(count)), 32, 31 + shift),
    multiplier' = (multiplier << k) // count (int64, truncating), shift' = shift - k.
    sum_offset = -input_zero_point * count (int32 wrap-around)."""
    multiplier, shift = quantize_multiplier(widen(input_scale) / widen(output_scale))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = int(wrap32((multiplier << k) // count))
    return {"sum_offset": int(wrap32(-int(input_zero_point) * count)),
            "output_offset": int(output_zero_point), "multiplier": multiplier,
            "shift": shift - k}


SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5
SOFTMAX_OUTPUT_SCALE, SOFTMAX_OUTPUT_ZERO_POINT = 1.0 / 256, -128
SOFTMAX_MAX_DEPTH = 4095  # each exp adds up to 2^19 to the row's int32 sum (Q12)


def softmax_params(input_scale: float, beta: float = 1.0) -> Params:
    """tc_softmax_s8 (TFLM CalculateSoftmaxParams, PreprocessSoftmaxScaling): the input
    difference is rescaled to Q5 by quantize_multiplier(min(beta * s_in * 2^26, 2^31 - 1))
    (a left shift); differences below diff_min = -input_radius(5, shift) contribute nothing.
    The output is fixed at scale 1/256, zero point -128 (TFLM refuses anything else)."""
    ib = SOFTMAX_SCALED_DIFF_INTEGER_BITS
    real = min(widen(beta) * widen(input_scale) * float(1 << (31 - ib)), float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier_greater_than_one(real)
    return {"input_multiplier": multiplier, "input_left_shift": left_shift,
            "diff_min": -input_radius(ib, left_shift)}


FIXED_POINT_INPUT_INTEGER_BITS = 4  # LOGISTIC and TANH take their input as Q4


def _q4_input(input_scale: float, input_zero_point: int) -> Params:
    """LOGISTIC / TANH input rescaling (TFLM): frexp(s_in * 2^27) -> (q, shift), multiplier =
    round(q * 2^31) without QuantizeMultiplier's overflow fix (a float32 scale never rounds up
    to 2^31), radius = input_radius(4, shift)."""
    q, left_shift = math.frexp(widen(input_scale) * float(1 << 27))
    multiplier = int(wrap32(int(tflite_round(q * (1 << 31)))))
    return {"input_zero_point": int(input_zero_point),
            "input_range_radius": input_radius(FIXED_POINT_INPUT_INTEGER_BITS, left_shift),
            "input_multiplier": multiplier, "input_left_shift": left_shift}


LOGISTIC_OUTPUT_SCALE, LOGISTIC_OUTPUT_ZERO_POINT = 1.0 / 256, -128
TANH_OUTPUT_SCALE, TANH_OUTPUT_ZERO_POINT = 1.0 / 128, 0


def logistic_params(input_scale: float, input_zero_point: int) -> Params:
    """tc_logistic_s8: output fixed at scale 1/256, zero point -128."""
    return _q4_input(input_scale, input_zero_point)


def tanh_params(input_scale: float, input_zero_point: int) -> Params:
    """tc_tanh_s8: output fixed at scale 1/128, zero point 0."""
    return _q4_input(input_scale, input_zero_point)


def _downscale_multiplier_to_int16(multiplier: int) -> int:
    """TFLite's DownScaleInt32ToInt16Multiplier: round to the top 16 bits, saturating."""
    if multiplier >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (multiplier + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, input_zero_point: int, output_scale: float,
                      output_zero_point: int) -> Params:
    """tc_hard_swish_s8 (TFLM HardSwishPrepare): the input on the "hires" scale s_in / 128 is
    rescaled to the output (output_multiplier, exponent <= 0) and to the "reluish" scale
    3 / 32768 (reluish_multiplier, exponent of either sign), both multipliers rounded to 16
    bits (DownScaleInt32ToInt16Multiplier)."""
    hires = widen(input_scale) / 128.0
    out_m, out_e = quantize_multiplier(hires / widen(output_scale))
    relu_m, relu_e = quantize_multiplier(hires / (3.0 / 32768.0))
    if out_e > 0:
        raise ValueError("HARD_SWISH needs output_scale >= input_scale / 128 (TFLM refuses)")
    return {"input_zero_point": int(input_zero_point),
            "output_zero_point": int(output_zero_point),
            "output_multiplier": _downscale_multiplier_to_int16(out_m),
            "output_multiplier_exponent": out_e,
            "reluish_multiplier": _downscale_multiplier_to_int16(relu_m),
            "reluish_multiplier_exponent": relu_e}


def leaky_relu_params(input_scale: float, input_zero_point: int, alpha: float,
                      output_scale: float, output_zero_point: int) -> Params:
    """tc_leaky_relu_s8 (TFLM CalculateOpDataLeakyRelu): identity = quantize_multiplier(s_in /
    s_out), alpha = quantize_multiplier(s_in * alpha / s_out)."""
    s_in, s_out = widen(input_scale), widen(output_scale)
    m_id, s_id = quantize_multiplier(s_in / s_out)
    m_alpha, s_alpha = quantize_multiplier(s_in * widen(alpha) / s_out)
    return {"input_zero_point": int(input_zero_point),
            "output_zero_point": int(output_zero_point),
            "multiplier_identity": m_id, "shift_identity": s_id,
            "multiplier_alpha": m_alpha, "shift_alpha": s_alpha}


def requantize_params(input_scale: float, input_zero_point: int, output_scale: float,
                      output_zero_point: int, act_min: int = INT8_MIN,
                      act_max: int = INT8_MAX) -> Params:
    """tc_requantize_s8: QUANTIZE int8 -> int8 (TFLM Requantize, act range the full int8
    range) and RELU / RELU_N1_TO_1 (TFLM ReluQuantized: act range from
    fused_activation_range on the output): quantize_multiplier(s_in / s_out) in double."""
    multiplier, shift = quantize_multiplier(widen(input_scale) / widen(output_scale))
    return {"input_zero_point": int(input_zero_point),
            "output_zero_point": int(output_zero_point), "multiplier": multiplier,
            "shift": shift, "act_min": int(act_min), "act_max": int(act_max)}


def relu6_params(input_scale: float, input_zero_point: int) -> Params:
    """tc_requantize_s8 as TFLM's int8 RELU6, which does not requantize (the output must share
    the input's quantization): an exact identity (multiplier 2^30, shift 1) clamped to
    [zero_point, quantized 6]."""
    six = min(INT8_MAX, max(INT8_MIN, quantize_value(6.0, input_scale, input_zero_point)))
    return {"input_zero_point": int(input_zero_point),
            "output_zero_point": int(input_zero_point), "multiplier": 1 << 30, "shift": 1,
            "act_min": int(input_zero_point), "act_max": six}


def quantize_params(output_scale: float, output_zero_point: int) -> Params:
    """tc_quantize_s8 (float32 -> int8, TFLM AffineQuantize)."""
    return {"scale": widen(output_scale), "zero_point": int(output_zero_point)}


def dequantize_params(input_scale: float, input_zero_point: int) -> Params:
    """tc_dequantize_s8 (int8 -> float32, TFLM Dequantize)."""
    return {"scale": widen(input_scale), "zero_point": int(input_zero_point)}


# --------------------------------------------------------------------------------------------
# 3. NumPy references of the kernels (p: the full C struct as a dict)
# --------------------------------------------------------------------------------------------


def _requantize_acc(acc: np.ndarray, p: Params, channel_axis_len: int) -> np.ndarray:
    """Per-channel (last axis) multiply_by_quantized_multiplier, + output_offset, clamp."""
    multiplier = np.asarray(p["multiplier"], dtype=np.int64)
    shift = np.asarray(p["shift"], dtype=np.int64)
    if not p["per_channel"]:
        multiplier = np.full(channel_axis_len, multiplier[0])
        shift = np.full(channel_axis_len, shift[0])
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + p["output_offset"]
    return np.clip(out, p["act_min"], p["act_max"]).astype(np.int8)


def _padded_taps(p: Params, x: np.ndarray):
    """x + input_offset, zero-padded, and a generator of the (kd, kh, kw) tap views
    [batch, out_d, out_h, out_w, in_c] (a padded tap then contributes exactly 0)."""
    n, depth, height, width, c = (p[k] for k in ("batch", "in_d", "in_h", "in_w", "in_c"))
    xo = x.reshape(n, depth, height, width, c).astype(np.int64) + p["input_offset"]
    out = (p["out_d"], p["out_h"], p["out_w"])
    ks = (p["k_d"], p["k_h"], p["k_w"])
    strides = (p["stride_d"], p["stride_h"], p["stride_w"])
    dils = (p["dilation_d"], p["dilation_h"], p["dilation_w"])
    pads = (p["pad_d"], p["pad_h"], p["pad_w"])
    ext = [max(pad + size, (o - 1) * s + dl * (k - 1) + 1)
           for pad, size, o, s, dl, k in zip(pads, (depth, height, width), out, strides, dils,
                                             ks, strict=True)]
    xp = np.zeros((n, *ext, c), dtype=np.int64)
    xp[:, pads[0]:pads[0] + depth, pads[1]:pads[1] + height, pads[2]:pads[2] + width] = xo

    def taps():
        for kd, kh, kw in np.ndindex(*ks):
            starts = (kd * dils[0], kh * dils[1], kw * dils[2])
            yield (kd, kh, kw), xp[
                :,
                starts[0]:starts[0] + (out[0] - 1) * strides[0] + 1:strides[0],
                starts[1]:starts[1] + (out[1] - 1) * strides[1] + 1:strides[1],
                starts[2]:starts[2] + (out[2] - 1) * strides[2] + 1:strides[2],
            ]
    return taps()


def conv_s8(p: Params, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """tc_conv_s8: x [batch, in_d, in_h, in_w, in_c], w [out_c, k_d, k_h, k_w, in_c / groups],
    bias [out_c] int32 or None -> y [batch, out_d, out_h, out_w, out_c] int8."""
    groups, oc = p["groups"], p["out_c"]
    cig, cog = p["in_c"] // groups, oc // groups
    w = w.reshape(oc, p["k_d"], p["k_h"], p["k_w"], cig).astype(np.int64)
    acc = np.zeros((p["batch"], p["out_d"], p["out_h"], p["out_w"], oc), dtype=np.int64)
    for (kd, kh, kw), patch in _padded_taps(p, x):
        xg = patch.reshape(*patch.shape[:-1], groups, cig)
        wg = w[:, kd, kh, kw, :].reshape(groups, cog, cig)
        acc += np.einsum("...gc,goc->...go", xg, wg).reshape(acc.shape)
    if bias is not None:
        acc += np.asarray(bias, dtype=np.int64)
    return _requantize_acc(wrap32(acc), p, oc)


def depthwise_conv_s8(p: Params, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None
                      ) -> np.ndarray:
    """tc_depthwise_conv_s8: w [k_d, k_h, k_w, out_c] (TFLite [1, KH, KW, in_c * mult]);
    output channel oc reads input channel oc / (out_c / in_c)."""
    oc, mult = p["out_c"], p["out_c"] // p["in_c"]
    w = w.reshape(p["k_d"], p["k_h"], p["k_w"], oc).astype(np.int64)
    acc = np.zeros((p["batch"], p["out_d"], p["out_h"], p["out_w"], oc), dtype=np.int64)
    for (kd, kh, kw), patch in _padded_taps(p, x):
        acc += np.repeat(patch, mult, axis=-1) * w[kd, kh, kw]
    if bias is not None:
        acc += np.asarray(bias, dtype=np.int64)
    return _requantize_acc(wrap32(acc), p, oc)


def fully_connected_s8(p: Params, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None
                       ) -> np.ndarray:
    """tc_fully_connected_s8: x [batch, in_features], w [out_features, in_features]."""
    xi = x.reshape(p["batch"], p["in_features"]).astype(np.int64) + p["input_offset"]
    wi = w.reshape(p["out_features"], p["in_features"]).astype(np.int64)
    acc = xi @ wi.T
    if bias is not None:
        acc += np.asarray(bias, dtype=np.int64)
    return _requantize_acc(wrap32(acc), p, p["out_features"])


def _broadcast_operands(p: Params, a: np.ndarray, b: np.ndarray):
    """The operands of a strided binary kernel gathered to its dense output shape."""
    rank = p["rank"]
    shape = tuple(p["shape"][:rank])
    index = np.indices(shape, dtype=np.int64).reshape(rank, -1)
    off_a = (np.asarray(p["a_strides"][:rank], dtype=np.int64)[:, None] * index).sum(axis=0)
    off_b = (np.asarray(p["b_strides"][:rank], dtype=np.int64)[:, None] * index).sum(axis=0)
    va = a.reshape(-1).astype(np.int64)[off_a].reshape(shape)
    vb = b.reshape(-1).astype(np.int64)[off_b].reshape(shape)
    return va, vb


def _add_sub(p: Params, a: np.ndarray, b: np.ndarray, sign: int) -> np.ndarray:
    va, vb = _broadcast_operands(p, a, b)
    left = 1 << p["left_shift"]
    s1 = multiply_by_quantized_multiplier((va + p["input1_offset"]) * left,
                                          p["input1_multiplier"], p["input1_shift"])
    s2 = multiply_by_quantized_multiplier((vb + p["input2_offset"]) * left,
                                          p["input2_multiplier"], p["input2_shift"])
    raw = multiply_by_quantized_multiplier(s1 + sign * s2, p["output_multiplier"],
                                           p["output_shift"]) + p["output_offset"]
    return np.clip(raw, p["act_min"], p["act_max"]).astype(np.int8)


def add_s8(p: Params, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """tc_add_s8 (numpy broadcasting through p's strides)."""
    return _add_sub(p, a, b, +1)


def sub_s8(p: Params, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """tc_sub_s8: a - b."""
    return _add_sub(p, a, b, -1)


def mul_s8(p: Params, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """tc_mul_s8."""
    va, vb = _broadcast_operands(p, a, b)
    prod = wrap32((va + p["input1_offset"]) * (vb + p["input2_offset"]))
    raw = multiply_by_quantized_multiplier(prod, p["output_multiplier"],
                                           p["output_shift"]) + p["output_offset"]
    return np.clip(raw, p["act_min"], p["act_max"]).astype(np.int8)


def _pool_windows(p: Params, x: np.ndarray) -> list[np.ndarray]:
    """The tap views [batch, out_d, out_h, out_w, c] of every window position, holding x + 129
    (in [1, 256]) where the tap is inside the input and 0 where it is padding."""
    n, depth, height, width, c = (p[k] for k in ("batch", "in_d", "in_h", "in_w", "c"))
    geometry = {"batch": n, "in_d": depth, "in_h": height, "in_w": width, "in_c": c,
                "input_offset": 0,
                **{k: p[k] for k in ("out_d", "out_h", "out_w", "k_d", "k_h", "k_w",
                                     "stride_d", "stride_h", "stride_w", "dilation_d",
                                     "dilation_h", "dilation_w", "pad_d", "pad_h", "pad_w")}}
    marked = x.reshape(n, depth, height, width, c).astype(np.int64) + 129
    return [tap for _, tap in _padded_taps(geometry, marked)]


def max_pool_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_max_pool_s8: x [batch, in_d, in_h, in_w, c] -> y [batch, out_d, out_h, out_w, c]."""
    taps = np.stack(_pool_windows(p, x))
    best = np.where(taps > 0, taps - 129, INT8_MIN).max(axis=0)
    return np.clip(best, p["act_min"], p["act_max"]).astype(np.int8)


def avg_pool_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_avg_pool_s8: sum over the taps inside the input divided by their count (or, with
    count_include_pad, by the taps inside the explicitly padded extent), rounded half away from
    zero by C integer division."""
    taps = np.stack(_pool_windows(p, x))
    inside = taps > 0
    total = np.where(inside, taps - 129, 0).sum(axis=0)
    count = inside.sum(axis=0)
    if p["count_include_pad"]:
        count = np.broadcast_to(_padded_counts(p), total.shape)
    count = np.maximum(count, 1)
    half = count // 2
    avg = np.where(total > 0, (total + half) // count, -((-total + half) // count))
    return np.clip(avg, p["act_min"], p["act_max"]).astype(np.int8)


def _padded_counts(p: Params) -> np.ndarray:
    """Per output position [1, out_d, out_h, out_w, 1]: taps inside [-pad, in + pad_end)."""
    counts = []
    for axis in ("d", "h", "w"):
        size, k, s, dl = p[f"in_{axis}"], p[f"k_{axis}"], p[f"stride_{axis}"], p[f"dilation_{axis}"]
        lo, hi = -p[f"pad_{axis}"], size + p[f"pad_end_{axis}"]
        starts = np.arange(p[f"out_{axis}"]) * s + lo
        taps = starts[:, None] + dl * np.arange(k)[None, :]
        counts.append(((taps >= lo) & (taps < hi)).sum(axis=1))
    cd, ch, cw = counts
    return (cd[:, None, None] * ch[None, :, None] * cw[None, None, :])[None, ..., None]


def mean_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_mean_s8: x viewed as [outer, reduce_len, inner] -> y [outer, inner]."""
    xs = x.reshape(p["outer"], p["reduce_len"], p["inner"]).astype(np.int64)
    total = wrap32(xs.sum(axis=1) + p["sum_offset"])
    out = multiply_by_quantized_multiplier(total, p["multiplier"], p["shift"])
    return np.clip(out + p["output_offset"], INT8_MIN, INT8_MAX).astype(np.int8)


def softmax_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_softmax_s8: softmax over the middle axis of x viewed as [outer, depth, inner]."""
    xs = x.reshape(p["outer"], p["depth"], p["inner"]).astype(np.int64)
    diff = xs - xs.max(axis=1, keepdims=True)
    valid = diff >= p["diff_min"]
    rescaled = multiply_by_quantized_multiplier(diff, p["input_multiplier"],
                                                p["input_left_shift"])
    exps = exp_on_negative_values(np.where(valid, rescaled, 0),
                                  SOFTMAX_SCALED_DIFF_INTEGER_BITS)
    sum_of_exps = wrap32(np.where(valid, rounding_divide_by_pot(exps, 12), 0).sum(axis=1))
    # GetReciprocal(sum, 12 integer bits)
    headroom = 32 - np.frexp(np.maximum(sum_of_exps, 1).astype(np.float64))[1]  # clz32
    num_bits_over_unit = 12 - headroom
    shifted_minus_one = wrap32((sum_of_exps << headroom) - (1 << 31))
    scale = one_over_one_plus_x_for_x_in_0_1(shifted_minus_one)
    exponent = (num_bits_over_unit + 31 - 8)[:, None, :]
    out = rounding_divide_by_pot(srdhm(scale[:, None, :], exps), exponent) + INT8_MIN
    out = np.where(valid, np.clip(out, INT8_MIN, INT8_MAX), INT8_MIN)
    return out.astype(np.int8).reshape(x.shape)


def _q4_activation(p: Params, x: np.ndarray, fn, out_shift: int, out_offset: int
                   ) -> np.ndarray:
    value = x.astype(np.int64) - p["input_zero_point"]
    radius = p["input_range_radius"]
    q4 = multiply_by_quantized_multiplier(np.clip(value, -radius, radius),
                                          p["input_multiplier"], p["input_left_shift"])
    out = rounding_divide_by_pot(fn(q4, FIXED_POINT_INPUT_INTEGER_BITS), out_shift) + out_offset
    out = np.clip(out, INT8_MIN, INT8_MAX)
    out = np.where(value <= -radius, INT8_MIN, np.where(value >= radius, INT8_MAX, out))
    return out.astype(np.int8)


def logistic_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_logistic_s8: Q0 logistic >> 23 (rounding) - 128; saturated outside the radius."""
    return _q4_activation(p, x, fixed_point_logistic, 23, LOGISTIC_OUTPUT_ZERO_POINT)


def tanh_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_tanh_s8: Q0 tanh >> 24 (rounding); saturated outside the radius."""
    return _q4_activation(p, x, fixed_point_tanh, 24, TANH_OUTPUT_ZERO_POINT)


def hard_swish_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_hard_swish_s8 (TFLite's int16 fixed-point HardSwish)."""
    value = wrap16(x.astype(np.int64) - p["input_zero_point"])
    hires = wrap16(value * 128)
    preshift = srdhm16(hires, p["output_multiplier"])
    reluish = hires
    exponent = p["reluish_multiplier_exponent"]
    if exponent > 0:
        reluish = saturating_left_shift16(reluish, exponent - 1)
    reluish = srdhm16(reluish, p["reluish_multiplier"])
    if exponent > 0:
        reluish = saturating_left_shift16(reluish, 1)
    if exponent < 0:
        reluish = rounding_divide_by_pot16(reluish, -exponent)
    reluish = wrap16((reluish + (1 << 15)) >> 1)
    out = rounding_divide_by_pot16(sdhm16(reluish, preshift), -p["output_multiplier_exponent"])
    out = wrap16(out + p["output_zero_point"])
    return np.clip(out, INT8_MIN, INT8_MAX).astype(np.int8)


def leaky_relu_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_leaky_relu_s8: the identity or the alpha multiplier by the sign of x - zero_point."""
    value = x.astype(np.int64) - p["input_zero_point"]
    positive = multiply_by_quantized_multiplier(value, p["multiplier_identity"],
                                                p["shift_identity"])
    negative = multiply_by_quantized_multiplier(value, p["multiplier_alpha"], p["shift_alpha"])
    out = np.where(value >= 0, positive, negative) + p["output_zero_point"]
    return np.clip(out, INT8_MIN, INT8_MAX).astype(np.int8)


def requantize_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_requantize_s8: out_zp + MBQM(x - in_zp), clamped to [act_min, act_max]."""
    value = x.astype(np.int64) - p["input_zero_point"]
    out = multiply_by_quantized_multiplier(value, p["multiplier"], p["shift"])
    return np.clip(out + p["output_zero_point"], p["act_min"], p["act_max"]).astype(np.int8)


def quantize_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_quantize_s8: round(x / scale) (float32 division, ties away from zero) + zero_point,
    saturated; NaN gives -128."""
    q = np.asarray(x, dtype=np.float32) / np.float32(p["scale"])
    q = np.where(np.isnan(q), -512.0, np.clip(q, -512.0, 512.0)).astype(np.float64)
    rounded = np.sign(q) * np.floor(np.abs(q) + 0.5)
    return np.clip(rounded.astype(np.int64) + p["zero_point"], INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize_s8(p: Params, x: np.ndarray) -> np.ndarray:
    """tc_dequantize_s8: scale * (x - zero_point) in float32."""
    return (np.float32(p["scale"]) * (x.astype(np.int64) - p["zero_point"]).astype(np.float32)
            ).astype(np.float32)

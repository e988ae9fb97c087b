/*
 * tinyc runtime: the fixed-point primitives of the int8 kernels.
 *
 * Every function here reproduces, bit for bit, the integer arithmetic of TFLite Micro's
 * reference kernels built with its default settings: gemmlowp's fixedpoint.h and TFLite's
 * kernels/internal/common.h with TFLITE_SINGLE_ROUNDING off, i.e. requantization rounds twice
 * (a rounding doubling high multiply, then a rounding right shift).
 *
 * Notation.  A "Qm" value is an int32 raw r standing for r / 2^(31 - m) (m integer bits, 31 - m
 * fractional bits, range [-2^m, 2^m)).  "Round half up" means ties go to +infinity; "round half
 * away" means ties go away from zero.
 *
 * Portability: signed right shifts are assumed arithmetic and uint32 -> int32 conversions
 * modular (true of GCC, Clang and Arm Compiler on every target tinyc supports).  No function
 * here has undefined behaviour for any input unless its comment says so.
 */
#ifndef TC_REQUANT_H
#define TC_REQUANT_H

#include "tc_common.h"

/* ---- int32 primitives ---------------------------------------------------------------------- */

/* Wrapping int32 arithmetic (two's complement, no undefined behaviour on overflow). */
static inline int32_t tc_wrap_add_s32(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t tc_wrap_sub_s32(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* Saturating rounding doubling high multiply (gemmlowp SaturatingRoundingDoublingHighMul, Arm
 * VQRDMULH): round(a * b / 2^31) with ties rounded half UP (towards +infinity: the 64-bit
 * product gets + 2^30 when >= 0, + 1 - 2^30 when < 0, then is divided by 2^31 truncating),
 * and the single overflowing case a == b == INT32_MIN saturated to INT32_MAX.  As a Q0
 * multiply it computes a * b. */
static inline int32_t tc_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* Rounding arithmetic right shift (gemmlowp RoundingDivideByPOT): x / 2^exponent rounded to
 * nearest, ties rounded half AWAY from zero.  Requires 0 <= exponent <= 31. */
static inline int32_t tc_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift / 2^31: TFLite's MultiplyByQuantizedMultiplier, double rounding.
 *   shift > 0:  x is first shifted left by shift (the product wraps modulo 2^32 like TFLM's
 *               int32 multiply on its targets), then tc_sat_rounding_doubling_high_mul;
 *   shift <= 0: tc_sat_rounding_doubling_high_mul, then tc_rounding_divide_by_pot(-shift).
 * multiplier and shift come from arith.quantize_multiplier: multiplier in [2^30, 2^31) (or 0),
 * shift in [-31, 30].  With shift <= 0 this is also TFLite's
 * MultiplyByQuantizedMultiplierSmallerThanOneExp, with shift >= 0 its
 * MultiplyByQuantizedMultiplierGreaterThanOne (both are the same arithmetic). */
static inline int32_t tc_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                          int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return tc_rounding_divide_by_pot(tc_sat_rounding_doubling_high_mul(shifted, multiplier),
                                     right);
}

/* ---- Requantization folded ahead of time (the optimized kernels) ------------------------------
 *
 * The optimized int8 kernels requantize every output with one multiply-accumulate of 64 bits
 * instead of tc_multiply_by_quantized_multiplier's two rounding steps, with the same result
 * for every int32 accumulator.  With P = acc * multiplier (shift < 0, r = -shift >= 1):
 *   tc_sat_rounding_doubling_high_mul  s = floor((P + 2^30) / 2^31)  (the truncating division of
 *       the nudged product equals this floor for both signs; multiplier > 0 never saturates),
 *   tc_rounding_divide_by_pot          y = floor((s + 2^(r-1) - [s < 0]) / 2^r)  (ties away from
 *       zero: remainder > threshold is exactly this carry),
 * and floor((floor(A / 2^31) + c) / 2^r) = floor((A + c * 2^31) / 2^(31 + r)) for integer c, so
 *   y = floor((P + 2^30 + 2^(30 + r) - [s < 0] * 2^31) / 2^(31 + r))
 *     = (high word of Q) >> (r - 1),   Q = (2^30 + 2^(30 + r)) - [acc < 0] * 2^31 + P  (int64).
 * [s < 0] may be replaced by [acc < 0]: they differ only when -2^30 <= P < 0, where s = 0 and
 * both give y = 0.  |Q| < 2^63, so nothing overflows.  Channels with shift >= 0 (a real
 * multiplier of 1/2 or more, rare) take tc_multiply_by_quantized_multiplier itself.
 *
 * The Thumb-2 output stages (tc_conv_fast_s8.c's TC_STORE_S8) use a 32-bit form of the same
 * value where the compiler has bounded the channel's accumulators, |acc| < 2^30 (a "narrow"
 * record).  Doubling numerator and denominator,
 *   y = floor((2 P + 2^31 + 2^(31 + r) - [acc < 0] * 2^32) / 2^(32 + r)),
 * and with t = 2 acc (no overflow) the inner division by 2^32 is exact in 32 bits:
 *   floor((2 P + ...) / 2^32) = floor((t * multiplier + 2^31) / 2^32) + 2^(r - 1) - [t < 0],
 * one SMMLAR (its rounding constant is the 2^31) with accumulator 2^(r - 1) and an ADD of
 * t >> 31, then the arithmetic shift by r.  The output offset rides in that accumulator,
 * (y + offset) * 2^r being added before the shift:
 *   y + offset = (SMMLAR(t, multiplier, narrow_round) + (t >> 31)) >> r,
 *   narrow_round = (2 offset + 1) * 2^(r - 1),
 * which needs r <= 22 (records with larger shifts are not narrow).  No step overflows:
 * |floor((t m + 2^31) / 2^32)| <= 2^30, |narrow_round| <= 257 * 2^21.  A channel whose
 * accumulators never reach half an output step (|acc| m + 2^30 < 2^(30 + r): s stays within
 * 2^(r - 1) - 1) outputs 0 for all of them; its record has multiplier 0 and r = 1, which both
 * forms turn into 0 (plus the offset).  On a Cortex-M4: LSL (or ADD of the doubled bias and
 * acc LSL 1), SMMLAR, ADD, ASR, then SSAT.
 *
 * The record is computed by tinyc.quant.fast.channel_record.  The kernels using it also take
 * their bias folded with the input zero point (tinyc.quant.fast.fold_bias): bias + input_offset
 * times the sum of the channel's weights (int32, wrapping), so they multiply the raw int8 input
 * and skip the offset: sum w * (x + off) + b = sum w * x + (b + off * sum w) exactly in int32
 * arithmetic, where padding taps carry the input zero point (x + off = 0). */
typedef struct {
    int32_t multiplier;   /* in [2^30, 2^31), as tc_multiply_by_quantized_multiplier's */
    int32_t shift_code;   /* r - 1 >= 0 when shift < 0;  -1 - shift < 0 when shift >= 0 */
    int32_t narrow_round; /* narrow: (2 output_offset + 1) * 2^(r - 1); else 0 */
    int32_t narrow_shift; /* narrow: r (>= 1); else 0 */
} tc_requant_channel_t;

/* The 64-bit rounding constant 2^30 + 2^(30 + r) of a record with shift_code >= 0. */
static inline int64_t tc_requant_round(const tc_requant_channel_t *q)
{
    return ((int64_t)1 << 30) + ((int64_t)1 << (31 + q->shift_code));
}

/* The one-step requantization from a record's fields (shift_code >= 0). */
static inline int32_t tc_requantize_parts(int32_t acc, int64_t round, int32_t multiplier,
                                          int32_t shift_code)
{
    const int64_t negative = (int64_t)((uint32_t)acc & 0x80000000u); /* [acc < 0] * 2^31 */
    const int64_t sum = round - negative + (int64_t)acc * multiplier;
    return (int32_t)(sum >> 32) >> shift_code;
}

/* The requantized value plus the output offset by the 32-bit form of a narrow record
 * (q->narrow_shift > 0), from t = 2 * acc: what TC_STORE_S8 computes before its SSAT. */
static inline int32_t tc_requantize_narrow(int32_t t, const tc_requant_channel_t *q)
{
    const int64_t product = (int64_t)t * q->multiplier + ((int64_t)1 << 31); /* SMMLAR */
    const int32_t high = q->narrow_round + (int32_t)(product >> 32);
    return (high + (t >> 31)) >> q->narrow_shift;
}

/* tc_multiply_by_quantized_multiplier(acc, multiplier, shift) of a channel with shift < 0
 * (q->shift_code >= 0). */
static inline int32_t tc_requantize_fast(int32_t acc, const tc_requant_channel_t *q)
{
    return tc_requantize_parts(acc, tc_requant_round(q), q->multiplier, q->shift_code);
}

/* tc_multiply_by_quantized_multiplier(acc, multiplier, shift) of any channel. */
static inline int32_t tc_requantize(int32_t acc, const tc_requant_channel_t *q)
{
    if (q->shift_code < 0) {
        return tc_multiply_by_quantized_multiplier(acc, q->multiplier, -1 - q->shift_code);
    }
    return tc_requantize_fast(acc, q);
}

/* ---- gemmlowp fixed-point functions (int32 raw values) --------------------------------------- */

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent >= 1 (Rescale to fewer
 * integer bits): x * 2^exponent, saturated to INT32_MIN / INT32_MAX when |x| exceeds
 * 2^(31 - exponent) - 1. */
static inline int32_t tc_fp_saturating_shift_left(int32_t x, int32_t exponent)
{
    const int32_t threshold = ((int32_t)1 << (31 - exponent)) - 1;
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp RoundingHalfSum: (a + b) / 2 rounded half away from zero, computed in 64 bits. */
static inline int32_t tc_fp_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a Q0 value a in [-1/4, 0): gemmlowp's 4th-order Taylor expansion around -1/8.
 *   x = a + 1/8;  exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24)
 * evaluated as  c + c * (x + ((((x^4 >> 2) + x^3) * 1/3 + x^2) >> 1))  with c = exp(-1/8), every
 * product a tc_sat_rounding_doubling_high_mul and every >> a tc_rounding_divide_by_pot.
 * Returns Q0. */
static inline int32_t tc_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* exp(-1/8) in Q0 */
    const int32_t constant_1_over_3 = 715827883;  /* 1/3 in Q0 */
    const int32_t x = a + ((int32_t)1 << 28);     /* a + 1/8 */
    const int32_t x2 = tc_sat_rounding_doubling_high_mul(x, x);
    const int32_t x3 = tc_sat_rounding_doubling_high_mul(x2, x);
    const int32_t x4 = tc_sat_rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = tc_rounding_divide_by_pot(x4, 2);
    const int32_t poly = tc_rounding_divide_by_pot(
        tc_sat_rounding_doubling_high_mul(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + tc_sat_rounding_doubling_high_mul(constant_term, x + poly);
}

/* exp(a) for a Q(integer_bits) value a <= 0 (gemmlowp exp_on_negative_values), returning Q0.
 * a = r + m with r = (a & (1/4 - ulp)) - 1/4 in [-1/4, 0) and m = a - r a non-positive
 * multiple of 1/4: exp(r) comes from the Taylor expansion above, exp(m) is applied bit by bit
 * of -m as products with the Q0 constants exp(-1/4), exp(-1/2), exp(-1), exp(-2), exp(-4),
 * exp(-8), exp(-16) (only the bits that exist for integer_bits).
 * For integer_bits > 5, a < -32 gives 0.  a == 0 gives INT32_MAX (1.0 saturated).
 * Requires 0 <= integer_bits <= 29 (tinyc uses 4 and 5). */
static inline int32_t tc_fp_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t barrel[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1)   */
        290630308,  /* exp(-2)   */
        39332535,   /* exp(-4)   */
        720401,     /* exp(-8)   */
        242,        /* exp(-16)  */
    };
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    int32_t result = tc_fp_exp_on_interval_between_negative_one_quarter_and_0_excl(
        integer_bits > 0 ? tc_fp_saturating_shift_left(a_mod_quarter_minus_one_quarter,
                                                       integer_bits)
                         : a_mod_quarter_minus_one_quarter);
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    for (int32_t k = 0; k < 7; ++k) {
        const int32_t exponent = k - 2; /* this bit stands for 2^exponent */
        if (integer_bits > exponent &&
            (remainder & ((int32_t)1 << (fractional_bits + exponent))) != 0) {
            result = tc_sat_rounding_doubling_high_mul(result, barrel[k]);
        }
    }
    if (integer_bits > 5 && a < -((int32_t)1 << (36 - integer_bits))) {
        result = 0; /* exp(x) for x < -32 is below one Q0 ulp */
    }
    return a == 0 ? INT32_MAX : result;
}

/* The Newton-Raphson reciprocal in Q2 of d = (a + 1) / 2 for a Q0 value a in [0, 1), the core
 * of gemmlowp's one_over_one_plus_x_for_x_in_0_1 and one_minus_x_over_one_plus_x_for_x_in_0_1:
 * d by tc_fp_rounding_half_sum with INT32_MAX as 1.0, x0 = 48/17 - 32/17 * d, then three
 * steps x += Rescale<2>(x * (1 - d * x)). */
static inline int32_t tc_fp_reciprocal_of_half_sum_q2(int32_t a)
{
    const int32_t half_denominator = tc_fp_rounding_half_sum(a, INT32_MAX);
    const int32_t one_q2 = (int32_t)1 << 29; /* 1.0 in Q2 */
    int32_t x = 1515870810 + tc_sat_rounding_doubling_high_mul(half_denominator, -1010580540);
    for (int32_t i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x =
            tc_sat_rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = one_q2 - half_denominator_times_x;
        x = x + tc_fp_saturating_shift_left(tc_sat_rounding_doubling_high_mul(x, one_minus), 2);
    }
    return x;
}

/* 1 / (1 + a) for a Q0 value a in [0, 1) (gemmlowp one_over_one_plus_x_for_x_in_0_1): the
 * reciprocal x of (1 + a) / 2, x / 2 rescaled from Q2 to Q0 (saturating). */
static inline int32_t tc_fp_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    return tc_fp_saturating_shift_left(tc_fp_reciprocal_of_half_sum_q2(a), 1);
}

/* (1 - a) / (1 + a) for a Q0 value a in [0, 1) (gemmlowp
 * one_minus_x_over_one_plus_x_for_x_in_0_1): the same reciprocal x of (1 + a) / 2, then
 * (x - 1) rescaled from Q2 to Q0 (saturating). */
static inline int32_t tc_fp_one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t one_q2 = (int32_t)1 << 29; /* 1.0 in Q2 */
    return tc_fp_saturating_shift_left(tc_fp_reciprocal_of_half_sum_q2(a) - one_q2, 2);
}

/* logistic(a) = 1 / (1 + exp(-a)) for a Q(integer_bits) value, returning Q0 (gemmlowp
 * logistic): for a > 0, 1 / (1 + exp(-a)) via the two functions above; for a < 0,
 * INT32_MAX minus that of -a; exactly 1/2 (2^30) for a == 0.  Requires a != INT32_MIN. */
static inline int32_t tc_fp_logistic(int32_t a, int32_t integer_bits)
{
    if (a == 0) {
        return (int32_t)1 << 30;
    }
    const int32_t abs_a = a > 0 ? a : -a;
    const int32_t positive = tc_fp_one_over_one_plus_x_for_x_in_0_1(
        tc_fp_exp_on_negative_values(-abs_a, integer_bits));
    return a > 0 ? positive : INT32_MAX - positive;
}

/* tanh(a) for a Q(integer_bits) value, returning Q0 (gemmlowp tanh): with n = -|a|,
 * t = (1 - exp(2n)) / (1 + exp(2n)) (2n is n read as Q(integer_bits + 1)), result t for a > 0,
 * -t for a < 0, 0 for a == 0.  Requires a != INT32_MIN. */
static inline int32_t tc_fp_tanh(int32_t a, int32_t integer_bits)
{
    if (a == 0) {
        return 0;
    }
    const int32_t n = a < 0 ? a : -a;
    const int32_t t = tc_fp_one_minus_x_over_one_plus_x_for_x_in_0_1(
        tc_fp_exp_on_negative_values(n, integer_bits + 1));
    return a < 0 ? -t : t;
}

/* ---- int16 primitives (HARD_SWISH) ----------------------------------------------------------- */

/* int16 tc_sat_rounding_doubling_high_mul: round(a * b / 2^15), ties half up, -32768 * -32768
 * saturated to 32767 (Arm SQRDMULH). */
static inline int16_t tc_sat_rounding_doubling_high_mul_s16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* a * b / 2^15 truncated towards zero, -32768 * -32768 saturated to 32767 (Arm SQDMULH,
 * TFLite's SaturatingDoublingHighMul). */
static inline int16_t tc_sat_doubling_high_mul_s16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

/* int16 tc_rounding_divide_by_pot, with gemmlowp's int16 lane arithmetic (the mask and every
 * intermediate truncated to 16 bits).  Requires 0 <= exponent <= 31. */
static inline int16_t tc_rounding_divide_by_pot_s16(int16_t x, int32_t exponent)
{
    const int16_t mask = (int16_t)(((int64_t)1 << exponent) - 1);
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

/* value * 2^amount saturated to int16 (TFLite's SaturatingLeftShift).  0 <= amount <= 30. */
static inline int16_t tc_saturating_left_shift_s16(int16_t value, int32_t amount)
{
    const int64_t result = (int64_t)value * ((int64_t)1 << amount);
    return (int16_t)(result > INT16_MAX ? INT16_MAX : result < INT16_MIN ? INT16_MIN : result);
}

#endif /* TC_REQUANT_H */

/*
 * tinyc runtime: int8 MEAN and SOFTMAX, bit-exact with TFLite Micro's reference kernels.
 * x is viewed as [outer, n, inner] and the middle axis is reduced (the compiler collapses any
 * contiguous block of axes into it: MEAN over H, W of NHWC is [N, H * W, C]).
 * MBQM is tc_multiply_by_quantized_multiplier, RDBPOT tc_rounding_divide_by_pot.
 *
 * tc_mean_s8 (TFLM QuantizedMeanOrSum, the path of TFLM's int8 MEAN):  y [outer, inner]
 *   acc = sum_r x[o, r, i] + sum_offset          (sum_offset = -input_zero_point * n)
 *   y   = clamp(MBQM(acc, multiplier, shift) + output_offset, -128, 127)
 *   where multiplier / shift already contain 1 / n (arith.mean_params).
 *   Accumulator bound: |acc| <= 256 * n, no overflow below n = 2^23.
 *
 * tc_softmax_s8 (TFLM reference_ops::Softmax<int8, int8>; beta folded into the parameters,
 * output scale 1/256 and zero point -128):  y [outer, depth, inner]
 *   per row: d_c = x_c - max_c x_c;  elements with d_c < diff_min give -128, the others
 *   e_c = exp_Q0(MBQM(d_c, input_multiplier, input_left_shift) as Q5)   (tc_fp_exp_on_...)
 *   S   = sum_c RDBPOT(e_c, 12)                                          (Q12)
 *   with h = clz(S) and s = S * 2^h / 2^31 in [1, 2) (TFLite's GetReciprocal):
 *   R   = 1 / s in Q0 (tc_fp_one_over_one_plus_x_for_x_in_0_1 of s - 1),
 *   y_c = clamp(RDBPOT(SRDHM(R, e_c), 12 - h + 23) - 128, -128, 127)
 *   (SRDHM: tc_sat_rounding_doubling_high_mul).  The exponent 12 - h + 23 is 23 to 34; from
 *   32 on (S >= 2^9 * 2^19: more than 512 values near the row's maximum) RDBPOT is taken
 *   exactly, in 64 bits, where TFLM's 32-bit shift is undefined.
 *   Bound: every e_c contributes at most 2^19 to S: depth <= 4095 cannot overflow (the
 *   compiler refuses longer rows).
 * y may be x for both.
 */
#ifndef TC_REDUCE_S8_H
#define TC_REDUCE_S8_H

#include "tc_common.h"

typedef struct {
    int32_t outer, reduce_len, inner;
    int32_t sum_offset;    /* -input zero point * reduce_len (int32 wrap-around) */
    int32_t output_offset; /* output zero point */
    int32_t multiplier, shift;
} tc_mean_s8_params_t;

void tc_mean_s8(const tc_mean_s8_params_t *p, const int8_t *x, int8_t *y);

typedef struct {
    int32_t outer, depth, inner;
    int32_t input_multiplier, input_left_shift; /* beta * input scale, to Q5 */
    int32_t diff_min;                           /* <= 0 */
} tc_softmax_s8_params_t;

void tc_softmax_s8(const tc_softmax_s8_params_t *p, const int8_t *x, int8_t *y);

#endif /* TC_REDUCE_S8_H */

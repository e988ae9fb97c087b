/*
 * tinyc runtime: int8 elementwise operators, bit-exact with TFLite Micro's reference kernels.
 * MBQM(v, m, s) below is tc_multiply_by_quantized_multiplier (tc_requant.h); every clamp is
 * to [act_min, act_max] where the struct has one, else to [-128, 127].
 *
 * Binary (numpy broadcasting): for every output index i (dense, rank <= TC_MAX_DIMS)
 *   a_i = a[offset_a(i)], b_i = b[offset_b(i)], offset_x(i) = sum_d i_d * x_strides[d]
 * (a broadcast dimension has stride 0; rank 0 is one element).  y may be the same buffer as
 * an input that has the output's shape.
 *   tc_add_s8 / tc_sub_s8 (TFLM AddFunc / SubElementwise), with L = 2^left_shift (20):
 *     s1 = MBQM((a_i + input1_offset) * L, input1_multiplier, input1_shift)
 *     s2 = MBQM((b_i + input2_offset) * L, input2_multiplier, input2_shift)
 *     y  = clamp(MBQM(s1 +- s2, output_multiplier, output_shift) + output_offset)
 *     Bound: |a_i + offset| * 2^20 <= 255 * 2^20 < 2^28, s1, s2 < 2^27: no overflow.
 *   tc_mul_s8 (TFLM MulElementwise):
 *     y = clamp(MBQM((a_i + input1_offset) * (b_i + input2_offset), output_multiplier,
 *                    output_shift) + output_offset)       (product <= 2^16: no overflow)
 *
 * Unary, for count elements (y may be x):
 *   tc_leaky_relu_s8 (TFLM QuantizeLeakyRelu): v = x - input_zero_point,
 *     y = clamp(output_zero_point + MBQM(v, v >= 0 ? identity : alpha multiplier and shift))
 *   tc_logistic_s8 (TFLM reference_integer_ops::Logistic; output scale 1/256, zero point -128):
 *     v = x - input_zero_point;  v <= -radius: -128;  v >= radius: 127;  otherwise
 *     y = clamp(RDBPOT(logistic_Q0(MBQM(v, input_multiplier, input_left_shift) as Q4), 23)
 *               - 128)
 *   tc_tanh_s8 (TFLM reference_integer_ops::Tanh; output scale 1/128, zero point 0): the same
 *     with tanh_Q0 and RDBPOT(., 24), no offset.
 *     (RDBPOT = tc_rounding_divide_by_pot; logistic_Q0 / tanh_Q0 = tc_fp_logistic / tc_fp_tanh
 *     with 4 integer bits; the radius keeps v * 2^input_left_shift inside int32.)
 *   tc_hard_swish_s8 (TFLM reference_ops::HardSwish, int16 fixed point): with v = x - in_zp,
 *     h = v * 128 (int16), p = SRDHM16(h, output_multiplier),
 *     r = h rescaled by reluish_multiplier * 2^reluish_multiplier_exponent to [-1, 1] in Q15
 *         (saturating left shifts by exponent - 1 and 1 around SRDHM16 when the exponent is
 *         positive, RDBPOT16 by -exponent when negative), then r = (r + 2^15) >> 1 in [0, 1],
 *     y = clamp(RDBPOT16(SDHM16(r, p), -output_multiplier_exponent) + output_zero_point)
 *     computed in int16 exactly as TFLM does (tc_requant.h's _s16 primitives).
 */
#ifndef TC_ELEMENTWISE_S8_H
#define TC_ELEMENTWISE_S8_H

#include "tc_common.h"

typedef struct {
    int32_t rank;
    int32_t shape[TC_MAX_DIMS]; /* output shape */
    int32_t a_strides[TC_MAX_DIMS];
    int32_t b_strides[TC_MAX_DIMS];
    int32_t input1_offset, input2_offset; /* -input zero points */
    int32_t output_offset;                /* output zero point */
    int32_t left_shift;                   /* 20 */
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} tc_add_s8_params_t;

void tc_add_s8(const tc_add_s8_params_t *p, const int8_t *a, const int8_t *b, int8_t *y);

/* a - b, with the same parameter struct (from arith.sub_params). */
void tc_sub_s8(const tc_add_s8_params_t *p, const int8_t *a, const int8_t *b, int8_t *y);

typedef struct {
    int32_t rank;
    int32_t shape[TC_MAX_DIMS]; /* output shape */
    int32_t a_strides[TC_MAX_DIMS];
    int32_t b_strides[TC_MAX_DIMS];
    int32_t input1_offset, input2_offset; /* -input zero points */
    int32_t output_offset;                /* output zero point */
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} tc_mul_s8_params_t;

void tc_mul_s8(const tc_mul_s8_params_t *p, const int8_t *a, const int8_t *b, int8_t *y);

typedef struct {
    int32_t count;
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier_identity, shift_identity; /* for x >= input zero point */
    int32_t multiplier_alpha, shift_alpha;       /* for x < input zero point */
} tc_leaky_relu_s8_params_t;

void tc_leaky_relu_s8(const tc_leaky_relu_s8_params_t *p, const int8_t *x, int8_t *y);

/* LOGISTIC and TANH share their input rescaling (arith.logistic_params / tanh_params). */
typedef struct {
    int32_t count;
    int32_t input_zero_point;
    int32_t input_range_radius;
    int32_t input_multiplier, input_left_shift;
} tc_logistic_s8_params_t;

typedef tc_logistic_s8_params_t tc_tanh_s8_params_t;

void tc_logistic_s8(const tc_logistic_s8_params_t *p, const int8_t *x, int8_t *y);
void tc_tanh_s8(const tc_tanh_s8_params_t *p, const int8_t *x, int8_t *y);

typedef struct {
    int32_t count;
    int32_t input_zero_point, output_zero_point;
    int32_t output_multiplier;  /* int16 fixed point, in [0, 32767] */
    int32_t output_multiplier_exponent; /* <= 0 */
    int32_t reluish_multiplier; /* int16 fixed point, in [0, 32767] */
    int32_t reluish_multiplier_exponent;
} tc_hard_swish_s8_params_t;

void tc_hard_swish_s8(const tc_hard_swish_s8_params_t *p, const int8_t *x, int8_t *y);

#endif /* TC_ELEMENTWISE_S8_H */

/*
 * tinyc runtime: conversions at the int8 boundary and int8 requantization, bit-exact with
 * TFLite Micro's reference kernels.
 *
 *   tc_quantize_s8   float32 -> int8 (TFLM AffineQuantize):
 *     y = clamp(round(x / scale) + zero_point, -128, 127)
 *     x / scale is one float32 division, round is to nearest with ties away from zero
 *     (std::round).  Quotients beyond +-512 saturate and NaN gives -128; TFLM agrees for
 *     every quotient inside int32, beyond that its float -> int32 cast is undefined (on x86
 *     INT32_MIN + zero_point, wrapping for negative zero points).  No libm call.
 *   tc_dequantize_s8 int8 -> float32 (TFLM Dequantize):
 *     y = scale * (float)(x - zero_point), one float32 multiply.  TFLM's older double
 *     version rounds the exact product once as well, so both give the same bits.
 *   tc_requantize_s8 int8 -> int8:
 *     y = clamp(output_zero_point + MBQM(x - input_zero_point, multiplier, shift),
 *               act_min, act_max)          (MBQM: tc_multiply_by_quantized_multiplier)
 *     which is TFLM's QUANTIZE int8 -> int8 (Requantize, clamp [-128, 127]), its RELU
 *     (ReluQuantized: clamp [output zero point, 127]) and, with the exact identity multiplier
 *     2^30 and shift 1, its RELU6 (a plain clamp of x to [zero point, quantized 6]).
 *     Parameters: arith.requantize_params / relu6_params.
 * All work on count elements; y may be x for tc_requantize_s8.
 */
#ifndef TC_QUANTIZE_S8_H
#define TC_QUANTIZE_S8_H

#include "tc_common.h"

typedef struct {
    int32_t count;
    float scale; /* output scale */
    int32_t zero_point;
} tc_quantize_s8_params_t;

void tc_quantize_s8(const tc_quantize_s8_params_t *p, const float *x, int8_t *y);

typedef struct {
    int32_t count;
    float scale; /* input scale */
    int32_t zero_point;
} tc_dequantize_s8_params_t;

void tc_dequantize_s8(const tc_dequantize_s8_params_t *p, const int8_t *x, float *y);

typedef struct {
    int32_t count;
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} tc_requantize_s8_params_t;

void tc_requantize_s8(const tc_requantize_s8_params_t *p, const int8_t *x, int8_t *y);

#endif /* TC_QUANTIZE_S8_H */

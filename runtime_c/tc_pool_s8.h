/*
 * tinyc runtime: int8 max and average pooling, 1-D / 2-D / 3-D, channels-last, bit-exact with
 * TFLite Micro's reference_integer_ops::MaxPool / AveragePool.
 *
 *   x [batch, in_d, in_h, in_w, c]  ->  y [batch, out_d, out_h, out_w, c]      (int8)
 *
 * Window of output position o along one axis: i = o * stride - pad + k * dilation, k < kernel
 * (TFLite pools have dilation 1).  Taps outside [0, in) are padding.  Input and output share
 * scale and zero point (TFLite requires it), so no requantization happens.
 *  - tc_max_pool_s8: the maximum over the taps inside the input, starting from -128.
 *  - tc_avg_pool_s8: acc = sum of the taps inside the input (int32), divided by n =
 *      count_include_pad = 0: the number of taps inside the input (TFLite);
 *      count_include_pad = 1: the number of taps inside [-pad, in + pad_end) (ONNX);
 *    rounded to nearest with ties away from zero exactly as TFLM does:
 *      acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n        (C division, truncating).
 *    A window without any tap inside (impossible with TFLite or ONNX padding) gives 0.
 *    Accumulator bound: |acc| <= 128 * taps, no overflow below 2^24 taps.
 * Both results are clamped to [act_min, act_max] (the fused activation; arith.pool_params).
 */
#ifndef TC_POOL_S8_H
#define TC_POOL_S8_H

#include "tc_common.h"

typedef struct {
    int32_t batch;
    int32_t in_d, in_h, in_w, c;
    int32_t out_d, out_h, out_w;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t dilation_d, dilation_h, dilation_w;
    int32_t pad_d, pad_h, pad_w;             /* leading padding */
    int32_t pad_end_d, pad_end_h, pad_end_w; /* trailing padding (count_include_pad only) */
    int32_t count_include_pad;
    int32_t act_min, act_max;
} tc_pool_s8_params_t;

void tc_max_pool_s8(const tc_pool_s8_params_t *p, const int8_t *x, int8_t *y);
void tc_avg_pool_s8(const tc_pool_s8_params_t *p, const int8_t *x, int8_t *y);

#endif /* TC_POOL_S8_H */

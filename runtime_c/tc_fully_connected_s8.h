/*
 * tinyc runtime: int8 fully connected layer, bit-exact with TFLite Micro's reference
 * FullyConnected (per-tensor weight scale) and FullyConnectedPerChannel.
 *
 * For every row b < batch and output o < out_features:
 *   acc = sum_{i < in_features} w[o, i] * (x[b, i] + input_offset)  (+ bias[o], NULL: 0)
 *   y[b, o] = clamp(tc_multiply_by_quantized_multiplier(acc, multiplier[c], shift[c])
 *                   + output_offset, act_min, act_max),   c = per_channel ? o : 0.
 *
 * Quantization: as tc_conv_s8 (input_offset = -input zero point, symmetric weights, int32
 * bias), from arith.fully_connected_params.
 *
 * Accumulator bound: each term is at most 128 * 255 = 32640 in magnitude, so up to
 * in_features = 2^16 with |bias| < 2^23 cannot overflow int32 (undefined beyond, as in TFLM).
 *
 * Layouts: x [batch, in_features] int8, w [out_features, in_features] int8 (TFLite's FC
 * weights), bias [out_features] int32 or NULL, y [batch, out_features] int8.
 */
#ifndef TC_FULLY_CONNECTED_S8_H
#define TC_FULLY_CONNECTED_S8_H

#include "tc_common.h"

typedef struct {
    int32_t batch;
    int32_t in_features, out_features;
    int32_t input_offset;      /* -input zero point */
    int32_t output_offset;     /* output zero point */
    int32_t act_min, act_max;
    int32_t per_channel;       /* 1: multiplier[o], shift[o]; 0: multiplier[0], shift[0] */
    const int32_t *multiplier; /* [out_features] or [1] */
    const int32_t *shift;      /* [out_features] or [1] */
} tc_fully_connected_s8_params_t;

void tc_fully_connected_s8(const tc_fully_connected_s8_params_t *p, const int8_t *x,
                           const int8_t *w, const int32_t *bias, int8_t *y);

#endif /* TC_FULLY_CONNECTED_S8_H */

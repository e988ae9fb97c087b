/*
 * tinyc runtime: optimized int8 fully connected layer, with exactly the results of
 * tc_fully_connected_s8 (hence of TFLite Micro) for every input.
 *
 * tc_fully_connected_rows4_s8: per batch row, the input is expanded once into scratch as
 * int16 in sxtb16 order (tc_dsp.h), in_features rounded up to k_padded (a multiple of 4) with
 * zeros; then output rows are computed 4 at a time, from weights interleaved so that one LDM
 * fetches one group of 4 values of all 4 rows:
 *   w   blocks of 4 output rows, each [k_padded / 4][4 rows][4 values] int8, then the
 *       out_features % 4 remaining rows, each [k_padded] int8; zero-padded beyond
 *       in_features; 4-byte aligned (tinyc.quant.fast.fully_connected_rows4 lays it out).
 * Arithmetic as tc_conv_fast_s8.h: acc = bias[o] (folded with the input zero point)
 * + sum_k w[o, k] * x[b, k], then
 *   y[b, o] = clamp(tc_requantize(acc, &requant[per_channel ? o : 0]) + output_offset,
 *                   act_min, act_max).
 * Layouts: x [batch, in_features], y [batch, out_features] int8.
 * scratch: tc_fully_connected_rows4_s8_scratch_size(p) = 2 * k_padded bytes, 4-byte aligned.
 */
#ifndef TC_FULLY_CONNECTED_FAST_S8_H
#define TC_FULLY_CONNECTED_FAST_S8_H

#include "tc_common.h"
#include "tc_requant.h"

typedef struct {
    int32_t batch;
    int32_t in_features, out_features;
    int32_t k_padded;                     /* in_features rounded up to a multiple of 4 */
    int32_t output_offset;                /* output zero point */
    int32_t act_min, act_max;
    int32_t per_channel;                  /* 1: requant[o]; 0: requant[0] */
    const int32_t *bias;                  /* [out_features], folded with the input zero point */
    const tc_requant_channel_t *requant;  /* [out_features] or [1] */
} tc_fully_connected_rows4_s8_params_t;

size_t tc_fully_connected_rows4_s8_scratch_size(const tc_fully_connected_rows4_s8_params_t *p);

void tc_fully_connected_rows4_s8(const tc_fully_connected_rows4_s8_params_t *p, const int8_t *x,
                                 const int8_t *w, int8_t *y, void *scratch);

#endif /* TC_FULLY_CONNECTED_FAST_S8_H */

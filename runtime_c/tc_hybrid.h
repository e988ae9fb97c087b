/*
 * tinyc runtime: dynamic-range ("hybrid") int8 layers: float32 activations, int8 weights, as
 * TFLite computes CONV_2D and FULLY_CONNECTED with int8 filters and float inputs.
 *
 * Per batch (conv: the whole input image; fully connected: each input row) the input is
 * quantized symmetrically at run time (TFLite's SymmetricQuantizeFloats):
 *   range = max |x|;  range == 0: q = 0, s_x = 1;
 *   otherwise s_x = range / 127 and q = clamp(round(x * (127 / range)), -127, 127), float32,
 *   round half away from zero.
 * Then, in integers, acc = sum q * w over the taps inside the input (a padded tap is q = 0,
 * the real 0), and
 *   y = clamp((float)acc * (s_x * s_w[c]) + bias[c], act_min, act_max)
 * with s_x * s_w[c] rounded to float32 first (TFLite scales its per-batch factor by the
 * filter scale), bias float32 or NULL.  |acc| <= 127 * 128 * taps: no overflow below 2^17 taps.
 *
 * tc_fully_connected_hybrid with input_qmax > 0 computes PyTorch's `quantize_dynamic` Linear
 * instead (fbgemm's arithmetic, reproduced exactly):
 *   over the WHOLE input (all batch rows): lo = min(min x, 0), hi = max(max x, 0) (float32);
 *   scale = (double(hi) - lo) / input_qmax in double (input_qmax 127 with reduce_range, else
 *   255); scale = 0.1 if float(scale) == 0 or 1 / float(scale) is infinite; a scale below
 *   6.1e-5f is raised to it and [lo, hi] stretched alike (float32); the zero point is
 *   -lo / scale or input_qmax - hi / scale (double), whichever adds the smaller terms,
 *   rounded half to even into [0, input_qmax]; s_x = float(scale).
 *   q = clamp(rint(x * (1.0f / s_x)) + zp, 0, 255) as uint8 (float32, half to even);
 *   acc = sum q * w - zp * weight_sums[c] (weight_sums: per-output sums of w, compile time);
 *   y = clamp(fmaf((float)acc, s_x * s_w[c], bias[c]), act_min, act_max): the float32
 *   product s_x * s_w[c] then ONE rounding of acc * m + bias (fbgemm's fused multiply-add).
 * Scratch: batch * in_features bytes for it (the whole input is quantized first).
 *
 * Layouts: as tc_conv_s8 ([batch, D, H, W, C] input, weights [out_c, k_d, k_h, k_w,
 * in_c / groups]) and tc_fully_connected_s8 (x [batch, in_features], w [out, in]); the input
 * and output are float32.  `scratch` holds the quantized input: tc_hybrid_scratch_size bytes.
 */
#ifndef TC_HYBRID_H
#define TC_HYBRID_H

#include "tc_conv_s8.h"
#include "tc_fully_connected_s8.h"

typedef struct {
    tc_conv_s8_params_t conv;   /* geometry; quantization fields unused */
    int32_t per_channel;        /* weight_scale has out_c entries (1) or one (0) */
    const float *weight_scale;
    float act_min, act_max;
} tc_conv_hybrid_params_t;

typedef struct {
    int32_t batch, in_features, out_features;
    int32_t per_channel;
    const float *weight_scale;
    float act_min, act_max;
    int32_t input_qmax;         /* 0: TFLite symmetric per row; 127 / 255: PyTorch's (above) */
    const int32_t *weight_sums; /* out_features sums of w; PyTorch's arithmetic only */
} tc_fully_connected_hybrid_params_t;

/* Quantize n floats symmetrically into q; returns the scale s_x. */
float tc_quantize_symmetric_f32(const float *x, int32_t n, int8_t *q);

void tc_conv_hybrid(const tc_conv_hybrid_params_t *p, const float *x, const int8_t *w,
                    const float *bias, float *y, void *scratch);

void tc_fully_connected_hybrid(const tc_fully_connected_hybrid_params_t *p, const float *x,
                               const int8_t *w, const float *bias, float *y, void *scratch);

#endif /* TC_HYBRID_H */

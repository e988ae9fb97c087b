/*
 * tinyc runtime: int8 convolution and depthwise convolution, 1-D / 2-D / 3-D, channels-last,
 * bit-exact with TFLite Micro's reference ConvPerChannel / DepthwiseConvPerChannel.
 *
 * For every output element (n, od, oh, ow, oc):
 *   acc = sum over the taps inside the input of  w[tap] * (x[tap] + input_offset)   (int32)
 *         + bias[oc]                                           (bias may be NULL: 0)
 *   y   = clamp(tc_multiply_by_quantized_multiplier(acc, multiplier[c], shift[c])
 *               + output_offset, act_min, act_max)
 * with c = oc when per_channel, else c = 0.  Taps in the zero padding contribute nothing (they
 * stand for the real value 0, i.e. x == input zero point).  The window of output position o
 * along one axis is i = o * stride - pad + k * dilation, k < kernel, as in tc_conv_f32.
 *
 * Quantization: input_offset = -input zero point, output_offset = output zero point, weights
 * symmetric (zero point 0), bias int32 with scale s_in * s_w[oc] and zero point 0,
 * multiplier / shift from arith.conv_params (TFLite's QuantizeMultiplier of
 * s_in * s_w[oc] / s_out), [act_min, act_max] the fused activation's clamp
 * (arith.fused_activation_range) or [-128, 127].
 *
 * Accumulator bound: |w| <= 128 and |x + input_offset| <= 255, so each tap adds at most
 * 32640 in magnitude; up to 2^16 taps (k_d * k_h * k_w * in_c / groups, or k_d * k_h * k_w for
 * depthwise) plus a bias of magnitude below 2^23 cannot overflow int32.  Beyond that the
 * result is undefined, as in TFLM.
 *
 * Layouts:
 *   x    [batch, in_d, in_h, in_w, in_c]                            int8
 *   w    tc_conv_s8:           [out_c, k_d, k_h, k_w, in_c / groups] int8 (TFLite OHWI + D)
 *        tc_depthwise_conv_s8: [k_d, k_h, k_w, out_c]                int8 (TFLite
 *                              [1, KH, KW, in_c * depth_multiplier] + D); output channel oc
 *                              reads input channel oc / depth_multiplier
 *   bias [out_c] int32 or NULL
 *   y    [batch, out_d, out_h, out_w, out_c]                         int8
 * 1-D convolution is in_d = in_h = 1; 2-D is in_d = 1.  Only the leading pads are given; the
 * trailing pads are implied by out_*.
 */
#ifndef TC_CONV_S8_H
#define TC_CONV_S8_H

#include "tc_common.h"

typedef struct {
    int32_t batch;
    int32_t in_d, in_h, in_w, in_c;
    int32_t out_d, out_h, out_w, out_c;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t dilation_d, dilation_h, dilation_w;
    int32_t pad_d, pad_h, pad_w; /* leading (front/top/left) padding */
    int32_t groups;              /* tc_conv_s8 only; depthwise: out_c / in_c is the multiplier */
    int32_t input_offset;        /* -input zero point, in [-127, 128] */
    int32_t output_offset;       /* output zero point */
    int32_t act_min, act_max;    /* within [-128, 127] */
    int32_t per_channel;         /* 1: multiplier[oc], shift[oc]; 0: multiplier[0], shift[0] */
    const int32_t *multiplier;   /* [out_c] or [1], in [2^30, 2^31) */
    const int32_t *shift;        /* [out_c] or [1], in [-31, 30] */
} tc_conv_s8_params_t;

/* Convolution with groups (groups divides in_c and out_c; out channel oc uses input channels
 * [g * in_c / groups, (g + 1) * in_c / groups) with g = oc / (out_c / groups)). */
void tc_conv_s8(const tc_conv_s8_params_t *p, const int8_t *x, const int8_t *w,
                const int32_t *bias, int8_t *y);

/* Depthwise convolution (TFLite DEPTHWISE_CONV_2D): groups == in_c, out_c = in_c *
 * depth_multiplier, weights in TFLite's depthwise layout (see above). */
void tc_depthwise_conv_s8(const tc_conv_s8_params_t *p, const int8_t *x, const int8_t *w,
                          const int32_t *bias, int8_t *y);

#endif /* TC_CONV_S8_H */

/*
 * tinyc runtime: float32 convolution, 1-D / 2-D / 3-D, channels-last.
 *
 * y[n, od, oh, ow, oc] = act( bias[oc] + sum_{kd, kh, kw, ic}
 *       x[n, od*sd - pd + kd*dd, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw, g*cig + ic]
 *     * w[oc, kd, kh, kw, ic] )
 * where g = oc / (out_c / groups), cig = in_c / groups, and taps that fall outside the input
 * (the zero padding) contribute nothing.  Accumulation is in float32 in the order kd, kh, kw, ic,
 * each step one tc_mac_f32 (fused on cores with FMA, tc_common.h).
 *
 * Layouts:
 *   x    [batch, in_d, in_h, in_w, in_c]
 *   w    [out_c, k_d, k_h, k_w, in_c / groups]      (const, in flash)
 *   bias [out_c] or NULL
 *   y    [batch, out_d, out_h, out_w, out_c]
 * 1-D convolution is in_d = in_h = 1; 2-D is in_d = 1.  Depthwise is groups = in_c.
 * Only the leading pads are given: the trailing pads are implied by out_* (the compiler
 * computed out_* from both).
 */
#ifndef TC_CONV_F32_H
#define TC_CONV_F32_H

#include "tc_common.h"

typedef struct {
    int32_t batch;
    int32_t in_d, in_h, in_w, in_c;
    int32_t out_d, out_h, out_w, out_c;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t dilation_d, dilation_h, dilation_w;
    int32_t pad_d, pad_h, pad_w; /* leading (front/top/left) padding */
    int32_t groups;
    float act_min, act_max;
} tc_conv_f32_params_t;

void tc_conv_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                 const float *bias, float *y);

/*
 * The same convolution for groups == 1 with the weights laid out by the compiler in blocks of
 * TC_CONV_BLOCKED_F32_BLOCK output channels, interleaved by tap and input channel:
 *   wb   [ceil(out_c / 8), k_d, k_h, k_w, in_c, 8]      (const, in flash)
 *        wb[b, kd, kh, kw, ic, j] = w[8 * b + j, kd, kh, kw, ic], 0 for 8 * b + j >= out_c
 * Other parameters as tc_conv_f32.  Each output is summed in the order kd, kh, kw, ic from 0,
 * bias last, as tc_conv_f32 sums it: the results are identical.
 */
#define TC_CONV_BLOCKED_F32_BLOCK 8

void tc_conv_blocked_f32(const tc_conv_f32_params_t *p, const float *x, const float *wb,
                         const float *bias, float *y);

/*
 * tc_conv_blocked_f32 for 1x1 kernels of stride 1 without padding (out_* = in_*; the compiler
 * checks): the same weights, sums and results, without the per-pixel window bookkeeping.
 */
void tc_conv_pointwise_f32(const tc_conv_f32_params_t *p, const float *x, const float *wb,
                           const float *bias, float *y);

/*
 * Plain depthwise convolution (groups = in_c = out_c, a multiple of 8; any kernel, stride,
 * dilation and padding) channels-last, 8 channels at a time: tc_conv_blocked_f32's pixel pairs,
 * windows and output stage, with each tap's 8 inputs and 8 weights multiplied element by
 * element (one VLDM each with a single-precision FPU).  wb as tc_conv_blocked_f32's with
 * in_c / groups = 1: [c / 8, k_d, k_h, k_w, 1, 8].  Each output is summed over its valid taps
 * in the order kd, kh, kw from 0, bias last, as tc_conv_f32 sums it: the results are
 * identical.
 */
void tc_depthwise_conv_blocked_f32(const tc_conv_f32_params_t *p, const float *x,
                                   const float *wb, const float *bias, float *y);

/*
 * Plain depthwise convolution (groups = in_c = out_c) with 3x3 windows in h and w, dilation 1,
 * stride_w 1 (at most 2 padding columns on either side) or 2 (at most 1); any stride_h and
 * pad_h.  tc_depthwise_conv3x3_f32: k_d = 1 (2-D layers); tc_depthwise_conv3x3_3d_f32: any k_d,
 * stride_d and pad_d.  Parameters, weights [c, k_d, 3, 3, 1] and results as tc_conv_f32 (for
 * finite inputs: tc_depthwise_f32.c), computed a channel at a time with a depth slice's nine
 * weights in registers, three loads per output at stride 1; a 3-D window's slices are added
 * to the output row one after the other.  In place only at a shift of whole pixels.
 */
void tc_depthwise_conv3x3_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                              const float *bias, float *y);
void tc_depthwise_conv3x3_3d_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                                 const float *bias, float *y);

/*
 * Transposed convolution (the gradient of tc_conv_f32 with respect to its input), channels-last.
 *
 * Every input element scatters into the output:
 *   y[n, id*sd - pd + kd*dd, ih*sh - ph + kh*dh, iw*sw - pw + kw*dw, g*cog + oc]
 *       += x[n, id, ih, iw, g*cig + ic] * w[g*cig + ic, kd, kh, kw, oc]
 * for oc < cog = out_c / groups, cig = in_c / groups; positions outside the output (cut by the
 * leading pads, or past out_*) are dropped.  y starts at bias (or 0); act is applied last.
 *
 * Layouts:
 *   x    [batch, in_d, in_h, in_w, in_c]
 *   w    [in_c, k_d, k_h, k_w, out_c / groups]      (const, in flash)
 *   bias [out_c] or NULL
 *   y    [batch, out_d, out_h, out_w, out_c]
 */
void tc_conv_transpose_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                           const float *bias, float *y);

#endif /* TC_CONV_F32_H */

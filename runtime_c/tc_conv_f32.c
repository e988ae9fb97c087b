/*
 * tinyc runtime: float32 convolution, 1-D / 2-D / 3-D, channels-last (see tc_conv_f32.h).
 *
 * For each output position the valid kernel range along d, h and w is computed once
 * (tc_window_range), so the zero padding costs nothing inside the tap loops.  Two inner loops:
 *  - general (in_c / groups > 1): the innermost loop runs over the input channels of one tap,
 *    contiguous in both x ([.., in_c]) and w ([out_c, k_d, k_h, k_w, in_c / groups]);
 *  - depthwise-like (in_c / groups == 1, any channel multiplier): that loop would have length 1,
 *    so the innermost loop runs over k_w instead: contiguous in w, stride dilation_w * in_c in x
 *    (free on a cacheless Cortex-M).  Plain depthwise (one output channel per group) takes
 *    DW_BLOCK channels per pass, taps outer and channels inner, so the window's loop overhead
 *    is paid once per block instead of once per channel.
 * Both accumulate in float32 from 0 in the order kd, kh, kw, ic and add the bias last, so the
 * result does not depend on the path taken.  The general path computes four output channels
 * per pass (each input value loaded once for four multiply-adds), with the same per-channel
 * summation order.
 */
#include "tc_conv_f32.h"

/* The valid part of one output position's window: tap counts along d, h, w and the element
 * steps from one tap to the next in x and in w. */
typedef struct {
    int32_t nd, nh, nw;
    int32_t x_td, x_th, x_tw;
    int32_t w_td, w_th; /* the w step along kw is cig */
    int32_t cig;
} conv_window_t;

/* sum over the window's taps and the cig channels of each tap; x and w point at the first
 * valid tap.  Innermost loop over ic: contiguous in x and w. */
static inline float conv_dot_channels(const conv_window_t *t, const float *x, const float *w)
{
    float acc = 0.0f;
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            for (int32_t kw = 0, xw = xh, ww = wh; kw < t->nw; ++kw, xw += t->x_tw, ww += t->cig) {
                const float *xt = x + xw;
                const float *wt = w + ww;
                for (int32_t ic = 0; ic < t->cig; ++ic) {
                    acc += xt[ic] * wt[ic];
                }
            }
        }
    }
    return acc;
}

/* conv_dot_channels for four output channels at once (weights w, w + w_so, w + 2 * w_so,
 * w + 3 * w_so): each input value is loaded once for four multiply-adds.  Every sum keeps the
 * order kd, kh, kw, ic, so the results equal four conv_dot_channels calls exactly. */
static inline void conv_dot_channels4(const conv_window_t *t, const float *x, const float *w,
                                      int32_t w_so, float acc[4])
{
    float a0 = 0.0f;
    float a1 = 0.0f;
    float a2 = 0.0f;
    float a3 = 0.0f;
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            for (int32_t kw = 0, xw = xh, ww = wh; kw < t->nw; ++kw, xw += t->x_tw, ww += t->cig) {
                const float *xt = x + xw;
                const float *w0 = w + ww;
                const float *w1 = w0 + w_so;
                const float *w2 = w1 + w_so;
                const float *w3 = w2 + w_so;
                for (int32_t ic = 0; ic < t->cig; ++ic) {
                    const float xv = xt[ic];
                    a0 += xv * w0[ic];
                    a1 += xv * w1[ic];
                    a2 += xv * w2[ic];
                    a3 += xv * w3[ic];
                }
            }
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* The same sum for cig == 1: innermost loop over kw, contiguous in w. */
static inline float conv_dot_depthwise(const conv_window_t *t, const float *x, const float *w)
{
    float acc = 0.0f;
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            const float *xr = x + xh;
            const float *wr = w + wh;
            for (int32_t kw = 0, xw = 0; kw < t->nw; ++kw, xw += t->x_tw) {
                acc += xr[xw] * wr[kw];
            }
        }
    }
    return acc;
}

#define DW_BLOCK 8

/* conv_dot_depthwise for DW_BLOCK consecutive depthwise channels (cig = cog = 1): x points at
 * the block's first channel of the first valid tap, w at that channel's first valid weight,
 * channel j's weights are w_so further on.  Each channel sums its taps in the order kd, kh, kw,
 * so the results equal DW_BLOCK conv_dot_depthwise calls exactly. */
static inline void conv_dot_depthwise_block(const conv_window_t *t, const float *x,
                                            const float *w, int32_t w_so, float acc[DW_BLOCK])
{
    for (int32_t j = 0; j < DW_BLOCK; ++j) {
        acc[j] = 0.0f;
    }
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            for (int32_t kw = 0, xw = xh; kw < t->nw; ++kw, xw += t->x_tw) {
                const float *xt = x + xw;
                const float *wt = w + wh + kw;
#pragma GCC unroll 8 /* unrolled: -20% instructions on the demo (GCC's -O2 keeps the loop) */
                for (int32_t j = 0; j < DW_BLOCK; ++j) {
                    acc[j] += xt[j] * wt[j * w_so];
                }
            }
        }
    }
}

void tc_conv_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                 const float *bias, float *y)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t groups = p->groups;
    const int32_t cig = in_c / groups; /* input channels per group */
    const int32_t cog = out_c / groups; /* output channels per group */
    const float lo = p->act_min;
    const float hi = p->act_max;

    /* Element strides of x (per batch, d, h; w is in_c) and of w (per oc, kd, kh; kw is cig). */
    const int32_t x_sh = p->in_w * in_c;
    const int32_t x_sd = p->in_h * x_sh;
    const int32_t x_sn = p->in_d * x_sd;
    const int32_t w_sh = p->k_w * cig;
    const int32_t w_sd = p->k_h * w_sh;
    const int32_t w_so = p->k_d * w_sd;

    conv_window_t t;
    t.x_td = p->dilation_d * x_sd;
    t.x_th = p->dilation_h * x_sh;
    t.x_tw = p->dilation_w * in_c;
    t.w_td = w_sd;
    t.w_th = w_sh;
    t.cig = cig;

    for (int32_t n = 0; n < p->batch; ++n) {
        const float *xn = x + n * x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            const tc_window_axis_t win_d =
                tc_window_axis(od, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->in_d);
            t.nd = win_d.count;
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const tc_window_axis_t win_h =
                    tc_window_axis(oh, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->in_h);
                t.nh = win_h.count;
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += out_c) {
                    const tc_window_axis_t win_w =
                        tc_window_axis(ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
                    t.nw = win_w.count;

                    if (t.nd == 0 || t.nh == 0 || t.nw == 0) { /* window all in the padding */
                        for (int32_t oc = 0; oc < out_c; ++oc) {
                            y[oc] = tc_clamp_f32(bias != NULL ? bias[oc] : 0.0f, lo, hi);
                        }
                        continue;
                    }

                    /* Offsets of the first valid tap in x (channel 0) and in w (any oc). */
                    const int32_t x_first = win_d.at * x_sd + win_h.at * x_sh + win_w.at * in_c;
                    const int32_t w_first =
                        win_d.first * w_sd + win_h.first * w_sh + win_w.first * cig;

                    int32_t g = 0;
                    for (; cig == 1 && cog == 1 && g + DW_BLOCK <= groups; g += DW_BLOCK) {
                        float acc[DW_BLOCK];
                        conv_dot_depthwise_block(&t, xn + x_first + g, w + g * w_so + w_first,
                                                 w_so, acc);
                        for (int32_t j = 0; j < DW_BLOCK; ++j) {
                            const float b = bias != NULL ? bias[g + j] : 0.0f;
                            y[g + j] = tc_clamp_f32(acc[j] + b, lo, hi);
                        }
                    }
                    for (int32_t oc = g * cog; g < groups; ++g) {
                        const float *xg = xn + x_first + g * cig;
                        int32_t m = 0;
                        for (; cig > 1 && m + 4 <= cog; m += 4, oc += 4) {
                            float acc[4];
                            conv_dot_channels4(&t, xg, w + oc * w_so + w_first, w_so, acc);
                            for (int32_t j = 0; j < 4; ++j) {
                                const float b = bias != NULL ? bias[oc + j] : 0.0f;
                                y[oc + j] = tc_clamp_f32(acc[j] + b, lo, hi);
                            }
                        }
                        for (; m < cog; ++m, ++oc) {
                            const float *wo = w + oc * w_so + w_first;
                            const float acc = cig == 1 ? conv_dot_depthwise(&t, xg, wo)
                                                       : conv_dot_channels(&t, xg, wo);
                            const float b = bias != NULL ? bias[oc] : 0.0f;
                            y[oc] = tc_clamp_f32(acc + b, lo, hi);
                        }
                    }
                }
            }
        }
    }
}

/*
 * tinyc runtime: float32 transposed convolution, channels-last (see tc_conv_f32.h).
 *
 * Written in the scatter form of the header: y is first set to the bias, then every input
 * element adds x * w into the out_c / groups outputs of each tap it reaches.  For each input
 * position the taps that land inside the output (after the leading pads crop it, and before
 * out_* ends it) are computed once with tc_window_range, so cropping costs nothing in the tap
 * loops.  The innermost loop runs over the output channels of a group: contiguous in w
 * ([in_c, k_d, k_h, k_w, out_c / groups]) and in y.  The activation is applied in a final pass
 * (skipped when there is none), since an output is complete only after the last input reached it.
 *
 * Each output accumulates in float32 starting from its bias, contributions arriving in input
 * order (n, id, ih, iw), then kd, kh, kw, then ic, each step one tc_mac_f32 (fused on cores
 * with FMA).  y must not overlap x.
 */
#include <math.h>

#include "tc_conv_f32.h"

void tc_conv_transpose_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                           const float *bias, float *y)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t groups = p->groups;
    const int32_t cig = in_c / groups; /* input channels per group */
    const int32_t cog = out_c / groups; /* output channels per group */

    /* Element strides of y (per batch, d, h; w is out_c) and of w (per ic, kd, kh; kw is cog). */
    const int32_t y_sh = p->out_w * out_c;
    const int32_t y_sd = p->out_h * y_sh;
    const int32_t y_sn = p->out_d * y_sd;
    const int32_t w_sh = p->k_w * cog;
    const int32_t w_sd = p->k_h * w_sh;
    const int32_t w_si = p->k_d * w_sd;
    /* Steps in y from one tap to the next along each axis. */
    const int32_t y_td = p->dilation_d * y_sd;
    const int32_t y_th = p->dilation_h * y_sh;
    const int32_t y_tw = p->dilation_w * out_c;

    /* 1. y = bias (or 0). */
    const int32_t positions = p->batch * p->out_d * p->out_h * p->out_w;
    float *yp = y;
    for (int32_t i = 0; i < positions; ++i, yp += out_c) {
        for (int32_t oc = 0; oc < out_c; ++oc) {
            yp[oc] = bias != NULL ? bias[oc] : 0.0f;
        }
    }

    /* 2. Scatter every input element. */
    const float *xp = x;
    for (int32_t n = 0; n < p->batch; ++n) {
        float *yn = y + n * y_sn;
        for (int32_t id = 0; id < p->in_d; ++id) {
            const tc_window_axis_t win_d =
                tc_window_axis(id, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->out_d);
            for (int32_t ih = 0; ih < p->in_h; ++ih) {
                const tc_window_axis_t win_h =
                    tc_window_axis(ih, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->out_h);
                for (int32_t iw = 0; iw < p->in_w; ++iw, xp += in_c) {
                    const tc_window_axis_t win_w =
                        tc_window_axis(iw, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->out_w);
                    if (win_d.count == 0 || win_h.count == 0 || win_w.count == 0) {
                        continue; /* every tap cropped away */
                    }
                    /* Offsets of the first surviving tap in y (channel 0) and w (any ic). */
                    const int32_t y_first = win_d.at * y_sd + win_h.at * y_sh + win_w.at * out_c;
                    const int32_t w_first =
                        win_d.first * w_sd + win_h.first * w_sh + win_w.first * cog;

                    for (int32_t kd = 0, yd = y_first, wd = w_first; kd < win_d.count;
                         ++kd, yd += y_td, wd += w_sd) {
                        for (int32_t kh = 0, yh = yd, wh = wd; kh < win_h.count;
                             ++kh, yh += y_th, wh += w_sh) {
                            for (int32_t kw = 0, yw = yh, ww = wh; kw < win_w.count;
                                 ++kw, yw += y_tw, ww += cog) {
                                for (int32_t g = 0, ci = 0; g < groups; ++g) {
                                    float *yg = yn + yw + g * cog;
                                    for (int32_t ic = 0; ic < cig; ++ic, ++ci) {
                                        const float xv = xp[ci];
                                        const float *wt = w + ci * w_si + ww;
                                        for (int32_t oc = 0; oc < cog; ++oc) {
                                            yg[oc] = tc_mac_f32(yg[oc], xv, wt[oc]);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /* 3. Activation. */
    const float lo = p->act_min;
    const float hi = p->act_max;
    if (lo > -INFINITY || hi < INFINITY) {
        const int32_t total = positions * out_c;
        for (int32_t i = 0; i < total; ++i) {
            y[i] = tc_clamp_f32(y[i], lo, hi);
        }
    }
}

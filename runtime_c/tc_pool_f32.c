/*
 * tinyc runtime: float32 max and average pooling, channels-last (see tc_pool_f32.h).
 *
 * For each output position the taps inside the input are computed once per axis with
 * tc_window_range (padding costs nothing in the tap loops); the innermost loop runs over the
 * channels, contiguous in x and y, with the output row itself as the running max / sum.
 *
 * Average: the divisor is the number of taps inside the input (count_include_pad = 0) or inside
 * [-pad_begin, in + pad_end) (count_include_pad = 1), the product of the per-axis counts since
 * the window is separable.  The sum accumulates in float32 in the order kd, kh, kw and is then
 * divided (a true division, not a multiplication by the reciprocal, so it is the exact
 * sum / count of the header).  A window with no counted tap (impossible for the shapes the
 * compiler emits) gives 0 rather than 0 / 0.
 * Max: the running maximum starts at -infinity and takes v when v > max, so NaN inputs are
 * ignored (not propagated as PyTorch does); a window with no tap inside the input gives
 * -infinity, then clamped.
 */
#include <math.h>

#include "tc_pool_f32.h"

void tc_pool_f32(const tc_pool_f32_params_t *p, const float *x, float *y)
{
    const int32_t c = p->c;
    const int32_t is_max = p->kind == TC_POOL_MAX;
    const int32_t include_pad = p->count_include_pad;
    const float lo = p->act_min;
    const float hi = p->act_max;

    /* Element strides of x (per batch, d, h; w is c) and the steps from one tap to the next. */
    const int32_t x_sh = p->in_w * c;
    const int32_t x_sd = p->in_h * x_sh;
    const int32_t x_sn = p->in_d * x_sd;
    const int32_t x_td = p->dilation_d * x_sd;
    const int32_t x_th = p->dilation_h * x_sh;
    const int32_t x_tw = p->dilation_w * c;
    /* The explicitly padded extents, for count_include_pad = 1. */
    const int32_t span_d = p->pad_d + p->in_d + p->pad_end_d;
    const int32_t span_h = p->pad_h + p->in_h + p->pad_end_h;
    const int32_t span_w = p->pad_w + p->in_w + p->pad_end_w;

    for (int32_t n = 0; n < p->batch; ++n) {
        const float *xn = x + n * x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            const int32_t id0 = od * p->stride_d - p->pad_d;
            int32_t kd0;
            int32_t kd1;
            int32_t pd0;
            int32_t pd1;
            tc_window_range(id0, p->dilation_d, p->k_d, p->in_d, &kd0, &kd1);
            tc_window_range(id0 + p->pad_d, p->dilation_d, p->k_d, span_d, &pd0, &pd1);
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const int32_t ih0 = oh * p->stride_h - p->pad_h;
                int32_t kh0;
                int32_t kh1;
                int32_t ph0;
                int32_t ph1;
                tc_window_range(ih0, p->dilation_h, p->k_h, p->in_h, &kh0, &kh1);
                tc_window_range(ih0 + p->pad_h, p->dilation_h, p->k_h, span_h, &ph0, &ph1);
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += c) {
                    const int32_t iw0 = ow * p->stride_w - p->pad_w;
                    int32_t kw0;
                    int32_t kw1;
                    int32_t pw0;
                    int32_t pw1;
                    tc_window_range(iw0, p->dilation_w, p->k_w, p->in_w, &kw0, &kw1);
                    tc_window_range(iw0 + p->pad_w, p->dilation_w, p->k_w, span_w, &pw0, &pw1);
                    const int32_t nd = kd1 - kd0;
                    const int32_t nh = kh1 - kh0;
                    const int32_t nw = kw1 - kw0;
                    const int32_t taps = nd * nh * nw;

                    const float init = is_max ? -INFINITY : 0.0f;
                    for (int32_t ch = 0; ch < c; ++ch) {
                        y[ch] = init;
                    }
                    if (taps > 0) {
                        const int32_t x_first = (id0 + kd0 * p->dilation_d) * x_sd +
                                                (ih0 + kh0 * p->dilation_h) * x_sh +
                                                (iw0 + kw0 * p->dilation_w) * c;
                        const float *xf = xn + x_first;
                        for (int32_t kd = 0, xd = 0; kd < nd; ++kd, xd += x_td) {
                            for (int32_t kh = 0, xh = xd; kh < nh; ++kh, xh += x_th) {
                                for (int32_t kw = 0, xw = xh; kw < nw; ++kw, xw += x_tw) {
                                    const float *xt = xf + xw;
                                    if (is_max) {
                                        for (int32_t ch = 0; ch < c; ++ch) {
                                            if (xt[ch] > y[ch]) {
                                                y[ch] = xt[ch];
                                            }
                                        }
                                    } else {
                                        for (int32_t ch = 0; ch < c; ++ch) {
                                            y[ch] += xt[ch];
                                        }
                                    }
                                }
                            }
                        }
                    }

                    if (is_max) {
                        for (int32_t ch = 0; ch < c; ++ch) {
                            y[ch] = tc_clamp_f32(y[ch], lo, hi);
                        }
                    } else {
                        const int32_t count =
                            include_pad ? (pd1 - pd0) * (ph1 - ph0) * (pw1 - pw0) : taps;
                        const float divisor = count > 0 ? (float)count : 1.0f;
                        for (int32_t ch = 0; ch < c; ++ch) {
                            y[ch] = tc_clamp_f32(y[ch] / divisor, lo, hi);
                        }
                    }
                }
            }
        }
    }
}

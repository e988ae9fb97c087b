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
    /* The explicitly padded extents [-pad, in + pad_end), shifted to start at 0, for
     * count_include_pad = 1. */
    const int32_t span_d = p->pad_d + p->in_d + p->pad_end_d;
    const int32_t span_h = p->pad_h + p->in_h + p->pad_end_h;
    const int32_t span_w = p->pad_w + p->in_w + p->pad_end_w;

    for (int32_t n = 0; n < p->batch; ++n) {
        const float *xn = x + n * x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            const tc_window_axis_t win_d =
                tc_window_axis(od, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->in_d);
            const tc_window_axis_t padded_d =
                tc_window_axis(od, p->stride_d, 0, p->dilation_d, p->k_d, span_d);
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const tc_window_axis_t win_h =
                    tc_window_axis(oh, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->in_h);
                const tc_window_axis_t padded_h =
                    tc_window_axis(oh, p->stride_h, 0, p->dilation_h, p->k_h, span_h);
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += c) {
                    const tc_window_axis_t win_w =
                        tc_window_axis(ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
                    const tc_window_axis_t padded_w =
                        tc_window_axis(ow, p->stride_w, 0, p->dilation_w, p->k_w, span_w);
                    const int32_t nd = win_d.count;
                    const int32_t nh = win_h.count;
                    const int32_t nw = win_w.count;
                    const int32_t taps = nd * nh * nw;

                    const float init = is_max ? -INFINITY : 0.0f;
                    for (int32_t ch = 0; ch < c; ++ch) {
                        y[ch] = init;
                    }
                    if (taps > 0) {
                        const float *xf = xn + win_d.at * x_sd + win_h.at * x_sh + win_w.at * c;
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
                            include_pad ? padded_d.count * padded_h.count * padded_w.count
                                        : taps;
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

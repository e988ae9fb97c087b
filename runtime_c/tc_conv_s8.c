/*
 * tinyc runtime: int8 convolution and depthwise convolution (see tc_conv_s8.h).
 *
 * As in tc_conv_f32.c, the valid part of each output position's window is computed once per
 * axis (tc_window_range), so padding costs nothing inside the tap loops.  Both kernels walk
 * the taps with conv_dot_channels: the innermost loop runs over the input channels of one tap
 * (tc_conv_s8: contiguous in x and w), or, with one channel per tap, over k_w
 * (tc_depthwise_conv_s8: stride in_c * dilation_w in x, out_c in w; the helper is inlined with
 * cig = 1, so the channel loop disappears).  Integer accumulation is exact, so the order of the
 * taps does not matter for the result.
 */
#include "tc_conv_s8.h"

#include "tc_requant.h"

/* The valid part of one output position's window: tap counts along d, h, w and the element
 * steps from one tap to the next in x and in w. */
typedef struct {
    int32_t nd, nh, nw;
    int32_t x_td, x_th, x_tw;
    int32_t w_td, w_th, w_tw;
} conv_window_t;

/* Geometry shared by both kernels: element strides of x, then the window of the current output
 * position and the offsets of its first valid tap. */
typedef struct {
    int32_t x_sh, x_sd, x_sn;
    int32_t x_first; /* in x (channel 0, batch 0); 0 when no tap is inside */
    int32_t w_first; /* in w (the first output channel's weights) */
    conv_window_t t;
} conv_position_t;

/* Sets the strides of x and the steps between taps, for weights whose taps along k_w are w_tw
 * elements apart (then k_w taps per row, k_h rows per plane). */
static inline void conv_position_init(const tc_conv_s8_params_t *p, int32_t w_tw,
                                      conv_position_t *q)
{
    q->x_sh = p->in_w * p->in_c;
    q->x_sd = p->in_h * q->x_sh;
    q->x_sn = p->in_d * q->x_sd;
    q->t.x_td = p->dilation_d * q->x_sd;
    q->t.x_th = p->dilation_h * q->x_sh;
    q->t.x_tw = p->dilation_w * p->in_c;
    q->t.w_tw = w_tw;
    q->t.w_th = p->k_w * w_tw;
    q->t.w_td = p->k_h * q->t.w_th;
}

/* Narrows the window of output position (od, oh, ow) to the taps inside the input and finds
 * their first tap in x and in w.  Returns 0 when no tap is inside (the whole window lies in
 * the padding).  Inlined into both kernels' position loops (3% of tc_conv_s8's instructions
 * on a 3x3x3 convolution when called). */
static TC_ALWAYS_INLINE int32_t conv_locate(const tc_conv_s8_params_t *p, int32_t od,
                                            int32_t oh, int32_t ow, conv_position_t *q)
{
    const tc_window_axis_t win_d =
        tc_window_axis(od, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->in_d);
    const tc_window_axis_t win_h =
        tc_window_axis(oh, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->in_h);
    const tc_window_axis_t win_w =
        tc_window_axis(ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
    q->t.nd = win_d.count;
    q->t.nh = win_h.count;
    q->t.nw = win_w.count;
    const int32_t any = q->t.nd > 0 && q->t.nh > 0 && q->t.nw > 0;
    q->x_first = any ? win_d.at * q->x_sd + win_h.at * q->x_sh + win_w.at * p->in_c : 0;
    q->w_first = win_d.first * q->t.w_td + win_h.first * q->t.w_th + win_w.first * q->t.w_tw;
    return any;
}

/* Requantizes one accumulator of output channel oc. */
static int8_t conv_output(const tc_conv_s8_params_t *p, int32_t acc, int32_t oc)
{
    const int32_t c = p->per_channel ? oc : 0;
    const int32_t v = tc_multiply_by_quantized_multiplier(acc, p->multiplier[c], p->shift[c]) +
                      p->output_offset;
    return (int8_t)tc_clamp_s32(v, p->act_min, p->act_max);
}

/* sum over the window's taps of the cig channels of each tap (w * (x + input_offset)); x and w
 * point at the first valid tap.  Innermost loop over channels: contiguous in x and w. */
static inline int32_t conv_dot_channels(const conv_window_t *t, int32_t cig, const int8_t *x,
                                        const int8_t *w, int32_t input_offset)
{
    int32_t acc = 0;
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            for (int32_t kw = 0, xw = xh, ww = wh; kw < t->nw;
                 ++kw, xw += t->x_tw, ww += t->w_tw) {
                const int8_t *xt = x + xw;
                const int8_t *wt = w + ww;
                for (int32_t ic = 0; ic < cig; ++ic) {
                    acc += (int32_t)wt[ic] * ((int32_t)xt[ic] + input_offset);
                }
            }
        }
    }
    return acc;
}

void tc_conv_s8(const tc_conv_s8_params_t *p, const int8_t *x, const int8_t *w,
                const int32_t *bias, int8_t *y)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t groups = p->groups;
    const int32_t cig = in_c / groups;  /* input channels per group */
    const int32_t cog = out_c / groups; /* output channels per group */
    conv_position_t q;
    conv_position_init(p, cig, &q);
    const int32_t w_so = p->k_d * q.t.w_td; /* element stride of w per output channel */

    for (int32_t n = 0; n < p->batch; ++n) {
        const int8_t *xn = x + n * q.x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += out_c) {
                    const int32_t any = conv_locate(p, od, oh, ow, &q);
                    for (int32_t g = 0, oc = 0; g < groups; ++g) {
                        const int8_t *xg = xn + q.x_first + g * cig;
                        for (int32_t m = 0; m < cog; ++m, ++oc) {
                            int32_t acc = any ? conv_dot_channels(&q.t, cig, xg,
                                                                  w + oc * w_so + q.w_first,
                                                                  p->input_offset)
                                              : 0;
                            if (bias != NULL) {
                                acc += bias[oc];
                            }
                            y[oc] = conv_output(p, acc, oc);
                        }
                    }
                }
            }
        }
    }
}

void tc_depthwise_conv_s8(const tc_conv_s8_params_t *p, const int8_t *x, const int8_t *w,
                          const int32_t *bias, int8_t *y)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t mult = out_c / in_c; /* depth multiplier */
    conv_position_t q;
    conv_position_init(p, out_c, &q);

    for (int32_t n = 0; n < p->batch; ++n) {
        const int8_t *xn = x + n * q.x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += out_c) {
                    const int32_t any = conv_locate(p, od, oh, ow, &q);
                    for (int32_t oc = 0; oc < out_c; ++oc) {
                        int32_t acc = 0;
                        if (any) {
                            const int8_t *xc = xn + q.x_first + oc / mult;
                            const int8_t *wc = w + q.w_first + oc;
                            acc = conv_dot_channels(&q.t, 1, xc, wc, p->input_offset);
                        }
                        if (bias != NULL) {
                            acc += bias[oc];
                        }
                        y[oc] = conv_output(p, acc, oc);
                    }
                }
            }
        }
    }
}

/*
 * tinyc runtime: int8 convolution and depthwise convolution (see tc_conv_s8.h).
 *
 * As in tc_conv_f32.c, the valid part of each output position's window is computed once per
 * axis (tc_window_range), so padding costs nothing inside the tap loops.  The innermost loop
 * runs over the input channels of one tap (tc_conv_s8: contiguous in x and w) or over k_w
 * (tc_depthwise_conv_s8: stride in_c * dilation_w in x, out_c in w).  Integer accumulation is
 * exact, so the order of the taps does not matter for the result.
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

/* Geometry shared by both kernels: element strides of x and the window of one position. */
typedef struct {
    int32_t x_sh, x_sd, x_sn;
    int32_t id0, ih0, iw0;
    int32_t kd0, kh0, kw0;
    conv_window_t t;
} conv_position_t;

/* Narrows the window of output position (od, oh, ow) to the taps inside the input.  Returns 0
 * when no tap is inside (the whole window lies in the padding). */
static int32_t conv_locate(const tc_conv_s8_params_t *p, int32_t od, int32_t oh, int32_t ow,
                           conv_position_t *q)
{
    int32_t kd1;
    int32_t kh1;
    int32_t kw1;
    q->id0 = od * p->stride_d - p->pad_d;
    q->ih0 = oh * p->stride_h - p->pad_h;
    q->iw0 = ow * p->stride_w - p->pad_w;
    tc_window_range(q->id0, p->dilation_d, p->k_d, p->in_d, &q->kd0, &kd1);
    tc_window_range(q->ih0, p->dilation_h, p->k_h, p->in_h, &q->kh0, &kh1);
    tc_window_range(q->iw0, p->dilation_w, p->k_w, p->in_w, &q->kw0, &kw1);
    q->t.nd = kd1 - q->kd0;
    q->t.nh = kh1 - q->kh0;
    q->t.nw = kw1 - q->kw0;
    return q->t.nd > 0 && q->t.nh > 0 && q->t.nw > 0;
}

/* Offset in x (channel 0, batch 0) of the first valid tap. */
static int32_t conv_first_tap(const tc_conv_s8_params_t *p, const conv_position_t *q)
{
    return (q->id0 + q->kd0 * p->dilation_d) * q->x_sd +
           (q->ih0 + q->kh0 * p->dilation_h) * q->x_sh +
           (q->iw0 + q->kw0 * p->dilation_w) * p->in_c;
}

/* Requantizes one accumulator of output channel oc. */
static int8_t conv_output(const tc_conv_s8_params_t *p, int32_t acc, int32_t oc)
{
    const int32_t c = p->per_channel ? oc : 0;
    const int32_t v = tc_multiply_by_quantized_multiplier(acc, p->multiplier[c], p->shift[c]) +
                      p->output_offset;
    return (int8_t)tc_clamp_s32(v, p->act_min, p->act_max);
}

/* sum over the window's taps of the cig channels of each tap; x and w point at the first valid
 * tap.  Innermost loop over channels: contiguous in x and w. */
static int32_t conv_dot_channels(const conv_window_t *t, int32_t cig, const int8_t *x,
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
    const int32_t w_sh = p->k_w * cig;  /* element strides of w per kh, kd, oc */
    const int32_t w_sd = p->k_h * w_sh;
    const int32_t w_so = p->k_d * w_sd;
    conv_position_t q;
    q.x_sh = p->in_w * in_c;
    q.x_sd = p->in_h * q.x_sh;
    q.x_sn = p->in_d * q.x_sd;
    q.t.x_td = p->dilation_d * q.x_sd;
    q.t.x_th = p->dilation_h * q.x_sh;
    q.t.x_tw = p->dilation_w * in_c;
    q.t.w_td = w_sd;
    q.t.w_th = w_sh;
    q.t.w_tw = cig;

    for (int32_t n = 0; n < p->batch; ++n) {
        const int8_t *xn = x + n * q.x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += out_c) {
                    const int32_t any = conv_locate(p, od, oh, ow, &q);
                    const int32_t x_first = any ? conv_first_tap(p, &q) : 0;
                    const int32_t w_first = q.kd0 * w_sd + q.kh0 * w_sh + q.kw0 * cig;
                    for (int32_t g = 0, oc = 0; g < groups; ++g) {
                        const int8_t *xg = xn + x_first + g * cig;
                        for (int32_t m = 0; m < cog; ++m, ++oc) {
                            int32_t acc = any ? conv_dot_channels(&q.t, cig, xg,
                                                                  w + oc * w_so + w_first,
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
    const int32_t w_sh = p->k_w * out_c; /* element strides of w per kh, kd */
    const int32_t w_sd = p->k_h * w_sh;
    conv_position_t q;
    q.x_sh = p->in_w * in_c;
    q.x_sd = p->in_h * q.x_sh;
    q.x_sn = p->in_d * q.x_sd;
    q.t.x_td = p->dilation_d * q.x_sd;
    q.t.x_th = p->dilation_h * q.x_sh;
    q.t.x_tw = p->dilation_w * in_c;
    q.t.w_td = w_sd;
    q.t.w_th = w_sh;
    q.t.w_tw = out_c;

    for (int32_t n = 0; n < p->batch; ++n) {
        const int8_t *xn = x + n * q.x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += out_c) {
                    const int32_t any = conv_locate(p, od, oh, ow, &q);
                    const int32_t x_first = any ? conv_first_tap(p, &q) : 0;
                    const int32_t w_first = q.kd0 * w_sd + q.kh0 * w_sh + q.kw0 * out_c;
                    for (int32_t oc = 0; oc < out_c; ++oc) {
                        int32_t acc = 0;
                        if (any) {
                            const int8_t *xc = xn + x_first + oc / mult;
                            const int8_t *wc = w + w_first + oc;
                            const conv_window_t *t = &q.t;
                            for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd;
                                 ++kd, xd += t->x_td, wd += t->w_td) {
                                for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh;
                                     ++kh, xh += t->x_th, wh += t->w_th) {
                                    for (int32_t kw = 0, xw = xh, ww = wh; kw < t->nw;
                                         ++kw, xw += t->x_tw, ww += t->w_tw) {
                                        acc += (int32_t)wc[ww] *
                                               ((int32_t)xc[xw] + p->input_offset);
                                    }
                                }
                            }
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

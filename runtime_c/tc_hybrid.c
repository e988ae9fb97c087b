/*
 * tinyc runtime: dynamic-range ("hybrid") int8 layers (see tc_hybrid.h for the arithmetic).
 */
#include "tc_hybrid.h"

#include <math.h>

float tc_quantize_symmetric_f32(const float *x, int32_t n, int8_t *q)
{
    float range = 0.0f;
    for (int32_t i = 0; i < n; ++i) {
        const float a = fabsf(x[i]);
        range = a > range ? a : range;
    }
    if (range == 0.0f) {
        for (int32_t i = 0; i < n; ++i) {
            q[i] = 0;
        }
        return 1.0f;
    }
    const float inv = 127.0f / range;
    for (int32_t i = 0; i < n; ++i) {
        float v = roundf(x[i] * inv); /* half away from zero, as TfLiteRound */
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        q[i] = (int8_t)v;
    }
    return range / 127.0f;
}

/* Integer dot product of one output position: taps inside the input only. */
static int32_t conv_acc(const tc_conv_s8_params_t *c, const int8_t *xq, const int8_t *wo,
                        int32_t od, int32_t oh, int32_t ow, int32_t g, int32_t cig)
{
    int32_t acc = 0;
    for (int32_t kd = 0; kd < c->k_d; ++kd) {
        const int32_t id = od * c->stride_d - c->pad_d + kd * c->dilation_d;
        if (id < 0 || id >= c->in_d) {
            continue;
        }
        for (int32_t kh = 0; kh < c->k_h; ++kh) {
            const int32_t ih = oh * c->stride_h - c->pad_h + kh * c->dilation_h;
            if (ih < 0 || ih >= c->in_h) {
                continue;
            }
            for (int32_t kw = 0; kw < c->k_w; ++kw) {
                const int32_t iw = ow * c->stride_w - c->pad_w + kw * c->dilation_w;
                if (iw < 0 || iw >= c->in_w) {
                    continue;
                }
                const int8_t *xt = xq + ((id * c->in_h + ih) * c->in_w + iw) * c->in_c + g * cig;
                const int8_t *wt = wo + ((kd * c->k_h + kh) * c->k_w + kw) * cig;
                for (int32_t ic = 0; ic < cig; ++ic) {
                    acc += (int32_t)xt[ic] * (int32_t)wt[ic];
                }
            }
        }
    }
    return acc;
}

void tc_conv_hybrid(const tc_conv_hybrid_params_t *p, const float *x, const int8_t *w,
                    const float *bias, float *y, void *scratch)
{
    const tc_conv_s8_params_t *c = &p->conv;
    const int32_t cig = c->in_c / c->groups;
    const int32_t cog = c->out_c / c->groups;
    const int32_t in_size = c->in_d * c->in_h * c->in_w * c->in_c;
    const int32_t w_size = c->k_d * c->k_h * c->k_w * cig;
    int8_t *xq = (int8_t *)scratch;
    for (int32_t n = 0; n < c->batch; ++n, x += in_size) {
        const float s_x = tc_quantize_symmetric_f32(x, in_size, xq);
        for (int32_t od = 0; od < c->out_d; ++od) {
            for (int32_t oh = 0; oh < c->out_h; ++oh) {
                for (int32_t ow = 0; ow < c->out_w; ++ow, y += c->out_c) {
                    for (int32_t oc = 0; oc < c->out_c; ++oc) {
                        const int32_t acc = conv_acc(c, xq, w + oc * w_size, od, oh, ow,
                                                     oc / cog, cig);
                        const float scale = s_x * p->weight_scale[p->per_channel ? oc : 0];
                        const float v = (float)acc * scale + (bias != NULL ? bias[oc] : 0.0f);
                        y[oc] = tc_clamp_f32(v, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

void tc_fully_connected_hybrid(const tc_fully_connected_hybrid_params_t *p, const float *x,
                               const int8_t *w, const float *bias, float *y, void *scratch)
{
    int8_t *xq = (int8_t *)scratch;
    for (int32_t b = 0; b < p->batch; ++b, x += p->in_features, y += p->out_features) {
        const float s_x = tc_quantize_symmetric_f32(x, p->in_features, xq);
        for (int32_t o = 0; o < p->out_features; ++o) {
            const int8_t *wr = w + o * p->in_features;
            int32_t acc = 0;
            for (int32_t k = 0; k < p->in_features; ++k) {
                acc += (int32_t)xq[k] * (int32_t)wr[k];
            }
            const float scale = s_x * p->weight_scale[p->per_channel ? o : 0];
            const float v = (float)acc * scale + (bias != NULL ? bias[o] : 0.0f);
            y[o] = tc_clamp_f32(v, p->act_min, p->act_max);
        }
    }
}

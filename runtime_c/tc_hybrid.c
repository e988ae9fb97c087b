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

/* Round half to even of |v| < 2^22 in float32 arithmetic: adding 1.5 * 2^23 leaves the
 * nearest integer (default rounding mode) and subtracting it is exact.  C99 forbids the
 * compiler to reassociate the two (no -ffast-math), and float32 is evaluated as float32
 * (FLT_EVAL_METHOD 0 on the Arm FPU and on x86-64 SSE). */
static float round_half_even(float v)
{
    const float magic = 12582912.0f;
    return (v + magic) - magic;
}

/* fbgemm's ChooseQuantizationParams for [min(x, 0), max(x, 0)] and [0, qmax] (tc_hybrid.h). */
static float torch_dynamic_qparams(const float *x, int32_t n, int32_t qmax, int32_t *zp)
{
    const float small_scale = 6.1e-5f;
    float lo = 0.0f;
    float hi = 0.0f;
    for (int32_t i = 0; i < n; ++i) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    double scale = ((double)hi - (double)lo) / (double)qmax;
    if ((float)scale == 0.0f || isinf(1.0f / (float)scale)) {
        scale = 0.1;
    }
    if (scale < (double)small_scale) {
        const float amplifier = small_scale / (float)scale;
        scale = (double)small_scale;
        if (lo == 0.0f) {
            hi = small_scale * (float)qmax;
        } else if (hi == 0.0f) {
            lo = -small_scale * (float)qmax;
        } else {
            lo *= amplifier;
            hi *= amplifier;
        }
    }
    const double lo_q = (double)lo / scale;
    const double hi_q = (double)hi / scale;
    const double from_min = -lo_q;
    const double from_max = (double)qmax - hi_q;
    const double error_min = -(lo_q < 0 ? -lo_q : lo_q);
    const double error_max = (double)qmax - (hi_q < 0 ? -hi_q : hi_q);
    const double z = error_min < error_max ? from_min : from_max;
    if (z <= 0.0) {
        *zp = 0;
    } else if (z >= (double)qmax) {
        *zp = qmax;
    } else {
        int32_t i = (int32_t)z; /* z > 0: truncation is floor */
        const double frac = z - (double)i;
        i += (frac > 0.5 || (frac == 0.5 && (i & 1))) ? 1 : 0;
        *zp = i;
    }
    return (float)scale;
}

/* PyTorch's dynamic quantized Linear (fbgemm arithmetic, tc_hybrid.h). */
static void fully_connected_torch(const tc_fully_connected_hybrid_params_t *p, const float *x,
                                  const int8_t *w, const float *bias, float *y, uint8_t *xq)
{
    const int32_t n = p->batch * p->in_features;
    int32_t zp;
    const float s_x = torch_dynamic_qparams(x, n, p->input_qmax, &zp);
    const float inv = 1.0f / s_x;
    for (int32_t i = 0; i < n; ++i) {
        const float v = round_half_even(x[i] * inv) + (float)zp;
        xq[i] = (uint8_t)(v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v));
    }
    for (int32_t b = 0; b < p->batch; ++b, xq += p->in_features, y += p->out_features) {
        for (int32_t o = 0; o < p->out_features; ++o) {
            const int8_t *wr = w + o * p->in_features;
            int32_t acc = 0;
            for (int32_t k = 0; k < p->in_features; ++k) {
                acc += (int32_t)xq[k] * (int32_t)wr[k];
            }
            acc -= zp * p->weight_sums[o];
            const float m = s_x * p->weight_scale[p->per_channel ? o : 0];
            const float v = fmaf((float)acc, m, bias != NULL ? bias[o] : 0.0f);
            y[o] = tc_clamp_f32(v, p->act_min, p->act_max);
        }
    }
}

void tc_fully_connected_hybrid(const tc_fully_connected_hybrid_params_t *p, const float *x,
                               const int8_t *w, const float *bias, float *y, void *scratch)
{
    if (p->input_qmax > 0) {
        fully_connected_torch(p, x, w, bias, y, (uint8_t *)scratch);
        return;
    }
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

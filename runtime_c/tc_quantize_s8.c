/*
 * tinyc runtime: int8 quantize / dequantize / requantize (see tc_quantize_s8.h).
 */
#include "tc_quantize_s8.h"

#include "tc_requant.h"

/* round(q) to nearest, ties away from zero, for |q| <= 512 (so that the truncating conversion
 * and q - t are exact), as an int32. */
static int32_t round_half_away(float q)
{
    int32_t t = (int32_t)q; /* truncates towards zero */
    const float frac = q - (float)t;
    if (frac >= 0.5f) {
        ++t;
    } else if (frac <= -0.5f) {
        --t;
    }
    return t;
}

void tc_quantize_s8(const tc_quantize_s8_params_t *p, const float *x, int8_t *y)
{
    for (int32_t i = 0; i < p->count; ++i) {
        float q = x[i] / p->scale;
        if (!(q >= -512.0f)) { /* also NaN */
            q = -512.0f;
        } else if (q > 512.0f) {
            q = 512.0f;
        }
        y[i] = (int8_t)tc_clamp_s32(round_half_away(q) + p->zero_point, INT8_MIN, INT8_MAX);
    }
}

void tc_dequantize_s8(const tc_dequantize_s8_params_t *p, const int8_t *x, float *y)
{
    for (int32_t i = 0; i < p->count; ++i) {
        y[i] = p->scale * (float)((int32_t)x[i] - p->zero_point);
    }
}

void tc_requantize_s8(const tc_requantize_s8_params_t *p, const int8_t *x, int8_t *y)
{
    for (int32_t i = 0; i < p->count; ++i) {
        const int32_t v = (int32_t)x[i] - p->input_zero_point;
        const int32_t r = tc_multiply_by_quantized_multiplier(v, p->multiplier, p->shift);
        y[i] = (int8_t)tc_clamp_s32(r + p->output_zero_point, p->act_min, p->act_max);
    }
}

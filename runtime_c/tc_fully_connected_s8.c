/*
 * tinyc runtime: int8 fully connected layer (see tc_fully_connected_s8.h).
 *
 * One dot product per output, innermost loop over in_features: contiguous in x and in w.
 */
#include "tc_fully_connected_s8.h"

#include "tc_requant.h"

void tc_fully_connected_s8(const tc_fully_connected_s8_params_t *p, const int8_t *x,
                           const int8_t *w, const int32_t *bias, int8_t *y)
{
    const int32_t k = p->in_features;
    const int32_t input_offset = p->input_offset;
    for (int32_t b = 0; b < p->batch; ++b, x += k) {
        const int8_t *wo = w;
        for (int32_t o = 0; o < p->out_features; ++o, wo += k) {
            int32_t acc = 0;
            for (int32_t i = 0; i < k; ++i) {
                acc += (int32_t)wo[i] * ((int32_t)x[i] + input_offset);
            }
            if (bias != NULL) {
                acc += bias[o];
            }
            const int32_t c = p->per_channel ? o : 0;
            const int32_t v =
                tc_multiply_by_quantized_multiplier(acc, p->multiplier[c], p->shift[c]) +
                p->output_offset;
            *y++ = (int8_t)tc_clamp_s32(v, p->act_min, p->act_max);
        }
    }
}

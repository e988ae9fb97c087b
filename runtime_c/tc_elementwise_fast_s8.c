/*
 * tinyc runtime: optimized int8 ADD / SUB (see tc_elementwise_fast_s8.h).
 *
 * The output stage is specialised for the common case (output shift < 0) with its constants in
 * registers; a shift >= 0 takes tc_requantize as written.
 */
#include "tc_elementwise_fast_s8.h"

#include "tc_dsp.h"

/* The common case: output shift < 0, the output stage's constants in registers;
 * full_range: the clamp is [-128, 127] (one SSAT). */
static TC_ALWAYS_INLINE void add_lut_fast(const tc_add_lut_s8_params_t *p, const uint8_t *a,
                                          const uint8_t *b, const int32_t *table1,
                                          const int32_t *table2, int8_t *y, int full_range)
{
    const int64_t round = tc_requant_round(&p->output);
    const int32_t multiplier = p->output.multiplier;
    const int32_t shift_code = p->output.shift_code;
    const int32_t offset = p->output_offset;
    const int32_t act_min = p->act_min;
    const int32_t act_max = p->act_max;
    for (const uint8_t *end = a + p->count; a != end; ++a, ++b, ++y) {
        const int32_t sum = table1[*a] + table2[*b];
        const int32_t v = tc_requantize_parts(sum, round, multiplier, shift_code) + offset;
        *y = (int8_t)(full_range ? tc_sat_s8(v) : tc_clamp_s32(v, act_min, act_max));
    }
}

static TC_NOINLINE void add_lut_full(const tc_add_lut_s8_params_t *p, const uint8_t *a,
                                     const uint8_t *b, const int32_t *table1,
                                     const int32_t *table2, int8_t *y)
{
    add_lut_fast(p, a, b, table1, table2, y, 1);
}

static TC_NOINLINE void add_lut_clamp(const tc_add_lut_s8_params_t *p, const uint8_t *a,
                                      const uint8_t *b, const int32_t *table1,
                                      const int32_t *table2, int8_t *y)
{
    add_lut_fast(p, a, b, table1, table2, y, 0);
}

void tc_add_lut_s8(const tc_add_lut_s8_params_t *p, const int8_t *a, const int8_t *b,
                   const int32_t *table1, const int32_t *table2, int8_t *y)
{
    const uint8_t *ua = (const uint8_t *)a;
    const uint8_t *ub = (const uint8_t *)b;
    if (p->output.shift_code >= 0) {
        if (p->act_min == INT8_MIN && p->act_max == INT8_MAX) {
            add_lut_full(p, ua, ub, table1, table2, y);
        } else {
            add_lut_clamp(p, ua, ub, table1, table2, y);
        }
        return;
    }
    for (int32_t i = 0; i < p->count; ++i) {
        const int32_t sum = table1[ua[i]] + table2[ub[i]];
        y[i] = (int8_t)tc_clamp_s32(tc_requantize(sum, &p->output) + p->output_offset,
                                    p->act_min, p->act_max);
    }
}

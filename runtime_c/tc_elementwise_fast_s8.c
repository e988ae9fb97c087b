/*
 * tinyc runtime: optimized int8 ADD / SUB (see tc_elementwise_fast_s8.h).
 *
 * The output stage is specialised for the common cases (a narrow record: the 32-bit form,
 * in assembly for the full int8 range on Thumb-2 with DSP; else output shift < 0) with its
 * constants in registers; a shift >= 0 takes tc_requantize as written.
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

/* A narrow output record: the tables hold doubled values, t = 2 (s1 + s2). */
static TC_ALWAYS_INLINE void add_lut_narrow(const tc_add_lut_s8_params_t *p, const uint8_t *a,
                                            const uint8_t *b, const int32_t *table1,
                                            const int32_t *table2, int8_t *y, int full_range)
{
    const tc_requant_channel_t q = p->output; /* in registers: the stores could alias p */
    const int32_t act_min = p->act_min;
    const int32_t act_max = p->act_max;
    for (const uint8_t *end = a + p->count; a != end; ++a, ++b, ++y) {
        const int32_t v = tc_requantize_narrow(table1[*a] + table2[*b], &q);
        *y = (int8_t)(full_range ? tc_sat_s8(v) : tc_clamp_s32(v, act_min, act_max));
    }
}

#if TC_DSP && defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
/* add_lut_narrow with the clamp [-128, 127], two elements per pass (an odd count enters at
 * the second), the sum's output by TC_STORE_S8 (tc_dsp.h). */
static TC_NOINLINE void add_lut_narrow_full(const tc_add_lut_s8_params_t *p, const uint8_t *a,
                                            const uint8_t *b, const int32_t *table1,
                                            const int32_t *table2, int8_t *y)
{
    const uint8_t *end = a + p->count;
    int32_t u, v, h;
    if (p->count == 0) {
        return;
    }
#define ADD_LUT_ONE                                                                            \
    "ldrb    %[u], [%[a]], #1\n\t"                                                            \
    "ldrb    %[v], [%[b]], #1\n\t"                                                            \
    "ldr     %[u], [%[t1], %[u], lsl #2]\n\t"                                                 \
    "ldr     %[v], [%[t2], %[v], lsl #2]\n\t"                                                 \
    "add     %[u], %[u], %[v]\n\t"                                                            \
    TC_STORE_S8("%[u]", "[%[y]], #1", "%[m]", "%[ra]", "%[r]", "%[h]")
    __asm__ volatile("tst     %[n], #1\n\t"
                     "bne     2f\n\t"
                     "1:\n\t" ADD_LUT_ONE "2:\n\t" ADD_LUT_ONE
                     "cmp     %[a], %[end]\n\t"
                     "bne     1b\n\t"
                     : [a] "+r"(a), [b] "+r"(b), [y] "+r"(y), [u] "=&r"(u), [v] "=&r"(v),
                       [h] "=&r"(h)
                     : [end] "r"(end), [n] "r"(p->count), [t1] "r"(table1), [t2] "r"(table2),
                       [m] "r"(p->output.multiplier), [ra] "r"(p->output.narrow_round),
                       [r] "r"(p->output.narrow_shift)
                     : "cc", "memory");
#undef ADD_LUT_ONE
}
#else
static TC_NOINLINE void add_lut_narrow_full(const tc_add_lut_s8_params_t *p, const uint8_t *a,
                                            const uint8_t *b, const int32_t *table1,
                                            const int32_t *table2, int8_t *y)
{
    add_lut_narrow(p, a, b, table1, table2, y, 1);
}
#endif

static TC_NOINLINE void add_lut_narrow_clamp(const tc_add_lut_s8_params_t *p, const uint8_t *a,
                                             const uint8_t *b, const int32_t *table1,
                                             const int32_t *table2, int8_t *y)
{
    add_lut_narrow(p, a, b, table1, table2, y, 0);
}

void tc_add_lut_s8(const tc_add_lut_s8_params_t *p, const int8_t *a, const int8_t *b,
                   const int32_t *table1, const int32_t *table2, int8_t *y)
{
    const uint8_t *ua = (const uint8_t *)a;
    const uint8_t *ub = (const uint8_t *)b;
    if (p->output.narrow_shift > 0) {
        if (p->act_min == INT8_MIN && p->act_max == INT8_MAX) {
            add_lut_narrow_full(p, ua, ub, table1, table2, y);
        } else {
            add_lut_narrow_clamp(p, ua, ub, table1, table2, y);
        }
        return;
    }
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

/*
 * tinyc runtime: optimized int8 fully connected layer (see tc_fully_connected_fast_s8.h).
 *
 * The DSP build runs the 4-row dot products in one assembly loop (per group of 4 inputs: LDRD
 * of the input pairs, two LDMs of the 4 rows' weight words, 8 SXTB16, 8 SMLAD); the portable
 * build computes the same sums in C.  Both share the expansion of the input and the output
 * stage, which runs over FC_CHUNK rows at a time after their dot products.
 */
#include "tc_fully_connected_fast_s8.h"

#include "tc_dsp.h"

#define FC_ROWS 4
#define FC_CHUNK 32 /* rows per accumulator pass (a multiple of FC_ROWS) */

size_t tc_fully_connected_rows4_s8_scratch_size(const tc_fully_connected_rows4_s8_params_t *p)
{
    return (size_t)p->k_padded * sizeof(int16_t);
}

/* x [in_features] into xs [k_padded] int16 in sxtb16 order, zero-padded. */
static void fc_expand(const int8_t *x, int32_t in_features, int32_t k_padded, int16_t *xs)
{
    int32_t k = 0;
    for (; k + 4 <= in_features; k += 4) {
        tc_expand_s8x4(x + k, xs + k);
    }
    if (k < k_padded) {
        int8_t tail[4] = {0, 0, 0, 0};
        for (int32_t i = 0; k + i < in_features; ++i) {
            tail[i] = x[k + i];
        }
        tc_expand_s8x4(tail, xs + k);
    }
}

/* The general output stage: any shift, any clamp. */
static TC_NOINLINE int8_t fc_output(int32_t acc, const tc_requant_channel_t *q,
                                    const tc_fully_connected_rows4_s8_params_t *p)
{
    return (int8_t)tc_clamp_s32(tc_requantize(acc, q) + p->output_offset, p->act_min,
                                p->act_max);
}

#if TC_DSP
#define FC4_GROUP                                                                             \
    "ldrd    %[x0], %[x1], [%[xp]], #8\n\t"                                                   \
    "ldmia   %[wp]!, {%[w0], %[w1]}\n\t"                                                      \
    "sxtb16  %[t], %[w0]\n\t"                                                                 \
    "smlad   %[a0], %[x0], %[t], %[a0]\n\t"                                                   \
    "sxtb16  %[w0], %[w0], ror #8\n\t"                                                        \
    "smlad   %[a0], %[x1], %[w0], %[a0]\n\t"                                                  \
    "sxtb16  %[t], %[w1]\n\t"                                                                 \
    "smlad   %[a1], %[x0], %[t], %[a1]\n\t"                                                   \
    "sxtb16  %[w1], %[w1], ror #8\n\t"                                                        \
    "smlad   %[a1], %[x1], %[w1], %[a1]\n\t"                                                  \
    "ldmia   %[wp]!, {%[w0], %[w1]}\n\t"                                                      \
    "sxtb16  %[t], %[w0]\n\t"                                                                 \
    "smlad   %[a2], %[x0], %[t], %[a2]\n\t"                                                   \
    "sxtb16  %[w0], %[w0], ror #8\n\t"                                                        \
    "smlad   %[a2], %[x1], %[w0], %[a2]\n\t"                                                  \
    "sxtb16  %[t], %[w1]\n\t"                                                                 \
    "smlad   %[a3], %[x0], %[t], %[a3]\n\t"                                                   \
    "sxtb16  %[w1], %[w1], ror #8\n\t"                                                        \
    "smlad   %[a3], %[x1], %[w1], %[a3]\n\t"

/* acc[r] += the 4 interleaved rows at *w (advanced past them) times xs (groups >= 1).  The
 * weights are read with LDM, two words at a time: w0 and w1 are pinned to ascending
 * registers. */
static TC_NOINLINE void fc_dot4(const int32_t *xs, const int8_t **w, int32_t groups,
                                int32_t acc[4])
{
    register int32_t w0 __asm__("r4");
    register int32_t w1 __asm__("r5");
    const int8_t *wp = *w;
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    int32_t x0;
    int32_t x1;
    int32_t t;
    int32_t pairs = groups >> 1;
    if (pairs > 0) {
        __asm__ volatile("1:\n\t" FC4_GROUP FC4_GROUP
                         "subs    %[n], %[n], #1\n\t"
                         "bne     1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                           [xp] "+r"(xs), [wp] "+r"(wp), [n] "+r"(pairs), [w0] "=&r"(w0),
                           [w1] "=&r"(w1), [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t)
                         :
                         : "cc", "memory");
    }
    if (groups & 1) {
        __asm__ volatile(FC4_GROUP
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                           [xp] "+r"(xs), [wp] "+r"(wp), [w0] "=&r"(w0), [w1] "=&r"(w1),
                           [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t)
                         :
                         : "memory");
    }
    *w = wp;
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc + one row at w times xs. */
static int32_t fc_dot1(const int32_t *xs, const int8_t *w, int32_t groups, int32_t acc)
{
    for (int32_t g = 0; g < groups; ++g, xs += 2, w += 4) {
        const int32_t wv = tc_load_s32(w);
        acc = __smlad(xs[0], __sxtb16(wv), acc);
        acc = __smlad(xs[1], tc_sxtb16_ror8(wv), acc);
    }
    return acc;
}
#else
static void fc_dot4(const int16_t *xs, const int8_t **w, int32_t groups, int32_t acc[4])
{
    const int8_t *wp = *w;
    for (int32_t g = 0; g < groups; ++g, xs += 4) {
        for (int32_t r = 0; r < FC_ROWS; ++r, wp += 4) {
            acc[r] += xs[0] * wp[0] + xs[1] * wp[2] + xs[2] * wp[1] + xs[3] * wp[3];
        }
    }
    *w = wp;
}

static int32_t fc_dot1(const int16_t *xs, const int8_t *w, int32_t groups, int32_t acc)
{
    for (int32_t g = 0; g < groups; ++g, xs += 4, w += 4) {
        acc += xs[0] * w[0] + xs[1] * w[2] + xs[2] * w[1] + xs[3] * w[3];
    }
    return acc;
}
#endif

#if TC_DSP
typedef int32_t fc_x_t; /* the expanded input as int16 pairs */
#else
typedef int16_t fc_x_t;
#endif

/* Requantizes count accumulators of consecutive rows, the first with record q (q advancing by
 * q_step per row).  Rows whose shift is < 0 take the general path; full_range: the clamp is
 * [-128, 127] (one SSAT). */
static TC_ALWAYS_INLINE void fc_store(const tc_fully_connected_rows4_s8_params_t *p,
                                      const int32_t *acc, int32_t count,
                                      const tc_requant_channel_t *q, int32_t q_step, int8_t *y,
                                      int full_range)
{
    const int32_t offset = p->output_offset;
    const int32_t act_min = p->act_min;
    const int32_t act_max = p->act_max;
    if (q_step == 0 && q->shift_code >= 0) { /* one record: its constants in registers */
        const int64_t round = tc_requant_round(q);
        const int32_t multiplier = q->multiplier;
        const int32_t shift_code = q->shift_code;
        for (const int32_t *end = acc + count; acc != end; ++acc, ++y) {
            const int32_t v = tc_requantize_parts(*acc, round, multiplier, shift_code) + offset;
            *y = (int8_t)(full_range ? tc_sat_s8(v) : tc_clamp_s32(v, act_min, act_max));
        }
        return;
    }
    for (const int32_t *end = acc + count; acc != end; ++acc, ++y, q += q_step) {
        const int32_t shift_code = q->shift_code;
        if (shift_code < 0) {
            *y = fc_output(*acc, q, p);
            continue;
        }
        const int32_t v =
            tc_requantize_parts(*acc, tc_requant_round(q), q->multiplier, shift_code) + offset;
        *y = (int8_t)(full_range ? tc_sat_s8(v) : tc_clamp_s32(v, act_min, act_max));
    }
}

static TC_NOINLINE void fc_store_full(const tc_fully_connected_rows4_s8_params_t *p,
                                      const int32_t *acc, int32_t count,
                                      const tc_requant_channel_t *q, int8_t *y)
{
    fc_store(p, acc, count, q, 1, y, 1);
}

static TC_NOINLINE void fc_store_full_shared(const tc_fully_connected_rows4_s8_params_t *p,
                                             const int32_t *acc, int32_t count,
                                             const tc_requant_channel_t *q, int8_t *y)
{
    fc_store(p, acc, count, q, 0, y, 1);
}

static TC_NOINLINE void fc_store_any(const tc_fully_connected_rows4_s8_params_t *p,
                                     const int32_t *acc, int32_t count,
                                     const tc_requant_channel_t *q, int8_t *y)
{
    fc_store(p, acc, count, q, p->per_channel, y, 0);
}

/* The accumulators of output rows [o, o + count) (count a multiple of 4 unless it ends the
 * layer), w pointing at row o's weights. */
static void fc_accumulate(const tc_fully_connected_rows4_s8_params_t *p, const fc_x_t *xs,
                          const int8_t *w, int32_t o, int32_t count, int32_t *acc)
{
    const int32_t groups = p->k_padded / 4;
    const int32_t *bias = p->bias + o;
    int32_t i = 0;
    for (; i + FC_ROWS <= count; i += FC_ROWS) {
        int32_t a[FC_ROWS] = {bias[i], bias[i + 1], bias[i + 2], bias[i + 3]};
        if (groups > 0) {
            fc_dot4(xs, &w, groups, a);
        }
        acc[i] = a[0];
        acc[i + 1] = a[1];
        acc[i + 2] = a[2];
        acc[i + 3] = a[3];
    }
    for (; i < count; ++i, w += p->k_padded) {
        acc[i] = fc_dot1(xs, w, groups, bias[i]);
    }
}

/* Every output row of one batch row, FC_CHUNK rows at a time: the dot products first, then
 * their output stage, each loop with its own constants in registers. */
static void fc_rows(const tc_fully_connected_rows4_s8_params_t *p, const fc_x_t *xs,
                    const int8_t *w, int8_t *y)
{
    int32_t acc[FC_CHUNK];
    const int32_t full_range = p->act_min == INT8_MIN && p->act_max == INT8_MAX;
    for (int32_t o = 0; o < p->out_features; o += FC_CHUNK) {
        const int32_t count = p->out_features - o < FC_CHUNK ? p->out_features - o : FC_CHUNK;
        fc_accumulate(p, xs, w + o * p->k_padded, o, count, acc);
        const tc_requant_channel_t *q = p->requant + (p->per_channel ? o : 0);
        if (!full_range) {
            fc_store_any(p, acc, count, q, y + o);
        } else if (p->per_channel) {
            fc_store_full(p, acc, count, q, y + o);
        } else {
            fc_store_full_shared(p, acc, count, q, y + o);
        }
    }
}

void tc_fully_connected_rows4_s8(const tc_fully_connected_rows4_s8_params_t *p, const int8_t *x,
                                 const int8_t *w, int8_t *y, void *scratch)
{
    int16_t *xs = (int16_t *)scratch;
    for (int32_t b = 0; b < p->batch; ++b, x += p->in_features, y += p->out_features) {
        fc_expand(x, p->in_features, p->k_padded, xs);
        fc_rows(p, (const fc_x_t *)scratch, w, y);
    }
}

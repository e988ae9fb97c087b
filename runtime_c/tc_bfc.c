/*
 * tinyc runtime: binary fully connected (see tc_binary.h for the conventions, the layouts and
 * the exact output transforms).
 *
 * dot = in_c - 2 * popcount(x ^ w) over the row's words; the last word is masked to the in_c % 32
 * valid bits, so the result does not depend on the padding bits of x.  One driver serves the
 * four output types; the transform is a switch on a per-call constant.
 */
#include "tc_binary.h"

/* popcount(x ^ w) over one packed row of in_c bits. */
static int32_t row_mismatches(const uint32_t *x, const uint32_t *w, int32_t full_words,
                              int32_t tail_bits)
{
    int32_t pc = 0;
    for (int32_t j = 0; j < full_words; ++j) {
        pc += tc_popcount_u32(x[j] ^ w[j]);
    }
    if (tail_bits > 0) {
        pc += tc_popcount_u32((x[full_words] ^ w[full_words]) & tc_bmask(tail_bits));
    }
    return pc;
}

static void bfc_run(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                    tc_bout_kind_t kind, const void *t1, const void *t2, void *y)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t in_words = tc_bwords(in_c);
    const int32_t full_words = in_c / 32;
    const int32_t tail_bits = in_c % 32;
    const int32_t y_step = kind == TC_BOUT_B1 ? tc_bwords(out_c) : out_c;
    const tc_bout_t out = tc_bfc_out(p, kind, t1, t2);

    for (int32_t n = 0, yo = 0; n < p->batch; ++n, x += in_words, yo += y_step) {
        uint32_t word = 0; /* _b1: the output word being assembled */
        for (int32_t oc = 0; oc < out_c; ++oc) {
            const int32_t dot =
                in_c - 2 * row_mismatches(x, w + oc * in_words, full_words, tail_bits);
            tc_bout_store(&out, y, yo, oc, dot, &word);
        }
    }
}

void tc_bfc_s32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, int32_t *y)
{
    bfc_run(p, x, w, TC_BOUT_S32, NULL, NULL, y);
}

void tc_bfc_f32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, const float *mul,
                const float *bias, float *y)
{
    bfc_run(p, x, w, TC_BOUT_F32, mul, bias, y);
}

void tc_bfc_s8(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, const int32_t *mul,
               const int32_t *bias, int8_t *y)
{
    bfc_run(p, x, w, TC_BOUT_S8, mul, bias, y);
}

void tc_bfc_b1(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
               const int32_t *thr, const uint32_t *flip, uint32_t *y)
{
    bfc_run(p, x, w, TC_BOUT_B1, thr, flip, y);
}

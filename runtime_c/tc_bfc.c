/*
 * tinyc runtime: binary fully connected (see tc_binary.h for the conventions, the layouts and
 * the exact output transforms).
 *
 * dot = in_c - 2 * popcount(x ^ w) over the row's words; the last word is masked to the in_c % 32
 * valid bits, so the result does not depend on the padding bits of x.  One driver serves the
 * four output types; the transform is a switch on a per-call constant.
 */
#include "tc_binary.h"

typedef enum { BOUT_S32 = 0, BOUT_F32 = 1, BOUT_S8 = 2, BOUT_B1 = 3 } bout_kind_t;

/* The per-output-channel tables of the transform (those a kind does not use are NULL). */
typedef struct {
    const float *mul;
    const float *bias;
    const int32_t *thr;
    const uint32_t *flip;
} bout_tables_t;

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
                    const bout_tables_t *tables, bout_kind_t kind, void *y)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t in_words = tc_bwords(in_c);
    const int32_t full_words = in_c / 32;
    const int32_t tail_bits = in_c % 32;
    const int32_t y_step = kind == BOUT_B1 ? tc_bwords(out_c) : out_c;

    int32_t *y_s32 = (int32_t *)y;
    float *y_f32 = (float *)y;
    int8_t *y_s8 = (int8_t *)y;
    uint32_t *y_b1 = (uint32_t *)y;

    for (int32_t n = 0, yo = 0; n < p->batch; ++n, x += in_words, yo += y_step) {
        uint32_t word = 0; /* _b1: the output word being assembled */
        for (int32_t oc = 0; oc < out_c; ++oc) {
            const int32_t dot =
                in_c - 2 * row_mismatches(x, w + oc * in_words, full_words, tail_bits);
            switch (kind) {
            case BOUT_S32:
                y_s32[yo + oc] = dot;
                break;
            case BOUT_F32:
                y_f32[yo + oc] =
                    tc_bout_f32(dot, tables->mul[oc], tables->bias[oc], p->act_min, p->act_max);
                break;
            case BOUT_S8:
                y_s8[yo + oc] =
                    tc_bout_s8(dot, tables->mul[oc], tables->bias[oc], p->out_min, p->out_max);
                break;
            case BOUT_B1:
                word |= (uint32_t)(dot < tables->thr[oc]) << (oc & 31);
                if ((oc & 31) == 31 || oc == out_c - 1) {
                    y_b1[yo + (oc >> 5)] = word ^ tables->flip[oc >> 5];
                    word = 0;
                }
                break;
            }
        }
    }
}

void tc_bfc_s32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, int32_t *y)
{
    const bout_tables_t tables = {NULL, NULL, NULL, NULL};
    bfc_run(p, x, w, &tables, BOUT_S32, y);
}

void tc_bfc_f32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, const float *mul,
                const float *bias, float *y)
{
    const bout_tables_t tables = {mul, bias, NULL, NULL};
    bfc_run(p, x, w, &tables, BOUT_F32, y);
}

void tc_bfc_s8(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, const float *mul,
               const float *bias, int8_t *y)
{
    const bout_tables_t tables = {mul, bias, NULL, NULL};
    bfc_run(p, x, w, &tables, BOUT_S8, y);
}

void tc_bfc_b1(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
               const int32_t *thr, const uint32_t *flip, uint32_t *y)
{
    const bout_tables_t tables = {NULL, NULL, thr, flip};
    bfc_run(p, x, w, &tables, BOUT_B1, y);
}

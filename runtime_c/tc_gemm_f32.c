/*
 * tinyc runtime: float32 batched general matrix multiply (see tc_gemm_f32.h).
 *
 * Two loop orders, chosen once per call from B's strides; both accumulate every y[m, n] in
 * float32 from 0 in increasing k and then apply alpha, beta * C and the clamp, so they give
 * bit-identical results:
 *  - row form (B row-major: b_stride_n == 1 and b_stride_k != 1, e.g. MatMul): for each m the
 *    output row y[m, :] is the accumulator and the innermost loop runs over n, contiguous in B
 *    and y, with A[m, k] held in a register;
 *  - dot form (everything else, in particular B = W^T of a Linear / Gemm transB, where
 *    b_stride_k == 1): one dot product per output with the accumulator in a register, the
 *    innermost loop over k, contiguous in A and B when both are k-contiguous.
 * y must not overlap a, b or c.
 */
#include "tc_gemm_f32.h"

/* y[m, n] = clamp(alpha * acc + beta * C[m, n]) for one output row. */
static inline void gemm_epilogue_row(const tc_gemm_f32_params_t *p, const float *c, int32_t m,
                                     float *y_row)
{
    const float alpha = p->alpha;
    const float lo = p->act_min;
    const float hi = p->act_max;
    if (c != NULL) {
        const float beta = p->beta;
        const float *c_row = c + m * p->c_stride_m;
        const int32_t csn = p->c_stride_n;
        for (int32_t n = 0, co = 0; n < p->n; ++n, co += csn) {
            y_row[n] = tc_clamp_f32(alpha * y_row[n] + beta * c_row[co], lo, hi);
        }
    } else {
        for (int32_t n = 0; n < p->n; ++n) {
            y_row[n] = tc_clamp_f32(alpha * y_row[n], lo, hi);
        }
    }
}

/* One batch in the row form: y[m, :] += A[m, k] * B[k, :] for k = 0, 1, ... */
static void gemm_rows(const tc_gemm_f32_params_t *p, const float *a, const float *b,
                      const float *c, float *y)
{
    const int32_t cols = p->n;
    for (int32_t m = 0; m < p->m; ++m, y += cols) {
        const float *a_row = a + m * p->a_stride_m;
        for (int32_t n = 0; n < cols; ++n) {
            y[n] = 0.0f;
        }
        const int32_t ask = p->a_stride_k;
        const int32_t bsk = p->b_stride_k;
        for (int32_t k = 0, ao = 0, bo = 0; k < p->k; ++k, ao += ask, bo += bsk) {
            const float av = a_row[ao];
            const float *b_row = b + bo; /* b_stride_n == 1 */
            for (int32_t n = 0; n < cols; ++n) {
                y[n] = tc_mac_f32(y[n], av, b_row[n]);
            }
        }
        gemm_epilogue_row(p, c, m, y);
    }
}

/* One batch in the dot form: y[m, n] = sum_k A[m, k] * B[k, n] with a register accumulator. */
static void gemm_dots(const tc_gemm_f32_params_t *p, const float *a, const float *b,
                      const float *c, float *y)
{
    const int32_t ask = p->a_stride_k;
    const int32_t bsk = p->b_stride_k;
    for (int32_t m = 0; m < p->m; ++m, y += p->n) {
        const float *a_row = a + m * p->a_stride_m;
        for (int32_t n = 0; n < p->n; ++n) {
            const float *b_col = b + n * p->b_stride_n;
            float acc = 0.0f;
            if (ask == 1 && bsk == 1) {
                for (int32_t k = 0; k < p->k; ++k) {
                    acc = tc_mac_f32(acc, a_row[k], b_col[k]);
                }
            } else {
                for (int32_t k = 0, ao = 0, bo = 0; k < p->k; ++k, ao += ask, bo += bsk) {
                    acc = tc_mac_f32(acc, a_row[ao], b_col[bo]);
                }
            }
            y[n] = acc;
        }
        gemm_epilogue_row(p, c, m, y);
    }
}

void tc_gemm_f32(const tc_gemm_f32_params_t *p, const float *a, const float *b, const float *c,
                 float *y)
{
    const int32_t rank = p->batch_rank;
    for (int32_t d = 0; d < rank; ++d) {
        if (p->batch_shape[d] == 0) {
            return;
        }
    }
    if (p->m == 0 || p->n == 0) {
        return;
    }
    const int32_t row_form = p->b_stride_n == 1 && p->b_stride_k != 1;
    const int32_t y_batch = p->m * p->n;

    int32_t idx[TC_GEMM_MAX_BATCH_DIMS] = {0};
    int32_t ao = 0;
    int32_t bo = 0;
    do {
        if (row_form) {
            gemm_rows(p, a + ao, b + bo, c, y);
        } else {
            gemm_dots(p, a + ao, b + bo, c, y);
        }
        y += y_batch;
    } while (tc_index_next(rank, p->batch_shape, idx, p->a_batch_strides, &ao,
                           p->b_batch_strides, &bo));
}

/*
 * tinyc runtime: float32 reductions SUM / MEAN / MAX / MIN (see tc_reduce_f32.h).
 *
 * The input is walked once, in memory order, and each element is folded into its output, so
 * every output accumulates its inputs in input order as the header requires.  Before that the
 * dimensions are coalesced: size-1 dimensions are dropped and neighbours merged when the pair
 * is laid out as one dimension in the output too (both reduced, or both kept and contiguous),
 * e.g. GlobalAveragePool [N, D, H, W, C] -> [N, D*H*W, C].  The last remaining dimension is the
 * inner loop: when it is reduced the running value stays in a register for the whole line,
 * otherwise the loop runs along an output line.
 * MAX / MIN start from the first element of each output's group (a first pass copies those),
 * so a NaN there stays; later NaNs are ignored (the rule is v > max, v < min).
 * MEAN divides the sum by reduce_count with a true division.  y must not overlap x.
 */
#include "tc_reduce_f32.h"

/* Fold one input line x[0 .. len) into y[i * ys] (ys == 0: all into y[0]). */
static void reduce_line(int32_t op, const float *x, int32_t len, float *y, int32_t ys)
{
    if (ys == 0) {
        float acc = y[0];
        if (op == TC_REDUCE_MAX) {
            for (int32_t i = 0; i < len; ++i) {
                acc = x[i] > acc ? x[i] : acc;
            }
        } else if (op == TC_REDUCE_MIN) {
            for (int32_t i = 0; i < len; ++i) {
                acc = x[i] < acc ? x[i] : acc;
            }
        } else {
            for (int32_t i = 0; i < len; ++i) {
                acc += x[i];
            }
        }
        y[0] = acc;
    } else if (op == TC_REDUCE_MAX) {
        for (int32_t i = 0, o = 0; i < len; ++i, o += ys) {
            y[o] = x[i] > y[o] ? x[i] : y[o];
        }
    } else if (op == TC_REDUCE_MIN) {
        for (int32_t i = 0, o = 0; i < len; ++i, o += ys) {
            y[o] = x[i] < y[o] ? x[i] : y[o];
        }
    } else {
        for (int32_t i = 0, o = 0; i < len; ++i, o += ys) {
            y[o] += x[i];
        }
    }
}

void tc_reduce_f32(const tc_reduce_f32_params_t *p, const float *x, float *y)
{
    const int32_t op = p->op;
    const int32_t out_count = p->out_count;

    /* Coalesce the dimensions (see above). */
    int32_t shape[TC_MAX_DIMS];
    int32_t ys[TC_MAX_DIMS]; /* output strides, 0 on reduced dimensions */
    int32_t rank = 0;
    int32_t total = 1;
    for (int32_t d = 0; d < p->rank; ++d) {
        const int32_t len = p->in_shape[d];
        total *= len;
        if (len == 1) {
            continue;
        }
        if (rank > 0 && ys[rank - 1] == p->out_strides[d] * len) {
            shape[rank - 1] *= len;
            ys[rank - 1] = p->out_strides[d];
        } else {
            shape[rank] = len;
            ys[rank] = p->out_strides[d];
            ++rank;
        }
    }
    if (rank == 0) { /* a single element */
        shape[0] = 1;
        ys[0] = 0;
        rank = 1;
    }

    /* Starting values: 0, or the first element of each group. */
    if (op == TC_REDUCE_MAX || op == TC_REDUCE_MIN) {
        if (total == 0) {
            return;
        }
        int32_t first_shape[TC_MAX_DIMS]; /* the kept dimensions only */
        int32_t xs[TC_MAX_DIMS];          /* dense input strides */
        for (int32_t d = rank - 1, s = 1; d >= 0; --d) {
            first_shape[d] = ys[d] == 0 ? 1 : shape[d];
            xs[d] = s;
            s *= shape[d];
        }
        int32_t idx[TC_MAX_DIMS] = {0};
        int32_t xo = 0;
        int32_t yo = 0;
        do {
            y[yo] = x[xo];
        } while (tc_index_next(rank, first_shape, idx, xs, &xo, ys, &yo));
    } else {
        for (int32_t o = 0; o < out_count; ++o) {
            y[o] = 0.0f;
        }
    }

    /* Fold every input line into its outputs. */
    if (total > 0) {
        const int32_t inner = shape[rank - 1];
        const int32_t inner_ys = ys[rank - 1];
        int32_t idx[TC_MAX_DIMS] = {0};
        int32_t yo = 0;
        const float *xl = x;
        do {
            reduce_line(op, xl, inner, y + yo, inner_ys);
            xl += inner;
        } while (tc_index_next(rank - 1, shape, idx, ys, &yo, NULL, NULL));
    }

    /* MEAN's division and the activation. */
    const float lo = p->act_min;
    const float hi = p->act_max;
    if (op == TC_REDUCE_MEAN) {
        const float divisor = (float)p->reduce_count;
        for (int32_t o = 0; o < out_count; ++o) {
            y[o] = tc_clamp_f32(y[o] / divisor, lo, hi);
        }
    } else {
        for (int32_t o = 0; o < out_count; ++o) {
            y[o] = tc_clamp_f32(y[o], lo, hi);
        }
    }
}

/*
 * tinyc runtime: float32 elementwise operators (see tc_elementwise_f32.h).
 *
 * Binary: the work is cut into rows y[i] = a[i * sa] OP b[i * sb], i < len, run by
 * binary_row(), whose op switch sits outside the element loop (one loop per op; a stride-0
 * operand is loaded once per row).  The layout decides how large the rows are:
 *   same shape (a and b dense)       one row of all elements, sa = sb = 1;
 *   b a scalar (all strides 0)       one row, sb = 0;  a a scalar likewise, sa = 0
 *                                    (for + and * the operands are swapped so the scalar is b);
 *   b per channel (varies only along the last dimension, stride 1; a dense), or a per channel
 *                                    one row per last-dimension line;
 *   anything else                    one row per last-dimension line, the outer rank - 1
 *                                    dimensions stepped with tc_index_next().
 * Size-1 dimensions never constrain the layout, whatever their stride.
 * In-place: y may be the same buffer as an operand that is dense with the output's shape (each
 * element is read before it is written); it must not overlap a broadcast operand.
 * MAX / MIN are a > b ? a : b and a < b ? a : b; with a NaN operand they return b.
 *
 * Unary: one loop per op behind a single switch; transcendentals use the float functions of
 * the C library.  ELU / SELU use expm1f(x), the accurate form of exp(x) - 1 for x near 0;
 * SOFTPLUS is log1p(exp(-|x|)) + max(x, 0), which cannot overflow.  HARD_SWISH multiplies by
 * 1/6 rather than dividing by 6 (one rounding apart, no division on the FPU).
 */
#include <math.h>

#include "tc_elementwise_f32.h"

/* One row of binary results.  EXPR computes the result from av and bv.  Rows without an
 * activation clamp (lo = -inf, hi = +inf: the clamp is the identity) and with a dense a skip
 * it: two compares and two conditional moves per element on a Cortex-M4F. */
#define TC_BINARY_ROW(EXPR)                                                                \
    do {                                                                                   \
        if (!clamp && sa == 1) {                                                           \
            if (sb == 0) {                                                                 \
                const float bv = b[0];                                                     \
                for (int32_t i = 0; i < len; ++i) {                                        \
                    const float av = a[i];                                                 \
                    y[i] = (EXPR);                                                         \
                }                                                                          \
            } else {                                                                       \
                for (int32_t i = 0; i < len; ++i) {                                        \
                    const float av = a[i];                                                 \
                    const float bv = b[i * sb];                                            \
                    y[i] = (EXPR);                                                         \
                }                                                                          \
            }                                                                              \
        } else if (sb == 0) {                                                              \
            const float bv = b[0];                                                         \
            for (int32_t i = 0, ia = 0; i < len; ++i, ia += sa) {                          \
                const float av = a[ia];                                                    \
                y[i] = tc_clamp_f32((EXPR), lo, hi);                                       \
            }                                                                              \
        } else {                                                                           \
            for (int32_t i = 0, ia = 0, ib = 0; i < len; ++i, ia += sa, ib += sb) {        \
                const float av = a[ia];                                                    \
                const float bv = b[ib];                                                    \
                y[i] = tc_clamp_f32((EXPR), lo, hi);                                       \
            }                                                                              \
        }                                                                                  \
    } while (0)

static void binary_row(int32_t op, const float *a, int32_t sa, const float *b, int32_t sb,
                       float *y, int32_t len, float lo, float hi)
{
    const int32_t clamp = !(lo == -INFINITY && hi == INFINITY);
    switch (op) {
    case TC_BIN_ADD:
        TC_BINARY_ROW(av + bv);
        break;
    case TC_BIN_SUB:
        TC_BINARY_ROW(av - bv);
        break;
    case TC_BIN_MUL:
        TC_BINARY_ROW(av * bv);
        break;
    case TC_BIN_DIV:
        TC_BINARY_ROW(av / bv);
        break;
    case TC_BIN_MAX:
        TC_BINARY_ROW(av > bv ? av : bv);
        break;
    case TC_BIN_MIN:
        TC_BINARY_ROW(av < bv ? av : bv);
        break;
    case TC_BIN_POW:
        TC_BINARY_ROW(powf(av, bv));
        break;
    case TC_BIN_PRELU:
        TC_BINARY_ROW(av < 0.0f ? av * bv : av);
        break;
    default:
        break;
    }
}

#undef TC_BINARY_ROW

void tc_binary_f32(const tc_binary_f32_params_t *p, const float *a, const float *b, float *y)
{
    const int32_t rank = p->rank;
    const int32_t *sa = p->a_strides;
    const int32_t *sb = p->b_strides;
    const float lo = p->act_min;
    const float hi = p->act_max;
    int32_t op = p->op;

    /* Classify the operands' layouts (ignoring size-1 dimensions). */
    int32_t count = 1; /* also the dense stride of the dimension being looked at */
    int32_t a_dense = 1;
    int32_t b_dense = 1;
    int32_t a_scalar = 1;
    int32_t b_scalar = 1;
    int32_t a_channel = 1; /* varies only along the last dimension, with stride 1 */
    int32_t b_channel = 1;
    for (int32_t d = rank - 1; d >= 0; --d) {
        if (p->shape[d] != 1) {
            const int32_t want = d == rank - 1 ? 1 : 0; /* channel-vector stride */
            a_dense &= sa[d] == count;
            b_dense &= sb[d] == count;
            a_scalar &= sa[d] == 0;
            b_scalar &= sb[d] == 0;
            a_channel &= sa[d] == want;
            b_channel &= sb[d] == want;
        }
        count *= p->shape[d];
    }
    if (count == 0) {
        return;
    }

    if (a_scalar && b_dense && (op == TC_BIN_ADD || op == TC_BIN_MUL)) {
        const float *t = a; /* commutative: put the scalar on the hoisted side */
        a = b;
        b = t;
        a_dense = 1;
        b_scalar = 1;
        a_scalar = 0;
    }
    if (a_dense && (b_dense || b_scalar)) {
        binary_row(op, a, 1, b, b_scalar ? 0 : 1, y, count, lo, hi);
        return;
    }
    if (a_scalar && b_dense) {
        binary_row(op, a, 0, b, 1, y, count, lo, hi);
        return;
    }
    const int32_t inner = p->shape[rank - 1]; /* rank >= 1 here: rank 0 is dense */
    if ((a_dense && b_channel) || (a_channel && b_dense)) {
        const int32_t a_step = a_dense ? inner : 0;
        const int32_t b_step = a_dense ? 0 : inner;
        for (int32_t r = 0, ao = 0, bo = 0; r < count; r += inner, ao += a_step, bo += b_step) {
            binary_row(op, a + ao, 1, b + bo, 1, y + r, inner, lo, hi);
        }
        return;
    }

    /* General N-d broadcast: rows along the last dimension. */
    int32_t idx[TC_MAX_DIMS] = {0};
    int32_t ao = 0;
    int32_t bo = 0;
    const int32_t a_inner = sa[rank - 1];
    const int32_t b_inner = sb[rank - 1];
    do {
        binary_row(op, a + ao, a_inner, b + bo, b_inner, y, inner, lo, hi);
        y += inner;
    } while (tc_index_next(rank - 1, p->shape, idx, sa, &ao, sb, &bo));
}

/* One loop per unary op.  EXPR computes the result from v. */
#define TC_UNARY_LOOP(EXPR)                                                                \
    do {                                                                                   \
        for (int32_t i = 0; i < count; ++i) {                                              \
            const float v = x[i];                                                          \
            y[i] = tc_clamp_f32((EXPR), lo, hi);                                           \
        }                                                                                  \
    } while (0)

void tc_unary_f32(const tc_unary_f32_params_t *p, const float *x, float *y)
{
    const int32_t count = p->count;
    const float alpha = p->alpha;
    const float beta = p->beta;
    const float lo = p->act_min;
    const float hi = p->act_max;

    switch (p->op) {
    case TC_UN_IDENTITY:
        TC_UNARY_LOOP(v);
        break;
    case TC_UN_LEAKY_RELU:
        TC_UNARY_LOOP(v < 0.0f ? alpha * v : v);
        break;
    case TC_UN_SIGMOID:
        TC_UNARY_LOOP(1.0f / (1.0f + expf(-v)));
        break;
    case TC_UN_TANH:
        TC_UNARY_LOOP(tanhf(v));
        break;
    case TC_UN_HARD_SIGMOID:
        TC_UNARY_LOOP(tc_clamp_f32(alpha * v + beta, 0.0f, 1.0f));
        break;
    case TC_UN_HARD_SWISH:
        TC_UNARY_LOOP(v * tc_clamp_f32(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f));
        break;
    case TC_UN_EXP:
        TC_UNARY_LOOP(expf(v));
        break;
    case TC_UN_LOG:
        TC_UNARY_LOOP(logf(v));
        break;
    case TC_UN_ABS:
        TC_UNARY_LOOP(fabsf(v));
        break;
    case TC_UN_NEG:
        TC_UNARY_LOOP(-v);
        break;
    case TC_UN_SQRT:
        TC_UNARY_LOOP(sqrtf(v));
        break;
    case TC_UN_RECIPROCAL:
        TC_UNARY_LOOP(1.0f / v);
        break;
    case TC_UN_FLOOR:
        TC_UNARY_LOOP(floorf(v));
        break;
    case TC_UN_CEIL:
        TC_UNARY_LOOP(ceilf(v));
        break;
    case TC_UN_ERF:
        TC_UNARY_LOOP(erff(v));
        break;
    case TC_UN_SOFTPLUS:
        TC_UNARY_LOOP(log1pf(expf(-fabsf(v))) + (v > 0.0f ? v : 0.0f));
        break;
    case TC_UN_ELU:
        TC_UNARY_LOOP(v < 0.0f ? alpha * expm1f(v) : v);
        break;
    case TC_UN_SELU:
        TC_UNARY_LOOP(beta * (v < 0.0f ? alpha * expm1f(v) : v));
        break;
    case TC_UN_GELU:
        TC_UNARY_LOOP(0.5f * v * (1.0f + erff(v * 0.70710678f)));
        break;
    default:
        break;
    }
}

#undef TC_UNARY_LOOP

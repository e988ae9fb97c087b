/*
 * tinyc runtime: int8 elementwise operators (see tc_elementwise_s8.h).
 *
 * The binary kernels share one strided walk: the outer dimensions are stepped with
 * tc_index_next, the last one is a plain loop calling the per-element function (a static
 * function passed as a constant, which the compiler inlines).
 */
#include "tc_elementwise_s8.h"

#include "tc_requant.h"

typedef int8_t (*binary_element_fn)(const void *params, int32_t a, int32_t b);

static void binary_walk(int32_t rank, const int32_t *shape, const int32_t *sa,
                        const int32_t *sb, const int8_t *a, const int8_t *b, int8_t *y,
                        binary_element_fn f, const void *params)
{
    int32_t idx[TC_MAX_DIMS] = {0};
    int32_t oa = 0;
    int32_t ob = 0;
    for (int32_t d = 0; d < rank; ++d) {
        if (shape[d] == 0) {
            return;
        }
    }
    if (rank == 0) {
        y[0] = f(params, a[0], b[0]);
        return;
    }
    const int32_t inner = shape[rank - 1];
    const int32_t ia = sa[rank - 1];
    const int32_t ib = sb[rank - 1];
    do {
        for (int32_t i = 0, ja = oa, jb = ob; i < inner; ++i, ja += ia, jb += ib) {
            *y++ = f(params, a[ja], b[jb]);
        }
    } while (tc_index_next(rank - 1, shape, idx, sa, &oa, sb, &ob));
}

/* The two rescaled inputs of ADD / SUB on the common 2 * max(scale) / 2^20 scale. */
static int32_t add_input1(const tc_add_s8_params_t *p, int32_t a)
{
    const int32_t shifted = (a + p->input1_offset) * ((int32_t)1 << p->left_shift);
    return tc_multiply_by_quantized_multiplier(shifted, p->input1_multiplier, p->input1_shift);
}

static int32_t add_input2(const tc_add_s8_params_t *p, int32_t b)
{
    const int32_t shifted = (b + p->input2_offset) * ((int32_t)1 << p->left_shift);
    return tc_multiply_by_quantized_multiplier(shifted, p->input2_multiplier, p->input2_shift);
}

static int8_t add_output(const tc_add_s8_params_t *p, int32_t raw)
{
    const int32_t v =
        tc_multiply_by_quantized_multiplier(raw, p->output_multiplier, p->output_shift) +
        p->output_offset;
    return (int8_t)tc_clamp_s32(v, p->act_min, p->act_max);
}

static int8_t add_element(const void *params, int32_t a, int32_t b)
{
    const tc_add_s8_params_t *p = (const tc_add_s8_params_t *)params;
    return add_output(p, add_input1(p, a) + add_input2(p, b));
}

static int8_t sub_element(const void *params, int32_t a, int32_t b)
{
    const tc_add_s8_params_t *p = (const tc_add_s8_params_t *)params;
    return add_output(p, add_input1(p, a) - add_input2(p, b));
}

static int8_t mul_element(const void *params, int32_t a, int32_t b)
{
    const tc_mul_s8_params_t *p = (const tc_mul_s8_params_t *)params;
    const int32_t product = (a + p->input1_offset) * (b + p->input2_offset);
    const int32_t v =
        tc_multiply_by_quantized_multiplier(product, p->output_multiplier, p->output_shift) +
        p->output_offset;
    return (int8_t)tc_clamp_s32(v, p->act_min, p->act_max);
}

void tc_add_s8(const tc_add_s8_params_t *p, const int8_t *a, const int8_t *b, int8_t *y)
{
    binary_walk(p->rank, p->shape, p->a_strides, p->b_strides, a, b, y, add_element, p);
}

void tc_sub_s8(const tc_add_s8_params_t *p, const int8_t *a, const int8_t *b, int8_t *y)
{
    binary_walk(p->rank, p->shape, p->a_strides, p->b_strides, a, b, y, sub_element, p);
}

void tc_mul_s8(const tc_mul_s8_params_t *p, const int8_t *a, const int8_t *b, int8_t *y)
{
    binary_walk(p->rank, p->shape, p->a_strides, p->b_strides, a, b, y, mul_element, p);
}

void tc_leaky_relu_s8(const tc_leaky_relu_s8_params_t *p, const int8_t *x, int8_t *y)
{
    for (int32_t i = 0; i < p->count; ++i) {
        const int32_t v = (int32_t)x[i] - p->input_zero_point;
        const int32_t r = v >= 0 ? tc_multiply_by_quantized_multiplier(
                                       v, p->multiplier_identity, p->shift_identity)
                                 : tc_multiply_by_quantized_multiplier(
                                       v, p->multiplier_alpha, p->shift_alpha);
        y[i] = (int8_t)tc_clamp_s32(r + p->output_zero_point, INT8_MIN, INT8_MAX);
    }
}

/* LOGISTIC (tanh 0) or TANH (tanh 1) of every value: the input as a Q4 value v (the extreme
 * output where |x - input_zero_point| reaches the radius), then the gemmlowp curve in Q0
 * rescaled to int8: logistic (q0 >> 23, rounded) - 128, tanh q0 >> 24 (rounded). */
static TC_ALWAYS_INLINE void sigmoid_s8(const tc_logistic_s8_params_t *p, const int8_t *x,
                                        int8_t *y, int32_t tanh)
{
    for (int32_t i = 0; i < p->count; ++i) {
        const int32_t v = (int32_t)x[i] - p->input_zero_point;
        if (v <= -p->input_range_radius || v >= p->input_range_radius) {
            y[i] = v <= -p->input_range_radius ? INT8_MIN : INT8_MAX;
            continue;
        }
        const int32_t q4 =
            tc_multiply_by_quantized_multiplier(v, p->input_multiplier, p->input_left_shift);
        const int32_t q0 = tanh ? tc_fp_tanh(q4, 4) : tc_fp_logistic(q4, 4);
        const int32_t out = tanh ? tc_rounding_divide_by_pot(q0, 24)
                                 : tc_rounding_divide_by_pot(q0, 23) - 128;
        y[i] = (int8_t)tc_clamp_s32(out, INT8_MIN, INT8_MAX);
    }
}

void tc_logistic_s8(const tc_logistic_s8_params_t *p, const int8_t *x, int8_t *y)
{
    sigmoid_s8(p, x, y, 0);
}

void tc_tanh_s8(const tc_tanh_s8_params_t *p, const int8_t *x, int8_t *y)
{
    sigmoid_s8(p, x, y, 1);
}

void tc_hard_swish_s8(const tc_hard_swish_s8_params_t *p, const int8_t *x, int8_t *y)
{
    const int16_t out_mult = (int16_t)p->output_multiplier;
    const int16_t relu_mult = (int16_t)p->reluish_multiplier;
    const int32_t relu_exp = p->reluish_multiplier_exponent;
    for (int32_t i = 0; i < p->count; ++i) {
        const int16_t v = (int16_t)((int32_t)x[i] - p->input_zero_point);
        const int16_t hires = (int16_t)(v * 128); /* |v| <= 255: fits */
        const int16_t preshift = tc_sat_rounding_doubling_high_mul_s16(hires, out_mult);
        int16_t reluish = hires;
        if (relu_exp > 0) {
            reluish = tc_saturating_left_shift_s16(reluish, relu_exp - 1);
        }
        reluish = tc_sat_rounding_doubling_high_mul_s16(reluish, relu_mult);
        if (relu_exp > 0) {
            reluish = tc_saturating_left_shift_s16(reluish, 1);
        }
        if (relu_exp < 0) {
            reluish = tc_rounding_divide_by_pot_s16(reluish, -relu_exp);
        }
        reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1); /* [-1, 1] -> [0, 1] */
        const int16_t out = tc_rounding_divide_by_pot_s16(
            tc_sat_doubling_high_mul_s16(reluish, preshift), -p->output_multiplier_exponent);
        const int16_t shifted = (int16_t)(out + p->output_zero_point);
        y[i] = (int8_t)tc_clamp_s32(shifted, INT8_MIN, INT8_MAX);
    }
}

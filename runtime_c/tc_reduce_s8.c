/*
 * tinyc runtime: int8 MEAN and SOFTMAX (see tc_reduce_s8.h).
 *
 * Both walk each reduced row with stride inner (free on a cacheless Cortex-M).  SOFTMAX
 * evaluates exp twice per element, like TFLM, instead of keeping the row in scratch memory.
 */
#include "tc_reduce_s8.h"

#include "tc_requant.h"

void tc_mean_s8(const tc_mean_s8_params_t *p, const int8_t *x, int8_t *y)
{
    const int32_t n = p->reduce_len;
    const int32_t inner = p->inner;
    for (int32_t o = 0; o < p->outer; ++o, x += n * inner) {
        for (int32_t i = 0; i < inner; ++i) {
            int32_t acc = 0;
            for (int32_t r = 0, j = i; r < n; ++r, j += inner) {
                acc += x[j];
            }
            acc = tc_wrap_add_s32(acc, p->sum_offset);
            const int32_t v = tc_multiply_by_quantized_multiplier(acc, p->multiplier, p->shift);
            *y++ = (int8_t)tc_clamp_s32(v + p->output_offset, INT8_MIN, INT8_MAX);
        }
    }
}

/* exp(x - max) of one element as Q0, the difference rescaled to Q5. */
static int32_t softmax_exp(const tc_softmax_s8_params_t *p, int32_t diff)
{
    const int32_t scaled =
        tc_multiply_by_quantized_multiplier(diff, p->input_multiplier, p->input_left_shift);
    return tc_fp_exp_on_negative_values(scaled, 5);
}

/* RDBPOT for the exponents 32 .. 34 a row of softmax reaches when its sum of exps is 2^9 or
 * more (more than 512 values near the maximum): the exact quotient, as in int64 arithmetic
 * (arith.rounding_divide_by_pot).  TFLM's int32 shift by 32 or more is undefined there (x86
 * leaves x unshifted, Cortex-M shifts it out: outputs 127 and -127 where this gives -128). */
static int32_t softmax_divide_wide(int32_t x, int32_t exponent)
{
    const int64_t v = x;
    const int64_t mask = ((int64_t)1 << exponent) - 1;
    return (int32_t)((v >> exponent) + ((v & mask) > (mask >> 1) + (v < 0) ? 1 : 0));
}

void tc_softmax_s8(const tc_softmax_s8_params_t *p, const int8_t *x, int8_t *y)
{
    const int32_t depth = p->depth;
    const int32_t inner = p->inner;
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t i = 0; i < inner; ++i) {
            const int8_t *xr = x + o * depth * inner + i;
            int8_t *yr = y + o * depth * inner + i;
            int32_t max = INT8_MIN;
            for (int32_t c = 0, j = 0; c < depth; ++c, j += inner) {
                max = xr[j] > max ? xr[j] : max;
            }
            int32_t sum = 0; /* Q12 */
            for (int32_t c = 0, j = 0; c < depth; ++c, j += inner) {
                const int32_t diff = (int32_t)xr[j] - max;
                if (diff >= p->diff_min) {
                    sum += tc_rounding_divide_by_pot(softmax_exp(p, diff), 12);
                }
            }
            /* TFLite's GetReciprocal: 1 / sum as Q0 and a power-of-two exponent (sum >= 1.0,
             * the maximum contributes exp(0), so the headroom is at most 12). */
            const int32_t headroom = tc_clz_u32((uint32_t)sum);
            const int32_t num_bits_over_unit = 12 - headroom;
            const int32_t shifted_sum_minus_one =
                (int32_t)(((uint32_t)sum << headroom) - ((uint32_t)1 << 31));
            const int32_t reciprocal =
                tc_fp_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
            const int32_t exponent = num_bits_over_unit + 31 - 8;
            for (int32_t c = 0, j = 0; c < depth; ++c, j += inner) {
                const int32_t diff = (int32_t)xr[j] - max;
                int32_t v = INT8_MIN;
                if (diff >= p->diff_min) {
                    const int32_t q =
                        tc_sat_rounding_doubling_high_mul(reciprocal, softmax_exp(p, diff));
                    v = (exponent <= 31 ? tc_rounding_divide_by_pot(q, exponent)
                                        : softmax_divide_wide(q, exponent)) +
                        INT8_MIN;
                    v = tc_clamp_s32(v, INT8_MIN, INT8_MAX);
                }
                yr[j] = (int8_t)v;
            }
        }
    }
}

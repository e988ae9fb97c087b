/*
 * tinyc runtime: optimized int8 ADD and SUB of two tensors of the same shape, with exactly the
 * results of tc_add_s8 / tc_sub_s8 (hence of TFLite Micro) for every input.
 *
 * tc_add_lut_s8: TFLM rescales each input separately before adding,
 *   s1 = MBQM((a + input1_offset) * 2^20, input1_multiplier, input1_shift)   (tc_elementwise_s8.h)
 * which depends on the int8 value a alone: the compiler tabulates it for all 256 values
 * (tinyc.quant.fast.add_lut, with the exact NumPy twin of MBQM), and likewise s2, negated for
 * SUB.  Per element the kernel then does two table lookups and one requantization:
 *   y = clamp(tc_requantize(table1[(uint8_t)a] + table2[(uint8_t)b], &output)
 *             + output_offset, act_min, act_max)
 * where output holds the output multiplier and shift.  The sum is the same int32 as
 * tc_add_s8's s1 + s2 (or s1 - s2), so the result is identical.  Where the output record is
 * narrow (tc_requant.h: output.narrow_shift > 0, the sums bounded) the tables hold 2 s_i, and
 * the sum is requantized by the 32-bit form, the output offset in its rounding constant:
 *   y = clamp(tc_requantize_narrow(table1[(uint8_t)a] + table2[(uint8_t)b], &output),
 *             act_min, act_max)
 * (with the clamp [-128, 127] on Thumb-2 with the DSP extension: LDRB twice, LDR twice, ADD,
 * then SMMLAR, ADD, ASR, SSAT, STRB, two elements per pass of the loop: 11 instructions per
 * element against 15).
 *
 * Layouts: a, b, y [count] int8 (dense; y may be a or b); table1, table2 [256] int32 indexed by
 * the input byte read as unsigned (index 128 is -128).
 */
#ifndef TC_ELEMENTWISE_FAST_S8_H
#define TC_ELEMENTWISE_FAST_S8_H

#include "tc_common.h"
#include "tc_requant.h"

typedef struct {
    int32_t count;
    int32_t output_offset; /* output zero point */
    int32_t act_min, act_max;
    tc_requant_channel_t output; /* the output multiplier and shift */
} tc_add_lut_s8_params_t;

void tc_add_lut_s8(const tc_add_lut_s8_params_t *p, const int8_t *a, const int8_t *b,
                   const int32_t *table1, const int32_t *table2, int8_t *y);

#endif /* TC_ELEMENTWISE_FAST_S8_H */

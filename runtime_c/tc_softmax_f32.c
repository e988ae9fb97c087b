/*
 * tinyc runtime: float32 softmax and log-softmax over one axis (see tc_reduce_f32.h).
 *
 * x is viewed as [outer, axis_len, inner] and each of the outer * inner lines along the axis
 * (elements inner apart) is done on its own in three passes: the maximum, the sum of
 * exp(x - max), then the outputs.  Walking a line with stride inner needs no scratch memory,
 * and on a Cortex-M without a data cache a strided load costs the same as a contiguous one;
 * for the common last-axis case (inner == 1) the lines are contiguous anyway.
 * Softmax divides each exp(x - max) by the sum (a true division, as the header writes it);
 * log-softmax is (x - max) - logf(sum).  The sum accumulates in float32 along the axis.
 * y may be the same buffer as x (each pass reads an element before the next pass writes it).
 */
#include <math.h>

#include "tc_reduce_f32.h"

void tc_softmax_f32(const tc_softmax_f32_params_t *p, const float *x, float *y)
{
    const int32_t len = p->axis_len;
    const int32_t inner = p->inner;
    const int32_t end = len * inner; /* one past the last element of a line, relative */
    if (len <= 0) {
        return;
    }
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t j = 0; j < inner; ++j) {
            const int32_t base = o * end + j;
            const float *xl = x + base;
            float *yl = y + base;

            float max = xl[0];
            for (int32_t i = inner; i < end; i += inner) {
                max = xl[i] > max ? xl[i] : max;
            }

            float sum = 0.0f;
            if (p->log) {
                for (int32_t i = 0; i < end; i += inner) {
                    sum += expf(xl[i] - max);
                }
                const float log_sum = logf(sum);
                for (int32_t i = 0; i < end; i += inner) {
                    yl[i] = (xl[i] - max) - log_sum;
                }
            } else {
                for (int32_t i = 0; i < end; i += inner) {
                    const float e = expf(xl[i] - max);
                    yl[i] = e;
                    sum += e;
                }
                for (int32_t i = 0; i < end; i += inner) {
                    yl[i] = yl[i] / sum;
                }
            }
        }
    }
}

/*
 * tinyc runtime: float32 reductions and softmax.
 *
 * Reduce: x is dense with shape in_shape (rank <= TC_MAX_DIMS).  Each input element x[i] goes
 * to y[sum_d i_d * out_strides[d]], where a reduced dimension has out stride 0; y has
 * out_count elements.  SUM and MEAN accumulate in float32 in input order (MEAN then divides by
 * the number of elements reduced into each output); MAX / MIN start from the first element.
 * The result is clamped to [act_min, act_max].  GlobalAveragePool is MEAN over D, H, W.
 *
 * Softmax over one axis: x viewed as [outer, axis_len, inner];
 *   y = exp(x - max) / sum(exp(x - max))   (log = 1: y = x - max - log(sum(exp(x - max))))
 * computed in float32 with expf.
 */
#ifndef TC_REDUCE_F32_H
#define TC_REDUCE_F32_H

#include "tc_common.h"

typedef enum { TC_REDUCE_SUM = 0, TC_REDUCE_MEAN, TC_REDUCE_MAX, TC_REDUCE_MIN } tc_reduce_op_t;

typedef struct {
    int32_t op; /* tc_reduce_op_t */
    int32_t rank;
    int32_t in_shape[TC_MAX_DIMS];
    int32_t out_strides[TC_MAX_DIMS];
    int32_t out_count;
    int32_t reduce_count; /* input elements per output element */
    float act_min, act_max;
} tc_reduce_f32_params_t;

void tc_reduce_f32(const tc_reduce_f32_params_t *p, const float *x, float *y);

typedef struct {
    int32_t outer, axis_len, inner;
    int32_t log; /* 1: LogSoftmax */
} tc_softmax_f32_params_t;

void tc_softmax_f32(const tc_softmax_f32_params_t *p, const float *x, float *y);

#endif /* TC_REDUCE_F32_H */

/*
 * tinyc runtime: float32 max and average pooling, 1-D / 2-D / 3-D, channels-last.
 *
 *   x [batch, in_d, in_h, in_w, c]  ->  y [batch, out_d, out_h, out_w, c]
 *
 * Window of output position o along one axis: i = o*stride - pad_begin + k*dilation for
 * k < kernel.  Taps outside [0, in) are padding.
 *  - TC_POOL_MAX: the maximum over taps inside the input (padding is -infinity).
 *  - TC_POOL_AVG: the sum over taps inside the input, divided by
 *      count_include_pad = 0: the number of taps inside the input;
 *      count_include_pad = 1: the number of taps inside [-pad_begin, in + pad_end), i.e. the
 *                             explicit padding counts, but the extra positions that ceil_mode
 *                             adds past pad_end do not (ONNX and PyTorch semantics).
 * The result is clamped to [act_min, act_max].
 */
#ifndef TC_POOL_F32_H
#define TC_POOL_F32_H

#include "tc_common.h"

typedef enum { TC_POOL_MAX = 0, TC_POOL_AVG = 1 } tc_pool_kind_t;

typedef struct {
    int32_t kind; /* tc_pool_kind_t */
    int32_t batch;
    int32_t in_d, in_h, in_w, c;
    int32_t out_d, out_h, out_w;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t dilation_d, dilation_h, dilation_w;
    int32_t pad_d, pad_h, pad_w;             /* leading padding */
    int32_t pad_end_d, pad_end_h, pad_end_w; /* trailing explicit padding */
    int32_t count_include_pad;
    float act_min, act_max;
} tc_pool_f32_params_t;

void tc_pool_f32(const tc_pool_f32_params_t *p, const float *x, float *y);

#endif /* TC_POOL_F32_H */

/*
 * tinyc runtime: float32 general matrix multiply, batched, with broadcasting.
 *
 * For every batch index b (an index into batch_shape, rank batch_rank <= 4) and m < M, n < N:
 *   y[b, m, n] = act( alpha * sum_k A[b, m, k] * B[b, k, n] + beta * C[m, n] )
 * with A, B and C read through element strides, so transposed operands, broadcast batch
 * dimensions (stride 0) and a bias broadcast as a scalar, a row or a column (stride 0) need no
 * copies:
 *   A[b, m, k] = a[sum_i bidx_i * a_batch_strides[i] + m * a_stride_m + k * a_stride_k]
 *   B[b, k, n] = b[sum_i bidx_i * b_batch_strides[i] + k * b_stride_k + n * b_stride_n]
 *   C[m, n]    = c[m * c_stride_m + n * c_stride_n]            (c may be NULL: no bias term)
 * y is dense [batch_shape..., M, N].  Accumulation is float32 in increasing k, each step one
 * tc_mac_f32 (fused on cores with FMA, tc_common.h).
 * Covers ONNX Gemm (transA/transB/alpha/beta), MatMul (numpy broadcasting) and Linear.
 */
#ifndef TC_GEMM_F32_H
#define TC_GEMM_F32_H

#include "tc_common.h"

#define TC_GEMM_MAX_BATCH_DIMS 4

typedef struct {
    int32_t batch_rank;
    int32_t batch_shape[TC_GEMM_MAX_BATCH_DIMS];
    int32_t a_batch_strides[TC_GEMM_MAX_BATCH_DIMS];
    int32_t b_batch_strides[TC_GEMM_MAX_BATCH_DIMS];
    int32_t m, n, k;
    int32_t a_stride_m, a_stride_k;
    int32_t b_stride_k, b_stride_n;
    int32_t c_stride_m, c_stride_n;
    float alpha, beta;
    float act_min, act_max;
} tc_gemm_f32_params_t;

void tc_gemm_f32(const tc_gemm_f32_params_t *p, const float *a, const float *b, const float *c,
                 float *y);

#endif /* TC_GEMM_F32_H */

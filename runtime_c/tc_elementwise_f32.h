/*
 * tinyc runtime: float32 elementwise operators.
 *
 * Binary (numpy broadcasting): for every output index i (dense, rank <= TC_MAX_DIMS)
 *   y[i] = act( a[offset_a(i)] OP b[offset_b(i)] ),  offset_x(i) = sum_d i_d * x_strides[d]
 * where a broadcast dimension has stride 0.  OP is + - * / max min pow, or PRELU
 * (a < 0 ? a * b : a, b being the slope).  Division and pow follow IEEE-754 float semantics
 * (x/0 = +-inf, 0/0 = NaN); pow is powf.
 *
 * Unary: y[i] = act( f(x[i]) ) for count elements, f one of
 *   IDENTITY  x                                (a pure clamp when act is set: Relu, Relu6, Clip)
 *   LEAKY_RELU x < 0 ? alpha * x : x
 *   SIGMOID   1 / (1 + exp(-x))
 *   TANH      tanhf(x)
 *   HARD_SIGMOID max(0, min(1, alpha * x + beta))
 *   HARD_SWISH x * max(0, min(1, x / 6 + 1/2))
 *   EXP, LOG, ABS, NEG, SQRT, RECIPROCAL, FLOOR, CEIL, ERF, SOFTPLUS
 *   ELU       x < 0 ? alpha * (exp(x) - 1) : x
 *   SELU      beta * (x < 0 ? alpha * (exp(x) - 1) : x)   (beta = gamma)
 *   GELU      x / 2 * (1 + erf(x / sqrt(2)))
 * Transcendentals use the C library's float functions (expf, tanhf, erff, logf); the compiler
 * states their tolerance against the reference (1e-4 absolute + 1e-4 relative).
 * x and y may be the same buffer (in-place).
 */
#ifndef TC_ELEMENTWISE_F32_H
#define TC_ELEMENTWISE_F32_H

#include "tc_common.h"

typedef enum {
    TC_BIN_ADD = 0,
    TC_BIN_SUB,
    TC_BIN_MUL,
    TC_BIN_DIV,
    TC_BIN_MAX,
    TC_BIN_MIN,
    TC_BIN_POW,
    TC_BIN_PRELU
} tc_binary_op_t;

typedef struct {
    int32_t op; /* tc_binary_op_t */
    int32_t rank;
    int32_t shape[TC_MAX_DIMS]; /* output shape */
    int32_t a_strides[TC_MAX_DIMS];
    int32_t b_strides[TC_MAX_DIMS];
    float act_min, act_max;
} tc_binary_f32_params_t;

void tc_binary_f32(const tc_binary_f32_params_t *p, const float *a, const float *b, float *y);

typedef enum {
    TC_UN_IDENTITY = 0,
    TC_UN_LEAKY_RELU,
    TC_UN_SIGMOID,
    TC_UN_TANH,
    TC_UN_HARD_SIGMOID,
    TC_UN_HARD_SWISH,
    TC_UN_EXP,
    TC_UN_LOG,
    TC_UN_ABS,
    TC_UN_NEG,
    TC_UN_SQRT,
    TC_UN_RECIPROCAL,
    TC_UN_FLOOR,
    TC_UN_CEIL,
    TC_UN_ERF,
    TC_UN_SOFTPLUS,
    TC_UN_ELU,
    TC_UN_SELU,
    TC_UN_GELU
} tc_unary_op_t;

typedef struct {
    int32_t op; /* tc_unary_op_t */
    int32_t count;
    float alpha, beta;
    float act_min, act_max;
} tc_unary_f32_params_t;

void tc_unary_f32(const tc_unary_f32_params_t *p, const float *x, float *y);

#endif /* TC_ELEMENTWISE_F32_H */

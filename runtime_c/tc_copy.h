/*
 * tinyc runtime: data movement for any element type (element size in bytes).
 *
 * Strided copy (Transpose, Slice, and reorders): for every output index i of the dense output
 * shape (rank <= TC_MAX_DIMS)
 *   y[i] = x[in_offset + sum_d i_d * in_strides[d]]        (strides in elements, may be < 0)
 * A Transpose is in_strides = the input's strides permuted; a Slice is in_offset = the start
 * element and in_strides = step * input stride.
 *
 * Concatenation along one axis: each input viewed as [outer, chunk_i] (chunk_i = its extent on
 * the axis times the product of the dimensions after it); the output row o is the inputs' rows
 * o laid end to end.
 *
 * Pad: y has shape out_shape; y[i] = x[i - pads_begin] where that lies inside in_shape,
 * otherwise, by mode:
 *   CONSTANT: the pad value (value_bytes, one element);
 *   REFLECT:  x mirrored about the edge, edge not repeated (numpy 'reflect');
 *   EDGE:     the nearest edge element (numpy 'edge').
 * Negative pads (cropping) are expressed by the compiler as a strided copy instead.
 */
#ifndef TC_COPY_H
#define TC_COPY_H

#include "tc_common.h"

typedef struct {
    int32_t elem_size;
    int32_t rank;
    int32_t shape[TC_MAX_DIMS]; /* output shape */
    int32_t in_strides[TC_MAX_DIMS];
    int32_t in_offset;
} tc_strided_copy_params_t;

void tc_strided_copy(const tc_strided_copy_params_t *p, const void *x, void *y);

typedef struct {
    int32_t elem_size;
    int32_t outer;
    int32_t num_inputs;
    const int32_t *chunks; /* num_inputs elements: chunk_i in elements */
} tc_concat_params_t;

void tc_concat(const tc_concat_params_t *p, const void *const *inputs, void *y);

typedef enum { TC_PAD_CONSTANT = 0, TC_PAD_REFLECT, TC_PAD_EDGE } tc_pad_mode_t;

typedef struct {
    int32_t elem_size;
    int32_t mode; /* tc_pad_mode_t */
    int32_t rank;
    int32_t in_shape[TC_MAX_DIMS];
    int32_t out_shape[TC_MAX_DIMS];
    int32_t pads_begin[TC_MAX_DIMS];
    uint8_t value_bytes[8]; /* the constant, as elem_size bytes in the target's byte order */
} tc_pad_params_t;

void tc_pad(const tc_pad_params_t *p, const void *x, void *y);

#endif /* TC_COPY_H */

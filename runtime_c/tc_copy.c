/*
 * tinyc runtime: data movement for any element type (see tc_copy.h).
 *
 * Elements are moved with memcpy of a size that is a compile-time constant in the common cases
 * (1, 2, 4, 8 bytes), which compilers turn into a single load and store, without alignment or
 * strict-aliasing assumptions about the buffers.  A run of contiguous elements is one memcpy.
 * Outputs must not overlap inputs.
 */
#include <string.h>

#include "tc_copy.h"

/* dst[i * dst_stride] = src[i * src_stride] for i < n, elements of es bytes (strides in
 * elements; src_stride of any sign). */
static void copy_strided(uint8_t *dst, int32_t dst_stride, const uint8_t *src, int32_t src_stride,
                         int32_t n, int32_t es)
{
    if (src_stride == 1 && dst_stride == 1) {
        memcpy(dst, src, (size_t)n * (size_t)es);
        return;
    }
    const ptrdiff_t s_step = (ptrdiff_t)src_stride * es;
    const ptrdiff_t d_step = (ptrdiff_t)dst_stride * es;
    switch (es) {
    case 1:
        for (int32_t i = 0; i < n; ++i, src += s_step, dst += d_step) {
            *dst = *src;
        }
        break;
    case 2:
        for (int32_t i = 0; i < n; ++i, src += s_step, dst += d_step) {
            memcpy(dst, src, 2);
        }
        break;
    case 4:
        for (int32_t i = 0; i < n; ++i, src += s_step, dst += d_step) {
            memcpy(dst, src, 4);
        }
        break;
    case 8:
        for (int32_t i = 0; i < n; ++i, src += s_step, dst += d_step) {
            memcpy(dst, src, 8);
        }
        break;
    default:
        for (int32_t i = 0; i < n; ++i, src += s_step, dst += d_step) {
            memcpy(dst, src, (size_t)es);
        }
        break;
    }
}

/* dst[i] = *value for i < n, elements of es bytes. */
static void fill(uint8_t *dst, const uint8_t *value, int32_t n, int32_t es)
{
    switch (es) {
    case 1:
        memset(dst, value[0], (size_t)n);
        break;
    case 2:
        for (int32_t i = 0; i < n; ++i) {
            memcpy(dst + 2 * i, value, 2);
        }
        break;
    case 4:
        for (int32_t i = 0; i < n; ++i) {
            memcpy(dst + 4 * i, value, 4);
        }
        break;
    case 8:
        for (int32_t i = 0; i < n; ++i) {
            memcpy(dst + 8 * i, value, 8);
        }
        break;
    default:
        for (int32_t i = 0; i < n; ++i) {
            memcpy(dst + (ptrdiff_t)i * es, value, (size_t)es);
        }
        break;
    }
}

/* Rows along the last output dimension, each one copy_strided(); the outer dimensions are
 * stepped with tc_index_next().  When the input is contiguous along the second-last dimension
 * and the last one is shorter (NCHW -> NHWC of a few channels: rows of 3 values read 1024
 * apart), the two swap roles: columns of the second-last dimension, read contiguously and
 * written shape[rank - 1] apart, so that the per-row cost is paid per long column instead. */
void tc_strided_copy(const tc_strided_copy_params_t *p, const void *x, void *y)
{
    const int32_t es = p->elem_size;
    const int32_t rank = p->rank;
    const uint8_t *src = (const uint8_t *)x;
    uint8_t *dst = (uint8_t *)y;
    if (rank == 0) {
        memcpy(dst, src + (ptrdiff_t)p->in_offset * es, (size_t)es);
        return;
    }
    for (int32_t d = 0; d < rank; ++d) {
        if (p->shape[d] == 0) {
            return;
        }
    }
    const int32_t inner = p->shape[rank - 1];
    const int32_t inner_stride = p->in_strides[rank - 1];
    const ptrdiff_t row_bytes = (ptrdiff_t)inner * es;
    int32_t idx[TC_MAX_DIMS] = {0};
    int32_t xo = p->in_offset;
    if (rank >= 2 && p->in_strides[rank - 2] == 1 && inner < p->shape[rank - 2]) {
        const int32_t column = p->shape[rank - 2];
        do {
            for (int32_t j = 0; j < inner; ++j) {
                copy_strided(dst + (ptrdiff_t)j * es, inner,
                             src + ((ptrdiff_t)xo + (ptrdiff_t)j * inner_stride) * es, 1, column,
                             es);
            }
            dst += row_bytes * column;
        } while (tc_index_next(rank - 2, p->shape, idx, p->in_strides, &xo, NULL, NULL));
        return;
    }
    do {
        copy_strided(dst, 1, src + (ptrdiff_t)xo * es, inner_stride, inner, es);
        dst += row_bytes;
    } while (tc_index_next(rank - 1, p->shape, idx, p->in_strides, &xo, NULL, NULL));
}

void tc_concat(const tc_concat_params_t *p, const void *const *inputs, void *y)
{
    const int32_t es = p->elem_size;
    uint8_t *dst = (uint8_t *)y;
    for (int32_t o = 0; o < p->outer; ++o) {
        for (int32_t i = 0; i < p->num_inputs; ++i) {
            const size_t bytes = (size_t)p->chunks[i] * (size_t)es;
            memcpy(dst, (const uint8_t *)inputs[i] + (size_t)o * bytes, bytes);
            dst += bytes;
        }
    }
}

/* Source index along one dimension of extent n for the (possibly outside) index i, or -1 where
 * the constant goes.  REFLECT repeats with period 2 * (n - 1), as numpy's 'reflect' does for
 * pads wider than the input. */
static int32_t pad_source(int32_t i, int32_t n, int32_t mode)
{
    if (i >= 0 && i < n) {
        return i;
    }
    if (n <= 0 || mode == TC_PAD_CONSTANT) {
        return -1;
    }
    if (mode == TC_PAD_EDGE || n == 1) {
        return i < 0 ? 0 : n - 1;
    }
    const int32_t period = 2 * (n - 1); /* TC_PAD_REFLECT */
    int32_t r = i % period;
    if (r < 0) {
        r += period;
    }
    return r < n ? r : period - r;
}

/* Rows along the last output dimension.  For each row the source row is found once from the
 * outer indices (a row that lies in the constant padding is one fill); within a row the middle
 * part is one memcpy and only the padded ends are done element by element. */
void tc_pad(const tc_pad_params_t *p, const void *x, void *y)
{
    const int32_t es = p->elem_size;
    const int32_t rank = p->rank;
    const int32_t mode = p->mode;
    const uint8_t *src = (const uint8_t *)x;
    uint8_t *dst = (uint8_t *)y;
    if (rank == 0) {
        memcpy(dst, src, (size_t)es);
        return;
    }
    int32_t in_strides[TC_MAX_DIMS];
    for (int32_t d = rank - 1, s = 1; d >= 0; --d) {
        if (p->out_shape[d] == 0) {
            return;
        }
        in_strides[d] = s;
        s *= p->in_shape[d];
    }

    const int32_t last = rank - 1;
    const int32_t n_out = p->out_shape[last];
    const int32_t n_in = p->in_shape[last];
    const int32_t pad0 = p->pads_begin[last];
    /* Output columns [j0, j1) come straight from input columns [j0 - pad0, j1 - pad0). */
    const int32_t j0 = pad0 < 0 ? 0 : (pad0 > n_out ? n_out : pad0);
    const int32_t j1_raw = pad0 + n_in;
    const int32_t j1 = j1_raw < j0 ? j0 : (j1_raw > n_out ? n_out : j1_raw);
    const ptrdiff_t row_bytes = (ptrdiff_t)n_out * es;

    int32_t idx[TC_MAX_DIMS] = {0};
    do {
        int32_t xo = 0;
        int32_t inside = 1;
        for (int32_t d = 0; d < last; ++d) {
            const int32_t s = pad_source(idx[d] - p->pads_begin[d], p->in_shape[d], mode);
            if (s < 0) {
                inside = 0;
                break;
            }
            xo += s * in_strides[d];
        }
        if (!inside) {
            fill(dst, p->value_bytes, n_out, es);
        } else {
            const uint8_t *row = src + (ptrdiff_t)xo * es;
            if (mode == TC_PAD_CONSTANT) {
                fill(dst, p->value_bytes, j0, es);
                fill(dst + (ptrdiff_t)j1 * es, p->value_bytes, n_out - j1, es);
            } else {
                for (int32_t j = 0; j < j0; ++j) {
                    const int32_t s = pad_source(j - pad0, n_in, mode);
                    memcpy(dst + (ptrdiff_t)j * es, row + (ptrdiff_t)s * es, (size_t)es);
                }
                for (int32_t j = j1; j < n_out; ++j) {
                    const int32_t s = pad_source(j - pad0, n_in, mode);
                    memcpy(dst + (ptrdiff_t)j * es, row + (ptrdiff_t)s * es, (size_t)es);
                }
            }
            if (j1 > j0) {
                memcpy(dst + (ptrdiff_t)j0 * es, row + (ptrdiff_t)(j0 - pad0) * es,
                       (size_t)(j1 - j0) * (size_t)es);
            }
        }
        dst += row_bytes;
    } while (tc_index_next(last, p->out_shape, idx, NULL, NULL, NULL, NULL));
}

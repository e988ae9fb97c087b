/*
 * tinyc runtime: definitions shared by every kernel.
 *
 * Conventions used by all kernels in this folder:
 *  - Activation tensors are dense, row-major, and channels-last for spatial operators
 *    (N, D, H, W, C).  1-D and 2-D operators are the 3-D case with D = 1 (and H = 1): the
 *    compiler canonicalises shapes, so one kernel serves all spatial ranks.
 *  - Every shape, stride and constant a kernel needs is computed by the compiler ahead of time
 *    and passed in a const parameter struct that lives in flash; kernels do no shape arithmetic
 *    beyond indexing.
 *  - Kernels never allocate.  Scratch memory, where a kernel needs it, is part of the arena and
 *    its size is reported to the compiler by the kernel's *_scratch_size() function.
 *  - A fused activation is a clamp to [act_min, act_max] (Relu: [0, +inf], Relu6: [0, 6],
 *    HardTanh: [-1, 1], none: [-inf, +inf]) applied to the final value.
 */
#ifndef TC_COMMON_H
#define TC_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Inlining where a kernel's speed depends on it, whatever the compiler's size estimate says
 * (TC_ALWAYS_INLINE), or never, so that an inner loop gets the registers to itself
 * (TC_NOINLINE).  Plain inline / nothing on compilers without the attributes. */
#if defined(__GNUC__)
#define TC_ALWAYS_INLINE inline __attribute__((always_inline))
#define TC_NOINLINE __attribute__((noinline))
#else
#define TC_ALWAYS_INLINE inline
#define TC_NOINLINE
#endif

/* A switch case that falls through into the next on purpose (unrolled sequences entered by a
 * count). */
#if defined(__GNUC__) && __GNUC__ >= 7
#define TC_FALLTHROUGH __attribute__((fallthrough))
#else
#define TC_FALLTHROUGH ((void)0)
#endif

/* The highest tensor rank that strided kernels (broadcast, transpose, slice, pad, reduce)
 * accept.  The compiler refuses larger ranks with a clear message. */
#define TC_MAX_DIMS 6

/* Clamp v to [lo, hi] (lo <= hi). */
static inline int32_t tc_clamp_s32(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* Clamp v to [lo, hi] as min(max(v, lo), hi) (ONNX Clip): when lo > hi the result is hi.
 * With lo = -INFINITY and hi = +INFINITY it returns v unchanged (NaN included, since both
 * comparisons are false). */
static inline float tc_clamp_f32(float v, float lo, float hi)
{
    v = (v < lo) ? lo : v;
    return (v > hi) ? hi : v;
}

/* acc + a * b, the multiply-add of every float kernel.  Fused (one VFMA, rounded once) where
 * the build defines TC_FUSED_MAC and the core has a single-precision FMA: tinyc defines it for
 * cores whose FMA is pipelined, the Cortex-M7 (one issue slot where VMUL + VADD take two;
 * tinyc/boards.py).  Elsewhere a multiply and an add, each rounded: on the Cortex-M4 a VFMA
 * holds the FPU for 3 cycles against 1 + 1, so fusing would cost time, and the host build
 * computes what the M4 does.  The build's -std=c99 turns off the compiler's own contraction
 * (-ffp-contract=off): the float epilogues (bias, BatchNorm, the binary kernels' scale and
 * offset) stay two roundings everywhere, as the reference computes them. */
static inline float tc_mac_f32(float acc, float a, float b)
{
#if defined(TC_FUSED_MAC) && defined(__ARM_FEATURE_FMA)
    return __builtin_fmaf(a, b, acc);
#else
    return acc + a * b;
#endif
}

/* Taps of a sliding window that land inside [0, size) (convolution, transposed convolution,
 * pooling).  The window's taps are at start + k * dilation for 0 <= k < kernel; start may be
 * negative (leading padding) and the window may run past size (trailing padding).  Sets
 * [*k_lo, *k_hi) to the taps inside, an empty range (*k_lo == *k_hi) when there are none, so
 * kernels handle padding by narrowing their loop bounds instead of testing every tap.
 * Requires dilation >= 1 and kernel >= 0. */
static inline void tc_window_range(int32_t start, int32_t dilation, int32_t kernel, int32_t size,
                                   int32_t *k_lo, int32_t *k_hi)
{
    int32_t lo = 0;
    int32_t hi = kernel;
    if (start < 0) {
        lo = (dilation - 1 - start) / dilation; /* ceil(-start / dilation) */
    }
    if (start + (kernel - 1) * dilation >= size) {
        const int32_t room = size - start; /* taps with k * dilation < room are inside */
        hi = room > 0 ? (room + dilation - 1) / dilation : 0;
    }
    *k_lo = lo;
    *k_hi = hi > lo ? hi : lo;
}

/* One axis of the window of position o (an output position; for a transposed convolution an
 * input position, whose taps land in the output): its taps start at o * stride - pad, and
 * tc_window_range narrows them to those inside [0, size).  first is the first tap inside,
 * count how many are inside (0 when none), at the coordinate of the first one
 * (o * stride - pad + first * dilation), where a kernel's tap loop starts. */
typedef struct {
    int32_t first;
    int32_t count;
    int32_t at;
} tc_window_axis_t;

static inline tc_window_axis_t tc_window_axis(int32_t o, int32_t stride, int32_t pad,
                                              int32_t dilation, int32_t kernel, int32_t size)
{
    const int32_t start = o * stride - pad;
    int32_t lo;
    int32_t hi;
    tc_window_range(start, dilation, kernel, size, &lo, &hi);
    const tc_window_axis_t axis = {lo, hi - lo, start + lo * dilation};
    return axis;
}

/* Row-major N-d counter (binary broadcast, strided copy, pad, reduce).
 *
 * Advances idx (rank entries, idx[d] in [0, shape[d])) to the next index in row-major order and
 * moves the element offsets *off0 and *off1 along by the per-dimension strides s0 and s1
 * (either stride/offset pair may be NULL).  Returns 1 while there is a next index, and 0 after
 * the last one, with idx and the offsets back at their starting values.  Callers run the last
 * dimension as a plain inner loop and step the outer ones with this:
 *     do { inner loop over shape[rank - 1] } while (tc_index_next(rank - 1, shape, idx, ...));
 * With rank 0 it returns 0 at once (one pass of the body).  Cost: O(1) amortised per call. */
static inline int32_t tc_index_next(int32_t rank, const int32_t *shape, int32_t *idx,
                                    const int32_t *s0, int32_t *off0, const int32_t *s1,
                                    int32_t *off1)
{
    for (int32_t d = rank - 1; d >= 0; --d) {
        if (++idx[d] < shape[d]) {
            if (s0 != NULL) {
                *off0 += s0[d];
            }
            if (s1 != NULL) {
                *off1 += s1[d];
            }
            return 1;
        }
        idx[d] = 0; /* wrap: undo the shape[d] - 1 steps taken along d */
        if (s0 != NULL) {
            *off0 -= s0[d] * (shape[d] - 1);
        }
        if (s1 != NULL) {
            *off1 -= s1[d] * (shape[d] - 1);
        }
    }
    return 0;
}

/* Count of leading zero bits of a 32-bit word (32 for 0). */
static inline int32_t tc_clz_u32(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0 ? 32 : (int32_t)__builtin_clz(x);
#else
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

#endif /* TC_COMMON_H */

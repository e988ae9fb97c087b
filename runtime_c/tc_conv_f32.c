/*
 * tinyc runtime: float32 convolution, 1-D / 2-D / 3-D, channels-last (see tc_conv_f32.h).
 *
 * For each output position the valid kernel range along d, h and w is computed once
 * (tc_window_range), so the zero padding costs nothing inside the tap loops.  Two inner loops:
 *  - general (in_c / groups > 1): the innermost loop runs over the input channels of one tap,
 *    contiguous in both x ([.., in_c]) and w ([out_c, k_d, k_h, k_w, in_c / groups]);
 *  - depthwise-like (in_c / groups == 1, any channel multiplier): that loop would have length 1,
 *    so the innermost loop runs over k_w instead: contiguous in w, stride dilation_w * in_c in x
 *    (free on a cacheless Cortex-M).  Plain depthwise (one output channel per group) takes
 *    DW_BLOCK channels per pass, taps outer and channels inner, so the window's loop overhead
 *    is paid once per block instead of once per channel.
 * Both accumulate in float32 from 0 in the order kd, kh, kw, ic and add the bias last, so the
 * result does not depend on the path taken.  The general path computes four output channels
 * per pass (each input value loaded once for four multiply-adds), with the same per-channel
 * summation order.
 *
 * tc_conv_blocked_f32 (groups 1, weights interleaved by blocks of CONV_BLOCK output channels)
 * computes a whole block per pass: for each tap and input channel one input value and the
 * block's CONV_BLOCK contiguous weights, CONV_BLOCK multiply-adds; with dilation_w 1 the valid
 * taps of a kernel row are one contiguous run in x and in w, one loop.  Two horizontally
 * adjacent output pixels whose windows have the same valid taps (away from the left and right
 * padding) share each weight load, the pair starting at an even pixel (counted in the order
 * batch, d, h, w): the output of a pair is written block by block while both windows are
 * still read, which the compiler's in-place planning assumes (tinyc/ops/conv.py).  Each sum
 * keeps the order kd, kh, kw, ic from 0, bias last: the outputs equal tc_conv_f32's bit for bit
 * (the zero weights of a partial last block only feed channels that are not stored).  Both
 * kernels share the pixel loop (conv_run).  Measured on qemu-m4 (instructions per MAC): the
 * EEG stem 3x3x3, 1 -> 14 channels on 4x9x9, 12.1 -> 4.4; 8 -> 16 channels 3.4 -> 2.4.
 * tc_conv_pointwise_f32 runs the same block computation for 1x1 layers without conv_run's
 * windows, pixel pairs across rows.  With a single-precision FPU a run of input values goes
 * through block_dot2 (a pixel pair) or block_dot1, one VLDM for the block's weights of a
 * value (a pair: 37 instructions per 16 multiply-adds on the Cortex-M4 against 45).  The block's output stage
 * (bias, clamp, store) is unrolled for full blocks of pixel pairs.
 *
 * Every multiply-add is tc_mac_f32 (tc_common.h): fused on the Cortex-M7, a multiply and an
 * add elsewhere; the kernels agree bit for bit on any one build.
 */
#include "tc_conv_f32.h"

/* The valid part of one output position's window: tap counts along d, h, w and the element
 * steps from one tap to the next in x and in w. */
typedef struct {
    int32_t nd, nh, nw;
    int32_t x_td, x_th, x_tw;
    int32_t w_td, w_th; /* the w step along kw is cig */
    int32_t cig;
} conv_window_t;

/* sum over the window's taps and the cig channels of each tap; x and w point at the first
 * valid tap.  Innermost loop over ic: contiguous in x and w. */
static inline float conv_dot_channels(const conv_window_t *t, const float *x, const float *w)
{
    float acc = 0.0f;
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            for (int32_t kw = 0, xw = xh, ww = wh; kw < t->nw; ++kw, xw += t->x_tw, ww += t->cig) {
                const float *xt = x + xw;
                const float *wt = w + ww;
                for (int32_t ic = 0; ic < t->cig; ++ic) {
                    acc = tc_mac_f32(acc, xt[ic], wt[ic]);
                }
            }
        }
    }
    return acc;
}

/* conv_dot_channels for four output channels at once (weights w, w + w_so, w + 2 * w_so,
 * w + 3 * w_so): each input value is loaded once for four multiply-adds.  Every sum keeps the
 * order kd, kh, kw, ic, so the results equal four conv_dot_channels calls exactly. */
static inline void conv_dot_channels4(const conv_window_t *t, const float *x, const float *w,
                                      int32_t w_so, float acc[4])
{
    float a0 = 0.0f;
    float a1 = 0.0f;
    float a2 = 0.0f;
    float a3 = 0.0f;
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            for (int32_t kw = 0, xw = xh, ww = wh; kw < t->nw; ++kw, xw += t->x_tw, ww += t->cig) {
                const float *xt = x + xw;
                const float *w0 = w + ww;
                const float *w1 = w0 + w_so;
                const float *w2 = w1 + w_so;
                const float *w3 = w2 + w_so;
                for (int32_t ic = 0; ic < t->cig; ++ic) {
                    const float xv = xt[ic];
                    a0 = tc_mac_f32(a0, xv, w0[ic]);
                    a1 = tc_mac_f32(a1, xv, w1[ic]);
                    a2 = tc_mac_f32(a2, xv, w2[ic]);
                    a3 = tc_mac_f32(a3, xv, w3[ic]);
                }
            }
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* The same sum for cig == 1: innermost loop over kw, contiguous in w. */
static inline float conv_dot_depthwise(const conv_window_t *t, const float *x, const float *w)
{
    float acc = 0.0f;
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            const float *xr = x + xh;
            const float *wr = w + wh;
            for (int32_t kw = 0, xw = 0; kw < t->nw; ++kw, xw += t->x_tw) {
                acc = tc_mac_f32(acc, xr[xw], wr[kw]);
            }
        }
    }
    return acc;
}

#define DW_BLOCK 8
#define CONV_BLOCK TC_CONV_BLOCKED_F32_BLOCK

#if defined(__ARM_FP) && (__ARM_FP & 4) && defined(__OPTIMIZE__) && CONV_BLOCK == 8
/* acc[0][j] += x[i] w[8 i + j], acc[1][j] += x[i + x_pw] w[8 i + j] for i < run (>= 1),
 * j < 8, in that order, as the C loop of conv_block_outputs computes them (tc_mac_f32: VFMA
 * where TC_FUSED_MAC, else VMUL then VADD): the eight weights of an input value in one VLDM
 * into s16-s23 where GCC loads them one by one (37 instructions per input value against 45
 * on the Cortex-M4, and no more cycles: VLDM of n registers takes n + 1, a VLDR 2, 1 when
 * pipelined).  The 16 sums are loaded into s0-s15 and stored back around the loop; the inputs
 * go to s24 and s25, the products to s26 and s27. */
#define BLOCK_ASM 1
#if defined(TC_FUSED_MAC) && defined(__ARM_FEATURE_FMA)
#define BLOCK_MAC1(J, A)  "vfma.f32 s" A ", s24, s" J "\n\t"
#define BLOCK_MAC(J, A0, A1) BLOCK_MAC1(J, A0) "vfma.f32 s" A1 ", s25, s" J "\n\t"
#else
#define BLOCK_MAC1(J, A)                                                                       \
    "vmul.f32 s26, s24, s" J "\n\t"                                                            \
    "vadd.f32 s" A ", s" A ", s26\n\t"
#define BLOCK_MAC(J, A0, A1)                                                                   \
    "vmul.f32 s26, s24, s" J "\n\t"                                                            \
    "vmul.f32 s27, s25, s" J "\n\t"                                                            \
    "vadd.f32 s" A0 ", s" A0 ", s26\n\t"                                                       \
    "vadd.f32 s" A1 ", s" A1 ", s27\n\t"
#endif
static TC_ALWAYS_INLINE void block_dot2(const float *x, int32_t x_pw, const float *w,
                                        int32_t run, float acc[2][CONV_BLOCK])
{
    const float *x1 = x + x_pw;
    const float *end = x + run;
    __asm__ volatile("vldmia %[acc], {s0-s15}\n\t"
                     "1:\n\t"
                     "vldmia %[x]!, {s24}\n\t"
                     "vldmia %[x1]!, {s25}\n\t"
                     "vldmia %[w]!, {s16-s23}\n\t"
                     BLOCK_MAC("16", "0", "8") BLOCK_MAC("17", "1", "9")
                     BLOCK_MAC("18", "2", "10") BLOCK_MAC("19", "3", "11")
                     BLOCK_MAC("20", "4", "12") BLOCK_MAC("21", "5", "13")
                     BLOCK_MAC("22", "6", "14") BLOCK_MAC("23", "7", "15")
                     "cmp %[x], %[end]\n\t"
                     "bne 1b\n\t"
                     "vstmia %[acc], {s0-s15}\n\t"
                     : [x] "+&r"(x), [x1] "+&r"(x1), [w] "+&r"(w)
                     : [end] "r"(end), [acc] "r"(acc)
                     : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10",
                       "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20",
                       "s21", "s22", "s23", "s24", "s25", "s26", "s27", "cc", "memory");
}

/* block_dot2 for one pixel: acc[0][j] += x[i] w[8 i + j]; the sums in s0-s7. */
static TC_ALWAYS_INLINE void block_dot1(const float *x, const float *w, int32_t run,
                                        float acc[2][CONV_BLOCK])
{
    const float *end = x + run;
    __asm__ volatile("vldmia %[acc], {s0-s7}\n\t"
                     "1:\n\t"
                     "vldmia %[x]!, {s24}\n\t"
                     "vldmia %[w]!, {s16-s23}\n\t"
                     BLOCK_MAC1("16", "0") BLOCK_MAC1("17", "1") BLOCK_MAC1("18", "2")
                     BLOCK_MAC1("19", "3") BLOCK_MAC1("20", "4") BLOCK_MAC1("21", "5")
                     BLOCK_MAC1("22", "6") BLOCK_MAC1("23", "7")
                     "cmp %[x], %[end]\n\t"
                     "bne 1b\n\t"
                     "vstmia %[acc], {s0-s7}\n\t"
                     : [x] "+&r"(x), [w] "+&r"(w)
                     : [end] "r"(end), [acc] "r"(acc)
                     : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s16", "s17", "s18",
                       "s19", "s20", "s21", "s22", "s23", "s24", "s26", "cc", "memory");
}

/* The depthwise blocks: acc[0][j] += x[i * x_tap + j] w[8 i + j] (and acc[1][j] with x + x_pw)
 * for i < taps (>= 1), j < 8: per tap one VLDM of the 8 weights into s16-s23, one of each
 * pixel's 8 inputs into s24-s31 (their products overwrite them), then the multiply-adds. */
#if defined(TC_FUSED_MAC) && defined(__ARM_FEATURE_FMA)
#define DW_MAC(X, W, A)  "vfma.f32 s" A ", s" X ", s" W "\n\t"
#else
#define DW_MAC(X, W, A)                                                                        \
    "vmul.f32 s" X ", s" X ", s" W "\n\t"                                                   \
    "vadd.f32 s" A ", s" A ", s" X "\n\t"
#endif
/* x values in s24-s31 times w in s16-s23, into the sums s(A0)..s(A7) */
#define DW_MACS(A0, A1, A2, A3, A4, A5, A6, A7)                                               \
    DW_MAC("24", "16", A0) DW_MAC("25", "17", A1) DW_MAC("26", "18", A2)                     \
    DW_MAC("27", "19", A3) DW_MAC("28", "20", A4) DW_MAC("29", "21", A5)                     \
    DW_MAC("30", "22", A6) DW_MAC("31", "23", A7)
static TC_ALWAYS_INLINE void dw_block_dot2(const float *x, int32_t x_pw, int32_t x_tap,
                                           const float *w, int32_t taps,
                                           float acc[2][CONV_BLOCK])
{
    const float *x1 = x + x_pw;
    const float *end = w + CONV_BLOCK * taps;
    __asm__ volatile("vldmia %[acc], {s0-s15}\n\t"
                     "1:\n\t"
                     "vldmia %[w]!, {s16-s23}\n\t"
                     "vldmia %[x], {s24-s31}\n\t"
                     DW_MACS("0", "1", "2", "3", "4", "5", "6", "7")
                     "vldmia %[x1], {s24-s31}\n\t"
                     DW_MACS("8", "9", "10", "11", "12", "13", "14", "15")
                     "add %[x], %[x], %[step]\n\t"
                     "add %[x1], %[x1], %[step]\n\t"
                     "cmp %[w], %[end]\n\t"
                     "bne 1b\n\t"
                     "vstmia %[acc], {s0-s15}\n\t"
                     : [x] "+&r"(x), [x1] "+&r"(x1), [w] "+&r"(w)
                     : [end] "r"(end), [acc] "r"(acc), [step] "r"(4 * x_tap)
                     : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10",
                       "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20",
                       "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30",
                       "s31", "cc", "memory");
}

static TC_ALWAYS_INLINE void dw_block_dot1(const float *x, int32_t x_tap, const float *w,
                                           int32_t taps, float acc[2][CONV_BLOCK])
{
    const float *end = w + CONV_BLOCK * taps;
    __asm__ volatile("vldmia %[acc], {s0-s7}\n\t"
                     "1:\n\t"
                     "vldmia %[w]!, {s16-s23}\n\t"
                     "vldmia %[x], {s24-s31}\n\t"
                     DW_MACS("0", "1", "2", "3", "4", "5", "6", "7")
                     "add %[x], %[x], %[step]\n\t"
                     "cmp %[w], %[end]\n\t"
                     "bne 1b\n\t"
                     "vstmia %[acc], {s0-s7}\n\t"
                     : [x] "+&r"(x), [w] "+&r"(w)
                     : [end] "r"(end), [acc] "r"(acc), [step] "r"(4 * x_tap)
                     : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s16", "s17", "s18",
                       "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28",
                       "s29", "s30", "s31", "cc", "memory");
}
#undef DW_MACS
#undef DW_MAC
#undef BLOCK_MAC
#undef BLOCK_MAC1
#else
#define BLOCK_ASM 0
#endif

/* conv_dot_depthwise for DW_BLOCK consecutive depthwise channels (cig = cog = 1): x points at
 * the block's first channel of the first valid tap, w at that channel's first valid weight,
 * channel j's weights are w_so further on.  Each channel sums its taps in the order kd, kh, kw,
 * so the results equal DW_BLOCK conv_dot_depthwise calls exactly. */
static inline void conv_dot_depthwise_block(const conv_window_t *t, const float *x,
                                            const float *w, int32_t w_so, float acc[DW_BLOCK])
{
#if defined(__GNUC__)
#pragma GCC unroll 8 /* stores, not a call of memset */
#endif
    for (int32_t j = 0; j < DW_BLOCK; ++j) {
        acc[j] = 0.0f;
    }
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            for (int32_t kw = 0, xw = xh; kw < t->nw; ++kw, xw += t->x_tw) {
                const float *xt = x + xw;
                const float *wt = w + wh + kw;
#pragma GCC unroll 8 /* unrolled: -20% instructions on the demo (GCC's -O2 keeps the loop) */
                for (int32_t j = 0; j < DW_BLOCK; ++j) {
                    acc[j] = tc_mac_f32(acc[j], xt[j], wt[j * w_so]);
                }
            }
        }
    }
}

/* The output stage of one output channel j of a block: bias b[j] added, clamped, stored at
 * y[j] (and, for the second pixel, y[y_pw + j]). */
static TC_ALWAYS_INLINE void blocked_output(float a0, float a1, const float *b, int32_t j,
                                            float lo, float hi, float *y, int32_t y_pw,
                                            int pixels)
{
    const float bj = b[j]; /* read once: the stores to y could alias b */
    y[j] = tc_clamp_f32(a0 + bj, lo, hi);
    if (pixels == 2) {
        y[y_pw + j] = tc_clamp_f32(a1 + bj, lo, hi);
    }
}

/* acc[0][j] += x[i * x_tap + j] w[8 i + j] for the nw taps i of one window row (and
 * acc[1][j] from x + x_pw for a pixel pair), in tap order. */
static TC_ALWAYS_INLINE void dw_block_row(const float *x, int32_t x_pw, int32_t x_tap,
                                          const float *w, int32_t nw, int pixels,
                                          float acc[2][CONV_BLOCK])
{
#if BLOCK_ASM
    if (pixels == 2) {
        dw_block_dot2(x, x_pw, x_tap, w, nw, acc);
    } else {
        dw_block_dot1(x, x_tap, w, nw, acc);
    }
#else
    for (int32_t i = 0; i < nw; ++i, x += x_tap, w += CONV_BLOCK) {
        for (int32_t j = 0; j < CONV_BLOCK; ++j) {
            acc[0][j] = tc_mac_f32(acc[0][j], x[j], w[j]);
            if (pixels == 2) {
                acc[1][j] = tc_mac_f32(acc[1][j], x[x_pw + j], w[j]);
            }
        }
    }
#endif
}

/* conv_dot_channels for the `count` (<= CONV_BLOCK) output channels of one weight block of
 * tc_conv_blocked_f32 (w: the block's first valid tap, [.., k_w, cig, CONV_BLOCK]), for one or
 * two output pixels (pixels, a constant once inlined; the second pixel's window has the same
 * valid taps, x_pw values further on in x): each weight is loaded once for `pixels`
 * multiply-adds, each input value once for CONV_BLOCK.  Without groups the valid taps of a
 * kernel row are, with dilation_w 1 (contiguous, a constant too), one run of nw * cig
 * consecutive values in x as in w (one loop instead of two); otherwise a run is one tap's cig
 * channels.  Every sum keeps the order kd, kh, kw, ic; then the output stage (blocked_output,
 * biases b), the sums still in registers. */
static TC_ALWAYS_INLINE void conv_block_outputs(const conv_window_t *t, const float *x,
                                                int32_t x_pw, const float *w, int contiguous,
                                                int depthwise, int pixels, const float *b,
                                                int32_t count, float lo, float hi, float *y,
                                                int32_t y_pw)
{
    float acc[2][CONV_BLOCK];
    float *a0 = acc[0];
    float *a1 = acc[1];
#if defined(__GNUC__)
#pragma GCC unroll 8 /* stores, not a call of memset */
#endif
    for (int32_t j = 0; j < CONV_BLOCK; ++j) {
        a0[j] = 0.0f;
        a1[j] = 0.0f;
    }
    const int32_t run = contiguous ? t->nw * t->cig : t->cig;
    const int32_t runs = contiguous ? 1 : t->nw;
    const int32_t w_run = t->cig * CONV_BLOCK; /* the w step from one tap to the next */
    for (int32_t kd = 0, xd = 0, wd = 0; kd < t->nd; ++kd, xd += t->x_td, wd += t->w_td) {
        for (int32_t kh = 0, xh = xd, wh = wd; kh < t->nh; ++kh, xh += t->x_th, wh += t->w_th) {
            if (depthwise) { /* the row's nw taps, x_tw apart in x, element by element */
                dw_block_row(x + xh, x_pw, t->x_tw, w + wh, t->nw, pixels, acc);
                continue;
            }
            for (int32_t r = 0, xr = xh, wr = wh; r < runs; ++r, xr += t->x_tw, wr += w_run) {
                const float *xt = x + xr;
                const float *wt = w + wr;
#if BLOCK_ASM
                if (pixels == 2) {
                    block_dot2(xt, x_pw, wt, run, acc);
                } else {
                    block_dot1(xt, wt, run, acc);
                }
                continue;
#endif
                for (int32_t i = 0; i < run; ++i, wt += CONV_BLOCK) {
                    const float x0 = xt[i];
                    const float x1 = pixels == 2 ? xt[i + x_pw] : 0.0f;
#pragma GCC unroll 8
                    for (int32_t j = 0; j < CONV_BLOCK; ++j) {
                        const float wj = wt[j];
                        a0[j] = tc_mac_f32(a0[j], x0, wj);
                        if (pixels == 2) {
                            a1[j] = tc_mac_f32(a1[j], x1, wj);
                        }
                    }
                }
            }
        }
    }
    if (count == CONV_BLOCK && pixels == 2) { /* unrolled: the sums stay in registers */
#pragma GCC unroll 8
        for (int32_t j = 0; j < CONV_BLOCK; ++j) {
            blocked_output(a0[j], a1[j], b, j, lo, hi, y, y_pw, pixels);
        }
    } else {
        for (int32_t j = 0; j < count; ++j) {
            blocked_output(a0[j], a1[j], b, j, lo, hi, y, y_pw, pixels);
        }
    }
}

/* The outputs of one pixel, tc_conv_f32: x at the first valid tap of channel 0, w at the first
 * valid tap of output channel 0, w_so the weights per output channel. */
static TC_ALWAYS_INLINE void conv_pixel(const tc_conv_f32_params_t *p, const conv_window_t *t,
                                        const float *x, const float *w, int32_t w_so,
                                        const float *bias, float *y)
{
    const int32_t groups = p->groups;
    const int32_t cig = t->cig;
    const int32_t cog = p->out_c / groups;
    const float lo = p->act_min;
    const float hi = p->act_max;
    int32_t g = 0;
    for (; cig == 1 && cog == 1 && g + DW_BLOCK <= groups; g += DW_BLOCK) {
        float acc[DW_BLOCK];
        conv_dot_depthwise_block(t, x + g, w + g * w_so, w_so, acc);
        for (int32_t j = 0; j < DW_BLOCK; ++j) {
            const float b = bias != NULL ? bias[g + j] : 0.0f;
            y[g + j] = tc_clamp_f32(acc[j] + b, lo, hi);
        }
    }
    for (int32_t oc = g * cog; g < groups; ++g) {
        const float *xg = x + g * cig;
        int32_t m = 0;
        for (; cig > 1 && m + 4 <= cog; m += 4, oc += 4) {
            float acc[4];
            conv_dot_channels4(t, xg, w + oc * w_so, w_so, acc);
            for (int32_t j = 0; j < 4; ++j) {
                const float b = bias != NULL ? bias[oc + j] : 0.0f;
                y[oc + j] = tc_clamp_f32(acc[j] + b, lo, hi);
            }
        }
        for (; m < cog; ++m, ++oc) {
            const float *wo = w + oc * w_so;
            const float acc = cig == 1 ? conv_dot_depthwise(t, xg, wo)
                                       : conv_dot_channels(t, xg, wo);
            const float b = bias != NULL ? bias[oc] : 0.0f;
            y[oc] = tc_clamp_f32(acc + b, lo, hi);
        }
    }
}

/* The outputs of one or two (pixels) adjacent pixels, tc_conv_blocked_f32: x and w as
 * conv_pixel, x_pw as conv_dot_blocked, w_so the weights per block; the second pixel's outputs
 * follow the first's in y. */
static TC_ALWAYS_INLINE void conv_pixel_blocked(const tc_conv_f32_params_t *p,
                                                const conv_window_t *t, const float *x,
                                                int32_t x_pw, const float *w, int32_t w_so,
                                                const float *bias, float *y, int contiguous,
                                                int depthwise, int pixels)
{
    static const float no_bias[CONV_BLOCK]; /* bias NULL: add 0.0f, as tc_conv_f32 does */
    const int32_t out_c = p->out_c;
    const float lo = p->act_min; /* in registers: the stores to y could alias p */
    const float hi = p->act_max;
    for (int32_t oc = 0; oc < out_c; oc += CONV_BLOCK, w += w_so) {
        const int32_t count = out_c - oc < CONV_BLOCK ? out_c - oc : CONV_BLOCK;
        conv_block_outputs(t, depthwise ? x + oc : x, x_pw, w, contiguous, depthwise, pixels,
                           bias != NULL ? bias + oc : no_bias, count, lo, hi, y + oc, out_c);
    }
}

/* The pixel loop of both kernels, specialised by the constant `kernel`: for each output pixel
 * the valid part of its window, then conv_pixel (CONV_GROUPED: tc_conv_f32, weights [out_c,
 * k_d, k_h, k_w, in_c / groups]) or conv_pixel_blocked (weights [blocks, k_d, k_h, k_w, in_c,
 * CONV_BLOCK]; CONV_BLOCKED_ROWS when dilation_w is 1). */
enum { CONV_GROUPED, CONV_BLOCKED, CONV_BLOCKED_ROWS, CONV_DEPTHWISE_BLOCKED };

static TC_ALWAYS_INLINE void conv_run(const tc_conv_f32_params_t *p, const float *x,
                                      const float *w, const float *bias, float *y, int kernel)
{
    const int blocked = kernel != CONV_GROUPED;
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const int32_t cig = in_c / p->groups; /* input channels per group */
    const int32_t lanes = blocked ? CONV_BLOCK : 1; /* weights per tap and input channel */
    const float lo = p->act_min;
    const float hi = p->act_max;

    /* Element strides of x (per batch, d, h; w is in_c) and of w (per oc or block, kd, kh; kw
     * is cig * lanes). */
    const int32_t x_sh = p->in_w * in_c;
    const int32_t x_sd = p->in_h * x_sh;
    const int32_t x_sn = p->in_d * x_sd;
    const int32_t w_sh = p->k_w * cig * lanes;
    const int32_t w_sd = p->k_h * w_sh;
    const int32_t w_so = p->k_d * w_sd;

    conv_window_t t;
    t.x_td = p->dilation_d * x_sd;
    t.x_th = p->dilation_h * x_sh;
    t.x_tw = p->dilation_w * in_c;
    t.w_td = w_sd;
    t.w_th = w_sh;
    t.cig = cig;

    int32_t pixel = 0; /* output pixels done, in the order batch, d, h, w */
    for (int32_t n = 0; n < p->batch; ++n) {
        const float *xn = x + n * x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            const tc_window_axis_t win_d =
                tc_window_axis(od, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->in_d);
            t.nd = win_d.count;
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const tc_window_axis_t win_h =
                    tc_window_axis(oh, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->in_h);
                t.nh = win_h.count;
                for (int32_t ow = 0, pixels = 1; ow < p->out_w;
                     ow += pixels, y += pixels * out_c, pixel += pixels) {
                    const tc_window_axis_t win_w =
                        tc_window_axis(ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
                    t.nw = win_w.count;
                    pixels = 1;

                    if (t.nd == 0 || t.nh == 0 || t.nw == 0) { /* window all in the padding */
                        for (int32_t oc = 0; oc < out_c; ++oc) {
                            y[oc] = tc_clamp_f32(bias != NULL ? bias[oc] : 0.0f, lo, hi);
                        }
                        continue;
                    }

                    /* Offsets of the first valid tap in x (channel 0) and in w (any oc). */
                    const float *xf = xn + win_d.at * x_sd + win_h.at * x_sh + win_w.at * in_c;
                    const float *wf =
                        w + win_d.first * w_sd + win_h.first * w_sh + win_w.first * cig * lanes;
                    /* Pairs start at even pixels (the in-place contract: the output may
                     * overwrite input that windows before the pair's first pixel read). */
                    if (blocked && pixel % 2 == 0 && ow + 1 < p->out_w) {
                        const tc_window_axis_t next = tc_window_axis(
                            ow + 1, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
                        pixels = next.count == win_w.count && next.first == win_w.first ? 2 : 1;
                    }
                    if (blocked && pixels == 2) {
                        conv_pixel_blocked(p, &t, xf, p->stride_w * in_c, wf, w_so, bias, y,
                                           kernel == CONV_BLOCKED_ROWS,
                                           kernel == CONV_DEPTHWISE_BLOCKED, 2);
                    } else if (blocked) {
                        conv_pixel_blocked(p, &t, xf, 0, wf, w_so, bias, y,
                                           kernel == CONV_BLOCKED_ROWS,
                                           kernel == CONV_DEPTHWISE_BLOCKED, 1);
                    } else {
                        conv_pixel(p, &t, xf, wf, w_so, bias, y);
                    }
                }
            }
        }
    }
}

void tc_conv_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                 const float *bias, float *y)
{
    conv_run(p, x, w, bias, y, CONV_GROUPED);
}

void tc_conv_blocked_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                         const float *bias, float *y)
{
    if (p->dilation_w == 1) {
        conv_run(p, x, w, bias, y, CONV_BLOCKED_ROWS);
    } else {
        conv_run(p, x, w, bias, y, CONV_BLOCKED);
    }
}

/* tc_conv_pointwise_f32 (tc_conv_f32.h): output pixel i reads input pixel i alone, so the
 * image is one matrix product with no window to work out: pixel pairs from pixel 0 on, across
 * rows (conv_run's pairs stay within a row; the sums are the same, and the pairs still start
 * at even pixels, as the in-place contract wants). */
void tc_conv_pointwise_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                           const float *bias, float *y)
{
    const int32_t in_c = p->in_c;
    const int32_t out_c = p->out_c;
    const conv_window_t t = {.nd = 1, .nh = 1, .nw = 1, .cig = in_c}; /* one tap, in_c long */
    const int32_t pixels = p->batch * p->out_d * p->out_h * p->out_w;
    const int32_t w_so = in_c * CONV_BLOCK;
    int32_t i = 0;
    for (; i + 2 <= pixels; i += 2, x += 2 * in_c, y += 2 * out_c) {
        conv_pixel_blocked(p, &t, x, in_c, w, w_so, bias, y, 1, 0, 2);
    }
    if (i < pixels) {
        conv_pixel_blocked(p, &t, x, 0, w, w_so, bias, y, 1, 0, 1);
    }
}

void tc_depthwise_conv_blocked_f32(const tc_conv_f32_params_t *p, const float *x,
                                   const float *wb, const float *bias, float *y)
{
    conv_run(p, x, wb, bias, y, CONV_DEPTHWISE_BLOCKED);
}

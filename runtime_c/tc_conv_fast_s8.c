/*
 * tinyc runtime: optimized int8 convolution and depthwise convolution (see tc_conv_fast_s8.h).
 *
 * Each kernel has one driver shared by both builds and two sets of leaf functions: the
 * ARMv7E-M DSP ones (TC_DSP, tc_dsp.h) and portable C ones computing the same integers.  The
 * panel of tc_conv_gemm_s8 holds int16 pairs: the DSP build addresses it in 32-bit words, the
 * portable build in int16 values; both store the same bytes.
 */
#include "tc_conv_fast_s8.h"

#include "tc_dsp.h"

#define GEMM_PIXELS 6 /* output pixels per panel */

static int8_t conv_output(int32_t v, int32_t output_offset, int32_t act_min, int32_t act_max)
{
    return (int8_t)tc_clamp_s32(v + output_offset, act_min, act_max);
}

/* ---- tc_conv_gemm_s8: leaf functions ------------------------------------------------------ */

#if TC_DSP
typedef int32_t panel_t;                /* one int16 pair */
#define PANEL_GROUP (2 * GEMM_PIXELS)   /* panel_t per group of 4 values x the panel's pixels */
#define PANEL_SLOT 2                    /* panel_t per group of 4 values of one pixel */

static panel_t panel_fill_value(int32_t zero_point)
{
    return (int32_t)(((uint32_t)zero_point << 16) | ((uint32_t)zero_point & 0xFFFFu));
}

/* groups x 4 int8 values from src into one pixel's slots of the panel (groups >= 0): two
 * groups per pass (5 instructions per group against 6), an odd count entering at the
 * second. */
static TC_ALWAYS_INLINE void panel_expand_inline(const int8_t *src, int32_t groups,
                                                panel_t *dst)
{
    const int8_t *end = src + 4 * groups;
    int32_t w;
    int32_t lo;
    int32_t hi;
    if (groups > 0) {
        __asm__ volatile("tst     %[groups], #1\n\t"
                         "bne     2f\n\t"
                         "1:\n\t"
                         "ldr     %[w], [%[src]], #4\n\t"
                         "sxtb16  %[lo], %[w]\n\t"
                         "sxtb16  %[hi], %[w], ror #8\n\t"
                         "strd    %[lo], %[hi], [%[dst]], %[step]\n\t"
                         "2:\n\t"
                         "ldr     %[w], [%[src]], #4\n\t"
                         "sxtb16  %[lo], %[w]\n\t"
                         "sxtb16  %[hi], %[w], ror #8\n\t"
                         "strd    %[lo], %[hi], [%[dst]], %[step]\n\t"
                         "cmp     %[src], %[end]\n\t"
                         "bne     1b\n\t"
                         : [src] "+r"(src), [dst] "+r"(dst), [w] "=&r"(w), [lo] "=&r"(lo),
                           [hi] "=&r"(hi)
                         : [end] "r"(end), [groups] "r"(groups), [step] "i"(4 * PANEL_GROUP)
                         : "cc", "memory");
    }
}

static void panel_fill(int32_t groups, panel_t value, panel_t *dst)
{
    for (int32_t g = 0; g < groups; ++g, dst += PANEL_GROUP) {
        dst[0] = value;
        dst[1] = value;
    }
}

/* One group of the dot product of the panel's pixels 0-3: a weight word against their int16
 * pairs, then past the other pixels' pairs to the next group. */
#define DOT4_GROUP                                                                            \
    "ldr     %[w], [%[wp]], #4\n\t"                                                           \
    "ldmia   %[xp]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                        \
    "sxtb16  %[t], %[w]\n\t"                                                                  \
    "sxtb16  %[w], %[w], ror #8\n\t"                                                          \
    "smlad   %[a0], %[x0], %[t], %[a0]\n\t"                                                   \
    "smlad   %[a0], %[x1], %[w], %[a0]\n\t"                                                   \
    "smlad   %[a1], %[x2], %[t], %[a1]\n\t"                                                   \
    "smlad   %[a1], %[x3], %[w], %[a1]\n\t"                                                   \
    "ldmia   %[xp]!, {%[x0], %[x1], %[x2], %[x3]}\n\t"                                        \
    "smlad   %[a2], %[x0], %[t], %[a2]\n\t"                                                   \
    "smlad   %[a2], %[x1], %[w], %[a2]\n\t"                                                   \
    "smlad   %[a3], %[x2], %[t], %[a3]\n\t"                                                   \
    "smlad   %[a3], %[x3], %[w], %[a3]\n\t"                                                   \
    "add     %[xp], %[xp], #16\n\t" /* pixels 4 and 5 */
typedef char dot4_skip_is_16[4 * (PANEL_GROUP - 8) == 16 ? 1 : -1]; /* ... as DOT4_GROUP skips */

/* acc[p] += sum over groups of the panel's pixel p times one weight row, p < 4 (groups >= 1).
 * The panel is read with LDM, whose register list must ascend: x0..x3 are pinned to
 * registers. */
static TC_NOINLINE void gemm_dot4(const panel_t *panel, const int8_t *w, int32_t groups,
                                  int32_t acc[GEMM_PIXELS])
{
    register int32_t x0 __asm__("r4");
    register int32_t x1 __asm__("r5");
    register int32_t x2 __asm__("r6");
    register int32_t x3 __asm__("r8");
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    int32_t wv;
    int32_t t;
    int32_t pairs = groups >> 1;
    if (pairs > 0) {
        __asm__ volatile("1:\n\t" DOT4_GROUP DOT4_GROUP
                         "subs    %[n], %[n], #1\n\t"
                         "bne     1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                           [xp] "+r"(panel), [wp] "+r"(w), [n] "+r"(pairs), [x0] "=&r"(x0),
                           [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [w] "=&r"(wv),
                           [t] "=&r"(t)
                         :
                         : "cc", "memory");
    }
    if (groups & 1) {
        __asm__ volatile(DOT4_GROUP
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                           [xp] "+r"(panel), [wp] "+r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1),
                           [x2] "=&r"(x2), [x3] "=&r"(x3), [w] "=&r"(wv), [t] "=&r"(t)
                         :
                         : "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* *a0, *a1 += sum over groups of the panel's pixels p, p + 1 (pair: their first slot) times
 * one weight row. */
static TC_ALWAYS_INLINE void gemm_dot_pair(const panel_t *pair, const int8_t *w, int32_t groups,
                                           int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    for (const int8_t *end = w + 4 * groups; w != end; w += 4, pair += PANEL_GROUP) {
        int32_t lo;
        int32_t hi;
        tc_expand_word_dsp(w, &lo, &hi);
        s0 = __smlad(pair[0], lo, s0);
        s0 = __smlad(pair[1], hi, s0);
        s1 = __smlad(pair[2], lo, s1);
        s1 = __smlad(pair[3], hi, s1);
    }
    *a0 = s0;
    *a1 = s1;
}

/* acc[p] += sum over groups of the panel's pixel p times one weight row for the first `valid`
 * pixels (and maybe one more: the panel's other slots hold stale values, their sums unused):
 * pixels 0-3 four at a time, then pairs. */
static TC_ALWAYS_INLINE void gemm_dot(const panel_t *panel, const int8_t *w, int32_t groups,
                                      int32_t valid, int32_t acc[GEMM_PIXELS])
{
    int32_t p0 = 0;
    if (valid > 2) {
        gemm_dot4(panel, w, groups, acc);
        p0 = 4;
    }
    for (; p0 < valid; p0 += 2) {
        gemm_dot_pair(panel + p0 * PANEL_SLOT, w, groups, &acc[p0], &acc[p0 + 1]);
    }
}
#else
typedef int16_t panel_t;
#define PANEL_GROUP (4 * GEMM_PIXELS)
#define PANEL_SLOT 4

static panel_t panel_fill_value(int32_t zero_point)
{
    return (int16_t)zero_point;
}

static TC_ALWAYS_INLINE void panel_expand_inline(const int8_t *src, int32_t groups,
                                                panel_t *dst)
{
    for (int32_t g = 0; g < groups; ++g, src += 4, dst += PANEL_GROUP) {
        tc_expand_s8x4(src, dst);
    }
}

static void panel_fill(int32_t groups, panel_t value, panel_t *dst)
{
    for (int32_t g = 0; g < groups; ++g, dst += PANEL_GROUP) {
        dst[0] = value;
        dst[1] = value;
        dst[2] = value;
        dst[3] = value;
    }
}

static void gemm_dot(const panel_t *panel, const int8_t *w, int32_t groups, int32_t valid,
                     int32_t acc[GEMM_PIXELS])
{
    for (int32_t g = 0; g < groups; ++g, panel += PANEL_GROUP, w += 4) {
        for (int32_t px = 0; px < valid; ++px) {
            const panel_t *xp = panel + px * PANEL_SLOT;
            acc[px] += xp[0] * w[0] + xp[1] * w[2] + xp[2] * w[1] + xp[3] * w[3];
        }
    }
}
#endif

/* ---- tc_conv_gemm_s8: driver -------------------------------------------------------------- */

/* panel_expand_inline where a call costs less than the code: the windows at the image's edges. */
static TC_NOINLINE void panel_expand(const int8_t *src, int32_t groups, panel_t *dst)
{
    panel_expand_inline(src, groups, dst);
}

size_t tc_conv_gemm_s8_scratch_size(const tc_conv_gemm_s8_params_t *p)
{
    const size_t k = (size_t)p->k_padded;
    const size_t frame = (size_t)p->frame_d * (size_t)p->frame_h * (size_t)p->frame_w *
                         (size_t)p->in_c;
    return k * 2u * GEMM_PIXELS + (p->in_c % 4 != 0 ? k + 4u : 0u) +
           (frame > 0u ? (frame + 3u) / 4u * 4u + 4u : 0u);
}

/* n bytes from src to dst, a word at a time (the runs of a window are short: no call). */
static void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, src += 4, dst += 4) {
        tc_store_s32(dst, tc_load_s32(src));
    }
    for (; n > 0; --n) {
        *dst++ = *src++;
    }
}

/* n bytes of dst set to the byte `word` repeats, in whole words: up to 3 bytes past dst + n
 * are written too (the gathering buffer has the slack, and what follows is written later or
 * meets zero weights). */
static void fill_words(int8_t *dst, int32_t word, int32_t n)
{
    for (; n > 0; n -= 4, dst += 4) {
        tc_store_s32(dst, word);
    }
}

/* The int8 window whose top-left tap is (ih0, iw0) of image xn into col (k_h * k_w * in_c
 * values in OHWI tap order; padding taps hold the input zero point).  row_inside: every tap
 * of a row is inside the image horizontally. */
static TC_NOINLINE void gemm_gather(const tc_conv_gemm_s8_params_t *p, const int8_t *xn,
                                    int32_t ih0, int32_t iw0, int32_t row_inside, int8_t *col)
{
    const int32_t in_c = p->in_c;
    const int32_t in_h = p->in_h;
    const int32_t in_w = p->in_w;
    const int32_t k_w = p->k_w;
    const int32_t k_h = p->k_h;
    const int32_t dilation_h = p->dilation_h;
    const int32_t dilation_w = p->dilation_w;
    const int32_t row_len = k_w * in_c;
    const int32_t fill = (int32_t)(((uint32_t)p->input_zero_point & 0xFFu) * 0x01010101u);
    const int32_t contiguous = row_inside && dilation_w == 1;
    for (int32_t kh = 0, ih = ih0; kh < k_h; ++kh, ih += dilation_h, col += row_len) {
        if (ih < 0 || ih >= in_h) {
            fill_words(col, fill, row_len);
            continue;
        }
        const int8_t *row = xn + ih * in_w * in_c;
        if (contiguous) {
            copy_bytes(col, row + iw0 * in_c, row_len);
            continue;
        }
        int8_t *c = col;
        for (int32_t kw = 0, iw = iw0; kw < k_w; ++kw, iw += dilation_w, c += in_c) {
            if (iw >= 0 && iw < in_w) {
                copy_bytes(c, row + iw * in_c, in_c);
            } else {
                fill_words(c, fill, in_c);
            }
        }
    }
}

/* The k_w taps (dilation 1) of one image row starting at column iw0 into col, padding taps
 * holding the input zero point. */
static void gemm_gather_row(const tc_conv_gemm_s8_params_t *p, const int8_t *row, int32_t iw0,
                            int8_t *col)
{
    const int32_t in_c = p->in_c;
    const int32_t fill = (int32_t)(((uint32_t)p->input_zero_point & 0xFFu) * 0x01010101u);
    for (int32_t kw = 0, iw = iw0; kw < p->k_w; ++kw, ++iw, col += in_c) {
        if (iw >= 0 && iw < p->in_w) {
            copy_bytes(col, row + iw * in_c, in_c);
        } else {
            fill_words(col, fill, in_c);
        }
    }
}

/* How a window's values lie in memory (in the frame, or in x for 2-D windows wholly inside the
 * image): k_d * k_h kernel rows of `runs` runs of `run` contiguous values each (the whole row
 * with dilation_w 1, else one tap per run).  From the first value of a run, the next run is
 * tap_step bytes on; after a kernel row's runs, the next row row_step bytes on; after a depth
 * slice's rows, the next slice depth_step bytes on.  Computed once per call (window_runs). */
typedef struct {
    int32_t k_d, k_h, runs, run;
    int32_t tap_step, row_step, depth_step;
    int32_t groups; /* k_padded / 4: the groups expanded into the panel */
} window_runs_t;

/* The runs of windows read from an image of row_w pixels per row and row_w * rows_h per depth
 * slice (the frame's frame_w, frame_h; x's in_w, in_h). */
static window_runs_t window_runs(const tc_conv_gemm_s8_params_t *p, int32_t row_w,
                                  int32_t rows_h)
{
    const int32_t in_c = p->in_c;
    const int32_t contiguous = p->dilation_w == 1;
    window_runs_t r;
    r.k_d = p->k_d;
    r.k_h = p->k_h;
    r.runs = contiguous ? 1 : p->k_w;
    r.run = contiguous ? p->k_w * in_c : in_c;
    r.tap_step = p->dilation_w * in_c;
    r.row_step = p->dilation_h * row_w * in_c - r.runs * r.tap_step;
    r.depth_step = p->dilation_d * rows_h * row_w * in_c - p->k_h * p->dilation_h * row_w * in_c;
    r.groups = p->k_padded / 4;
    return r;
}

/* The runs of the window whose first value is src, `runs` per kernel row (a constant where
 * inlined, as are the other flags):
 *   expand: each run (run % 4 == 0) expanded straight into the panel slot;
 *   else:   each run copied into col after the one before, `words` = ceil(run / 4) words per
 *           run: a run of 4 or more values as its whole words and the word that ends at its
 *           last value, so nothing past the run is read; a shorter run as one word, reading up
 *           to 3 bytes past it (the frame's slack).  Either way up to 3 bytes past the run's
 *           place in col are written: the next run's place, or col's slack. */
static TC_ALWAYS_INLINE void visit_runs(const window_runs_t *r, const int8_t *src, int8_t *col,
                                        panel_t *slot, int32_t words, int32_t runs, int expand)
{
    const int32_t run = r->run;
    const int32_t tail = run > 4 ? run - 4 : 0;
    const int32_t row_step = r->row_step + (runs == 1 ? r->tap_step : 0);
    for (int32_t kd = r->k_d; kd > 0; --kd, src += r->depth_step) {
        for (int32_t kh = r->k_h; kh > 0; --kh, src += row_step) {
            for (int32_t n = runs; n > 0; --n) {
                if (expand) {
                    panel_expand_inline(src, run / 4, slot);
                    slot += run / 4 * PANEL_GROUP;
                } else {
                    for (int32_t i = 0; i < words - 1; ++i) {
                        tc_store_s32(col + 4 * i, tc_load_s32(src + 4 * i));
                    }
                    tc_store_s32(col + tail, tc_load_s32(src + tail));
                    col += run;
                }
                if (runs != 1) {
                    src += r->tap_step;
                }
            }
        }
    }
}

/* The window whose first value is src into the panel slot of one pixel.  Runs of whole groups
 * of 4 are expanded straight from src; other runs are copied into col first (the common run
 * lengths unrolled) and col is expanded at the end: col[K .. k_padded) keeps whatever it
 * holds, which meets zero weights (any int8 times 0 adds exactly 0). */
static TC_NOINLINE void window_from_runs(const window_runs_t *r, const int8_t *src,
                                         panel_t *slot, int8_t *col)
{
    const int32_t words = (r->run + 3) / 4;
    if (r->run % 4 == 0) {
        if (r->runs == 1) { /* whole kernel rows */
            visit_runs(r, src, col, slot, words, 1, 1);
        } else {
            visit_runs(r, src, col, slot, words, r->runs, 1);
        }
        return;
    }
    if (r->runs != 1) { /* dilated rows: a run per tap */
        visit_runs(r, src, col, slot, words, r->runs, 0);
    } else if (words == 1) { /* whole rows: the EEG stem's 3 taps of one channel */
        visit_runs(r, src, col, slot, 1, 1, 0);
    } else if (words == 3) { /* 3 taps of 3 channels */
        visit_runs(r, src, col, slot, 3, 1, 0);
    } else {
        visit_runs(r, src, col, slot, words, 1, 0);
    }
    panel_expand_inline(col, r->groups, slot);
}

/* The window of output pixel (oh, ow) of image xn into the panel slot of one pixel, checking
 * its rows and taps against the image (gemm_run reads the windows inside it as runs); col is
 * the int8 gathering buffer (used when in_c % 4 != 0). */
static TC_NOINLINE void gemm_window(const tc_conv_gemm_s8_params_t *p, const int8_t *xn,
                                    int32_t oh, int32_t ow, panel_t *slot, int8_t *col)
{
    const int32_t in_c = p->in_c;
    const int32_t k_w = p->k_w;
    const int32_t ih0 = oh * p->stride_h - p->pad_h;
    const int32_t iw0 = ow * p->stride_w - p->pad_w;
    const int32_t row_inside = iw0 >= 0 && iw0 + (k_w - 1) * p->dilation_w < p->in_w;
    const int32_t row_len = k_w * in_c;
    if (in_c % 4 == 0) { /* straight from x into the panel */
        const panel_t fill = panel_fill_value(p->input_zero_point);
        const int32_t tap_groups = in_c / 4;
        for (int32_t kh = 0; kh < p->k_h; ++kh) {
            const int32_t ih = ih0 + kh * p->dilation_h;
            if (ih < 0 || ih >= p->in_h) {
                panel_fill(k_w * tap_groups, fill, slot);
                slot += k_w * tap_groups * PANEL_GROUP;
                continue;
            }
            const int8_t *row = xn + ih * p->in_w * in_c;
            if (row_inside && p->dilation_w == 1) {
                panel_expand(row + iw0 * in_c, k_w * tap_groups, slot);
                slot += k_w * tap_groups * PANEL_GROUP;
                continue;
            }
            for (int32_t kw = 0; kw < k_w; ++kw, slot += tap_groups * PANEL_GROUP) {
                const int32_t iw = iw0 + kw * p->dilation_w;
                if (iw >= 0 && iw < p->in_w) {
                    panel_expand(row + iw * in_c, tap_groups, slot);
                } else {
                    panel_fill(tap_groups, fill, slot);
                }
            }
        }
        return;
    }
    if (row_len % 4 == 0 && p->dilation_w == 1) { /* whole kernel rows from x into the panel */
        const panel_t fill = panel_fill_value(p->input_zero_point);
        const int32_t row_groups = row_len / 4;
        for (int32_t kh = 0; kh < p->k_h; ++kh, slot += row_groups * PANEL_GROUP) {
            const int32_t ih = ih0 + kh * p->dilation_h;
            if (ih < 0 || ih >= p->in_h) {
                panel_fill(row_groups, fill, slot);
            } else if (row_inside) {
                panel_expand(xn + (ih * p->in_w + iw0) * in_c, row_groups, slot);
            } else { /* a row crossing the left or right edge: gather it first */
                gemm_gather_row(p, xn + ih * p->in_w * in_c, iw0, col);
                panel_expand(col, row_groups, slot);
            }
        }
        return;
    }
    gemm_gather(p, xn, ih0, iw0, row_inside, col);
    /* col[K .. k_padded) keeps whatever it holds: those weights are 0, and any int8 times 0
     * adds exactly 0. */
    panel_expand(col, p->k_padded / 4, slot);
}

/* ---- tc_conv_gemm_s8: windows of 3-D layers, read from the frame ------------------------- */

/* A frame: an image ([in_d][in_h][in_w][c]) with its padding (the input zero point) around
 * it, [frame_d][frame_h][frame_w][c], the image at (pad_d, pad_h, pad_w): frame_fill writes
 * the zero point everywhere once per call, frame_copy the interior of each image.
 * tc_conv_gemm_s8 and tc_depthwise_conv_cl_s8. */
typedef struct {
    int32_t in_d, in_h, in_w, c;
    int32_t frame_d, frame_h, frame_w;
    int32_t pad_d, pad_h, pad_w;
    int32_t zero_point;
} frame_shape_t;

static void frame_fill(const frame_shape_t *f, int8_t *frame)
{
    fill_words(frame, (int32_t)(((uint32_t)f->zero_point & 0xFFu) * 0x01010101u),
               f->frame_d * f->frame_h * f->frame_w * f->c);
}

static void frame_copy(const frame_shape_t *f, const int8_t *xn, int8_t *frame)
{
    const int32_t row_len = f->in_w * f->c;
    const int32_t frame_row = f->frame_w * f->c;
    int8_t *slice = frame + ((f->pad_d * f->frame_h + f->pad_h) * f->frame_w + f->pad_w) * f->c;
    for (int32_t d = 0; d < f->in_d; ++d, slice += f->frame_h * frame_row) {
        int8_t *row = slice;
        for (int32_t h = 0; h < f->in_h; ++h, row += frame_row, xn += row_len) {
            copy_bytes(row, xn, row_len);
        }
    }
}


/* tc_conv_gemm_s8's frame (3-D layers, 2-D stems where it pays). */
static frame_shape_t gemm_frame(const tc_conv_gemm_s8_params_t *p)
{
    const frame_shape_t f = {p->in_d, p->in_h, p->in_w, p->in_c, p->frame_d, p->frame_h,
                             p->frame_w, p->pad_d, p->pad_h, p->pad_w, p->input_zero_point};
    return f;
}

/* Requantizes the accumulators of one output channel and stores the first `valid` (the
 * general path: any shift, any clamp). */
static TC_NOINLINE void gemm_store(const tc_conv_gemm_s8_params_t *p,
                                   const tc_requant_channel_t *q, const int32_t *acc, int8_t *y,
                                   int32_t valid)
{
    for (int32_t i = 0; i < valid; ++i) {
        y[i * p->out_c] = conv_output(tc_requantize(acc[i], q), p->output_offset, p->act_min,
                                      p->act_max);
    }
}

#if TC_DSP
#define GEMM_STORE_ONE(A, ADDR)                                                               \
    "  lsl %[t], " A ", #1\n" TC_STORE_S8("%[t]", ADDR, "%[m]", "%[ra]", "%[r]", "%[h]")

/* Two pixels per statement: the constants stay in registers across both. */
static TC_ALWAYS_INLINE void gemm_store2_full(int32_t a0, int32_t a1, int32_t m, int32_t ra,
                                              int32_t r, int8_t *y, int32_t out_c)
{
    int32_t t;
    int32_t h;
    __asm__ volatile(GEMM_STORE_ONE("%[a0]", "[%[y]]")
                     GEMM_STORE_ONE("%[a1]", "[%[y], %[oc]]")
                     : [t] "=&r"(t), [h] "=&r"(h)
                     : [a0] "r"(a0), [a1] "r"(a1), [m] "r"(m), [ra] "r"(ra), [r] "r"(r),
                       [y] "r"(y), [oc] "r"(out_c)
                     : "cc", "memory");
}

/* The outputs of a full panel's channel of a narrow record q (tc_requant.h) with the clamp
 * [-128, 127]; pixel j goes to y[j * out_c]. */
static TC_ALWAYS_INLINE void gemm_store_full(const int32_t *acc, const tc_requant_channel_t *q,
                                             int8_t *y, int32_t out_c)
{
    const int32_t m = q->multiplier;
    const int32_t ra = q->narrow_round;
    const int32_t r = q->narrow_shift;
    for (int32_t i = 0; i < GEMM_PIXELS; i += 2) {
        gemm_store2_full(acc[i], acc[i + 1], m, ra, r, y + i * out_c, out_c);
    }
}
#else
static TC_ALWAYS_INLINE void gemm_store_full(const int32_t *acc, const tc_requant_channel_t *q,
                                             int8_t *y, int32_t out_c)
{
    for (int32_t i = 0; i < GEMM_PIXELS; ++i) {
        const int32_t t = (int32_t)((uint32_t)acc[i] << 1);
        y[i * out_c] = (int8_t)tc_sat_s8(tc_requantize_narrow(t, q));
    }
}
#endif

/* A layer with the clamp [-128, 127] runs each full panel through one assembly routine
 * (Thumb-2 with the DSP extension): the loop over output channels, the SMLAD dot products of
 * the 6 pixels (per group of 4 values one weight word, SXTB16 twice, LDM three times, SMLAD
 * 12 times: 18 instructions for 24 multiply-accumulates, against 13 for 16 with 4 pixels;
 * four groups per pass of the loop, which ends at the panel's end, reloaded from the stack as
 * all 14 registers are taken; a count that is not a multiple of 4 enters the four part-way,
 * at an address worked out once per call) and the output stage stay in registers, with the
 * channel state (bias, record and output pointers, counters, the output offset) in a frame on
 * the stack.  The channel loop is written twice: every record narrow (tc_requant.h), and with
 * a test per channel for the others (vww01 has some in most layers: huge biases, tiny or large
 * scales), which take tc_requantize_parts' 64-bit form (shift < 0) or a left shift and
 * tc_sat_rounding_doubling_high_mul's (shift >= 0) from sums saved on the stack.  Same
 * arithmetic as gemm_dot + gemm_store_full / gemm_store. */
typedef struct {
    int32_t groups;                 /* k_padded / 4 >= 1 */
    int32_t out_c;                  /* >= 1; also the output step between pixels */
    int32_t checked;                /* 1: some records not narrow */
    const int32_t *bias;            /* [out_c] */
    const tc_requant_channel_t *q;  /* [out_c], or [1] with q_step 0 */
    int32_t q_step;                 /* bytes from one channel's record to the next: 16 or 0 */
    int32_t output_offset;          /* for the records that are not narrow */
} gemm_full_args_t;

#if TC_DSP && defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
#define GEMM_PANEL_ASM 1
void tc_gemm_panel_full_t2(const panel_t *panel, const int8_t *w, int8_t *y,
                           const gemm_full_args_t *a);
/* The frame: */
#define GP_PANEL "0"      /* the panel */
#define GP_Y "4"          /* y of this channel */
#define GP_LEFT "8"       /* channels left */
#define GP_QSTEP "12"
#define GP_BIAS "16"      /* this channel's bias */
#define GP_Q "20"         /* this channel's record */
#define GP_PEND "24"      /* the end of the panel */
#define GP_STEP "28"      /* out_c */
#define GP_OFFSET "32"    /* output_offset */
#define GP_ENTRY "36"     /* where a channel enters the loop of four groups (Thumb bit set) */
#define GP_REM "40"       /* groups % 4 */
#define GP_SUMS "44"      /* 6 words: the sums of a channel whose record is not narrow */
#define GP_FRAME "68"
__asm__(
    ".pushsection .text.tc_gemm_panel_full_t2,\"ax\",%progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".macro tc_gp_group\n" /* one group of 4 values: r0-r5 += the 6 pixels' dot products */
    "  ldr r12, [r11], #4\n"
    "  ldm r10!, {r6, r7, r8, r9}\n"
    "  sxtb16 lr, r12\n"
    "  sxtb16 r12, r12, ror #8\n"
    "  smlad r0, r6, lr, r0\n"
    "  smlad r0, r7, r12, r0\n"
    "  smlad r1, r8, lr, r1\n"
    "  smlad r1, r9, r12, r1\n"
    "  ldm r10!, {r6, r7, r8, r9}\n"
    "  smlad r2, r6, lr, r2\n"
    "  smlad r2, r7, r12, r2\n"
    "  smlad r3, r8, lr, r3\n"
    "  smlad r3, r9, r12, r3\n"
    "  ldm r10!, {r6, r7, r8, r9}\n"
    "  smlad r4, r6, lr, r4\n"
    "  smlad r4, r7, r12, r4\n"
    "  smlad r5, r8, lr, r5\n"
    "  smlad r5, r9, r12, r5\n"
    ".endm\n"
    ".macro tc_gp_store acc, addr\n" /* the output of sum acc of a narrow record (multiplier
                                        r6, narrow_round r8, narrow_shift r9), at addr */
    "  lsl r7, \\acc, #1\n"
    TC_STORE_S8("r7", "\\addr", "r6", "r8", "r9", "lr")
    ".endm\n"
    ".macro tc_gp_wide\n" /* the next saved sum (r5) of a record with shift < 0 that is not
                             narrow (multiplier r6, shift_code r7, rounding constant r9:r8,
                             offset r0) to r4, then r4 += out_c (r12): tc_requantize_parts */
    "  ldr r1, [r5], #4\n"
    "  and r2, r1, #0x80000000\n"
    "  subs r2, r8, r2\n"
    "  sbc r3, r9, #0\n"
    "  smlal r2, r3, r1, r6\n"
    "  asr r3, r3, r7\n"
    "  add r3, r3, r0\n"
    "  ssat r3, #8, r3\n"
    "  strb r3, [r4]\n"
    "  add r4, r4, r12\n"
    ".endm\n"
    ".macro tc_gp_left\n" /* the same for shift >= 0 (shift r7):
                             tc_sat_rounding_doubling_high_mul(sum << shift), whose nudge and
                             truncation are floor((x m + 2^30) / 2^31) */
    "  ldr r1, [r5], #4\n"
    "  lsl r1, r1, r7\n"
    "  smull r2, r3, r1, r6\n"
    "  adds r2, r2, #0x40000000\n"
    "  adc r3, r3, #0\n"
    "  lsl r3, r3, #1\n"
    "  orr r3, r3, r2, lsr #31\n"
    "  add r3, r3, r0\n"
    "  ssat r3, #8, r3\n"
    "  strb r3, [r4]\n"
    "  add r4, r4, r12\n"
    ".endm\n"
    ".macro tc_gp_channels checked\n" /* every channel, testing for records that are not
                                         narrow (checked 1) */
    "  ldr r12, [sp, #" GP_REM "]\n"   /* groups % 4 = r: enter the four at group (4 - r) % 4 */
    "  adr lr, 11f\n"
    "  cmp r12, #3\n"
    "  it eq\n"
    "  adreq lr, 12f\n"
    "  cmp r12, #2\n"
    "  it eq\n"
    "  adreq lr, 13f\n"
    "  cmp r12, #1\n"
    "  it eq\n"
    "  adreq lr, 14f\n"
    "  orr lr, lr, #1\n"
    "  str lr, [sp, #" GP_ENTRY "]\n"
    "1:\n"
    "  ldr lr, [sp, #" GP_BIAS "]\n"
    "  ldr r0, [lr], #4\n"             /* the bias starts all six sums */
    "  str lr, [sp, #" GP_BIAS "]\n"
    "  mov r1, r0\n"
    "  mov r2, r0\n"
    "  mov r3, r0\n"
    "  mov r4, r0\n"
    "  mov r5, r0\n"
    "  ldr r10, [sp, #" GP_PANEL "]\n"
    "  ldr r12, [sp, #" GP_ENTRY "]\n"
    "  bx r12\n"
    "11:\n"
    "  tc_gp_group\n"
    "12:\n"
    "  tc_gp_group\n"
    "13:\n"
    "  tc_gp_group\n"
    "14:\n"
    "  tc_gp_group\n"
    "  ldr r12, [sp, #" GP_PEND "]\n"
    "  cmp r10, r12\n"
    "  bne 11b\n"
    "  ldr lr, [sp, #" GP_Q "]\n"
    "  ldm lr, {r6, r7, r8, r9}\n"     /* multiplier, shift_code, narrow_round, _shift */
    "  ldr r12, [sp, #" GP_QSTEP "]\n"
    "  add lr, lr, r12\n"
    "  str lr, [sp, #" GP_Q "]\n"
    "  ldr r10, [sp, #" GP_Y "]\n"
    "  adds r12, r10, #1\n"
    "  str r12, [sp, #" GP_Y "]\n"
    "  ldr r12, [sp, #" GP_STEP "]\n"
    ".if \\checked\n"
    "  cmp r9, #0\n"
    "  beq 6f\n"
    ".endif\n"
    "  tc_gp_store r0, \"[r10]\"\n"
    "  tc_gp_store r1, \"[r10, r12]\"\n"
    "  add r10, r10, r12, lsl #1\n"
    "  tc_gp_store r2, \"[r10]\"\n"
    "  tc_gp_store r3, \"[r10, r12]\"\n"
    "  add r10, r10, r12, lsl #1\n"
    "  tc_gp_store r4, \"[r10]\"\n"
    "  tc_gp_store r5, \"[r10, r12]\"\n"
    ".if \\checked\n"
    "  b 7f\n"
    "6:\n"                             /* not narrow: the sums to the stack, then one by one */
    "  add lr, sp, #" GP_SUMS "\n"
    "  stm lr, {r0, r1, r2, r3, r4, r5}\n"
    "  mov r5, lr\n"
    "  mov r4, r10\n"
    "  ldr r0, [sp, #" GP_OFFSET "]\n"
    "  cmp r7, #0\n"
    "  blt 10f\n"
    "  sub r1, r7, #1\n"               /* the rounding constant 2^30 + 2^(31 + code), 64 bits */
    "  mov r9, #1\n"
    "  lsl r9, r9, r1\n"               /* high word 2^(code - 1) (0 for code 0: LSL 255) */
    "  add r1, r7, #31\n"
    "  mov r8, #1\n"
    "  lsl r8, r8, r1\n"               /* 2^31 for code 0, else 0 (LSL >= 32) */
    "  add r8, r8, #0x40000000\n"      /* low word */
    "  tc_gp_wide\n"
    "  tc_gp_wide\n"
    "  tc_gp_wide\n"
    "  tc_gp_wide\n"
    "  tc_gp_wide\n"
    "  tc_gp_wide\n"
    "  b 7f\n"
    "10:\n"                            /* shift >= 0 */
    "  mvn r7, r7\n"                   /* -1 - code */
    "  tc_gp_left\n"
    "  tc_gp_left\n"
    "  tc_gp_left\n"
    "  tc_gp_left\n"
    "  tc_gp_left\n"
    "  tc_gp_left\n"
    "7:\n"
    ".endif\n"
    "  ldr r12, [sp, #" GP_LEFT "]\n"
    "  subs r12, r12, #1\n"
    "  str r12, [sp, #" GP_LEFT "]\n"
    "  bne 1b\n"
    "  b 9f\n"
    ".endm\n"
    ".global tc_gemm_panel_full_t2\n"
    ".type tc_gemm_panel_full_t2, %function\n"
    ".thumb_func\n"
    "tc_gemm_panel_full_t2:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #" GP_FRAME "\n"
    "  str r0, [sp, #" GP_PANEL "]\n"
    "  str r2, [sp, #" GP_Y "]\n"
    "  mov r11, r1\n"                  /* weights: the rows follow each other */
    "  ldm r3, {r4, r5, r6, r7, r8, r9, r10}\n" /* groups, out_c, checked, bias, q, q_step,
                                                  output_offset */
    "  str r5, [sp, #" GP_LEFT "]\n"
    "  str r9, [sp, #" GP_QSTEP "]\n"
    "  str r7, [sp, #" GP_BIAS "]\n"
    "  str r8, [sp, #" GP_Q "]\n"
    "  mov r12, #48\n"                 /* a group's 6 pixels: 48 bytes of panel */
    "  mla r12, r4, r12, r0\n"
    "  str r12, [sp, #" GP_PEND "]\n"
    "  and r12, r4, #3\n"
    "  str r12, [sp, #" GP_REM "]\n"
    "  str r5, [sp, #" GP_STEP "]\n"
    "  str r10, [sp, #" GP_OFFSET "]\n"
    "  cmp r6, #0\n"
    "  bne 8f\n"
    "  tc_gp_channels 0\n"
    "8:\n"
    "  tc_gp_channels 1\n"
    "9:\n"
    "  add sp, sp, #" GP_FRAME "\n"
    "  pop {r4-r11, pc}\n"
    ".size tc_gemm_panel_full_t2, .-tc_gemm_panel_full_t2\n"
    ".purgem tc_gp_group\n"
    ".purgem tc_gp_store\n"
    ".purgem tc_gp_channels\n"
    ".purgem tc_gp_wide\n"
    ".purgem tc_gp_left\n"
    ".popsection\n");
#else
#define GEMM_PANEL_ASM 0
#endif

/* Fills *a and returns 1 when the whole layer can take tc_gemm_panel_full_t2 (checked once per
 * call: the clamp [-128, 127]). */
static int gemm_full_args(const tc_conv_gemm_s8_params_t *p, gemm_full_args_t *a)
{
    const int32_t records = p->per_channel ? p->out_c : 1;
    if (!GEMM_PANEL_ASM || p->act_min != INT8_MIN || p->act_max != INT8_MAX) {
        return 0;
    }
    int32_t wide = 0;
    for (int32_t i = 0; i < records; ++i) {
        wide |= p->requant[i].narrow_shift == 0;
    }
    a->checked = wide;
    a->output_offset = p->output_offset;
    a->groups = p->k_padded / 4;
    a->out_c = p->out_c;
    a->bias = p->bias;
    a->q = p->requant;
    a->q_step = p->per_channel ? (int32_t)sizeof(tc_requant_channel_t) : 0;
    return 1;
}

/* Every output channel of the panel's first `valid` pixels (outputs out_c apart from y on):
 * channels of a full panel with narrow records and the clamp [-128, 127] take the 32-bit
 * requantization in registers, the others the general output stage. */
static TC_NOINLINE void gemm_panel(const tc_conv_gemm_s8_params_t *p, const panel_t *panel,
                                   const int8_t *w, int8_t *y, int32_t valid)
{
    const int32_t groups = p->k_padded / 4;
    const int32_t out_c = p->out_c;
    const int32_t full_range = p->act_min == INT8_MIN && p->act_max == INT8_MAX;
    const tc_requant_channel_t *q = p->requant;
    const int32_t q_step = p->per_channel;
    const int32_t *bias = p->bias;
    for (int32_t oc = 0; oc < out_c; ++oc, q += q_step, ++y, w += p->k_padded) {
        int32_t acc[GEMM_PIXELS];
        for (int32_t i = 0; i < GEMM_PIXELS; ++i) {
            acc[i] = bias[oc];
        }
        gemm_dot(panel, w, groups, valid, acc);
        if (valid == GEMM_PIXELS && full_range && q->narrow_shift > 0) {
            gemm_store_full(acc, q, y, out_c);
        } else {
            gemm_store(p, q, acc, y, valid);
        }
    }
}

/* All output channels of the panel's first `valid` pixels (outputs at y, out_c apart); full:
 * gemm_full_args's, or NULL. */
static TC_ALWAYS_INLINE void gemm_outputs(const tc_conv_gemm_s8_params_t *p,
                                          const panel_t *panel, const int8_t *w, int8_t *y,
                                          int32_t valid, const gemm_full_args_t *full)
{
#if GEMM_PANEL_ASM
    if (valid == GEMM_PIXELS && full != NULL) {
        tc_gemm_panel_full_t2(panel, w, y, full);
        return;
    }
#else
    (void)full;
#endif
    gemm_panel(p, panel, w, y, valid);
}

/* The output positions [lo, hi) along one axis whose windows lie wholly inside the input
 * (the kernel's k taps dilation apart from o * stride - pad on). */
typedef struct {
    int32_t lo, hi;
} span_t;

static span_t inside_span(int32_t out, int32_t in, int32_t k, int32_t stride, int32_t dilation,
                          int32_t pad)
{
    const int32_t last = in - 1 - (k - 1) * dilation + pad; /* o * stride <= last */
    span_t s;
    s.lo = (pad + stride - 1) / stride;
    s.hi = last < 0 ? 0 : last / stride + 1;
    s.hi = s.hi < out ? s.hi : out;
    s.lo = s.lo < s.hi ? s.lo : s.hi;
    return s;
}

/* The driver, specialised for layers read from x (framed 0, 2-D) and from the frame (3-D and
 * framed 2-D).  Windows wholly inside x, and every window of the frame, are read as runs
 * (window_from_runs); the others of x value by value (gemm_window). */
static TC_ALWAYS_INLINE void gemm_run(const tc_conv_gemm_s8_params_t *p, const int8_t *x,
                                      const int8_t *w, int8_t *y, void *scratch, int framed)
{
    panel_t *panel = (panel_t *)scratch;
    int8_t *col = (int8_t *)scratch + (size_t)p->k_padded * 2u * GEMM_PIXELS;
    const int32_t pixels = p->batch * p->out_d * p->out_h * p->out_w;
    const int32_t in_c = p->in_c;
    const int32_t image = p->in_d * p->in_h * p->in_w * in_c;
    int8_t *frame = col + (in_c % 4 != 0 ? p->k_padded + 4 : 0);
    gemm_full_args_t args;
    const gemm_full_args_t *full = gemm_full_args(p, &args) ? &args : NULL;
    const window_runs_t runs = framed ? window_runs(p, p->frame_w, p->frame_h)
                                      : window_runs(p, p->in_w, p->in_h);
    /* x's windows as runs: those inside the image, if their rows are runs that may be read
     * whole (no word read past the image) */
    const int32_t as_runs = framed || (p->dilation_w == 1 &&
                                       (runs.run % 4 == 0 || runs.run > 4));
    const span_t inside_h = framed ? (span_t){0, p->out_h}
                                   : inside_span(p->out_h, p->in_h, p->k_h, p->stride_h,
                                                 p->dilation_h, p->pad_h);
    const span_t inside_w = framed ? (span_t){0, p->out_w}
                                   : inside_span(p->out_w, p->in_w, p->k_w, p->stride_w,
                                                 p->dilation_w, p->pad_w);
    const int32_t step_w = p->stride_w * in_c;
    const int32_t row_w = framed ? p->frame_w : p->in_w;
    if (framed) {
        const frame_shape_t f = gemm_frame(p);
        frame_fill(&f, frame);
    }
    int32_t n = 0;
    int32_t od = 0;
    int32_t oh = 0;
    int32_t ow = 0;
    const int8_t *image_n = framed ? frame : x;
    int32_t row_off = 0; /* the window of (od, oh, ow) starts at image_n + row_off + ow * step_w */
    int32_t row_in = 0;  /* row oh's windows in inside_w are read as runs */
    for (int32_t p0 = 0; p0 < pixels; p0 += GEMM_PIXELS) {
        const int32_t valid = pixels - p0 < GEMM_PIXELS ? pixels - p0 : GEMM_PIXELS;
        for (int32_t i = 0; i < valid; ++i) {
            panel_t *slot = panel + i * PANEL_SLOT;
            if (ow == 0) { /* a new output row */
                if (framed && od == 0 && oh == 0) { /* the first pixel of image n */
                    const frame_shape_t f = gemm_frame(p);
                    frame_copy(&f, x + n * image, frame);
                }
                if (!framed) {
                    image_n = x + n * image;
                }
                row_off = framed ? (od * p->stride_d * p->frame_h + oh * p->stride_h) *
                                       p->frame_w * in_c
                                 : ((oh * p->stride_h - p->pad_h) * row_w - p->pad_w) * in_c;
                row_in = as_runs && oh >= inside_h.lo && oh < inside_h.hi;
            }
            if (row_in && ow >= inside_w.lo && ow < inside_w.hi) {
                window_from_runs(&runs, image_n + row_off + ow * step_w, slot, col);
            } else {
                gemm_window(p, image_n, oh, ow, slot, col);
            }
            if (++ow == p->out_w) { /* the next pixel in the order batch, d, h, w */
                ow = 0;
                if (++oh == p->out_h) {
                    oh = 0;
                    if (!framed || ++od == p->out_d) { /* 2-D layers: out_d = 1 */
                        od = 0;
                        ++n;
                    }
                }
            }
        }
        /* past the last pixel the slots keep any values: computed, never stored */
        gemm_outputs(p, panel, w, y + p0 * p->out_c, valid, full);
    }
}

void tc_conv_gemm_1x1_s8(const tc_conv_gemm_s8_params_t *p, const int8_t *x, const int8_t *w,
                         int8_t *y, void *scratch)
{
    panel_t *panel = (panel_t *)scratch;
    const int32_t pixels = p->batch * p->out_h * p->out_w;
    gemm_full_args_t args;
    const gemm_full_args_t *full = gemm_full_args(p, &args) ? &args : NULL;
    for (int32_t p0 = 0; p0 < pixels; p0 += GEMM_PIXELS, x += GEMM_PIXELS * p->in_c) {
        const int32_t valid = pixels - p0 < GEMM_PIXELS ? pixels - p0 : GEMM_PIXELS;
        for (int32_t i = 0; i < valid; ++i) {
            panel_expand_inline(x + i * p->in_c, p->in_c / 4, panel + i * PANEL_SLOT);
        }
        gemm_outputs(p, panel, w, y + p0 * p->out_c, valid, full);
    }
}

void tc_conv_gemm_s8(const tc_conv_gemm_s8_params_t *p, const int8_t *x, const int8_t *w,
                     int8_t *y, void *scratch)
{
    if (p->frame_d > 0) {
        gemm_run(p, x, w, y, scratch, 1);
    } else {
        gemm_run(p, x, w, y, scratch, 0);
    }
}

/* ---- tc_depthwise_conv_planar_s8 ---------------------------------------------------------- */

/* The number of 4-value groups of one channel's weights (k_d * k_h rows of 2 * k_pairs). */
static int32_t planar_weight_groups(const tc_depthwise_conv_planar_s8_params_t *p)
{
    return (p->k_d * p->k_h * p->k_pairs + 1) / 2;
}

size_t tc_depthwise_conv_planar_s8_scratch_size(const tc_depthwise_conv_planar_s8_params_t *p)
{
    const size_t plane = (size_t)p->planes *
                         (((size_t)p->plane_d * (size_t)p->plane_h * (size_t)p->plane_w + 2u +
                           1u) / 2u * 4u);
    const size_t weights = (size_t)planar_weight_groups(p) * 8u;
    return plane + weights + (size_t)p->chunk_rows * (size_t)p->out_w * sizeof(int32_t);
}

/* acc + x[0] * w[0] + x[1] * w[1]: one SMLAD (any alignment of x: the plane's pairs start at
 * any value). */
static TC_ALWAYS_INLINE int32_t pair_mac(const int16_t *x, const int16_t *w, int32_t acc)
{
#if TC_DSP
    return __smlad(tc_load_s32(x), tc_load_s32(w), acc);
#else
    return acc + (int32_t)x[0] * w[0] + (int32_t)x[1] * w[1];
#endif
}

/* The dot product of a window (front top-left value win, plane rows plane_w apart, depth
 * slices slice apart) with one channel's weights (k_d * k_h rows of k_pairs int16 pairs). */
static int32_t planar_window(const tc_depthwise_conv_planar_s8_params_t *p, const int16_t *win,
                             const int16_t *w, int32_t acc)
{
    const int32_t slice_step = p->plane_h * p->plane_w;
    for (int32_t kd = 0; kd < p->k_d; ++kd, win += slice_step) {
        const int16_t *row = win;
        for (int32_t kh = 0; kh < p->k_h; ++kh, row += p->plane_w) {
            for (int32_t j = 0; j < p->k_pairs; ++j, w += 2) {
                acc = pair_mac(row + 2 * j, w, acc);
            }
        }
    }
    return acc;
}

/* The window sums of `rows` output rows of one channel (any kernel; row0: the first row's
 * first window) into acc, four neighbouring outputs at a time: each weight pair is loaded
 * once for four SMLADs (the 3x3 kernels have tc_planar_rows_3x3_t2). */
static void planar_rows(const tc_depthwise_conv_planar_s8_params_t *p, const int16_t *row0,
                        const int16_t *wc, int32_t rows, int32_t *acc)
{
    const int32_t s = p->stride_w;
    const int32_t slice_step = p->plane_h * p->plane_w;
    for (int32_t r = 0; r < rows; ++r, row0 += p->stride_h * p->plane_w) {
        int32_t ow = 0;
        for (; ow + 4 <= p->out_w; ow += 4, acc += 4) {
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            const int16_t *w = wc;
            for (int32_t kd = 0; kd < p->k_d; ++kd) {
                for (int32_t kh = 0; kh < p->k_h; ++kh) {
                    const int16_t *x = row0 + ow * s + kd * slice_step + kh * p->plane_w;
                    for (int32_t j = 0; j < p->k_pairs; ++j, w += 2, x += 2) {
                        a0 = pair_mac(x, w, a0);
                        a1 = pair_mac(x + s, w, a1);
                        a2 = pair_mac(x + 2 * s, w, a2);
                        a3 = pair_mac(x + 3 * s, w, a3);
                    }
                }
            }
            acc[0] = a0;
            acc[1] = a1;
            acc[2] = a2;
            acc[3] = a3;
        }
        for (; ow < p->out_w; ++ow) {
            *acc++ = planar_window(p, row0 + ow * s, wc, 0);
        }
    }
}

/* All outputs of one channel, any kernel (the general requantization). */
static void planar_channel(const tc_depthwise_conv_planar_s8_params_t *p,
                           const int16_t *plane, const int16_t *wc, int32_t bias,
                           const tc_requant_channel_t *q, int8_t *yc)
{
    for (int32_t od = 0; od < p->out_d; ++od) {
        const int16_t *slice = plane + od * p->stride_d * p->plane_h * p->plane_w;
        int8_t *ys = yc + od * p->out_h * p->out_w * p->c;
        for (int32_t oh = 0; oh < p->out_h; ++oh) {
            const int16_t *row = slice + oh * p->stride_h * p->plane_w;
            int8_t *y = ys + oh * p->y_row;
            for (int32_t ow = 0; ow < p->out_w; ++ow, y += p->y_col) {
                const int32_t acc = planar_window(p, row + ow * p->stride_w, wc, bias);
                *y = conv_output(tc_requantize(acc, q), p->output_offset, p->act_min,
                                 p->act_max);
            }
        }
    }
}

#if TC_DSP && defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
/* Thumb-2 with the DSP extension: the 3x3 path of tc_depthwise_conv_planar_s8 (shift < 0,
 * stride_w 1 or 2, any k_d), in two assembly routines that keep their constants in registers.
 *
 * tc_planar_rows_3x3_t2: the window sums of one depth slice of the kernel over rows of
 * outputs, stored into acc (the first slice) or added to it (the others), two neighbouring
 * outputs at a time.  With w01 = (w0, w1) and w12 = (w1, w2) of a kernel row (16-bit halves,
 * bottom first), A, B, C the words at x[s j], x[s j + 2], x[s j + 4]:
 *   stride 1: out[j] += A.w01 (SMLAD) + B.bottom * w12.top (SMLABT),
 *             out[j+1] += A.top * w01.bottom (SMLATB) + B.w12 (SMLAD): two loads per row;
 *   stride 2: out[j] += A.w01 + B.bottom * w12.top, out[j+1] += B.w01 + C.bottom * w12.top:
 *             three loads per row,
 * 22 (stride 1) or 25 instructions per pair (one more when adding), against 29 for two
 * outputs of six loads and six SMLADs each.  An odd row's last output takes
 * A.w01 + B.bottom * w12.top (B.top, one value past its window, is read but not used; the
 * plane has two values of slack at its end).  Registers: r0-r2 the kernel rows' pointers, r3
 * acc, r4-r9 w01 and w12 of the three kernel rows, r10 and r11 the sums, r12 and lr the words
 * in flight; the stack holds the pair loop's end, the row gap, the pairs' acc bytes and the
 * end of acc.  The row loop is written for each stride, parity of out_w and mode (a table
 * branch picks one of the eight). */
typedef struct {
    int32_t plane_w;     /* bytes between the kernel rows' first values */
    int32_t gap;         /* bytes from a row's end of pairs to the next output row's start */
    int32_t out_w;       /* >= 1 */
    int32_t rows;        /* >= 1 */
    const int16_t *wc;   /* the slice's weights: per kernel row w0, w1, w2, 0 */
    int32_t stride_w;    /* 1 or 2 */
    int32_t add;         /* 0: the sums are stored into acc, 1: added to it */
} planar_rows_args_t;

void tc_planar_rows_3x3_t2(const int16_t *row0, const planar_rows_args_t *a, int32_t *acc);
__asm__(
    ".pushsection .text.tc_planar_rows_3x3_t2,\"ax\",%progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".macro tc_pr_mac acc, x, w, first, set, add\n" /* acc = set(x, w) or add(x, w, acc) */
    ".if \\first\n"
    "  \\set \\acc, \\x, \\w\n"
    ".else\n"
    "  \\add \\acc, \\x, \\w, \\acc\n"
    ".endif\n"
    ".endm\n"
    ".macro tc_pr_pair row, w01, w12, first, stride\n" /* r10, r11 += one kernel row of a pair */
    ".if \\stride == 1\n"
    "  ldr r12, [\\row], #4\n"
    "  ldr lr, [\\row]\n"
    "  tc_pr_mac r10, r12, \\w01, \\first, smuad, smlad\n"
    "  tc_pr_mac r11, r12, \\w01, \\first, smultb, smlatb\n"
    "  smlabt r10, lr, \\w12, r10\n"
    "  smlad r11, lr, \\w12, r11\n"
    ".else\n"
    "  ldr r12, [\\row], #8\n"
    "  ldr lr, [\\row, #-4]\n"
    "  tc_pr_mac r10, r12, \\w01, \\first, smuad, smlad\n"
    "  smlabt r10, lr, \\w12, r10\n"
    "  tc_pr_mac r11, lr, \\w01, \\first, smuad, smlad\n"
    "  ldr r12, [\\row]\n"
    "  smlabt r11, r12, \\w12, r11\n"
    ".endif\n"
    ".endm\n"
    ".macro tc_pr_one row, w01, w12, first\n" /* r10 += one kernel row of a single output */
    "  ldr r12, [\\row]\n"
    "  ldr lr, [\\row, #4]\n"
    "  tc_pr_mac r10, r12, \\w01, \\first, smuad, smlad\n"
    "  smlabt r10, lr, \\w12, r10\n"
    ".endm\n"
    ".macro tc_pr_rows stride, odd, add\n" /* every output row, then to the exit */
    "1:\n"
    "  ldr r12, [sp, #8]\n"
    "  add r12, r3, r12\n"
    "  str r12, [sp, #0]\n"
    "  cmp r3, r12\n"
    "  beq 3f\n"
    "2:\n"
    ".if \\add\n"
    "  ldrd r10, r11, [r3]\n"
    ".endif\n"
    "  tc_pr_pair r0, r4, r5, 1-\\add, \\stride\n"
    "  tc_pr_pair r1, r6, r7, 0, \\stride\n"
    "  tc_pr_pair r2, r8, r9, 0, \\stride\n"
    "  stmia r3!, {r10, r11}\n"
    "  ldr r12, [sp, #0]\n"
    "  cmp r3, r12\n"
    "  bne 2b\n"
    "3:\n"
    ".if \\odd\n"
    ".if \\add\n"
    "  ldr r10, [r3]\n"
    ".endif\n"
    "  tc_pr_one r0, r4, r5, 1-\\add\n"
    "  tc_pr_one r1, r6, r7, 0\n"
    "  tc_pr_one r2, r8, r9, 0\n"
    "  str r10, [r3], #4\n"
    ".endif\n"
    "  ldr r12, [sp, #4]\n"
    "  add r0, r0, r12\n"
    "  add r1, r1, r12\n"
    "  add r2, r2, r12\n"
    "  ldr r12, [sp, #12]\n"
    "  cmp r3, r12\n"
    "  bne 1b\n"
    "  b 9f\n"
    ".endm\n"
    ".global tc_planar_rows_3x3_t2\n"
    ".type tc_planar_rows_3x3_t2, %function\n"
    ".thumb_func\n"
    "tc_planar_rows_3x3_t2:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #16\n"
    "  ldm r1, {r4, r5, r6, r7, r8, r11, r12}\n" /* plane_w, gap, out_w, rows, wc, stride_w, add */
    "  mov r3, r2\n"
    "  add r1, r0, r4\n"
    "  add r2, r1, r4\n"
    "  str r5, [sp, #4]\n"
    "  lsr r9, r6, #1\n"
    "  lsl r9, r9, #3\n"
    "  str r9, [sp, #8]\n"                /* the pairs' acc bytes per row */
    "  mul r7, r7, r6\n"
    "  add r7, r3, r7, lsl #2\n"
    "  str r7, [sp, #12]\n"               /* the end of acc */
    "  and r10, r6, #1\n"
    "  add r10, r10, r12, lsl #1\n"
    "  cmp r11, #2\n"
    "  it eq\n"
    "  addeq r10, r10, #4\n"              /* the variant: 4 * (stride_w - 1) + 2 * add + odd */
    "  ldr r4, [r8, #0]\n"
    "  ldr r5, [r8, #2]\n"
    "  ldr r6, [r8, #8]\n"
    "  ldr r7, [r8, #10]\n"
    "  ldr r9, [r8, #18]\n"
    "  ldr r8, [r8, #16]\n"
    "  tbh [pc, r10, lsl #1]\n"
    "0:\n"
    "  .hword (10f - 0b) / 2, (11f - 0b) / 2, (12f - 0b) / 2, (13f - 0b) / 2\n"
    "  .hword (14f - 0b) / 2, (15f - 0b) / 2, (16f - 0b) / 2, (17f - 0b) / 2\n"
    "10:\n"
    "  tc_pr_rows 1, 0, 0\n"
    "11:\n"
    "  tc_pr_rows 1, 1, 0\n"
    "12:\n"
    "  tc_pr_rows 1, 0, 1\n"
    "13:\n"
    "  tc_pr_rows 1, 1, 1\n"
    "14:\n"
    "  tc_pr_rows 2, 0, 0\n"
    "15:\n"
    "  tc_pr_rows 2, 1, 0\n"
    "16:\n"
    "  tc_pr_rows 2, 0, 1\n"
    "17:\n"
    "  tc_pr_rows 2, 1, 1\n"
    "9:\n"
    "  add sp, sp, #16\n"
    "  pop {r4-r11, pc}\n"
    ".size tc_planar_rows_3x3_t2, .-tc_planar_rows_3x3_t2\n"
    ".purgem tc_pr_mac\n"
    ".purgem tc_pr_pair\n"
    ".purgem tc_pr_one\n"
    ".purgem tc_pr_rows\n"
    ".popsection\n");

/* tc_planar_store_full_t2: the output stage of a narrow record (tc_requant.h) with the clamp
 * [-128, 127], two outputs per iteration: per output an ADD of the doubled bias and the
 * doubled sum (t = 2 * (acc + bias)) and TC_STORE_S8's SMMLAR, ADD, ASR, SSAT, STRB, per pair
 * an LDRD, the output pointer's step and the loop test (8 instructions per output against
 * 13.3 for the C of planar_store_clamp).  Registers: r0 acc, r1 y, r2 step, r3 twice the
 * bias, r4 multiplier, r5 narrow_round, r6 narrow_shift, r7 and r8 the doubled sums, r9 and
 * r10 the sums, r11 temporary, lr the end of acc. */
typedef struct {
    int32_t step;                   /* bytes between outputs */
    int32_t bias2;                  /* twice the channel's bias */
    int32_t multiplier;             /* the channel's narrow tc_requant_channel_t */
    int32_t narrow_round, narrow_shift;
} planar_store_args_t;

void tc_planar_store_full_t2(const int32_t *acc, const int32_t *end, int8_t *y,
                             const planar_store_args_t *a);
__asm__(
    ".pushsection .text.tc_planar_store_full_t2,\"ax\",%progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".macro tc_pst_one a, t, dst\n" /* the output of sum a into dst (t: its double) */
    "  add \\t, r3, \\a, lsl #1\n"
    TC_STORE_S8("\\t", "\\dst", "r4", "r5", "r6", "r11")
    ".endm\n"
    ".global tc_planar_store_full_t2\n"
    ".type tc_planar_store_full_t2, %function\n"
    ".thumb_func\n"
    "tc_planar_store_full_t2:\n"
    "  push {r4-r11, lr}\n"
    "  mov lr, r1\n"
    "  mov r1, r2\n"
    "  ldm r3, {r2, r3, r4, r5, r6}\n"
    "  sub r12, lr, r0\n"
    "  tst r12, #4\n"
    "  beq 1f\n"                          /* an odd count: one output first */
    "  ldr r9, [r0], #4\n"
    "  tc_pst_one r9, r7, [r1]\n"
    "  add r1, r1, r2\n"
    "1:\n"
    "  cmp r0, lr\n"
    "  beq 3f\n"
    "2:\n"
    "  ldrd r9, r10, [r0], #8\n"
    "  tc_pst_one r9, r7, [r1]\n"
    "  tc_pst_one r10, r8, \"[r1, r2]\"\n"
    "  add r1, r1, r2, lsl #1\n"
    "  cmp r0, lr\n"
    "  bne 2b\n"
    "3:\n"
    "  pop {r4-r11, pc}\n"
    ".size tc_planar_store_full_t2, .-tc_planar_store_full_t2\n"
    ".purgem tc_pst_one\n"
    ".popsection\n");

#define PLANAR_ASM 1
#else
#define PLANAR_ASM 0
#endif

/* Adds the bias to count window sums of a channel with shift < 0 and requantizes them into y
 * (count outputs, step apart) with the clamp [act_min, act_max] (tc_planar_store_full_t2
 * does the full range [-128, 127]). */
static TC_NOINLINE void planar_store_clamp(const int32_t *acc, int32_t count, int32_t bias,
                                           const tc_requant_channel_t *q, int32_t offset,
                                           int32_t act_min, int32_t act_max, int8_t *y,
                                           int32_t step)
{
    const int64_t round = tc_requant_round(q);
    for (const int32_t *end = acc + count; acc != end; ++acc, y += step) {
        const int32_t v =
            tc_requantize_parts(*acc + bias, round, q->multiplier, q->shift_code) + offset;
        *y = (int8_t)tc_clamp_s32(v, act_min, act_max);
    }
}

/* Requantizes count window sums of a channel with shift < 0 into y, y_col apart. */
static TC_ALWAYS_INLINE void planar_store(const tc_depthwise_conv_planar_s8_params_t *p,
                                          const int32_t *acc, int32_t count, int32_t bias,
                                          const tc_requant_channel_t *q, int8_t *y)
{
#if PLANAR_ASM
    if (p->act_min == INT8_MIN && p->act_max == INT8_MAX && q->narrow_shift > 0) {
        const planar_store_args_t a = {p->y_col, (int32_t)((uint32_t)bias << 1), q->multiplier,
                                       q->narrow_round, q->narrow_shift};
        tc_planar_store_full_t2(acc, acc + count, y, &a);
        return;
    }
#endif
    planar_store_clamp(acc, count, bias, q, p->output_offset, p->act_min, p->act_max, y,
                       p->y_col);
}

/* planar_store for the rows of a transposed layer's chunk: a run of out_w outputs per row,
 * y_row apart. */
static TC_NOINLINE void planar_store_rows(const tc_depthwise_conv_planar_s8_params_t *p,
                                          const int32_t *acc, int32_t rows, int32_t bias,
                                          const tc_requant_channel_t *q, int8_t *y)
{
    for (; rows > 0; --rows, acc += p->out_w, y += p->y_row) {
        planar_store(p, acc, p->out_w, bias, q, y);
    }
}

/* All outputs of one channel with shift < 0, chunk_rows output rows of one output depth at a
 * time: first their window sums (kernel_3x3, a constant: tc_planar_rows_3x3_t2, one depth
 * slice of the kernel after the other, the weights in registers; else planar_rows), then
 * their output stage (its constants in registers). */
static TC_ALWAYS_INLINE void planar_channel_rows(const tc_depthwise_conv_planar_s8_params_t *p,
                                                const int16_t *plane, const int16_t *wc,
                                                int32_t bias, const tc_requant_channel_t *q,
                                                int8_t *yc, int32_t *acc, int kernel_3x3)
{
    const int32_t row_step = p->stride_h * p->plane_w;
    const int32_t slice_step = p->plane_h * p->plane_w;
    for (int32_t od = 0; od < p->out_d; ++od) {
        const int16_t *slice = plane + od * p->stride_d * slice_step;
        for (int32_t oh = 0; oh < p->out_h; oh += p->chunk_rows) {
            const int32_t rows = p->out_h - oh < p->chunk_rows ? p->out_h - oh : p->chunk_rows;
            const int32_t count = rows * p->out_w;
#if PLANAR_ASM
            if (kernel_3x3) {
                for (int32_t kd = 0; kd < p->k_d; ++kd) {
                    const planar_rows_args_t a = {
                        2 * p->plane_w, 2 * (row_step - p->stride_w * (p->out_w & ~1)),
                        p->out_w, rows, wc + kd * 12, p->stride_w, kd > 0};
                    tc_planar_rows_3x3_t2(slice + kd * slice_step + oh * row_step, &a, acc);
                }
            } else
#endif
            {
                (void)kernel_3x3;
                planar_rows(p, slice + oh * row_step, wc, rows, acc);
            }
            int8_t *y = yc + od * p->out_h * p->out_w * p->c + oh * p->y_row;
            if (p->y_row == p->out_w * p->y_col) { /* the chunk's outputs: one run in y */
                planar_store(p, acc, count, bias, q, y);
            } else {
                planar_store_rows(p, acc, rows, bias, q, y);
            }
        }
    }
}

/* Copies one input row of channel c (src: its first value, values step apart) into dst;
 * returns src past the row. */
static const int8_t *planar_load_row(const int8_t *src, int32_t step, int32_t in_w, int16_t *d)
{
    for (const int16_t *end = d + (in_w & ~1); d != end; d += 2, src += 2 * step) {
#if TC_DSP
        tc_store_s32(d, tc_pkhbt16(src[0], src[step])); /* two values, one store */
#else
        d[0] = src[0];
        d[1] = src[step];
#endif
    }
    if (in_w & 1) {
        *d = *src;
        src += step;
    }
    return src;
}

/* Copies channel c of image xn into the plane's interior (pixels x_col apart in x, x_gap
 * more from a row's end to the next row). */
static TC_NOINLINE void planar_load(const tc_depthwise_conv_planar_s8_params_t *p,
                                    const int8_t *xn, int32_t c, int16_t *plane)
{
    const int8_t *src = xn + c;
    const int32_t step = p->x_col;
    const int32_t gap = p->x_gap;
    const int32_t in_w = p->in_w;
    const int32_t plane_w = p->plane_w;
    const int32_t slice_rows = p->in_h * plane_w;
    const int32_t slice_gap = (p->plane_h - p->in_h) * plane_w;
    int16_t *dst = plane + (p->pad_d * p->plane_h + p->pad_h) * plane_w + p->pad_w;
    for (int32_t d = 0; d < p->in_d; ++d, dst += slice_gap) {
        for (const int16_t *end = dst + slice_rows; dst != end; dst += plane_w) {
            src = planar_load_row(src, step, in_w, dst) + gap;
        }
    }
}

/* Copies channels c .. c + 3 of image xn into the interiors of four planes, `stride` int16
 * apart (pixels x_col apart in x, x_gap more from a row's end to the next row): per pair of
 * pixels one word of four channels each, split into the four planes' pairs (SXTB16 and PKH on
 * the DSP build). */
static TC_NOINLINE void planar_load4(const tc_depthwise_conv_planar_s8_params_t *p,
                                     const int8_t *xn, int32_t c, int16_t *plane,
                                     int32_t stride)
{
    const int8_t *src = xn + c;
    const int32_t step = p->x_col;
    const int32_t gap = p->x_gap;
    const int32_t in_w = p->in_w;
    const int32_t plane_w = p->plane_w;
    const int32_t slice_gap = (p->plane_h - p->in_h) * plane_w;
    int16_t *dst = plane + (p->pad_d * p->plane_h + p->pad_h) * plane_w + p->pad_w;
    for (int32_t d = 0; d < p->in_d; ++d, dst += slice_gap) {
        for (int32_t h = 0; h < p->in_h; ++h, dst += plane_w, src += gap) {
            int16_t *d0 = dst;
            for (const int16_t *end = dst + (in_w & ~1); d0 != end; d0 += 2, src += 2 * step) {
#if TC_DSP
                const int32_t a = tc_load_s32(src), b = tc_load_s32(src + step);
                const int32_t a02 = __sxtb16(a), b02 = __sxtb16(b);
                const int32_t a13 = tc_sxtb16_ror8(a), b13 = tc_sxtb16_ror8(b);
                tc_store_s32(d0, tc_pkhbt16(a02, b02));
                tc_store_s32(d0 + stride, tc_pkhbt16(a13, b13));
                tc_store_s32(d0 + 2 * stride, tc_pkhtb16(b02, a02));
                tc_store_s32(d0 + 3 * stride, tc_pkhtb16(b13, a13));
#else
                for (int32_t k = 0; k < 4; ++k) {
                    d0[k * stride] = src[k];
                    d0[k * stride + 1] = src[step + k];
                }
#endif
            }
            if (in_w & 1) {
#if TC_DSP
                const int32_t a = tc_load_s32(src);
                const int32_t a02 = __sxtb16(a), a13 = tc_sxtb16_ror8(a);
                d0[0] = (int16_t)a02;
                d0[stride] = (int16_t)a13;
                d0[2 * stride] = (int16_t)(a02 >> 16);
                d0[3 * stride] = (int16_t)(a13 >> 16);
#else
                for (int32_t k = 0; k < 4; ++k) {
                    d0[k * stride] = src[k];
                }
#endif
                src += step;
            }
        }
    }
}

/* One channel's weights (groups of 4 int8 in sxtb16 order) as int16 in natural order. */
static void planar_weights(const int8_t *wc, int32_t groups, int16_t *dst)
{
    for (const int8_t *end = wc + 4 * groups; wc != end; wc += 4, dst += 4) {
#if TC_DSP
        int32_t lo;
        int32_t hi;
        tc_expand_word_dsp(wc, &lo, &hi);
        tc_store_s32(dst, lo);
        tc_store_s32(dst + 2, hi);
#else
        tc_expand_s8x4(wc, dst);
#endif
    }
}

void tc_depthwise_conv_planar_s8(const tc_depthwise_conv_planar_s8_params_t *p,
                                 const int8_t *x, const int8_t *w, int8_t *y, void *scratch)
{
    int16_t *planes = (int16_t *)scratch;
    const int32_t channels = p->c;
    const int32_t plane_size = p->plane_d * p->plane_h * p->plane_w + 2;
    const int32_t plane_stride = (plane_size + 1) / 2 * 2; /* int16, whole words */
    int16_t *wc = planes + p->planes * plane_stride;
    const int32_t groups = planar_weight_groups(p);
    int32_t *row_acc = (int32_t *)(wc + 4 * groups);
    /* tc_planar_rows_3x3_t2's kernels (Thumb-2 with the DSP extension) */
    const int kernel_3x3 = PLANAR_ASM && p->k_h == 3 && p->k_pairs == 2 && p->stride_w <= 2;
    /* the padding (the interior is overwritten), two values per word: the plane takes whole
     * words up to wc */
    const uint32_t zero_point = (uint16_t)p->input_zero_point;
    fill_words((int8_t *)planes, (int32_t)(zero_point | zero_point << 16),
               2 * p->planes * plane_stride);
    for (int32_t n = 0; n < p->batch; ++n) {
        const int8_t *xn = x + n * p->in_d * p->in_h * p->in_w * channels;
        int8_t *yn = y + n * p->out_d * p->out_h * p->out_w * channels;
        for (int32_t c = 0; c < channels; ++c) {
            const tc_requant_channel_t *q = &p->requant[p->per_channel ? c : 0];
            const int32_t bias = p->bias[c];
            const int32_t k = c % p->planes; /* the plane holding channel c */
            int16_t *plane = planes + k * plane_stride;
            planar_weights(w + c * 4 * groups, groups, wc);
            if (p->planes == 1) {
                planar_load(p, xn, c, plane);
            } else if (k == 0) {
                planar_load4(p, xn, c, planes, plane_stride);
            }
            if (q->shift_code >= 0 && kernel_3x3) { /* one copy of each, the test hoisted */
                planar_channel_rows(p, plane, wc, bias, q, yn + c, row_acc, 1);
            } else if (q->shift_code >= 0) {
                planar_channel_rows(p, plane, wc, bias, q, yn + c, row_acc, 0);
            } else {
                planar_channel(p, plane, wc, bias, q, yn + c);
            }
        }
    }
}

/* ---- tc_depthwise_conv_cl_s8 --------------------------------------------------------------- */

size_t tc_depthwise_conv_cl_s8_scratch_size(const tc_depthwise_conv_cl_s8_params_t *p)
{
    const size_t taps = (size_t)p->k_d * (size_t)p->k_h * (size_t)p->k_w;
    const size_t frame = (size_t)p->frame_d * (size_t)p->frame_h * (size_t)p->frame_w *
                         (size_t)p->c;
    return taps * sizeof(int32_t) + (frame + 3u) / 4u * 4u;
}

/* The four sums of channels g .. g + 3 of one window: acc[j] += sum over the taps t of
 * x[off[t] + j] * w[4 t + j], x at the window's first tap and channel g, w the group's taps.
 * DSP: per tap one word of x and one of w, SXTB16 twice each, SMLABB and SMLATT twice. */
static TC_ALWAYS_INLINE void cl_group(const int8_t *x, const int32_t *off, int32_t taps,
                                      const int8_t *w, int32_t acc[4])
{
#if TC_DSP
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (const int32_t *end = off + taps; off != end; ++off, w += 4) {
        const int32_t xv = tc_load_s32(x + *off);
        const int32_t wv = tc_load_s32(w);
        const int32_t x02 = __sxtb16(xv), x13 = tc_sxtb16_ror8(xv);
        const int32_t w02 = __sxtb16(wv), w13 = tc_sxtb16_ror8(wv);
        a0 = __smlabb(x02, w02, a0);
        a2 = __smlatt(x02, w02, a2);
        a1 = __smlabb(x13, w13, a1);
        a3 = __smlatt(x13, w13, a3);
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
#else
    for (int32_t t = 0; t < taps; ++t) {
        for (int32_t j = 0; j < 4; ++j) {
            acc[j] += x[off[t] + j] * w[4 * t + j];
        }
    }
#endif
}

/* The outputs of a group's four sums (folded bias included) into y[0..3], with the records
 * q[0..3] (q_step 1) or q[0] (q_step 0).  full: every record narrow and the clamp [-128, 127],
 * TC_STORE_S8 on the DSP build; else as gemm_store. */
static TC_ALWAYS_INLINE void cl_store(const tc_depthwise_conv_cl_s8_params_t *p,
                                      const int32_t acc[4], const tc_requant_channel_t *q,
                                      int32_t q_step, int8_t *y, int full)
{
    for (int32_t j = 0; j < 4; ++j, q += q_step) {
        if (!full) {
            y[j] = conv_output(tc_requantize(acc[j], q), p->output_offset, p->act_min,
                               p->act_max);
            continue;
        }
        const int32_t t = (int32_t)((uint32_t)acc[j] << 1);
#if TC_DSP
        int32_t h;
        __asm__ volatile(TC_STORE_S8("%[t]", "[%[y]]", "%[m]", "%[ra]", "%[r]", "%[h]")
                         : [h] "=&r"(h)
                         : [t] "r"(t), [m] "r"(q->multiplier), [ra] "r"(q->narrow_round),
                           [r] "r"(q->narrow_shift), [y] "r"(y + j)
                         : "memory");
#else
        y[j] = (int8_t)tc_sat_s8(tc_requantize_narrow(t, q));
#endif
    }
}

#if TC_DSP && defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
/* Thumb-2 with the DSP extension: one output pixel of a layer whose records are all narrow and
 * per channel, with the clamp [-128, 127], all its channel groups in registers: per group the
 * biases by one LDM, per tap cl_group's 13 instructions (LDR of the offset, of x and of w, four
 * SXTB16, four SMLAxy, the loop), per output one LDM of its record and TC_STORE_S8 (7), about
 * 10 per output around them (C: about 23).  Same arithmetic as cl_group + cl_store.
 * Registers: r0 x at the group's channels, r1 the offsets, r2 their end, r3 w, r4-r7 the sums,
 * r8-r11 the taps' words and the records, r12 y, lr the doubled sum; the stack holds the first
 * offset, the bias, record and output pointers and the groups left. */
typedef struct {
    const int32_t *bias;
    const tc_requant_channel_t *q; /* [c] */
    int8_t *y;
    int32_t groups;                /* c / 4 */
} cl_pixel_args_t;

void tc_dwcl_pixel_full_t2(const int8_t *x, const int32_t *off, const int32_t *off_end,
                           const int8_t *w, const cl_pixel_args_t *a);
__asm__(
    ".pushsection .text.tc_dwcl_pixel_full_t2,\"ax\",%progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".macro tc_dwcl_out a\n" /* the output of sum a at [r12], r12 on */
    "  ldm r1!, {r8, r9, r10, r11}\n"
    "  lsl lr, \\a, #1\n"
    TC_STORE_S8("lr", "[r12], #1", "r8", "r10", "r11", "r9")
    ".endm\n"
    ".global tc_dwcl_pixel_full_t2\n"
    ".type tc_dwcl_pixel_full_t2, %function\n"
    ".thumb_func\n"
    "tc_dwcl_pixel_full_t2:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #28\n"
    "  ldr r4, [sp, #64]\n" /* a: above 7 local and 9 saved words */
    "  ldm r4, {r5-r8}\n"
    "  str r1, [sp, #0]\n"
    "  add r4, sp, #4\n"
    "  stm r4, {r5-r8}\n" /* bias, q, y, groups at sp + 4 .. 16 */
    "1:\n"
    "  ldr r8, [sp, #4]\n"
    "  ldm r8!, {r4-r7}\n"
    "  str r8, [sp, #4]\n"
    "  ldr r1, [sp, #0]\n"
    "2:\n"
    "  ldr r8, [r1], #4\n"
    "  ldr r8, [r0, r8]\n"
    "  ldr r9, [r3], #4\n"
    "  sxtb16 r10, r8\n"
    "  sxtb16 r11, r9\n"
    "  sxtb16 r8, r8, ror #8\n"
    "  sxtb16 r9, r9, ror #8\n"
    "  smlabb r4, r10, r11, r4\n"
    "  smlatt r6, r10, r11, r6\n"
    "  smlabb r5, r8, r9, r5\n"
    "  smlatt r7, r8, r9, r7\n"
    "  cmp r1, r2\n"
    "  bne 2b\n"
    "  ldr r1, [sp, #8]\n"
    "  ldr r12, [sp, #12]\n"
    "  tc_dwcl_out r4\n"
    "  tc_dwcl_out r5\n"
    "  tc_dwcl_out r6\n"
    "  tc_dwcl_out r7\n"
    "  str r1, [sp, #8]\n"
    "  str r12, [sp, #12]\n"
    "  adds r0, r0, #4\n"
    "  ldr r8, [sp, #16]\n"
    "  subs r8, r8, #1\n"
    "  str r8, [sp, #16]\n"
    "  bne 1b\n"
    "  add sp, sp, #28\n"
    "  pop {r4-r11, pc}\n"
    ".size tc_dwcl_pixel_full_t2, .-tc_dwcl_pixel_full_t2\n"
    ".purgem tc_dwcl_out\n"
    ".popsection\n");
#define CL_ASM 1
#else
#define CL_ASM 0
#endif

/* The layer, specialised by `full` (cl_store); asm: full with per-channel records.  The tap
 * offsets (in the frame or in x) into scratch, the frame's border filled, then per image its
 * copy into the frame and the output pixels. */
static TC_ALWAYS_INLINE void cl_run(const tc_depthwise_conv_cl_s8_params_t *p, const int8_t *x,
                                    const int8_t *w, int8_t *y, void *scratch, int full)
{
    const int32_t c = p->c;
    const int32_t taps = p->k_d * p->k_h * p->k_w;
    const int32_t framed = p->frame_d > 0;
    const int32_t img_h = framed ? p->frame_h : p->in_h; /* the image the windows lie in */
    const int32_t img_w = framed ? p->frame_w : p->in_w;
    const int32_t image = p->in_d * p->in_h * p->in_w * c;
    const int32_t step_w = p->stride_w * c;
    const int32_t q_step = p->per_channel; /* in registers: the stores to y could alias p */
    const int32_t *bias = p->bias;
    const tc_requant_channel_t *requant = p->requant;
    const frame_shape_t f = {p->in_d, p->in_h, p->in_w, c, p->frame_d, p->frame_h,
                             p->frame_w, p->pad_d, p->pad_h, p->pad_w, p->input_zero_point};
    int32_t *off = (int32_t *)scratch;
    int8_t *frame = (int8_t *)(off + taps);
    for (int32_t kd = 0, t = 0; kd < p->k_d; ++kd) {
        for (int32_t kh = 0; kh < p->k_h; ++kh) {
            for (int32_t kw = 0; kw < p->k_w; ++kw, ++t) {
                off[t] = ((kd * img_h + kh) * img_w + kw) * c;
            }
        }
    }
    if (framed) {
        frame_fill(&f, frame);
    }
    for (int32_t n = 0; n < p->batch; ++n) {
        const int8_t *img = x + n * image;
        if (framed) {
            frame_copy(&f, img, frame);
            img = frame;
        }
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const int8_t *src = img + (od * p->stride_d * img_h + oh * p->stride_h) * img_w * c;
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += c, src += step_w) {
#if CL_ASM
                    if (full && q_step) {
                        const cl_pixel_args_t a = {bias, requant, y, c / 4};
                        tc_dwcl_pixel_full_t2(src, off, off + taps, w, &a);
                        continue;
                    }
#endif
                    const int8_t *wg = w;
                    for (int32_t g = 0; g < c; g += 4, wg += 4 * taps) {
                        int32_t acc[4] = {bias[g], bias[g + 1], bias[g + 2], bias[g + 3]};
                        cl_group(src + g, off, taps, wg, acc);
                        cl_store(p, acc, requant + q_step * g, q_step, y + g, full);
                    }
                }
            }
        }
    }
}

void tc_depthwise_conv_cl_s8(const tc_depthwise_conv_cl_s8_params_t *p, const int8_t *x,
                             const int8_t *w, int8_t *y, void *scratch)
{
    int full = p->act_min == INT8_MIN && p->act_max == INT8_MAX;
    for (int32_t i = 0; i < (p->per_channel ? p->c : 1); ++i) {
        full = full && p->requant[i].narrow_shift > 0;
    }
    if (full) {
        cl_run(p, x, w, y, scratch, 1);
    } else {
        cl_run(p, x, w, y, scratch, 0);
    }
}

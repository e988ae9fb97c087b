/*
 * tinyc runtime: float32 depthwise 3x3 and k_d x 3 x 3 convolution, channels-last (see
 * tc_conv_f32.h).
 *
 * One channel at a time, output row by output row.  The channel's nine weights stay in
 * registers; along a row the window slides one column at a time (two at stride 2) and each
 * output loads only the column(s) entering its window, three (six) loads for nine
 * multiply-adds, where tc_conv_f32 loads a weight and an input value for every one.  The
 * register rotation is unrolled so that no value is ever moved: at stride 1 three outputs per
 * pass (the columns a b c, b c a, c a b), at stride 2 two.
 *
 * A 3-D window (k_d > 1) takes one pass over the output row per valid depth slice: the row is
 * set to +0, each slice's nine taps are added to it in turn (dw_row), then the bias and the
 * clamp (dw_row_3d).
 *
 * Same sums as tc_conv_f32: each output adds its valid taps from 0 in the order kd, kh, kw
 * (each a tc_mac_f32), then the bias, then the clamp.  Here every output adds all nine taps of
 * a slice in that order, the padding ones as +-0: a window row in the top or bottom padding is
 * read from a valid row against three zero weights, a column in the left or right padding (at
 * the ends of a row) is zero.  Adding +-0 to a sum that is never -0 (it starts at +0) changes
 * nothing for finite inputs; windows wholly in the padding give the clamped bias, as in
 * tc_conv_f32.
 *
 * In place: channel c's outputs are written in tc_conv_f32's pixel order (3-D: a row at a
 * time, before the row's windows are all read) and only over channel c of the input when the
 * output sits a whole number of pixels below the input (the compiler places it so:
 * tinyc/ops/conv.py).
 */
#include "tc_conv_f32.h"

/* The nine weights of one channel and depth slice for one output row, kh-major, rows in the
 * padding zero. */
typedef struct {
    float w00, w01, w02, w10, w11, w12, w20, w21, w22;
} dw_kernel_t;

/* One column of the window: its rows 0, 1, 2. */
typedef struct {
    float r0, r1, r2;
} dw_column_t;

/* One output from its window's columns a b c, stored at *y.  accumulate 0: tc_conv_f32's sum
 * from 0, plus the bias, clamped; 1: the taps added to the partial sum at *y (a 3-D window's
 * depth slices are added one after the other). */
static TC_ALWAYS_INLINE void dw_put(const dw_kernel_t *k, float *y, dw_column_t a, dw_column_t b,
                                    dw_column_t c, float bias, float lo, float hi, int accumulate)
{
    float acc = accumulate ? *y : 0.0f;
    acc = tc_mac_f32(acc, a.r0, k->w00);
    acc = tc_mac_f32(acc, b.r0, k->w01);
    acc = tc_mac_f32(acc, c.r0, k->w02);
    acc = tc_mac_f32(acc, a.r1, k->w10);
    acc = tc_mac_f32(acc, b.r1, k->w11);
    acc = tc_mac_f32(acc, c.r1, k->w12);
    acc = tc_mac_f32(acc, a.r2, k->w20);
    acc = tc_mac_f32(acc, b.r2, k->w21);
    acc = tc_mac_f32(acc, c.r2, k->w22);
    *y = accumulate ? acc : tc_clamp_f32(acc + bias, lo, hi);
}

/* The three window rows of one output row, at input column 0 (a row in the padding points at
 * a valid one). */
typedef struct {
    const float *r0, *r1, *r2;
} dw_rows_t;

/* The rows moved on by `floats`. */
static TC_ALWAYS_INLINE dw_rows_t dw_rows_at(dw_rows_t x, int32_t floats)
{
    const dw_rows_t at = {x.r0 + floats, x.r1 + floats, x.r2 + floats};
    return at;
}

/* The column at x, then x moves on by col floats. */
static TC_ALWAYS_INLINE dw_column_t dw_next(dw_rows_t *x, int32_t col)
{
    const dw_column_t v = {*x->r0, *x->r1, *x->r2};
    x->r0 += col;
    x->r1 += col;
    x->r2 += col;
    return v;
}

/* The per-layer constants of a row. */
typedef struct {
    int32_t c;     /* channels: the step from one column to the next */
    int32_t in_w, out_w, pad_w;
    int32_t real;  /* outputs before the first whose window's right column is padding */
    float lo, hi;
} dw_geometry_t;

/* Column j of the rows (x at column 0), or zeros when j is in the padding. */
static TC_ALWAYS_INLINE dw_column_t dw_column(const dw_geometry_t *g, dw_rows_t x, int32_t j)
{
    const dw_column_t zero = {0.0f, 0.0f, 0.0f};
    if (j < 0 || j >= g->in_w) {
        return zero;
    }
    const dw_column_t v = {x.r0[j * g->c], x.r1[j * g->c], x.r2[j * g->c]};
    return v;
}

/* One output row at stride 1 (pad_w <= 2 on both sides): the first window's two left columns
 * (zero in the padding), then one load per output for `real` outputs, the rest of the row
 * with zero right columns.  The columns rotate by three outputs per pass: no value is moved. */
static TC_ALWAYS_INLINE void dw_pass_s1(const dw_geometry_t *g, const dw_kernel_t *k,
                                         dw_rows_t x, float bias, float *y, int accumulate)
{
    const int32_t col = g->c;
    const float lo = g->lo;
    const float hi = g->hi;
    dw_column_t a = dw_column(g, x, -g->pad_w);
    dw_column_t b = dw_column(g, x, 1 - g->pad_w);
    dw_column_t c;
    dw_rows_t at = dw_rows_at(x, (2 - g->pad_w) * col);
    int32_t n = g->real;
    for (; n >= 3; n -= 3, y += 3 * col) {
        c = dw_next(&at, col);
        dw_put(k, &y[0], a, b, c, bias, lo, hi, accumulate);
        a = dw_next(&at, col);
        dw_put(k, &y[col], b, c, a, bias, lo, hi, accumulate);
        b = dw_next(&at, col);
        dw_put(k, &y[2 * col], c, a, b, bias, lo, hi, accumulate);
    }
    for (; n > 0; --n, y += col) {
        c = dw_next(&at, col);
        dw_put(k, y, a, b, c, bias, lo, hi, accumulate);
        a = b;
        b = c;
    }
    const dw_column_t zero = {0.0f, 0.0f, 0.0f};
    for (n = g->out_w - g->real; n > 0; --n, y += col) {
        dw_put(k, y, a, b, zero, bias, lo, hi, accumulate);
        a = b;
        b = zero;
    }
}

/* The same at stride 2 (pad_w <= 1 on both sides): the right column of one window is the left
 * of the next, two loads per output. */
static TC_ALWAYS_INLINE void dw_pass_s2(const dw_geometry_t *g, const dw_kernel_t *k,
                                         dw_rows_t x, float bias, float *y, int accumulate)
{
    const int32_t col = g->c;
    const float lo = g->lo;
    const float hi = g->hi;
    dw_column_t a = dw_column(g, x, -g->pad_w);
    dw_column_t b;
    dw_column_t c;
    dw_rows_t at = dw_rows_at(x, (1 - g->pad_w) * col);
    int32_t n = g->real;
    for (; n >= 2; n -= 2, y += 2 * col) {
        b = dw_next(&at, col);
        c = dw_next(&at, col);
        dw_put(k, &y[0], a, b, c, bias, lo, hi, accumulate);
        b = dw_next(&at, col);
        a = dw_next(&at, col);
        dw_put(k, &y[col], c, b, a, bias, lo, hi, accumulate);
    }
    if (n > 0) {
        b = dw_next(&at, col);
        c = dw_next(&at, col);
        dw_put(k, y, a, b, c, bias, lo, hi, accumulate);
        y += col;
    }
    for (int32_t ow = g->real; ow < g->out_w; ++ow, y += col) { /* the right column cut */
        const int32_t j = 2 * ow - g->pad_w;
        dw_put(k, y, dw_column(g, x, j), dw_column(g, x, j + 1), dw_column(g, x, j + 2), bias,
               lo, hi, accumulate);
    }
}

/* One output row from one depth slice: the outputs (accumulate 0), or the slice's taps added
 * to the partial sums in y (1; a constant, so that each copy keeps its loop free of the
 * test). */
static TC_ALWAYS_INLINE void dw_row(const dw_geometry_t *g, const dw_kernel_t *k, dw_rows_t x,
                                    float bias, float *y, int32_t stride_w, int accumulate)
{
    if (stride_w == 1) {
        dw_pass_s1(g, k, x, bias, y, accumulate);
    } else {
        dw_pass_s2(g, k, x, bias, y, accumulate);
    }
}

/* w's nine weights with the rows outside [first, first + count) zero. */
static TC_ALWAYS_INLINE dw_kernel_t dw_kernel(const float *w, int32_t first, int32_t count)
{
    const int32_t end = first + count;
    const int v0 = first == 0;
    const int v1 = first <= 1 && end > 1;
    const int v2 = end > 2;
    const dw_kernel_t k = {
        v0 ? w[0] : 0.0f, v0 ? w[1] : 0.0f, v0 ? w[2] : 0.0f,
        v1 ? w[3] : 0.0f, v1 ? w[4] : 0.0f, v1 ? w[5] : 0.0f,
        v2 ? w[6] : 0.0f, v2 ? w[7] : 0.0f, v2 ? w[8] : 0.0f,
    };
    return k;
}

/* The window rows of output row rows (an axis of the input slice at x): row kh reads input
 * row at + kh - first, or row at when outside. */
static TC_ALWAYS_INLINE dw_rows_t dw_window_rows(const float *x, tc_window_axis_t rows,
                                                 int32_t row_step)
{
    const float *top = x + rows.at * row_step;
    const int32_t end = rows.first + rows.count;
    const dw_rows_t r = {
        top,
        top + (rows.first <= 1 && end > 1 ? 1 - rows.first : 0) * row_step,
        top + (end > 2 ? 2 - rows.first : 0) * row_step,
    };
    return r;
}

/* Output row y (out_w outputs, c apart) of a 3-D window's depth slices: each slice
 * (x_slice floats apart from the first valid one at x, weights 9 apart from w) added to the
 * row in turn from +0, then the bias and the clamp. */
static void dw_row_3d(const dw_geometry_t *g, const float *w, const float *x, int32_t x_slice,
                      tc_window_axis_t depth, tc_window_axis_t rows, int32_t row_step,
                      int32_t stride_w, float bias, float *y)
{
    const int32_t c = g->c;
    for (int32_t ow = 0; ow < g->out_w; ++ow) {
        y[ow * c] = 0.0f;
    }
    for (int32_t kd = depth.first; kd < depth.first + depth.count; ++kd, x += x_slice) {
        const dw_kernel_t k = dw_kernel(w + kd * 9, rows.first, rows.count);
        dw_row(g, &k, dw_window_rows(x, rows, row_step), 0.0f, y, stride_w, 1);
    }
    for (int32_t ow = 0; ow < g->out_w; ++ow) {
        y[ow * c] = tc_clamp_f32(y[ow * c] + bias, g->lo, g->hi);
    }
}

/* Both entry points: three_d (a constant) links the depth-slice passes only where wanted. */
static TC_ALWAYS_INLINE void dw_run(const tc_conv_f32_params_t *p, const float *x,
                                    const float *w, const float *bias, float *y, int three_d)
{
    dw_geometry_t g;
    g.c = p->in_c;
    g.in_w = p->in_w;
    g.out_w = p->out_w;
    g.pad_w = p->pad_w;
    g.lo = p->act_min;
    g.hi = p->act_max;
    /* Output ow's right column ow * stride_w - pad_w + 2 is inside while < in_w. */
    const int32_t room = p->in_w - 3 + p->pad_w;
    const int32_t real = room < 0 ? 0 : room / p->stride_w + 1;
    g.real = real < p->out_w ? real : p->out_w;

    const int32_t c = p->in_c;
    const int32_t k_taps = p->k_d * 9;
    const int32_t row_step = p->in_w * c;
    const int32_t x_slice = p->in_h * row_step;
    const int32_t y_row = p->out_w * c;
    for (int32_t n = 0; n < p->batch; ++n) {
        for (int32_t ch = 0; ch < c; ++ch) {
            const float b = bias != NULL ? bias[ch] : 0.0f;
            const float *wc = w + ch * k_taps;
            const dw_kernel_t full = dw_kernel(wc, 0, 3);
            const float *xc = x + n * p->in_d * x_slice + ch;
            float *yr = y + n * p->out_d * p->out_h * y_row + ch;
            for (int32_t od = 0; od < p->out_d; ++od) {
                const tc_window_axis_t depth =
                    tc_window_axis(od, p->stride_d, p->pad_d, 1, p->k_d, p->in_d);
                const float *xs = xc + depth.at * x_slice;
                for (int32_t oh = 0; oh < p->out_h; ++oh, yr += y_row) {
                    const tc_window_axis_t rows =
                        tc_window_axis(oh, p->stride_h, p->pad_h, 1, 3, p->in_h);
                    if (rows.count == 0 || depth.count == 0) { /* the window in the padding */
                        for (int32_t ow = 0; ow < p->out_w; ++ow) {
                            yr[ow * c] = tc_clamp_f32(b, g.lo, g.hi);
                        }
                    } else if (three_d) { /* (one slice too: only accumulating rows linked) */
                        dw_row_3d(&g, wc, xs, x_slice, depth, rows, row_step, p->stride_w, b,
                                  yr);
                    } else { /* k_d 1: the outputs in one pass */
                        const dw_kernel_t cut =
                            rows.count == 3 ? full : dw_kernel(wc, rows.first, rows.count);
                        dw_row(&g, &cut, dw_window_rows(xs, rows, row_step), b, yr,
                               p->stride_w, 0);
                    }
                }
            }
        }
    }
}

void tc_depthwise_conv3x3_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                              const float *bias, float *y)
{
    dw_run(p, x, w, bias, y, 0);
}

void tc_depthwise_conv3x3_3d_f32(const tc_conv_f32_params_t *p, const float *x, const float *w,
                                 const float *bias, float *y)
{
    dw_run(p, x, w, bias, y, 1);
}

/*
 * tinyc runtime: int8 max and average pooling (see tc_pool_s8.h).
 *
 * The valid taps of each window are found once per axis (tc_window_range); the channel loop is
 * innermost, so every tap reads c contiguous bytes.  acc holds one window's running value per
 * channel: the kernels walk the channels in blocks of POOL_BLOCK to keep it on the stack.  On
 * little-endian targets the average sums four channels at a time in registers over the whole
 * window, one word per tap (about 2 instructions per value on the Cortex-M4 against 6: SXTAB
 * adds a byte of the word sign-extended); the sums are the same integers.
 */
#include "tc_pool_s8.h"

#include <string.h>

#include "tc_requant.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) &&                             \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define POOL_WORDS 1
#else
#define POOL_WORDS 0
#endif

#define POOL_BLOCK 32

/* The taps inside the input of one output position: first tap offset in x and counts / steps
 * along d, h, w. */
typedef struct {
    int32_t first;
    int32_t nd, nh, nw;
    int32_t td, th, tw;
    int32_t padded_count; /* taps inside [-pad, in + pad_end) on all axes */
} pool_window_t;

/* acc[0..3] = the sums of channels 0..3 of xc over the window's taps (POOL_WORDS). */
static inline void pool_sum4(const pool_window_t *t, const int8_t *xc, int32_t acc[4])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int32_t kd = 0, xd = 0; kd < t->nd; ++kd, xd += t->td) {
        for (int32_t kh = 0, xh = xd; kh < t->nh; ++kh, xh += t->th) {
            const int8_t *xt = xc + xh;
            for (int32_t kw = 0; kw < t->nw; ++kw, xt += t->tw) {
                int32_t w;
                memcpy(&w, xt, sizeof w);
                a0 += (int8_t)w;
                a1 += (int8_t)(w >> 8);
                a2 += (int8_t)(w >> 16);
                a3 += w >> 24;
            }
        }
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

static void pool_locate(const tc_pool_s8_params_t *p, int32_t od, int32_t oh, int32_t ow,
                        pool_window_t *t)
{
    const int32_t x_sh = p->in_w * p->c;
    const int32_t x_sd = p->in_h * x_sh;
    const tc_window_axis_t win_d =
        tc_window_axis(od, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->in_d);
    const tc_window_axis_t win_h =
        tc_window_axis(oh, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->in_h);
    const tc_window_axis_t win_w =
        tc_window_axis(ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
    t->nd = win_d.count;
    t->nh = win_h.count;
    t->nw = win_w.count;
    t->td = p->dilation_d * x_sd;
    t->th = p->dilation_h * x_sh;
    t->tw = p->dilation_w * p->c;
    t->first = win_d.at * x_sd + win_h.at * x_sh + win_w.at * p->c;
    /* The same windows within the explicitly padded extents [-pad, in + pad_end), shifted to
     * start at 0. */
    const int32_t span_d = p->pad_d + p->in_d + p->pad_end_d;
    const int32_t span_h = p->pad_h + p->in_h + p->pad_end_h;
    const int32_t span_w = p->pad_w + p->in_w + p->pad_end_w;
    t->padded_count = tc_window_axis(od, p->stride_d, 0, p->dilation_d, p->k_d, span_d).count *
                      tc_window_axis(oh, p->stride_h, 0, p->dilation_h, p->k_h, span_h).count *
                      tc_window_axis(ow, p->stride_w, 0, p->dilation_w, p->k_w, span_w).count;
}

/* Pools every output position: the maximum (is_max) or the rounded average of its taps. */
static void pool_walk(const tc_pool_s8_params_t *p, const int8_t *x, int8_t *y, int32_t is_max)
{
    const int32_t c = p->c;
    const int32_t x_sn = p->in_d * p->in_h * p->in_w * c;
    int32_t acc[POOL_BLOCK];
    for (int32_t n = 0; n < p->batch; ++n, x += x_sn) {
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += c) {
                    pool_window_t t;
                    pool_locate(p, od, oh, ow, &t);
                    const int32_t taps = t.nd * t.nh * t.nw;
                    for (int32_t c0 = 0; c0 < c; c0 += POOL_BLOCK) {
                        const int32_t nc = c - c0 < POOL_BLOCK ? c - c0 : POOL_BLOCK;
                        for (int32_t k = 0; k < nc; ++k) {
                            acc[k] = is_max ? INT8_MIN : 0;
                        }
                        int32_t k0 = 0; /* the channels summed four at a time */
                        if (taps > 0 && !is_max && POOL_WORDS) {
                            for (; k0 + 4 <= nc; k0 += 4) {
                                pool_sum4(&t, x + t.first + c0 + k0, acc + k0);
                            }
                        }
                        if (taps > 0 && k0 < nc) {
                            const int8_t *xc = x + t.first + c0;
                            for (int32_t kd = 0, xd = 0; kd < t.nd; ++kd, xd += t.td) {
                                for (int32_t kh = 0, xh = xd; kh < t.nh; ++kh, xh += t.th) {
                                    for (int32_t kw = 0, xw = xh; kw < t.nw; ++kw, xw += t.tw) {
                                        const int8_t *xt = xc + xw;
                                        if (is_max) {
                                            for (int32_t k = 0; k < nc; ++k) {
                                                acc[k] = xt[k] > acc[k] ? xt[k] : acc[k];
                                            }
                                        } else {
                                            for (int32_t k = k0; k < nc; ++k) {
                                                acc[k] += xt[k];
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        const int32_t count = p->count_include_pad ? t.padded_count : taps;
                        for (int32_t k = 0; k < nc; ++k) {
                            int32_t v = acc[k];
                            if (!is_max && count > 0) {
                                v = v > 0 ? (v + count / 2) / count : (v - count / 2) / count;
                            }
                            y[c0 + k] = (int8_t)tc_clamp_s32(v, p->act_min, p->act_max);
                        }
                    }
                }
            }
        }
    }
}

void tc_max_pool_s8(const tc_pool_s8_params_t *p, const int8_t *x, int8_t *y)
{
    pool_walk(p, x, y, 1);
}

void tc_avg_pool_s8(const tc_pool_s8_params_t *p, const int8_t *x, int8_t *y)
{
    pool_walk(p, x, y, 0);
}

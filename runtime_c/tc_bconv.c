/*
 * tinyc runtime: binary convolution, 1-D / 2-D / 3-D, channels-last (see tc_binary.h for the
 * conventions, the layouts and the exact output transforms).
 *
 * For each output position the taps inside the input are found once per axis with
 * tc_window_axis, so zero padding costs nothing in the tap loops; the taps visited and their
 * valid bits make N.  Per output channel the kernel counts the mismatching bits
 * popcount(x ^ w) over those taps with one of three inner loops, chosen once per call:
 *  - aligned (cig % 32 == 0): a tap is cig / 32 whole words in x and in w;
 *  - single  (cig == 1, e.g. depthwise): one bit per tap, taken from x with a shift;
 *  - fields  (any other cig): bit fields of up to 32 bits read with tc_bits_get from x (the
 *    group's slice may start anywhere in the pixel's words) and from w (the taps of a row are
 *    one bit stream), XORed, then masked to the field's length -- the tail-word masking.
 * Then dot = N - 2 * mismatches, plus the padding correction, and the output transform.  One
 * driver serves the four output types; the transform is a switch on a per-call constant.
 */
#include "tc_binary.h"

/* The valid part of one output position's window. */
typedef struct {
    int32_t nd, nh, nw;       /* taps inside the input along d, h, w */
    int32_t kd0, kh0, kw0;    /* the first of them, as kernel indices */
    int32_t x_td, x_th, x_tw; /* word steps in x from one tap to the next */
    int32_t k_h, k_w;         /* kernel extents, for the tap index (kd * k_h + kh) * k_w + kw */
    int32_t cig;              /* channels (bits) per group */
} bconv_window_t;

/* Mismatching bits over the window, cig % 32 == 0.  x points at the first valid tap's pixel,
 * bit0 (a multiple of 32) is the group's first channel, w is the output channel's row. */
static int32_t mismatches_aligned(const bconv_window_t *t, const uint32_t *x, int32_t bit0,
                                  const uint32_t *w)
{
    const int32_t nwords = t->cig >> 5;
    const uint32_t *xg = x + (bit0 >> 5);
    int32_t pc = 0;
    for (int32_t kd = 0; kd < t->nd; ++kd) {
        for (int32_t kh = 0; kh < t->nh; ++kh) {
            const int32_t tap = ((t->kd0 + kd) * t->k_h + t->kh0 + kh) * t->k_w + t->kw0;
            const uint32_t *xr = xg + kd * t->x_td + kh * t->x_th;
            const uint32_t *wr = w + tap * nwords;
            for (int32_t kw = 0; kw < t->nw; ++kw, xr += t->x_tw, wr += nwords) {
                for (int32_t j = 0; j < nwords; ++j) {
                    pc += tc_popcount_u32(xr[j] ^ wr[j]);
                }
            }
        }
    }
    return pc;
}

/* The same for cig == 1: channel bit0 of each tap's pixel against bit `tap` of the row. */
static int32_t mismatches_single(const bconv_window_t *t, const uint32_t *x, int32_t bit0,
                                 const uint32_t *w)
{
    const uint32_t *xg = x + (bit0 >> 5);
    const int32_t s = bit0 & 31;
    uint32_t pc = 0;
    for (int32_t kd = 0; kd < t->nd; ++kd) {
        for (int32_t kh = 0; kh < t->nh; ++kh) {
            const int32_t tap0 = ((t->kd0 + kd) * t->k_h + t->kh0 + kh) * t->k_w + t->kw0;
            const uint32_t *xr = xg + kd * t->x_td + kh * t->x_th;
            for (int32_t kw = 0, tap = tap0; kw < t->nw; ++kw, ++tap, xr += t->x_tw) {
                pc += ((*xr >> s) ^ (w[tap >> 5] >> (tap & 31))) & 1u;
            }
        }
    }
    return (int32_t)pc;
}

/* The same for any cig: fields of up to 32 bits from x (starting at bit bit0 + done of the
 * pixel) and from the row (starting at bit tap * cig + done), masked to the field length. */
static int32_t mismatches_fields(const bconv_window_t *t, const uint32_t *x, int32_t bit0,
                                 const uint32_t *w)
{
    const int32_t cig = t->cig;
    int32_t pc = 0;
    for (int32_t kd = 0; kd < t->nd; ++kd) {
        for (int32_t kh = 0; kh < t->nh; ++kh) {
            const int32_t tap0 = ((t->kd0 + kd) * t->k_h + t->kh0 + kh) * t->k_w + t->kw0;
            const uint32_t *xr = x + kd * t->x_td + kh * t->x_th;
            for (int32_t kw = 0, wbit = tap0 * cig; kw < t->nw; ++kw, wbit += cig, xr += t->x_tw) {
                for (int32_t done = 0; done < cig; done += 32) {
                    const int32_t n = cig - done < 32 ? cig - done : 32;
                    const uint32_t diff =
                        tc_bits_get(xr, bit0 + done, n) ^ tc_bits_get(w, wbit + done, n);
                    pc += tc_popcount_u32(diff & tc_bmask(n));
                }
            }
        }
    }
    return pc;
}

static void bconv_run(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                      const int32_t *pad_corr, const tc_bout_t *out, void *y)
{
    const int32_t in_words = tc_bwords(p->in_c);
    const int32_t out_c = p->out_c;
    const int32_t groups = p->groups;
    const int32_t cig = p->in_c / groups;
    const int32_t cog = out_c / groups;
    const int32_t row_words = tc_bwords(p->k_d * p->k_h * p->k_w * cig);
    const int32_t y_step = out->kind == TC_BOUT_B1 ? tc_bwords(out_c) : out_c;
    const int32_t cls_h = p->lead_h + 1 + p->trail_h;
    const int32_t cls_w = p->lead_w + 1 + p->trail_w;

    int32_t (*mismatches)(const bconv_window_t *, const uint32_t *, int32_t, const uint32_t *);
    if (cig % 32 == 0) {
        mismatches = mismatches_aligned;
    } else if (cig == 1) {
        mismatches = mismatches_single;
    } else {
        mismatches = mismatches_fields;
    }

    /* Word strides of x (per batch, d, h; per w it is in_words). */
    const int32_t x_sh = p->in_w * in_words;
    const int32_t x_sd = p->in_h * x_sh;
    const int32_t x_sn = p->in_d * x_sd;

    bconv_window_t t;
    t.x_td = p->dilation_d * x_sd;
    t.x_th = p->dilation_h * x_sh;
    t.x_tw = p->dilation_w * in_words;
    t.k_h = p->k_h;
    t.k_w = p->k_w;
    t.cig = cig;

    int32_t yo = 0; /* element (or word) offset of the current output pixel */
    for (int32_t n = 0; n < p->batch; ++n) {
        const uint32_t *xn = x + n * x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            const tc_window_axis_t wd =
                tc_window_axis(od, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->in_d);
            t.kd0 = wd.first;
            t.nd = wd.count;
            const int32_t cd = tc_bconv_pad_class(od, p->lead_d, p->trail_d, p->out_d);
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const tc_window_axis_t wh =
                    tc_window_axis(oh, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->in_h);
                t.kh0 = wh.first;
                t.nh = wh.count;
                const int32_t ch = tc_bconv_pad_class(oh, p->lead_h, p->trail_h, p->out_h);
                for (int32_t ow = 0; ow < p->out_w; ++ow, yo += y_step) {
                    const tc_window_axis_t ww =
                        tc_window_axis(ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
                    t.kw0 = ww.first;
                    t.nw = ww.count;
                    const int32_t taps = t.nd * t.nh * t.nw;
                    const int32_t n_bits = taps * cig;

                    /* The first valid tap's pixel (only formed when there is one). */
                    const uint32_t *x_first = NULL;
                    if (taps > 0) {
                        x_first = xn + wd.at * x_sd + wh.at * x_sh + ww.at * in_words;
                    }
                    const int32_t *corr = NULL;
                    if (pad_corr != NULL) {
                        const int32_t cw =
                            tc_bconv_pad_class(ow, p->lead_w, p->trail_w, p->out_w);
                        corr = pad_corr + ((cd * cls_h + ch) * cls_w + cw) * out_c;
                    }

                    uint32_t word = 0; /* _b1: the output word being assembled */
                    for (int32_t g = 0, oc = 0; g < groups; ++g) {
                        const int32_t bit0 = g * cig;
                        for (int32_t m = 0; m < cog; ++m, ++oc) {
                            int32_t dot = n_bits;
                            if (taps > 0) {
                                dot -= 2 * mismatches(&t, x_first, bit0, w + oc * row_words);
                            }
                            if (corr != NULL) {
                                dot += corr[oc];
                            }
                            tc_bout_store(out, y, yo, oc, dot, &word);
                        }
                    }
                }
            }
        }
    }
}

void tc_bconv_s32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                  const int32_t *pad_corr, int32_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S32, NULL, NULL);
    bconv_run(p, x, w, pad_corr, &out, y);
}

void tc_bconv_f32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                  const int32_t *pad_corr, const float *mul, const float *bias, float *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_F32, mul, bias);
    bconv_run(p, x, w, pad_corr, &out, y);
}

void tc_bconv_s8(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                 const int32_t *pad_corr, const int32_t *mul, const int32_t *bias, int8_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S8, mul, bias);
    bconv_run(p, x, w, pad_corr, &out, y);
}

void tc_bconv_b1(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                 const int32_t *pad_corr, const int32_t *thr, const uint32_t *flip, uint32_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_B1, thr, flip);
    bconv_run(p, x, w, pad_corr, &out, y);
}

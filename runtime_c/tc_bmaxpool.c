/*
 * tinyc runtime: max pooling of packed binary data (see tc_binary.h): the bitwise AND of the
 * words of the taps inside the input, 32 channels per operation.
 *
 * For each output position the taps inside the input are found once per axis with
 * tc_window_range; the output pixel itself is the running AND.  It starts all ones (-1 in
 * every channel: the identity of AND, and the result of a window with no tap inside), with the
 * padding bits of the last word cleared, and AND keeps them clear.
 */
#include "tc_binary.h"

void tc_bmaxpool_b1(const tc_bmaxpool_params_t *p, const uint32_t *x, uint32_t *y)
{
    const int32_t words = tc_bwords(p->c);
    const uint32_t last_mask = tc_bmask(p->c - 32 * (words - 1));

    /* Word strides of x (per batch, d, h; per w it is words) and the steps between taps. */
    const int32_t x_sh = p->in_w * words;
    const int32_t x_sd = p->in_h * x_sh;
    const int32_t x_sn = p->in_d * x_sd;
    const int32_t x_td = p->dilation_d * x_sd;
    const int32_t x_th = p->dilation_h * x_sh;
    const int32_t x_tw = p->dilation_w * words;

    for (int32_t n = 0; n < p->batch; ++n) {
        const uint32_t *xn = x + n * x_sn;
        for (int32_t od = 0; od < p->out_d; ++od) {
            const int32_t id0 = od * p->stride_d - p->pad_d;
            int32_t kd0;
            int32_t kd1;
            tc_window_range(id0, p->dilation_d, p->k_d, p->in_d, &kd0, &kd1);
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const int32_t ih0 = oh * p->stride_h - p->pad_h;
                int32_t kh0;
                int32_t kh1;
                tc_window_range(ih0, p->dilation_h, p->k_h, p->in_h, &kh0, &kh1);
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += words) {
                    const int32_t iw0 = ow * p->stride_w - p->pad_w;
                    int32_t kw0;
                    int32_t kw1;
                    tc_window_range(iw0, p->dilation_w, p->k_w, p->in_w, &kw0, &kw1);

                    for (int32_t j = 0; j < words; ++j) {
                        y[j] = 0xFFFFFFFFu;
                    }
                    y[words - 1] &= last_mask;
                    if (kd0 == kd1 || kh0 == kh1 || kw0 == kw1) {
                        continue; /* no tap inside the input */
                    }
                    const uint32_t *x0 = xn + (id0 + kd0 * p->dilation_d) * x_sd +
                                         (ih0 + kh0 * p->dilation_h) * x_sh +
                                         (iw0 + kw0 * p->dilation_w) * words;
                    for (int32_t kd = kd0; kd < kd1; ++kd, x0 += x_td) {
                        const uint32_t *xh = x0;
                        for (int32_t kh = kh0; kh < kh1; ++kh, xh += x_th) {
                            const uint32_t *xw = xh;
                            for (int32_t kw = kw0; kw < kw1; ++kw, xw += x_tw) {
                                for (int32_t j = 0; j < words; ++j) {
                                    y[j] &= xw[j];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

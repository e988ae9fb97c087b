/*
 * tinyc runtime: max pooling of packed binary data (see tc_binary.h): the bitwise AND of the
 * words of the taps inside the input, 32 channels per operation.
 *
 * For each output position the taps inside the input are found once per axis with
 * tc_window_axis; the output pixel itself is the running AND.  It starts all ones (-1 in
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
            const tc_window_axis_t wd =
                tc_window_axis(od, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->in_d);
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const tc_window_axis_t wh =
                    tc_window_axis(oh, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->in_h);
                for (int32_t ow = 0; ow < p->out_w; ++ow, y += words) {
                    const tc_window_axis_t ww =
                        tc_window_axis(ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
                    for (int32_t j = 0; j < words; ++j) {
                        y[j] = 0xFFFFFFFFu;
                    }
                    y[words - 1] &= last_mask;
                    if (wd.count == 0 || wh.count == 0 || ww.count == 0) {
                        continue; /* no tap inside the input */
                    }
                    const uint32_t *x0 = xn + wd.at * x_sd + wh.at * x_sh + ww.at * words;
                    for (int32_t kd = 0; kd < wd.count; ++kd, x0 += x_td) {
                        const uint32_t *xh = x0;
                        for (int32_t kh = 0; kh < wh.count; ++kh, xh += x_th) {
                            const uint32_t *xw = xh;
                            for (int32_t kw = 0; kw < ww.count; ++kw, xw += x_tw) {
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

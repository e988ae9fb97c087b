/*
 * tinyc runtime: optimized int8 2-D / 3-D convolution and 2-D / 3-D depthwise convolution,
 * channels-last, with exactly the results of tc_conv_s8 / tc_depthwise_conv_s8 (hence of
 * TFLite Micro) for every input.  The compiler picks them per layer (tinyc/ops/fast_s8.py) and
 * lays their constants out ahead of time (tinyc/quant/fast.py); the portable kernels stay the
 * fallback for the layers they do not cover.
 *
 * Arithmetic.  Both accumulate sum_k w[k] * x[k] over the whole window in int32 (wrapping) and
 * start from the folded bias (bias[oc] + input_offset * sum_k w[k], tc_requant.h); taps in the
 * padding read the input zero point, for which x + input_offset = 0, so the accumulator equals
 * the portable kernels' modulo 2^32, i.e. exactly.  Then per output
 *   y = clamp(tc_requantize(acc, &requant[per_channel ? oc : 0]) + output_offset,
 *             act_min, act_max)
 * which is tc_multiply_by_quantized_multiplier with the channel's multiplier and shift.
 * Accumulator bounds are those of tc_conv_s8.h.
 *
 * tc_conv_gemm_s8 (groups == 1, any kernel, stride, dilation and padding; 2-D or 3-D):
 *   a GEMM over panels of 6 output pixels (in the order batch, d, h, w).  For each panel it
 *   gathers the 6 windows ("im2col", K = k_d * k_h * k_w * in_c values in TFLite's O(D)HWI tap
 *   order, padding taps = input zero point, K rounded up to k_padded, a multiple of 4, where
 *   the weights are 0 and the window values do not matter) into scratch as int16 in sxtb16
 *   order (tc_dsp.h), interleaved by groups of 4 values:
 *     panel[g][p][0..3] = window p's values 4g, 4g+2, 4g+1, 4g+3      (int16, 48 bytes per g)
 *   then, for each output channel, runs the dot products: per group one weight word (SXTB16
 *   twice) against the pixels' pairs (SMLAD).  On Thumb-2 cores with the DSP extension, a
 *   layer with the clamp [-128, 127] runs each full panel, all its output channels, through
 *   one assembly routine with the same arithmetic (tc_gemm_panel_full_t2: per group LDM three
 *   times and SMLAD 12 times, 18 instructions for 24 multiply-accumulates; about 30 per channel
 *   and panel around them and the output stage of a narrow record, tc_requant.h, 6 per output);
 *   the C driver (other clamps, other cores) takes pixels 0-3 with LDM twice and SMLAD 8 times
 *   per group, then pairs.
 *   Windows are read as runs: the k_d * k_h kernel rows of a window are runs of contiguous
 *   values (a whole row with dilation_w 1, else one tap per run), expanded straight into the
 *   panel when a run is whole groups of 4, else copied run after run into an int8 buffer and
 *   expanded from there.  A run of 4 or more values is copied as its whole words and the word
 *   that ends at its last value (3x3 on 3 channels: three words for 9 values), so nothing past
 *   it is read; a shorter run as one word (the EEG stem, 3x3x3 on one channel: nine 3-value
 *   runs, K = 27), which only the frame's slack allows.
 *   2-D layers (in_d = out_d = k_d = 1) without a frame read the windows wholly inside x so
 *   (if dilation_w is 1 and the rows are whole groups or longer than 4 values); the others are
 *   checked row by row and tap by tap against the image: a tap (in_c % 4 == 0) or a whole
 *   kernel row (k_w * in_c % 4 == 0, dilation_w 1) at a time straight into the panel, else
 *   gathered value by value into the int8 buffer first.  The compiler may widen a kernel with
 *   zero taps on the right to reach k_w * in_c % 4 == 0 where that adds no group (3x3 on one
 *   channel: rows of 4 taps, K = 12 either way) or the rows are too short to copy; k_w is
 *   then the widened width.
 *   3-D layers and 2-D stems with much padding (frame_d > 0) first copy each image into a
 *   frame in scratch, the image with its padding (the input zero point) around it:
 *     frame[frame_d][frame_h][frame_w][in_c]:  frame[d + pad_d][h + pad_h][w + pad_w][c]
 *                                                = x[n, d, h, w, c]
 *   (each frame_* >= (out_* - 1) * stride_* + (k_* - 1) * dilation_* + 1 and >= pad_* + in_*,
 *   computed by tinyc/quant/fast.py; the border is filled once per call).  Every window then
 *   lies inside the frame and is read as runs.
 *   w        [out_c, k_padded] int8: the O(D)HWI weights flattened per output channel,
 *            zero-padded (4-byte aligned).
 *   scratch  tc_conv_gemm_s8_scratch_size(p) bytes, 4-byte aligned: the panel (12 * k_padded
 *            bytes), then, when in_c % 4 != 0, one int8 window to gather into (k_padded bytes
 *            and 4 of slack for whole-word fills and copies), then, for framed layers, the
 *            frame (rounded up to a word, and 4 bytes of slack for the word reads past a short
 *            run's end).
 * tc_conv_gemm_1x1_s8: the same for 2-D 1x1 layers of stride 1 without padding and with
 *   in_c % 4 == 0 (k_h = k_w = 1, pad_h = pad_w = 0, frame_d = 0; the compiler checks): output
 *   pixel i reads input pixel i, so each panel is expanded straight from 6 consecutive pixels
 *   with no window bookkeeping (about 10 instructions per pixel).  Same params, weights and
 *   scratch.
 *
 * tc_depthwise_conv_planar_s8 (depth multiplier 1, dilation 1; any kernel, stride, padding;
 * 2-D or 3-D):
 *   one channel at a time: the channel's input volume is copied into scratch as int16 with its
 *   padding (the input zero point) around it,
 *     plane[plane_d][plane_h][plane_w]:
 *       plane[d + pad_d][i + pad_h][j + pad_w] = x[n, d, i, j, c]
 *   so that horizontally adjacent taps are adjacent int16 pairs: each output is
 *   k_d * k_h * k_pairs SMLADs of a plane pair with a weight pair (the channel's weights,
 *   expanded into scratch as int16: k_d * k_h rows of 2 * k_pairs values, k_pairs =
 *   ceil(k_w / 2), each row zero-padded to its even length, so an odd kernel's last pair reads
 *   one value past the window against weight 0).  2-D layers have in_d = out_d = k_d =
 *   plane_d = 1.  The plane's rows are read from x x_col apart along a row and x_gap more
 *   from one row's end to the next row's start, and the outputs written y_col apart along a
 *   row and y_row apart between rows: for channels-last x and y, x_col = y_col = c, x_gap =
 *   0 and y_row = out_w * c.  The compiler may describe a tall 2-D layer transposed (H and W
 *   swapped in every field and in the kernel, x_col = in_h * c and y_col = out_h * c, x_gap
 *   and y_row stepping to the next column; kws01's 25x5 layers run 5 rows of 25 outputs),
 *   where the rows' set-up and an odd width's last output cost more than a store call per row.
 *   w        [channels, groups, 4] int8, groups = ceil(k_d * k_h * k_pairs / 2): per channel
 *            those padded rows flattened, zero-padded to whole groups of 4 and each group
 *            stored in sxtb16 order (tc_dsp.h: values v0 v1 v2 v3 as bytes v0 v2 v1 v3), so
 *            that one word expands into two int16 pairs in natural order.
 *   A 3x3 kernel at stride_w 1 or 2 with shift < 0 on Thumb-2 with the DSP extension computes
 *   the accumulators of chunk_rows output rows of one output depth first (into scratch, one
 *   depth slice of the kernel after the other; tc_planar_rows_3x3_t2 sums two neighbouring
 *   outputs from shared loads: 11 or 12.5 instructions per output and slice), then
 *   requantizes them (tc_planar_store_full_t2 for narrow records and the full int8 range: 8
 *   per output), so that each loop keeps its own constants in registers.
 *   With planes = 4 (c a multiple of 4) four channels are copied into four planes at once
 *   (per pair of pixels: two word loads, four SXTB16, four PKH and four word stores for 16
 *   values, against about 7 instructions per value one channel at a time on short rows),
 *   then each is computed as above.
 *   scratch  tc_depthwise_conv_planar_s8_scratch_size(p) bytes, 4-byte aligned: `planes`
 *            planes, each with two int16 of slack for that last over-read and rounded up to a
 *            word, then the channel's weights (4 * groups int16), then chunk_rows * out_w
 *            int32 accumulators.
 *   plane_d >= (out_d - 1) * stride_d + k_d, plane_h >= (out_h - 1) * stride_h + k_h and
 *   plane_w >= (out_w - 1) * stride_w + k_w, each at least the padded input extent
 *   (tinyc/quant/fast.py computes them).
 *
 * tc_depthwise_conv_cl_s8 (depth multiplier 1, dilation 1, c % 4 == 0; 2-D or 3-D):
 *   channels-last, four channels at a time: for each output pixel and group of 4 channels,
 *   per tap one word of x and one of w (SXTB16 twice each, then SMLABB / SMLATT into the four
 *   sums), so it has no per-channel set-up.  The planar kernel's set-up (copying the channel's
 *   plane, about 400 instructions) dominates where a channel has few outputs (sww01's 1-D
 *   layers, the last layers of MobileNets); the compiler picks per layer.  Layers with padding,
 *   or whose windows reach past the input, read their windows from a frame (as tc_conv_gemm_s8's,
 *   filled once per call, the image copied in per image), the others from x.  The tap offsets
 *   (int32, in the frame or in x) are computed once per call into scratch.
 *   w        [c / 4, k_d * k_h * k_w, 4] int8: for each group of 4 channels their weights tap
 *            after tap (k_d, k_h, k_w order).
 *   scratch  tc_depthwise_conv_cl_s8_scratch_size(p) bytes, 4-byte aligned: the tap offsets,
 *            then the frame (frame_d * frame_h * frame_w * c bytes, rounded up to a word).
 *
 * Layouts as tc_conv_s8.h: x [batch, in_d, in_h, in_w, in_c], y [batch, out_d, out_h, out_w,
 * out_c] int8.
 */
#ifndef TC_CONV_FAST_S8_H
#define TC_CONV_FAST_S8_H

#include "tc_common.h"
#include "tc_requant.h"

typedef struct {
    int32_t batch;
    int32_t in_d, in_h, in_w, in_c;
    int32_t out_d, out_h, out_w, out_c;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t dilation_d, dilation_h, dilation_w;
    int32_t pad_d, pad_h, pad_w;            /* leading (front / top / left) padding */
    int32_t k_padded;                       /* k_d * k_h * k_w * in_c rounded up to 4k */
    int32_t frame_d, frame_h, frame_w;      /* the frame's extent (3-D, 2-D stems), or 0 */
    int32_t input_zero_point;               /* the value of padding taps */
    int32_t output_offset;                  /* output zero point */
    int32_t act_min, act_max;               /* within [-128, 127] */
    int32_t per_channel;                    /* 1: requant[oc]; 0: requant[0] */
    const int32_t *bias;                    /* [out_c], folded with the input zero point */
    const tc_requant_channel_t *requant;    /* [out_c] or [1] */
} tc_conv_gemm_s8_params_t;

size_t tc_conv_gemm_s8_scratch_size(const tc_conv_gemm_s8_params_t *p);

void tc_conv_gemm_s8(const tc_conv_gemm_s8_params_t *p, const int8_t *x, const int8_t *w,
                     int8_t *y, void *scratch);
void tc_conv_gemm_1x1_s8(const tc_conv_gemm_s8_params_t *p, const int8_t *x, const int8_t *w,
                         int8_t *y, void *scratch);

typedef struct {
    int32_t batch;
    int32_t in_d, in_h, in_w, c;
    int32_t out_d, out_h, out_w;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t pad_d, pad_h, pad_w;            /* leading (front / top / left) padding */
    int32_t plane_d, plane_h, plane_w;      /* the padded volume in scratch */
    int32_t k_pairs;                        /* (k_w + 1) / 2 */
    int32_t chunk_rows;                     /* output rows per accumulator pass (>= 1) */
    int32_t planes;                         /* channels copied per pass: 1, or 4 (c % 4 == 0) */
    int32_t x_col, x_gap;                   /* x: elements between a row's pixels, and from
                                             * past a row's last pixel to the next row */
    int32_t y_col, y_row;                   /* y: between a row's outputs, between rows */
    int32_t input_zero_point;
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t per_channel;                    /* 1: requant[c]; 0: requant[0] */
    const int32_t *bias;                    /* [c], folded with the input zero point */
    const tc_requant_channel_t *requant;    /* [c] or [1] */
} tc_depthwise_conv_planar_s8_params_t;

size_t tc_depthwise_conv_planar_s8_scratch_size(const tc_depthwise_conv_planar_s8_params_t *p);

void tc_depthwise_conv_planar_s8(const tc_depthwise_conv_planar_s8_params_t *p,
                                 const int8_t *x, const int8_t *w, int8_t *y, void *scratch);

typedef struct {
    int32_t batch;
    int32_t in_d, in_h, in_w, c;            /* c % 4 == 0 */
    int32_t out_d, out_h, out_w;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t pad_d, pad_h, pad_w;            /* leading (front / top / left) padding */
    int32_t frame_d, frame_h, frame_w;      /* the padded image in scratch, or 0: x itself */
    int32_t input_zero_point;
    int32_t output_offset;
    int32_t act_min, act_max;
    int32_t per_channel;                    /* 1: requant[c]; 0: requant[0] */
    const int32_t *bias;                    /* [c], folded with the input zero point */
    const tc_requant_channel_t *requant;    /* [c] or [1] */
} tc_depthwise_conv_cl_s8_params_t;

size_t tc_depthwise_conv_cl_s8_scratch_size(const tc_depthwise_conv_cl_s8_params_t *p);

void tc_depthwise_conv_cl_s8(const tc_depthwise_conv_cl_s8_params_t *p, const int8_t *x,
                             const int8_t *w, int8_t *y, void *scratch);

#endif /* TC_CONV_FAST_S8_H */

/*
 * tinyc runtime: binarized (1-bit) kernels -- bit packing, binary convolution, binary fully
 * connected, binary max pooling.  The binary conventions are stated here, once; the Python side
 * (compiler/tinyc/binary.py) states the same ones and holds the NumPy reference of every kernel.
 *
 * Values.  A binary tensor holds values in {-1, +1}.  It is stored bit-packed: bit 1 means -1,
 * bit 0 means +1 (Larq Compute Engine's convention).
 *
 * Packed layout.  A packed tensor of logical shape [N, D, H, W, C] (channels-last, like every
 * tinyc activation) is uint32_t [N, D, H, W, tc_bwords(C)]: channel c of a pixel is bit c % 32
 * of the pixel's word c / 32 (channel 0 in bit 0).  Bits are set and read with shifts and masks,
 * never bitfields.  When C is not a multiple of 32, the last word of each pixel has
 * 32 - C % 32 padding bits, and they are ZERO.  Every kernel that writes packed data keeps them
 * zero; the binary convolution and fully connected kernels mask them anyway, so a tensor with
 * garbage padding bits still gives the right dot products (max pool and unpack ignore them).
 * The layout of a tensor does not depend on its consumers: grouped convolutions read their
 * group's channel slice out of the dense words (see tc_bconv_*), so one packed tensor can feed
 * any number of consumers (residual shortcuts) without repacking.
 *
 * Dot product.  For two packed vectors of N valid bits, sum_i x_i * w_i = N - 2 * popcount(x ^ w)
 * (equal bits multiply to +1, different bits to -1), computed in int32.  N counts valid bits only.
 *
 * Output transforms (shared by tc_bconv_* and tc_bfc_*), from the integer dot of output channel c:
 *   _s32  y = dot                                        raw accumulator
 *   _f32  y = clamp(float(dot) * mul[c] + bias[c], act_min, act_max)
 *         Two float32 roundings, in that order, no fused multiply-add: the files must be compiled
 *         without floating-point contraction (-ffp-contract=off, implied by -std=c99).  This is
 *         a BatchNorm and any per-channel scale folded together: BN(dot * s) = dot * (s * g /
 *         sqrt(v + eps)) + (beta - mean * g / sqrt(v + eps)).  float(dot) is exact while
 *         |dot| <= 2^24, which the compiler checks.
 *   _s8   y = clamp((dot * mul[c] + bias[c]) >> out_shift, out_min, out_max)   as int8
 *         Integer only (no FPU needed): int32 mul and bias, one shift per layer (arithmetic:
 *         floor), the clamp within [-128, 127].  The compiler (binary.py requant_s8) makes
 *         (mul, bias, shift) the fixed-point form of the int8 requantization of a real output
 *         dot * m + b for a consumer of scale s and zero point z, rounded half up:
 *         mul = round(m / s * 2^shift), bias = round((b / s + z) * 2^shift) + 2^(shift-1),
 *         with shift as large as |dot * mul + bias| < 2^31 allows for |dot| <= N.
 *   _b1   bit = (dot < thr[c]) XOR flip bit c        packed output, -1 where bit = 1
 *         This is sign(BN(dot)) with sign(0) = +1 fused into one integer comparison: with
 *         BN(dot) = a * dot + b, the output is -1 exactly when a * dot + b < 0, i.e.
 *           a > 0:  dot < -b / a   <=>  dot < ceil(-b / a)          thr = ceil(-b/a),      flip 0
 *           a < 0:  dot > -b / a   <=>  !(dot < floor(-b / a) + 1)  thr = floor(-b/a) + 1, flip 1
 *           a = 0:  constant (b < 0)                               thr = -(N + 1), flip = b < 0
 *         (exact real arithmetic; binary.py's sign_thresholds computes thr and flip, and
 *         sign_thresholds_from_function reproduces any given float evaluation instead).  flip
 *         is packed like an activation: uint32_t [tc_bwords(out_c)], padding bits zero, so the
 *         output's padding bits stay zero.
 *
 * Accumulator bound.  |dot| <= N = k_d * k_h * k_w * in_c / groups (conv) or in_c (fully
 * connected), for any padding, so int32 never overflows while N < 2^31; the _f32 transform
 * needs N <= 2^24 (exact float(dot)).  The compiler refuses larger layers.
 *
 * Popcount.  Cortex-M0 to M33 have no population-count instruction and __builtin_popcount
 * becomes a libgcc call on Thumb, so tc_popcount_u32 is the portable SWAR count (shifts, masks,
 * adds; no multiply, so it is also fast on cores with the small 32-cycle multiplier).  The fast
 * convolutions (tc_bconv_fast.c) count without popcounts: bit-sliced carry-save adders over
 * words of 32 output (or depthwise) channels.
 */
#ifndef TC_BINARY_H
#define TC_BINARY_H

#include "tc_common.h"

/* ---- packing helpers ----------------------------------------------------------------------- */

/* Words holding `bits` packed values: ceil(bits / 32). */
static inline int32_t tc_bwords(int32_t bits)
{
    return (bits + 31) / 32;
}

/* The mask of the low n bits of a word, 1 <= n <= 32. */
static inline uint32_t tc_bmask(int32_t n)
{
    return n >= 32 ? 0xFFFFFFFFu : (((uint32_t)1 << n) - 1u);
}

/* Number of set bits of v: SWAR, 12 ALU operations, no table, no multiply. */
static inline int32_t tc_popcount_u32(uint32_t v)
{
    v = v - ((v >> 1) & 0x55555555u);                 /* 16 two-bit counts */
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u); /* 8 four-bit counts */
    v = (v + (v >> 4)) & 0x0F0F0F0Fu;                 /* 4 byte counts */
    v = v + (v >> 8);
    v = v + (v >> 16);
    return (int32_t)(v & 0x3Fu);
}

/* n bits (1 <= n <= 32) of a packed bit stream starting at bit `bit` (bit % 32 of word
 * bit / 32), in the low bits of the result.  The bits above n are whatever follows in the word
 * read and are not masked.  The next word is read only when the field crosses into it, so a
 * field ending in the last word of a buffer never reads past it. */
static inline uint32_t tc_bits_get(const uint32_t *v, int32_t bit, int32_t n)
{
    const int32_t q = bit >> 5;
    const int32_t s = bit & 31;
    uint32_t r = v[q] >> s;
    if (s + n > 32) { /* implies s > 0, so the shift below is in [1, 31] */
        r |= v[q + 1] << (32 - s);
    }
    return r;
}

/* ---- output transforms ------------------------------------------------------------------------ */

/* The _f32 transform of the header. */
static inline float tc_bout_f32(int32_t dot, float mul, float bias, float act_min, float act_max)
{
    const float scaled = (float)dot * mul;
    return tc_clamp_f32(scaled + bias, act_min, act_max);
}

/* The _s8 transform of the header before its clamp (the compiler guarantees that
 * dot * mul + bias fits in int32). */
static inline int32_t tc_bout_s8_value(int32_t dot, int32_t mul, int32_t bias, int32_t shift)
{
    return (dot * mul + bias) >> shift;
}

/* The _s8 transform of the header (out_min <= out_max, both within [-128, 127]). */
static inline int8_t tc_bout_s8(int32_t dot, int32_t mul, int32_t bias, int32_t shift,
                                int32_t out_min, int32_t out_max)
{
    return (int8_t)tc_clamp_s32(tc_bout_s8_value(dot, mul, bias, shift), out_min, out_max);
}

/* The output stage of tc_bconv_* and tc_bfc_*: one of the four transforms, chosen per call. */
typedef enum { TC_BOUT_S32 = 0, TC_BOUT_F32 = 1, TC_BOUT_S8 = 2, TC_BOUT_B1 = 3 } tc_bout_kind_t;

typedef struct {
    tc_bout_kind_t kind;
    const float *mul, *bias;         /* _f32 */
    const int32_t *mul_s8, *bias_s8; /* _s8 */
    const int32_t *thr;              /* _b1 */
    const uint32_t *flip;            /* _b1 */
    float act_min, act_max;          /* _f32 clamp */
    int32_t out_min, out_max;        /* _s8 clamp */
    int32_t out_shift;               /* _s8 */
    int32_t out_c;
} tc_bout_t;

/* An output stage of kind `kind` with its two tables t1, t2 (_f32: mul, bias float; _s8: mul,
 * bias int32_t; _b1: thr int32_t, flip uint32_t; _s32: none) and the clamps and shift of the
 * layer's parameters. */
static inline tc_bout_t tc_bout(tc_bout_kind_t kind, const void *t1, const void *t2,
                                float act_min, float act_max, int32_t out_min, int32_t out_max,
                                int32_t out_shift, int32_t out_c)
{
    tc_bout_t o = {kind, NULL, NULL, NULL, NULL, NULL, NULL, act_min, act_max,
                   out_min, out_max, out_shift, out_c};
    if (kind == TC_BOUT_F32) {
        o.mul = (const float *)t1;
        o.bias = (const float *)t2;
    } else if (kind == TC_BOUT_S8) {
        o.mul_s8 = (const int32_t *)t1;
        o.bias_s8 = (const int32_t *)t2;
    } else if (kind == TC_BOUT_B1) {
        o.thr = (const int32_t *)t1;
        o.flip = (const uint32_t *)t2;
    }
    return o;
}

/* Writes output channel oc of the pixel whose outputs start at y + yo (elements; words for
 * _b1).  _b1 assembles the bits in *word, which must start at 0, and stores each word (XOR
 * flip) at its last channel or at out_c - 1: channels must come in increasing order. */
static inline void tc_bout_store(const tc_bout_t *o, void *y, int32_t yo, int32_t oc,
                                 int32_t dot, uint32_t *word)
{
    switch (o->kind) {
    case TC_BOUT_S32:
        ((int32_t *)y)[yo + oc] = dot;
        break;
    case TC_BOUT_F32:
        ((float *)y)[yo + oc] = tc_bout_f32(dot, o->mul[oc], o->bias[oc], o->act_min, o->act_max);
        break;
    case TC_BOUT_S8:
        ((int8_t *)y)[yo + oc] = tc_bout_s8(dot, o->mul_s8[oc], o->bias_s8[oc], o->out_shift,
                                            o->out_min, o->out_max);
        break;
    case TC_BOUT_B1:
        *word |= (uint32_t)(dot < o->thr[oc]) << (oc & 31);
        if ((oc & 31) == 31 || oc == o->out_c - 1) {
            ((uint32_t *)y)[yo + (oc >> 5)] = *word ^ o->flip[oc >> 5];
            *word = 0;
        }
        break;
    }
}

/* ---- bit packing (tc_bitpack.c) --------------------------------------------------------------- */

/*
 * Pack `outer` vectors of `channels` values each (x [outer, channels], dense) into
 * y uint32_t [outer, tc_bwords(channels)]:
 *   tc_bitpack_f32: bit = x[i, c] < t[c], with t = thr[c], or p->threshold_f32 when thr is NULL.
 *                   With t = 0 this is sign(x) with sign(0) = +1 (and -0.0 gives +1).  NaN
 *                   gives bit 0 (+1).  A learned per-channel threshold alpha (ReActNet's RSign,
 *                   sign(x - alpha)) is t = alpha: x - alpha < 0 exactly when x < alpha in IEEE
 *                   arithmetic with subnormals, so the comparison is the exact equivalent.
 *   tc_bitpack_s8:  bit = x[i, c] < t[c], with t = thr[c], or p->threshold_s8 when thr is NULL.
 *                   For int8 data of scale s > 0 and zero point z, sign(s * (x - z) - alpha) is
 *                   -1 exactly when x < t = ceil(z + alpha / s) (t = z for alpha = 0).
 *                   Per-channel thresholds are int8 (a threshold below -128 is -128: no bit);
 *                   a channel whose threshold is above 127 (every bit set) has its bit set in
 *                   always [tc_bwords(channels)] instead, which may be NULL when none is.
 *                   The scalar p->threshold_s8 is any int32.  With the DSP extension (TC_DSP)
 *                   four channels take one SSUB8, SEL and USAD8 (seven instructions with the
 *                   loads; qemu-m4: 3.5 instructions per value at 14 channels, 2.5 at 28,
 *                   from 11.5 and 10.3 one value at a time).
 * The padding bits of every last word are written as zero.  outer = N * D * H * W.
 */
typedef struct {
    int32_t outer;
    int32_t channels;
    float threshold_f32; /* tc_bitpack_f32 with thr == NULL */
    int32_t threshold_s8; /* tc_bitpack_s8 with thr == NULL */
} tc_bitpack_params_t;

void tc_bitpack_f32(const tc_bitpack_params_t *p, const float *x, const float *thr, uint32_t *y);
void tc_bitpack_s8(const tc_bitpack_params_t *p, const int8_t *x, const int8_t *thr,
                   const uint32_t *always, uint32_t *y);

/*
 * Unpack x uint32_t [outer, tc_bwords(channels)] into y [outer, channels]:
 *   tc_bitunpack_f32: +1.0f for bit 0, -1.0f for bit 1;
 *   tc_bitunpack_s8:  p->plus_s8 for bit 0, p->minus_s8 for bit 1 (the quantized +1 and -1 of
 *                     the int8 consumer, within [-128, 127]).
 * Padding bits are ignored.
 */
typedef struct {
    int32_t outer;
    int32_t channels;
    int32_t plus_s8, minus_s8;
} tc_bitunpack_params_t;

void tc_bitunpack_f32(const tc_bitunpack_params_t *p, const uint32_t *x, float *y);
void tc_bitunpack_s8(const tc_bitunpack_params_t *p, const uint32_t *x, int8_t *y);

/* ---- binary convolution (tc_bconv.c) ------------------------------------------------------------ */

/*
 * Binary convolution, 1-D / 2-D / 3-D, channels-last, any stride, dilation and groups.
 *
 *   dot[n, od, oh, ow, oc] = sum over the taps (kd, kh, kw) inside the input and ic < cig of
 *       x[n, od*sd - pd + kd*dd, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw, g*cig + ic]
 *     * w[oc, kd, kh, kw, ic]
 *     + pad_corr[class(od, oh, ow), oc]          (only when pad_corr != NULL)
 * with x and w in {-1, +1}, cig = in_c / groups, cog = out_c / groups, g = oc / cog; then one
 * output transform of the header (_s32, _f32, _s8, _b1).
 *
 * Padding.  Taps outside the input contribute nothing, so with pad_corr == NULL this is
 * PyTorch's zero padding of sign(x) (padded values are 0, neither +1 nor -1) at no cost: the
 * loops only visit the taps inside the input (tc_window_range) and N counts only their bits.
 * Any other constant pad value v in {+1, -1} (Larq's pad_values = 1 is v = +1) adds
 *   v * sum over the padded taps and ic < cig of w[oc, kd, kh, kw, ic]
 * which depends only on which taps are padded, i.e. on the output position's "class", so the
 * compiler precomputes it (binary.py padding_correction) into
 *   pad_corr int32_t [cls_d, cls_h, cls_w, out_c],   cls_a = lead_a + 1 + trail_a
 * where along each axis a, lead_a is the number of leading output positions whose window starts
 * before the input, trail_a the number of trailing ones whose window ends past it, and the
 * class of output position o is
 *   o < lead_a ? o : (o >= out_a - trail_a ? lead_a + 1 + o - (out_a - trail_a) : lead_a)
 * (class lead_a is the interior; its row of the table is zero when all three axes are interior).
 * Leading pads are given, trailing pads are implied by out_*.
 *
 * Layouts:
 *   x    uint32_t [batch, in_d, in_h, in_w, tc_bwords(in_c)]       packed (header), dense over
 *        all in_c channels: group g reads bits [g * cig, (g + 1) * cig) of each pixel, which need
 *        not start on a word boundary.
 *   w    uint32_t [out_c, tc_bwords(k_d * k_h * k_w * cig)]        (const, in flash) for each
 *        output channel, the bits of w[oc, kd, kh, kw, ic] in row-major order (kd, kh, kw, ic)
 *        packed as one bit stream (bit i of the row in word i / 32, bit i % 32), the row's
 *        padding bits zero.  When cig is a multiple of 32 each tap starts on a word boundary
 *        (Larq's OHWI packing); for small cig (depthwise: cig = 1) it wastes no flash.
 *   pad_corr int32_t [cls_d, cls_h, cls_w, out_c] or NULL (zero padding)
 *   _f32: mul, bias float [out_c];  _s8: mul, bias int32_t [out_c];  _b1: thr int32_t [out_c],
 *   flip uint32_t [tc_bwords(out_c)]
 *   y    _s32: int32_t, _f32: float, _s8: int8_t [batch, out_d, out_h, out_w, out_c];
 *        _b1: uint32_t [batch, out_d, out_h, out_w, tc_bwords(out_c)] packed, padding bits zero.
 * 1-D convolution is in_d = in_h = 1; 2-D is in_d = 1.  Depthwise is groups = in_c (any channel
 * multiplier out_c / in_c).  y must not overlap x.
 *
 * Inner loops, chosen once per call from cig: cig % 32 == 0 (whole words, aligned), cig == 1
 * (depthwise: one bit per tap), otherwise bit fields read with tc_bits_get and masked.
 */
typedef struct {
    int32_t batch;
    int32_t in_d, in_h, in_w, in_c; /* in_c counts channels (bits), not words */
    int32_t out_d, out_h, out_w, out_c;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t dilation_d, dilation_h, dilation_w;
    int32_t pad_d, pad_h, pad_w; /* leading (front/top/left) padding */
    int32_t groups;
    int32_t lead_d, lead_h, lead_w;    /* padding classes, read only when pad_corr != NULL */
    int32_t trail_d, trail_h, trail_w;
    float act_min, act_max;   /* _f32 clamp */
    int32_t out_min, out_max; /* _s8 clamp, within [-128, 127] */
    int32_t out_shift;        /* _s8 */
} tc_bconv_params_t;

void tc_bconv_s32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                  const int32_t *pad_corr, int32_t *y);
void tc_bconv_f32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                  const int32_t *pad_corr, const float *mul, const float *bias, float *y);
void tc_bconv_s8(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                 const int32_t *pad_corr, const int32_t *mul, const int32_t *bias, int8_t *y);
void tc_bconv_b1(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                 const int32_t *pad_corr, const int32_t *thr, const uint32_t *flip,
                 uint32_t *y);

/* The padding class of output position o along one axis (see "Padding" above). */
static inline int32_t tc_bconv_pad_class(int32_t o, int32_t lead, int32_t trail, int32_t out)
{
    if (o < lead) {
        return o;
    }
    if (o >= out - trail) {
        return lead + 1 + o - (out - trail);
    }
    return lead;
}

/* The output stage of a tc_bconv_* call with the kind's tables (tc_bout). */
static inline tc_bout_t tc_bconv_out(const tc_bconv_params_t *p, tc_bout_kind_t kind,
                                     const void *t1, const void *t2)
{
    return tc_bout(kind, t1, t2, p->act_min, p->act_max, p->out_min, p->out_max, p->out_shift,
                   p->out_c);
}

/* ---- fast binary convolutions (tc_bconv_fast.c) ---------------------------------------------- */

/*
 * The same dot products and output transforms as tc_bconv_* (same parameter struct, same
 * results bit for bit: tests/test_binary_fast.py), from weights laid out at compile time
 * (compiler/tinyc/binary_fast.py) in the order the fast loops read them.
 *
 * tc_bconv_sparse_*: k_d * k_h * k_w * cig <= 65535 and in_w * (cig + 2) + 4 <= 65535 (16-bit
 * positions and counts).
 * Weights are packed along the OUTPUT channels: 32 output channels per word.
 *   w       uint32_t [groups, tc_bwords(cog), k_d * k_h * k_w * (cig + 1)]: word
 *           (g, q, tap * (cig + 1) + ic) holds in bit j the weight bit of output channel
 *           g * cog + 32 q + j at (tap, ic) (bits of channels >= cog zero); word
 *           (g, q, tap * (cig + 1) + cig) is zero (the position the cached lists pad with).
 *   wv      uint16_t [cls_d, cls_h, cls_w, out_c]: per padding class (as pad_corr) and output
 *           channel, Wv = the number of 1 weight bits over the class's valid taps.
 *   pad_corr as tc_bconv_* (NULL for zero padding).
 *   thr_class, thr_planes (_b1, in place of wv, pad_corr and thr): per padding class the
 *           index into thr_planes, uint16_t [cls_d, cls_h, cls_w], of its table uint32_t
 *           [2, groups, tc_bwords(cog), P], P the bit length of 2 k_d k_h k_w cig + 1: for
 *           b = 0 and b = 1, plane k bit j = bit k of C0 = T + Wv and C1 = Wv - T + N + 1 of
 *           channel g * cog + 32 q + j, with T = clamp(floor((N + pc - thr) / 2) + 1, 0, N + 1)
 *           and N, Wv, pc the class's valid bits, 1 weight bits and pad_corr (0 for zero
 *           padding), so that dot < thr exactly when 2 S + (b ? N - n1 : n1) is below C1
 *           (b = 1) or at least C0 (b = 0) (classes with equal tables share).
 *   scratch tc_bconv_sparse_scratch_size(p) bytes, 4-byte aligned: mostly a cache of k_d * k_h
 *           input rows listed once, about 2 * (cig + 2) + 6 bytes per pixel and group
 *           (tc_bconv_fast.c).
 * dot = N - 2 n1 + pad_corr + (b ? 4 S - 2 Wv : 2 Wv - 4 S), where over the window's valid
 * bits (N of them, n1 ones) b is 1 when 2 n1 <= N (else 0) and S counts the positions holding
 * b where the weight bit is 1 (tc_bconv_fast.c derives it).
 *
 * tc_bconv_dw_*: depthwise, groups == in_c == out_c, k_d * k_h * k_w <= 31.
 *   w       uint32_t [k_d * k_h * k_w, tc_bwords(out_c)]: the weight bits of all channels per
 *           tap, packed like an activation (padding bits zero).
 *   pad_corr as tc_bconv_* (NULL for zero padding).
 *   thr_class, thr_planes (_b1, in place of pad_corr and thr): per padding class (as
 *           pad_corr) the index into thr_planes, uint16_t [cls_d, cls_h, cls_w], of its table
 *           uint32_t [tc_bwords(out_c), P], P the bit length of k_d * k_h * k_w + 1: plane k
 *           bit j = bit k of T = clamp(floor((n + pc - thr) / 2) + 1, 0, n + 1) of channel
 *           32 q + j, n the class's valid taps and pc its pad_corr (0 for zero padding), so that
 *           dot < thr exactly when the mismatch count M >= T (classes with equal tables share).
 */
size_t tc_bconv_sparse_scratch_size(const tc_bconv_params_t *p);
void tc_bconv_sparse_s32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                         const uint16_t *wv, const int32_t *pad_corr, int32_t *y,
                         void *scratch);
void tc_bconv_sparse_f32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                         const uint16_t *wv, const int32_t *pad_corr, const float *mul,
                         const float *bias, float *y, void *scratch);
void tc_bconv_sparse_s8(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                        const uint16_t *wv, const int32_t *pad_corr, const int32_t *mul,
                        const int32_t *bias, int8_t *y, void *scratch);
void tc_bconv_sparse_b1(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                        const uint16_t *thr_class, const uint32_t *thr_planes,
                        const uint32_t *flip, uint32_t *y, void *scratch);

void tc_bconv_dw_s32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                     const int32_t *pad_corr, int32_t *y);
void tc_bconv_dw_f32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                     const int32_t *pad_corr, const float *mul, const float *bias, float *y);
void tc_bconv_dw_s8(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                    const int32_t *pad_corr, const int32_t *mul, const int32_t *bias, int8_t *y);
void tc_bconv_dw_b1(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                    const uint16_t *thr_class, const uint32_t *thr_planes,
                    const uint32_t *flip, uint32_t *y);

/* ---- binary fully connected (tc_bfc.c) ----------------------------------------------------------- */

/*
 * Binary fully connected: dot[n, oc] = sum_{i < in_c} x[n, i] * w[oc, i], then one output
 * transform of the header.
 *   x    uint32_t [batch, tc_bwords(in_c)]     packed
 *   w    uint32_t [out_c, tc_bwords(in_c)]     packed rows (const, in flash), padding bits zero
 *   _f32: mul, bias float [out_c];  _s8: mul, bias int32_t [out_c];  _b1: thr int32_t [out_c],
 *   flip uint32_t [tc_bwords(out_c)]
 *   y    _s32 int32_t / _f32 float / _s8 int8_t [batch, out_c]; _b1 uint32_t
 *        [batch, tc_bwords(out_c)]
 * A flattened channels-last feature map [N, D, H, W, C] is a valid x only when C is a multiple
 * of 32 (otherwise the padding bits sit between pixels); the compiler repacks it otherwise.
 */
typedef struct {
    int32_t batch;
    int32_t in_c, out_c;
    float act_min, act_max;   /* _f32 clamp */
    int32_t out_min, out_max; /* _s8 clamp */
    int32_t out_shift;        /* _s8 */
} tc_bfc_params_t;

/* The output stage of a tc_bfc_* call with the kind's tables (tc_bout). */
static inline tc_bout_t tc_bfc_out(const tc_bfc_params_t *p, tc_bout_kind_t kind,
                                   const void *t1, const void *t2)
{
    return tc_bout(kind, t1, t2, p->act_min, p->act_max, p->out_min, p->out_max, p->out_shift,
                   p->out_c);
}

void tc_bfc_s32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, int32_t *y);
void tc_bfc_f32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, const float *mul,
                const float *bias, float *y);
void tc_bfc_s8(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w, const int32_t *mul,
               const int32_t *bias, int8_t *y);
void tc_bfc_b1(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
               const int32_t *thr, const uint32_t *flip, uint32_t *y);

/*
 * tc_bfc_sliced_*: the dot products and transforms of tc_bfc_* (same params; used for 1x1
 * convolutions and binary dense layers), counted bit-sliced over 32 output channels at a time:
 * per row and word of channels, the words w ^ (x bit ? ~0 : 0) of all input channels go
 * through carry-save adders (about 7.7 instructions per input channel per 32 output channels,
 * against about 13 per word of 32 input channels per output channel for the popcount of
 * tc_bfc_*: the compiler picks the cheaper per layer).
 *   w          uint32_t [tc_bwords(out_c), 16 * ceil(in_c / 16)]: word (q, ic) holds in bit j the
 *              weight bit of output channel 32 q + j at input channel ic (zero past in_c and
 *              for channels >= out_c).
 *   thr_planes (_b1) uint32_t [tc_bwords(out_c), P], P the bit length of in_c + 1: plane k
 *              bit j = bit k of T = clamp(floor((in_c - thr) / 2) + 1, 0, in_c + 1) of channel
 *              32 q + j, so that dot < thr exactly when the mismatch count M >= T.
 */
void tc_bfc_sliced_s32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                       int32_t *y);
void tc_bfc_sliced_f32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                       const float *mul, const float *bias, float *y);
void tc_bfc_sliced_s8(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                      const int32_t *mul, const int32_t *bias, int8_t *y);
void tc_bfc_sliced_b1(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                      const uint32_t *thr_planes, const uint32_t *flip, uint32_t *y);

/*
 * tc_bfc_list_*: the same dot products and transforms, counted from each row's minority bits:
 * per row the positions of its 1 bits when at most half are 1, else of its 0 bits, are listed
 * once, and for each word of 32 output channels the weight words at those positions go through
 * the carry-save adders of tc_bconv_sparse_* (about 7 instructions per listed position per 32
 * output channels, where tc_bfc_sliced_* spends about 9 per input channel, every one).
 *   w          uint32_t [tc_bwords(out_c), in_c + 1]: word (q, ic) holds in bit j the weight bit
 *              of output channel 32 q + j at input channel ic; word (q, in_c) is zero.
 *   wv         (not _b1) uint16_t [out_c]: each output channel's 1 weight bits.
 *   thr_planes (_b1) uint32_t [2, tc_bwords(out_c), P], P the bit length of 2 in_c + 1: bit j of
 *              plane k of [b, q] is bit k of C_b of channel 32 q + j, C0 = T + Wv and
 *              C1 = Wv - T + in_c + 1, with T as for tc_bfc_sliced_b1 and Wv as wv.
 *   scratch    tc_bfc_list_scratch_size(p) bytes, 2-byte aligned: the row's list (its minority
 *              bits, at most in_c / 2, padded to even length).
 */
size_t tc_bfc_list_scratch_size(const tc_bfc_params_t *p);
void tc_bfc_list_s32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                     const uint16_t *wv, int32_t *y, void *scratch);
void tc_bfc_list_f32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                     const uint16_t *wv, const float *mul, const float *bias, float *y,
                     void *scratch);
void tc_bfc_list_s8(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                    const uint16_t *wv, const int32_t *mul, const int32_t *bias, int8_t *y,
                    void *scratch);
void tc_bfc_list_b1(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                    const uint32_t *thr_planes, const uint32_t *flip, uint32_t *y, void *scratch);

/* ---- binary max pooling (tc_bmaxpool.c) ---------------------------------------------------------- */

/*
 * Max pooling of packed binary data, 1-D / 2-D / 3-D, channels-last.  The maximum of values in
 * {-1, +1} is -1 only when all of them are -1, and -1 is bit 1: the max is the bitwise AND of
 * the window's words, 32 channels per operation.  The window is that of tc_pool_f32; taps
 * outside the input are ignored (PyTorch pads max pooling with -infinity), and a window with no
 * tap inside the input (impossible with PyTorch's pad <= kernel / 2) gives -1 in every channel.
 * Also max(sign(x)) = sign(max(x)), so a compiler may move a max pool across a binarization.
 *   x uint32_t [batch, in_d, in_h, in_w, tc_bwords(c)]  ->  y [batch, out_d, out_h, out_w,
 *   tc_bwords(c)]; padding bits: the AND of the inputs' (zero stays zero), all-padding window:
 *   zero.
 */
typedef struct {
    int32_t batch;
    int32_t in_d, in_h, in_w, c;
    int32_t out_d, out_h, out_w;
    int32_t k_d, k_h, k_w;
    int32_t stride_d, stride_h, stride_w;
    int32_t dilation_d, dilation_h, dilation_w;
    int32_t pad_d, pad_h, pad_w; /* leading padding */
} tc_bmaxpool_params_t;

void tc_bmaxpool_b1(const tc_bmaxpool_params_t *p, const uint32_t *x, uint32_t *y);

#endif /* TC_BINARY_H */

/*
 * tinyc runtime: fast binary convolutions (see tc_binary.h for the conventions, the layouts and
 * the exact arithmetic they share with the portable tc_bconv_*).  C99: the speed comes from
 * the algorithms, which suit every core (Cortex-M0 to M55 and the host); only the carry-save
 * block of tc_bconv_sparse_* has a Thumb-2 assembly version (Cortex-M3 and up, optimized
 * builds), beside its C version, because GCC spills its registers (about 7.8 instructions per
 * listed word in C, 6.2 in assembly, on qemu-m4).
 *
 * tc_bconv_sparse_*: weights packed along the output channels, so one logic operation handles
 * 32 output channels.  For each output pixel and group the window's valid input bits are read
 * once; only the bits of the minority value b (1 when at most half of them are 1, else 0) are
 * visited: their positions are listed (CLZ, about 6 instructions per listed bit), and for each
 * word of 32 output channels the weight words at those positions are summed bit-sliced with
 * carry-save adders (Harley-Seal: 31 adders of 5 logic operations per 32 listed words, the
 * carries rippled into the higher planes).  At most half of the N window bits are listed, so
 * a layer costs at most about 3.5 instructions per input bit and 32 output channels (listing
 * amortised over the words of output channels), whatever its channel counts, and less when
 * the activations are mostly +1 or mostly -1.  The planes then become per-channel
 * counts S (bit-serial, four or two channels per operation) and
 *   mismatches = n1 + Wv - 2 S   (b = 1)      mismatches = n1 - Wv + 2 S   (b = 0)
 * with n1 the window's 1 bits and Wv the channel's 1 weight bits over the valid taps, so
 *   dot = N - 2 * mismatches + pad_corr = N - 2 n1 + pad_corr + (b ? 4 S - 2 Wv : 2 Wv - 4 S).
 *
 * tc_bconv_dw_*: depthwise (one input channel per output channel): per tap, x ^ w of 32
 * channels at once, added into a bit-sliced counter of five planes (a vertical add); the
 * planes become the channels' mismatch counts as above.
 */
#include <math.h>

#include "tc_binary.h"

/* The drivers are inlined into each public function, where the output kind is a constant. */
#if defined(__GNUC__)
#define BCONV_INLINE inline __attribute__((always_inline))
#else
#define BCONV_INLINE inline
#endif

#define HS_BLOCK 16    /* the position list is padded to a multiple of this (zero words) */
#define DW_MAX_TAPS 31 /* tc_bconv_dw_*: five planes count to 31 */
#define MAX_PLANES 16  /* S <= N / 2 < 2^15: at most 15 planes are ever nonzero */

/* The number of leading zero bits of v != 0. */
static inline int32_t clz32(uint32_t v)
{
#if defined(__GNUC__) && (!defined(__arm__) || defined(__ARM_FEATURE_CLZ))
    return __builtin_clz(v); /* CLZ on ARMv7-M, one instruction on the host */
#else
    int32_t n = 0;
    for (int32_t step = 16; step > 0; step >>= 1) {
        if ((v >> (32 - step)) == 0) {
            n += step;
            v <<= step;
        }
    }
    return n;
#endif
}

/* Carry-save adder: *hi * 2 + *lo = a + b + c, bitwise. */
static inline void csa(uint32_t *hi, uint32_t *lo, uint32_t a, uint32_t b, uint32_t c)
{
    const uint32_t u = a ^ b;
    *hi = (a & b) | (u & c);
    *lo = u ^ c;
}

/* Adds the 16 weight words w[l[0..15]] into the planes ones .. eights (15 carry-save adders);
 * returns the carry into the sixteens. */
#if defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__ARM_ARCH_ISA_THUMB) && \
    __ARM_ARCH_ISA_THUMB >= 2
/* Thumb-2 (Cortex-M3 and up): the C version below with every value in a register (12 of
 * them); LDRD reads two positions at once.  99 instructions per 16 words. */
#define HS_CSA(lo, a, b) /* a = carry of lo + a + b, lo = their sum bit; b kept */             \
    "eor %[t], %[" lo "], %[" a "]\n\t"                                                        \
    "and %[" a "], %[" a "], %[" lo "]\n\t"                                                    \
    "eor %[" lo "], %[t], %[" b "]\n\t"                                                        \
    "and %[t], %[t], %[" b "]\n\t"                                                             \
    "orr %[" a "], %[" a "], %[t]\n\t"
#define HS_PAIR(a) /* a = carry of ones + the next two listed words */                         \
    "ldrd %[" a "], %[b], [%[l]], #8\n\t"                                                      \
    "ldr %[" a "], [%[w], %[" a "], lsl #2]\n\t"                                               \
    "ldr %[b], [%[w], %[b], lsl #2]\n\t" HS_CSA("ones", a, "b")

static BCONV_INLINE uint32_t hs16(uint32_t *ones, uint32_t *twos, uint32_t *fours, uint32_t *eights,
                            const uint32_t *w, const uint32_t *l)
{
    uint32_t a1, a2, a3, a4, b, t;
    __asm__(HS_PAIR("a1") HS_PAIR("a2") HS_CSA("twos", "a1", "a2")     /* a1 = fours */
            HS_PAIR("a2") HS_PAIR("a3") HS_CSA("twos", "a2", "a3")     /* a2 = fours */
            HS_CSA("fours", "a1", "a2")                               /* a1 = eights */
            HS_PAIR("a2") HS_PAIR("a3") HS_CSA("twos", "a2", "a3")     /* a2 = fours */
            HS_PAIR("a3") HS_PAIR("a4") HS_CSA("twos", "a3", "a4")     /* a3 = fours */
            HS_CSA("fours", "a2", "a3")                               /* a2 = eights */
            HS_CSA("eights", "a1", "a2")                              /* a1 = sixteens */
            : [ones] "+r"(*ones), [twos] "+r"(*twos), [fours] "+r"(*fours),
              [eights] "+r"(*eights), [l] "+r"(l), [a1] "=&r"(a1), [a2] "=&r"(a2),
              [a3] "=&r"(a3), [a4] "=&r"(a4), [b] "=&r"(b), [t] "=&r"(t)
            : [w] "r"(w)
            : "memory");
    return a1;
}
#else
static BCONV_INLINE uint32_t hs16(uint32_t *ones, uint32_t *twos, uint32_t *fours, uint32_t *eights,
                            const uint32_t *w, const uint32_t *l)
{
    uint32_t twos_a, twos_b, fours_a, fours_b, eights_a, eights_b, sixteens;
    csa(&twos_a, ones, *ones, w[l[0]], w[l[1]]);
    csa(&twos_b, ones, *ones, w[l[2]], w[l[3]]);
    csa(&fours_a, twos, *twos, twos_a, twos_b);
    csa(&twos_a, ones, *ones, w[l[4]], w[l[5]]);
    csa(&twos_b, ones, *ones, w[l[6]], w[l[7]]);
    csa(&fours_b, twos, *twos, twos_a, twos_b);
    csa(&eights_a, fours, *fours, fours_a, fours_b);
    csa(&twos_a, ones, *ones, w[l[8]], w[l[9]]);
    csa(&twos_b, ones, *ones, w[l[10]], w[l[11]]);
    csa(&fours_a, twos, *twos, twos_a, twos_b);
    csa(&twos_a, ones, *ones, w[l[12]], w[l[13]]);
    csa(&twos_b, ones, *ones, w[l[14]], w[l[15]]);
    csa(&fours_b, twos, *twos, twos_a, twos_b);
    csa(&eights_b, fours, *fours, fours_a, fours_b);
    csa(&sixteens, eights, *eights, eights_a, eights_b);
    return sixteens;
}
#endif

/* Adds carry * 2^k into planes[k..] (zero above the planes in use); returns the new top. */
static inline uint32_t *ripple(uint32_t *plane, uint32_t carry, uint32_t *top)
{
    while (carry != 0) {
        const uint32_t next = *plane & carry;
        *plane++ ^= carry;
        carry = next;
    }
    return plane > top ? plane : top;
}

/* planes[k] bit j = bit k of sum over i < len of bit j of w[list[i]] (len a multiple of
 * HS_BLOCK).  Blocks of 32 words keep five planes in registers; one block of 16 may follow.
 * Returns the number of planes written (>= 5). */
static int32_t hs_sum(const uint32_t *w, const uint32_t *list, int32_t len, uint32_t *planes)
{
    uint32_t ones = 0, twos = 0, fours = 0, eights = 0, sixteens = 0;
    uint32_t *top = planes + 5;
    for (int32_t k = 5; k < MAX_PLANES; ++k) {
        planes[k] = 0;
    }
    for (; len >= 32; len -= 32, list += 32) {
        const uint32_t a = hs16(&ones, &twos, &fours, &eights, w, list);
        const uint32_t b = hs16(&ones, &twos, &fours, &eights, w, list + 16);
        uint32_t thirtytwos;
        csa(&thirtytwos, &sixteens, sixteens, a, b);
        top = ripple(planes + 5, thirtytwos, top);
    }
    if (len > 0) {
        const uint32_t a = hs16(&ones, &twos, &fours, &eights, w, list);
        top = ripple(planes + 5, sixteens & a, top);
        sixteens ^= a;
    }
    planes[0] = ones;
    planes[1] = twos;
    planes[2] = fours;
    planes[3] = eights;
    planes[4] = sixteens;
    return (int32_t)(top - planes);
}

/* The per-channel counts of bit-sliced planes, sum over k < depth of bit j of planes[k] * 2^k
 * for channel j < 32, in lanes of `lane` bits (8 when depth <= 8, else 16): channel
 * lane * i + m is lane i of acc[m].  Bit serial, most significant plane first, so one
 * operation moves 32 / lane channels. */
typedef struct {
    int32_t lane;
    uint32_t acc[16];
} lanes_t;

static BCONV_INLINE void planes_to_lanes(const uint32_t *planes, int32_t depth, lanes_t *out)
{
    out->lane = depth <= 8 ? 8 : 16;
    const uint32_t ones = out->lane == 8 ? 0x01010101u : 0x00010001u;
    for (int32_t m0 = 0; m0 < out->lane; m0 += 8) {
        uint32_t acc[8];
        const uint32_t top = planes[depth - 1] >> m0;
#if defined(__GNUC__)
#pragma GCC unroll 8
#endif
        for (int32_t m = 0; m < 8; ++m) {
            acc[m] = (top >> m) & ones;
        }
        for (int32_t k = depth - 2; k >= 0; --k) {
            const uint32_t plane = planes[k] >> m0;
#if defined(__GNUC__)
#pragma GCC unroll 8
#endif
            for (int32_t m = 0; m < 8; ++m) {
                acc[m] = (acc[m] << 1) | ((plane >> m) & ones);
            }
        }
#if defined(__GNUC__)
#pragma GCC unroll 8
#endif
        for (int32_t m = 0; m < 8; ++m) {
            out->acc[m0 + m] = acc[m];
        }
    }
}

/* dots[j] = base + scale * S_j for the 32 channels of `l` (the lanes of channels past the
 * layer's are computed too, and ignored). */
static BCONV_INLINE void lanes_to_dots(const lanes_t *l, int32_t base, int32_t scale,
                                       int32_t *dots)
{
    if (l->lane == 8) {
        for (int32_t m = 0; m < 8; ++m) {
            const uint32_t a = l->acc[m];
            dots[m] = base + scale * (int32_t)(a & 0xFFu);
            dots[m + 8] = base + scale * (int32_t)((a >> 8) & 0xFFu);
            dots[m + 16] = base + scale * (int32_t)((a >> 16) & 0xFFu);
            dots[m + 24] = base + scale * (int32_t)(a >> 24);
        }
    } else {
        for (int32_t m = 0; m < 16; ++m) {
            const uint32_t a = l->acc[m];
            dots[m] = base + scale * (int32_t)(a & 0xFFFFu);
            dots[m + 16] = base + scale * (int32_t)(a >> 16);
        }
    }
}

/* The valid taps of one output position: [k0, k0 + n) per axis (d, h, w), the first input
 * pixel (when n > 0 on every axis) and the position's padding class. */
typedef struct {
    int32_t k0[3], n[3];
    int32_t taps; /* n[0] * n[1] * n[2] */
    int32_t cls;  /* (cd * cls_h + ch) * cls_w + cw */
    int32_t x0;   /* word offset of the first valid tap's pixel in the batch item */
} window_t;

/* Word strides of x (per d, h, w pixel) and the per-axis window geometry. */
typedef struct {
    int32_t in_words;
    int32_t x_s[3];  /* pixel strides in words along d, h, w */
    int32_t x_t[3];  /* tap strides (dilation * pixel stride) */
} xstrides_t;

static xstrides_t x_strides(const tc_bconv_params_t *p)
{
    xstrides_t s;
    s.in_words = tc_bwords(p->in_c);
    s.x_s[2] = s.in_words;
    s.x_s[1] = p->in_w * s.in_words;
    s.x_s[0] = p->in_h * s.x_s[1];
    s.x_t[0] = p->dilation_d * s.x_s[0];
    s.x_t[1] = p->dilation_h * s.x_s[1];
    s.x_t[2] = p->dilation_w * s.x_s[2];
    return s;
}

static void window_at(const tc_bconv_params_t *p, const xstrides_t *s, int32_t od, int32_t oh,
                      int32_t ow, window_t *win)
{
    const int32_t o[3] = {od, oh, ow};
    const int32_t in[3] = {p->in_d, p->in_h, p->in_w};
    const int32_t k[3] = {p->k_d, p->k_h, p->k_w};
    const int32_t st[3] = {p->stride_d, p->stride_h, p->stride_w};
    const int32_t dil[3] = {p->dilation_d, p->dilation_h, p->dilation_w};
    const int32_t pad[3] = {p->pad_d, p->pad_h, p->pad_w};
    const int32_t out[3] = {p->out_d, p->out_h, p->out_w};
    const int32_t lead[3] = {p->lead_d, p->lead_h, p->lead_w};
    const int32_t trail[3] = {p->trail_d, p->trail_h, p->trail_w};
    win->taps = 1;
    win->cls = 0;
    win->x0 = 0;
    for (int32_t a = 0; a < 3; ++a) {
        const int32_t i0 = o[a] * st[a] - pad[a];
        int32_t k1;
        tc_window_range(i0, dil[a], k[a], in[a], &win->k0[a], &k1);
        win->n[a] = k1 - win->k0[a];
        win->taps *= win->n[a];
        win->cls = win->cls * (lead[a] + 1 + trail[a]) +
                   tc_bconv_pad_class(o[a], lead[a], trail[a], out[a]);
        win->x0 += (i0 + win->k0[a] * dil[a]) * s->x_s[a];
    }
}

/* The valid taps of a window: for each, the word offset of its pixel in the batch item and its
 * tap index (kd * k_h + kh) * k_w + kw.  Returns their number (win->taps). */
static int32_t list_taps(const tc_bconv_params_t *p, const xstrides_t *s, const window_t *win,
                         int32_t *x_off, int32_t *tap)
{
    int32_t t = 0;
    for (int32_t kd = 0; kd < win->n[0]; ++kd) {
        for (int32_t kh = 0; kh < win->n[1]; ++kh) {
            const int32_t x_row = win->x0 + kd * s->x_t[0] + kh * s->x_t[1];
            const int32_t tap0 = ((win->k0[0] + kd) * p->k_h + win->k0[1] + kh) * p->k_w +
                                 win->k0[2];
            for (int32_t kw = 0; kw < win->n[2]; ++kw, ++t) {
                x_off[t] = x_row + kw * s->x_t[2];
                tap[t] = tap0 + kw;
            }
        }
    }
    return t;
}

/* The window and taps (list_taps) of output position (od, oh, ow), for ow in increasing order
 * with the same od, oh and win as at ow - 1: when ow - 1 and ow are both interior along w (the
 * same padding class), the taps are the same and their pixels one stride further, so they are
 * moved instead of listed anew.  Returns 1 when they were listed anew. */
static int32_t next_window(const tc_bconv_params_t *p, const xstrides_t *s, int32_t od,
                           int32_t oh, int32_t ow, window_t *win, int32_t *x_off, int32_t *tap)
{
    if (ow > p->lead_w && ow < p->out_w - p->trail_w) {
        const int32_t step = p->stride_w * s->x_s[2];
        for (int32_t t = 0; t < win->taps; ++t) {
            x_off[t] += step;
        }
        win->x0 += step;
        return 0;
    }
    window_at(p, s, od, oh, ow, win);
    list_taps(p, s, win, x_off, tap);
    return 1;
}

/* ---- tc_bconv_sparse_* ----------------------------------------------------------------------- */

size_t tc_bconv_sparse_scratch_size(const tc_bconv_params_t *p)
{
    const size_t taps = (size_t)p->k_d * (size_t)p->k_h * (size_t)p->k_w;
    const size_t cig = (size_t)(p->in_c / p->groups);
    const size_t fields = taps * (size_t)tc_bwords((int32_t)cig);
    const size_t list = taps * cig / 2u + HS_BLOCK;
    return (2u * taps + fields + list) * sizeof(uint32_t) + fields * sizeof(uint16_t);
}

/* The window's valid bits of group slice [bit0, bit0 + cig) (taps from list_taps): fields of
 * up to 32 bits with the weight-row position of their first bit (tap * cig + offset).  Returns
 * the number of fields; *ones gets the number of 1 bits. */
static int32_t gather_fields(const uint32_t *xn, const int32_t *x_off, const int32_t *tap,
                             int32_t taps, int32_t cig, int32_t bit0, uint32_t *fields,
                             uint16_t *bases, int32_t *ones)
{
    int32_t nf = 0, n1 = 0;
    if (cig % 32 == 0 && bit0 % 32 == 0) { /* whole words */
        for (int32_t t = 0; t < taps; ++t) {
            const uint32_t *xr = xn + x_off[t] + bit0 / 32;
            for (int32_t done = 0, k = 0; done < cig; done += 32, ++k, ++nf) {
                fields[nf] = xr[k];
                bases[nf] = (uint16_t)(tap[t] * cig + done);
                n1 += tc_popcount_u32(fields[nf]);
            }
        }
        *ones = n1;
        return nf;
    }
    for (int32_t t = 0; t < taps; ++t) {
        const uint32_t *xr = xn + x_off[t];
        for (int32_t done = 0; done < cig; done += 32, ++nf) {
            const int32_t n = cig - done < 32 ? cig - done : 32;
            fields[nf] = tc_bits_get(xr, bit0 + done, n) & tc_bmask(n);
            bases[nf] = (uint16_t)(tap[t] * cig + done);
            n1 += tc_popcount_u32(fields[nf]);
        }
    }
    *ones = n1;
    return nf;
}

/* The weight-row positions of the window's bits equal to b, padded to a multiple of HS_BLOCK
 * with `zero` (the index of a zero word).  Returns the padded length.  Highest bit first:
 * CLZ finds it, and it is cleared with one shift and one XOR. */
static int32_t list_bits(const uint32_t *fields, const uint16_t *bases, int32_t nf, int32_t cig,
                         int32_t b, uint32_t zero, uint32_t *list)
{
    const int32_t per_tap = tc_bwords(cig);
    const uint32_t tail = tc_bmask(cig - 32 * (per_tap - 1));
    const uint32_t flip = b ? 0u : 0xFFFFFFFFu;
    uint32_t *next = list;
    for (int32_t i = 0; i < nf; i += per_tap) {
        for (int32_t f = 0; f < per_tap; ++f) {
            uint32_t v = (fields[i + f] ^ flip) & (f == per_tap - 1 ? tail : 0xFFFFFFFFu);
            const int32_t top = bases[i + f] + 31; /* the position of bit 31 */
            while (v != 0) {
                const int32_t z = clz32(v);
                *next++ = (uint32_t)(top - z);
                v &= ~(0x80000000u >> z);
            }
        }
    }
    while ((next - list) % HS_BLOCK != 0) {
        *next++ = zero;
    }
    return (int32_t)(next - list);
}

/* Outputs oc0 .. oc0 + n - 1 of the pixel at y + yo from their dot products (tc_bout_store,
 * with the per-kind loop hoisted out of the switch). */
static BCONV_INLINE void store_run(const tc_bout_t *o, void *y, int32_t yo, int32_t oc0,
                                   const int32_t *dot, int32_t n, uint32_t *word)
{
    switch (o->kind) {
    case TC_BOUT_S32:
        for (int32_t i = 0; i < n; ++i) {
            ((int32_t *)y)[yo + oc0 + i] = dot[i];
        }
        break;
    case TC_BOUT_F32: {
        float *yf = (float *)y + yo + oc0;
        if (o->act_min == -INFINITY && o->act_max == INFINITY) { /* the clamp is the identity */
            for (int32_t i = 0; i < n; ++i) {
                yf[i] = (float)dot[i] * o->mul[oc0 + i] + o->bias[oc0 + i];
            }
            break;
        }
        for (int32_t i = 0; i < n; ++i) {
            yf[i] = tc_bout_f32(dot[i], o->mul[oc0 + i], o->bias[oc0 + i], o->act_min,
                                o->act_max);
        }
        break;
    }
    case TC_BOUT_S8: {
        int8_t *ys = (int8_t *)y + yo + oc0;
        for (int32_t i = 0; i < n; ++i) {
            ys[i] = tc_bout_s8(dot[i], o->mul[oc0 + i], o->bias[oc0 + i], o->out_min,
                               o->out_max);
        }
        break;
    }
    case TC_BOUT_B1: {
        uint32_t *yb = (uint32_t *)y + yo;
        if ((oc0 & 31) == 0 && n == 32) { /* one whole output word, highest channel first */
            const int32_t *thr = o->thr + oc0;
            uint32_t bits = 0;
            for (int32_t i = 31; i >= 0; --i) {
                bits = (bits << 1) | (uint32_t)(dot[i] < thr[i]);
            }
            yb[oc0 >> 5] = bits ^ o->flip[oc0 >> 5];
            break;
        }
        uint32_t bits = *word;
        for (int32_t i = 0; i < n; ++i) {
            const int32_t oc = oc0 + i;
            bits |= (uint32_t)(dot[i] < o->thr[oc]) << (oc & 31);
            if ((oc & 31) == 31 || oc == o->out_c - 1) {
                yb[oc >> 5] = bits ^ o->flip[oc >> 5];
                bits = 0;
            }
        }
        *word = bits;
        break;
    }
    }
}

static BCONV_INLINE void sparse_run(const tc_bconv_params_t *p, const uint32_t *x,
                                     const uint32_t *w, const uint16_t *wv,
                                     const int32_t *pad_corr, const tc_bout_t *out, void *y,
                                     void *scratch)
{
    const int32_t groups = p->groups;
    const int32_t cig = p->in_c / groups;
    const int32_t cog = p->out_c / groups;
    const int32_t ocw = tc_bwords(cog);
    const int32_t row = p->k_d * p->k_h * p->k_w * cig; /* weight bits per output channel */
    const int32_t block = row + 1;                        /* words per 32 output channels */
    const int32_t max_taps = p->k_d * p->k_h * p->k_w;
    const int32_t max_fields = max_taps * tc_bwords(cig);
    const int32_t y_step = out->kind == TC_BOUT_B1 ? tc_bwords(p->out_c) : p->out_c;
    const xstrides_t s = x_strides(p);
    int32_t *x_off = (int32_t *)scratch;
    int32_t *tap = x_off + max_taps;
    uint32_t *fields = (uint32_t *)(tap + max_taps);
    uint32_t *list = fields + max_fields;
    uint16_t *bases = (uint16_t *)(list + max_taps * cig / 2 + HS_BLOCK);
    uint32_t planes[MAX_PLANES];
    lanes_t lanes;
    int32_t dots[32];

    for (int32_t n = 0, yo = 0; n < p->batch; ++n) {
        const uint32_t *xn = x + n * p->in_d * s.x_s[0];
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                window_t win;
                for (int32_t ow = 0; ow < p->out_w; ++ow, yo += y_step) {
                    next_window(p, &s, od, oh, ow, &win, x_off, tap);
                    const uint16_t *wvc = wv + win.cls * p->out_c;
                    const int32_t *pc = pad_corr == NULL ? NULL : pad_corr + win.cls * p->out_c;
                    uint32_t word = 0; /* _b1: the output word being assembled */
                    for (int32_t g = 0; g < groups; ++g) {
                        int32_t n1;
                        const int32_t nf = gather_fields(xn, x_off, tap, win.taps, cig, g * cig,
                                                         fields, bases, &n1);
                        const int32_t n_bits = win.taps * cig;
                        const int32_t b = 2 * n1 <= n_bits;
                        const int32_t len =
                            list_bits(fields, bases, nf, cig, b, (uint32_t)row, list);
                        const int32_t base = n_bits - 2 * n1;
                        const int32_t s4 = b ? 4 : -4; /* dot = base + pc + s4 * S - s2 * Wv */
                        const int32_t s2 = b ? 2 : -2;
                        for (int32_t q = 0; q < ocw; ++q) {
                            const uint32_t *wq = w + (g * ocw + q) * block;
                            planes_to_lanes(planes, hs_sum(wq, list, len, planes), &lanes);
                            const int32_t nc = cog - 32 * q < 32 ? cog - 32 * q : 32;
                            const int32_t oc0 = g * cog + 32 * q;
                            lanes_to_dots(&lanes, base, s4, dots);
                            const uint16_t *wvq = wvc + oc0;
                            for (int32_t j = 0; j < nc; ++j) {
                                dots[j] -= s2 * (int32_t)wvq[j];
                            }
                            if (pc != NULL) {
                                for (int32_t j = 0; j < nc; ++j) {
                                    dots[j] += pc[oc0 + j];
                                }
                            }
                            store_run(out, y, yo, oc0, dots, nc, &word);
                        }
                    }
                }
            }
        }
    }
}

void tc_bconv_sparse_s32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                         const uint16_t *wv, const int32_t *pad_corr, int32_t *y,
                         void *scratch)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S32, NULL, NULL, NULL, NULL);
    sparse_run(p, x, w, wv, pad_corr, &out, y, scratch);
}

void tc_bconv_sparse_f32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                         const uint16_t *wv, const int32_t *pad_corr, const float *mul,
                         const float *bias, float *y, void *scratch)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_F32, mul, bias, NULL, NULL);
    sparse_run(p, x, w, wv, pad_corr, &out, y, scratch);
}

void tc_bconv_sparse_s8(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                        const uint16_t *wv, const int32_t *pad_corr, const float *mul,
                        const float *bias, int8_t *y, void *scratch)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S8, mul, bias, NULL, NULL);
    sparse_run(p, x, w, wv, pad_corr, &out, y, scratch);
}

void tc_bconv_sparse_b1(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                        const uint16_t *wv, const int32_t *pad_corr, const int32_t *thr,
                        const uint32_t *flip, uint32_t *y, void *scratch)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_B1, NULL, NULL, thr, flip);
    sparse_run(p, x, w, wv, pad_corr, &out, y, scratch);
}

/* ---- tc_bconv_dw_* --------------------------------------------------------------------------- */

static BCONV_INLINE void dw_run(const tc_bconv_params_t *p, const uint32_t *x,
                                 const uint32_t *w, const int32_t *pad_corr,
                                 const tc_bout_t *out, void *y)
{
    const int32_t channels = p->out_c;
    const int32_t cw = tc_bwords(channels);
    const int32_t y_step = out->kind == TC_BOUT_B1 ? cw : channels;
    const xstrides_t s = x_strides(p);
    uint32_t planes[5];
    lanes_t lanes;
    int32_t dots[32];
    int32_t x_off[DW_MAX_TAPS], tap[DW_MAX_TAPS];

    for (int32_t n = 0, yo = 0; n < p->batch; ++n) {
        const uint32_t *xn = x + n * p->in_d * s.x_s[0];
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                window_t win;
                for (int32_t ow = 0; ow < p->out_w; ++ow, yo += y_step) {
                    if (next_window(p, &s, od, oh, ow, &win, x_off, tap)) {
                        for (int32_t t = 0; t < win.taps; ++t) {
                            tap[t] *= cw; /* the tap's weight words */
                        }
                    }
                    const int32_t taps = win.taps;
                    const int32_t *corr = pad_corr == NULL ? NULL : pad_corr + win.cls * channels;
                    uint32_t word = 0;
                    for (int32_t j = 0; j < cw; ++j) {
                        const uint32_t *xj = xn + j;
                        const uint32_t *wj = w + j;
                        uint32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0;
                        for (int32_t t = 0; t < taps; ++t) {
                            uint32_t d = xj[x_off[t]] ^ wj[tap[t]];
                            uint32_t c = p0 & d; /* vertical increment by d */
                            p0 ^= d;
                            d = p1 & c;
                            p1 ^= c;
                            c = p2 & d;
                            p2 ^= d;
                            d = p3 & c;
                            p3 ^= c;
                            p4 ^= d;
                        }
                        planes[0] = p0;
                        planes[1] = p1;
                        planes[2] = p2;
                        planes[3] = p3;
                        planes[4] = p4;
                        planes_to_lanes(planes, 5, &lanes);
                        const int32_t nc = channels - 32 * j < 32 ? channels - 32 * j : 32;
                        lanes_to_dots(&lanes, taps, -2, dots);
                        if (corr != NULL) {
                            for (int32_t k = 0; k < nc; ++k) {
                                dots[k] += corr[32 * j + k];
                            }
                        }
                        store_run(out, y, yo, 32 * j, dots, nc, &word);
                    }
                }
            }
        }
    }
}

void tc_bconv_dw_s32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                     const int32_t *pad_corr, int32_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S32, NULL, NULL, NULL, NULL);
    dw_run(p, x, w, pad_corr, &out, y);
}

void tc_bconv_dw_f32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                     const int32_t *pad_corr, const float *mul, const float *bias, float *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_F32, mul, bias, NULL, NULL);
    dw_run(p, x, w, pad_corr, &out, y);
}

void tc_bconv_dw_s8(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                    const int32_t *pad_corr, const float *mul, const float *bias, int8_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S8, mul, bias, NULL, NULL);
    dw_run(p, x, w, pad_corr, &out, y);
}

void tc_bconv_dw_b1(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                    const int32_t *pad_corr, const int32_t *thr, const uint32_t *flip,
                    uint32_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_B1, NULL, NULL, thr, flip);
    dw_run(p, x, w, pad_corr, &out, y);
}

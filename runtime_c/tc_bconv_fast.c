/*
 * tinyc runtime: fast binary convolutions (see tc_binary.h for the conventions, the layouts and
 * the exact arithmetic they share with the portable tc_bconv_*).  C99: the speed comes from
 * the algorithms, which suit every core (Cortex-M0 to M55 and the host); only the carry-save
 * block of tc_bconv_sparse_* has a Thumb-2 assembly version (Cortex-M3 and up, optimized
 * builds), beside its C version, because GCC spills its registers (about 7.8 instructions per
 * listed word in C, 6.2 in assembly, on qemu-m4).
 *
 * tc_bconv_sparse_*: weights packed along the output channels, so one logic operation handles
 * 32 output channels.  Every input row is listed once per layer into a cache of k_d * k_h rows
 * (stride-1 windows share rows and columns): per pixel and group, the slice positions of its 1
 * bits and of its 0 bits (CLZ, about 6 instructions per bit).  For each output pixel and group
 * only the bits of the window's minority value b (1 when at most half of its N valid bits are 1,
 * else 0) are visited: their cached positions are copied, offset by their tap, into one list
 * (about 3.5 instructions per listed bit), and for each word of 32 output channels the weight
 * words at those positions are summed bit-sliced with carry-save adders (Harley-Seal: 31
 * adders of 5 logic operations per 32 listed words, the carries rippled into the higher
 * planes).  At most half of the N window bits are listed, and fewer when the activations are
 * mostly +1 or mostly -1.  The planes become per-channel counts S by a bit-matrix transpose
 * (8- or 16-bit lanes, 72 or 192 logic operations per 32 channels), and
 *   mismatches = n1 + Wv - 2 S   (b = 1)      mismatches = n1 - Wv + 2 S   (b = 0)
 * with n1 the window's 1 bits and Wv the channel's 1 weight bits over the valid taps, so
 *   dot = N - 2 * mismatches + pad_corr = N - 2 n1 + pad_corr + (b ? 2 : -2) * (2 S - Wv).
 *
 * tc_bconv_dw_*: depthwise (one input channel per output channel): per tap, x ^ w of 32
 * channels at once, added into a bit-sliced counter of five planes (a vertical add); the
 * planes become the channels' mismatch counts M by the same transpose: dot = taps - 2 M.
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

/* Transposes the bit-sliced counts q[0..rows) in place (rows = 8 or 16; the planes above the
 * depth in use are zero): afterwards lane j of q[m], a lane of `rows` bits, holds the count
 * sum over k of bit (rows * j + m) of the input plane k * 2^k.  The classic block transpose
 * (log2(rows) stages of masked swaps between rows s apart), done for the 32 / rows lanes of
 * every word at once: 72 logic operations for 8 rows, 192 for 16. */
static BCONV_INLINE void swap_bits(uint32_t *q, int32_t rows, int32_t s, uint32_t mask)
{
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
    for (int32_t r = 0; r < rows; ++r) {
        if ((r & s) == 0) {
            const uint32_t t = ((q[r] >> s) ^ q[r + s]) & mask;
            q[r + s] ^= t;
            q[r] ^= t << s;
        }
    }
}

static BCONV_INLINE void transpose_counts(uint32_t *q, int32_t rows)
{
    if (rows == 16) {
        swap_bits(q, 16, 8, 0x00FF00FFu);
    }
    swap_bits(q, rows, 4, 0x0F0F0F0Fu);
    swap_bits(q, rows, 2, 0x33333333u);
    swap_bits(q, rows, 1, 0x55555555u);
}

/* dots[c] = base + k2 * (2 * S_c - wv[c]) + pc[c] for the channels c < nc of one word of 32,
 * S_c the counts of the bit-sliced planes q[0..depth) (zero above; q has 16 words); wv and pc
 * may be NULL (zero).  The planes are transposed into lanes of 8 bits (depth <= 8) or 16. */
static BCONV_INLINE void lanes_to_dots(uint32_t *q, int32_t rows, int32_t nc, int32_t base,
                                       int32_t k2, const uint16_t *wv, int32_t *dots)
{
    const uint32_t lane_mask = rows == 8 ? 0xFFu : 0xFFFFu;
    transpose_counts(q, rows);
    for (int32_t j = 0; j < 32 / rows; ++j) {
#if defined(__GNUC__)
#pragma GCC unroll 16
#endif
        for (int32_t m = 0; m < rows; ++m) {
            const int32_t c = rows * j + m;
            if (c < nc) {
                const int32_t s = (int32_t)((q[m] >> (rows * j)) & lane_mask);
                dots[c] = base + k2 * (2 * s - (wv == NULL ? 0 : (int32_t)wv[c]));
            }
        }
    }
}

/* The depth-specific (8- or 16-bit lanes) and, for whole words of 32 channels, bound-free
 * versions of lanes_to_dots, chosen at run time; then + pc. */
static BCONV_INLINE void planes_to_dots(uint32_t *q, int32_t depth, int32_t nc, int32_t base,
                                        int32_t k2, const uint16_t *wv, const int32_t *pc,
                                        int32_t *dots)
{
    if (depth <= 8 && nc == 32) {
        lanes_to_dots(q, 8, 32, base, k2, wv, dots);
    } else if (depth <= 8) {
        lanes_to_dots(q, 8, nc, base, k2, wv, dots);
    } else {
        lanes_to_dots(q, 16, nc, base, k2, wv, dots);
    }
    if (pc != NULL) {
        for (int32_t c = 0; c < nc; ++c) {
            dots[c] += pc[c];
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

/* The working memory of tc_bconv_sparse_* (tc_bconv_sparse_scratch_size), in this order:
 *   uint32_t list[taps * cig / 2 + HS_BLOCK]   the window's listed weight-row positions
 *   int32_t  tap_rec[taps]                     per valid tap of the window: its pixel's record
 *   int32_t  tap_pos[taps]                     ... and the row position of its first bit
 *   int32_t  tag[k_d * k_h]                    the input row held by each slot of the cache
 *   int32_t  row[k_d * k_h], slot[k_d * k_h]    the rows the current output row reads, their slots
 *   uint16_t cache[k_d * k_h][in_w][groups][cig + 1], then 4 uint16 of slack
 * The cache holds k_d * k_h input rows, each listed once per layer (stride-1 windows share
 * rows and columns): per pixel and group a record of cig + 1 uint16, the number n1 of 1 bits of
 * the group's slice, the slice positions of its 1 bits, then those of its 0 bits. */
typedef struct {
    int32_t taps, slots, rec, slot_size, list_len;
} sparse_sizes_t;

static sparse_sizes_t sparse_sizes(const tc_bconv_params_t *p)
{
    sparse_sizes_t z;
    const int32_t cig = p->in_c / p->groups;
    z.taps = p->k_d * p->k_h * p->k_w;
    z.slots = p->k_d * p->k_h;
    z.rec = cig + 1;
    z.slot_size = p->in_w * p->groups * z.rec;
    z.list_len = z.taps * cig / 2 + HS_BLOCK;
    return z;
}

size_t tc_bconv_sparse_scratch_size(const tc_bconv_params_t *p)
{
    const sparse_sizes_t z = sparse_sizes(p);
    /* + 2 words: list_window reads up to 3 uint16 past a record, the cache's last included */
    const size_t words = (size_t)z.list_len + 2u * (size_t)z.taps + 3u * (size_t)z.slots + 2u;
    return words * sizeof(uint32_t) + (size_t)z.slots * (size_t)z.slot_size * sizeof(uint16_t);
}

/* The records of one input row (xr: its pixel 0) into rec (see the scratch layout).  Bits are
 * found highest first with CLZ and cleared with one shift and one XOR. */
static void list_row(const uint32_t *xr, int32_t in_w, int32_t in_words, int32_t groups,
                     int32_t cig, uint16_t *rec)
{
    for (int32_t iw = 0; iw < in_w; ++iw) {
        const uint32_t *px = xr + iw * in_words;
        for (int32_t g = 0; g < groups; ++g, rec += cig + 1) {
            uint16_t *ones = rec + 1;
            uint16_t *zeros = rec + cig + 1; /* filled downwards */
            for (int32_t done = 0; done < cig; done += 32) {
                const int32_t n = cig - done < 32 ? cig - done : 32;
                uint32_t v = tc_bits_get(px, g * cig + done, n) & tc_bmask(n);
                uint32_t u = ~v & tc_bmask(n);
                const int32_t top = done + 31; /* the position of bit 31 */
                while (v != 0) {
                    const int32_t z = clz32(v);
                    *ones++ = (uint16_t)(top - z);
                    v ^= 0x80000000u >> z;
                }
                while (u != 0) {
                    const int32_t z = clz32(u);
                    *--zeros = (uint16_t)(top - z);
                    u ^= 0x80000000u >> z;
                }
            }
            rec[0] = (uint16_t)(ones - (rec + 1));
        }
    }
}

/* Whether row is among rows[0..n). */
static int32_t row_needed(int32_t row, const int32_t *rows, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        if (rows[i] == row) {
            return 1;
        }
    }
    return 0;
}

/* Makes the cache hold the input rows read by the output rows whose window axes along d and h
 * are wd and wh (batch item n): row[i] gets the i-th of them ((kd, kh) in order) and slot[i]
 * the slot holding it.  A row not cached yet goes to a slot that holds none of them. */
static void cache_rows(const tc_bconv_params_t *p, const sparse_sizes_t *z, const uint32_t *x,
                       int32_t n, tc_window_axis_t wd, tc_window_axis_t wh, int32_t *tag,
                       int32_t *row, int32_t *slot, uint16_t *cache)
{
    const int32_t in_words = tc_bwords(p->in_c);
    const int32_t rows = wd.count * wh.count;
    for (int32_t kd = 0, i = 0; kd < wd.count; ++kd) {
        for (int32_t kh = 0; kh < wh.count; ++kh, ++i) {
            row[i] = (n * p->in_d + wd.at + kd * p->dilation_d) * p->in_h + wh.at +
                     kh * p->dilation_h;
        }
    }
    for (int32_t i = 0; i < rows; ++i) {
        int32_t s = 0;
        while (s < z->slots && tag[s] != row[i]) {
            ++s;
        }
        if (s == z->slots) { /* not cached: slots >= rows, so a slot is free */
            s = 0;
            while (row_needed(tag[s], row, rows)) {
                ++s;
            }
            tag[s] = row[i];
            list_row(x + row[i] * p->in_w * in_words, p->in_w, in_words, p->groups,
                     p->in_c / p->groups, cache + s * z->slot_size);
        }
        slot[i] = s;
    }
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

/* The valid taps of the window at output column ow of the output row whose d and h axes are
 * wd and wh (rows cached in slot[]): per tap, the offset of its pixel's group-0 record in the
 * cache and the weight-row position of its first bit.  Returns their number. */
static int32_t window_taps(const tc_bconv_params_t *p, const sparse_sizes_t *z,
                           tc_window_axis_t wd, tc_window_axis_t wh, tc_window_axis_t ww,
                           const int32_t *slot, int32_t *tap_rec, int32_t *tap_pos)
{
    const int32_t cig = p->in_c / p->groups;
    const int32_t pixel = p->groups * z->rec;
    int32_t t = 0;
    for (int32_t kd = 0, i = 0; kd < wd.count; ++kd) {
        for (int32_t kh = 0; kh < wh.count; ++kh, ++i) {
            const int32_t rec0 = slot[i] * z->slot_size + ww.at * pixel;
            const int32_t tap0 = ((wd.first + kd) * p->k_h + wh.first + kh) * p->k_w + ww.first;
            for (int32_t kw = 0; kw < ww.count; ++kw, ++t) {
                tap_rec[t] = rec0 + kw * p->dilation_w * pixel;
                tap_pos[t] = (tap0 + kw) * cig;
            }
        }
    }
    return t;
}

/* The weight-row positions of the window's bits equal to b (group g), from the cached records,
 * padded to a multiple of HS_BLOCK with `zero` (the index of a zero word).  Returns the padded
 * length. */
static int32_t list_window(const uint16_t *cache, const int32_t *tap_rec, const int32_t *tap_pos,
                           int32_t taps, int32_t g, int32_t cig, int32_t b, uint32_t zero,
                           uint32_t *list)
{
    uint32_t *next = list;
    for (int32_t t = 0; t < taps; ++t) {
        const uint16_t *rec = cache + tap_rec[t] + g * (cig + 1);
        const int32_t n1 = rec[0];
        const uint16_t *src = b ? rec + 1 : rec + 1 + n1;
        const int32_t len = b ? n1 : cig - n1;
        const uint32_t pos = (uint32_t)tap_pos[t];
        for (int32_t i = 0; i < len; i += 4) { /* up to 3 entries past len: overwritten */
            const uint32_t a = src[i], b1 = src[i + 1], c = src[i + 2], d = src[i + 3];
            next[i] = a + pos;
            next[i + 1] = b1 + pos;
            next[i + 2] = c + pos;
            next[i + 3] = d + pos;
        }
        next += len;
    }
    while ((next - list) % HS_BLOCK != 0) {
        *next++ = zero;
    }
    return (int32_t)(next - list);
}

static BCONV_INLINE void sparse_run(const tc_bconv_params_t *p, const uint32_t *x,
                                     const uint32_t *w, const uint16_t *wv,
                                     const int32_t *pad_corr, const tc_bout_t *out, void *y,
                                     void *scratch)
{
    const sparse_sizes_t z = sparse_sizes(p);
    const int32_t groups = p->groups;
    const int32_t cig = p->in_c / groups;
    const int32_t cog = p->out_c / groups;
    const int32_t ocw = tc_bwords(cog);
    const int32_t row = z.taps * cig; /* weight bits per output channel */
    const int32_t block = row + 1;    /* words per 32 output channels */
    const int32_t y_step = out->kind == TC_BOUT_B1 ? tc_bwords(p->out_c) : p->out_c;
    const int32_t cls_h = p->lead_h + 1 + p->trail_h;
    const int32_t cls_w = p->lead_w + 1 + p->trail_w;
    const int32_t w_step = p->stride_w * groups * z.rec; /* an interior window's next column */
    uint32_t *list = (uint32_t *)scratch;
    int32_t *tap_rec = (int32_t *)(list + z.list_len);
    int32_t *tap_pos = tap_rec + z.taps;
    int32_t *tag = tap_pos + z.taps;
    int32_t *rows = tag + z.slots;
    int32_t *slot = rows + z.slots;
    uint16_t *cache = (uint16_t *)(slot + z.slots);
    uint32_t q[MAX_PLANES];
    int32_t dots[32];

    for (int32_t s = 0; s < z.slots; ++s) {
        tag[s] = -1;
    }
    for (int32_t n = 0, yo = 0; n < p->batch; ++n) {
        for (int32_t od = 0; od < p->out_d; ++od) {
            const tc_window_axis_t wd =
                tc_window_axis(od, p->stride_d, p->pad_d, p->dilation_d, p->k_d, p->in_d);
            const int32_t cd = tc_bconv_pad_class(od, p->lead_d, p->trail_d, p->out_d);
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                const tc_window_axis_t wh =
                    tc_window_axis(oh, p->stride_h, p->pad_h, p->dilation_h, p->k_h, p->in_h);
                const int32_t ch = tc_bconv_pad_class(oh, p->lead_h, p->trail_h, p->out_h);
                cache_rows(p, &z, x, n, wd, wh, tag, rows, slot, cache);
                int32_t taps = 0;
                for (int32_t ow = 0; ow < p->out_w; ++ow, yo += y_step) {
                    const int32_t cw = tc_bconv_pad_class(ow, p->lead_w, p->trail_w, p->out_w);
                    if (ow > p->lead_w && cw == p->lead_w) { /* interior, as ow - 1 was */
                        for (int32_t t = 0; t < taps; ++t) {
                            tap_rec[t] += w_step;
                        }
                    } else {
                        const tc_window_axis_t ww = tc_window_axis(
                            ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
                        taps = window_taps(p, &z, wd, wh, ww, slot, tap_rec, tap_pos);
                    }
                    const int32_t cls = (cd * cls_h + ch) * cls_w + cw;
                    const uint16_t *wvc = wv + cls * p->out_c;
                    const int32_t *pc = pad_corr == NULL ? NULL : pad_corr + cls * p->out_c;
                    uint32_t word = 0; /* _b1: the output word being assembled */
                    for (int32_t g = 0; g < groups; ++g) {
                        int32_t n1 = 0;
                        for (int32_t t = 0; t < taps; ++t) {
                            n1 += cache[tap_rec[t] + g * z.rec];
                        }
                        const int32_t n_bits = taps * cig;
                        const int32_t b = 2 * n1 <= n_bits;
                        const int32_t len = list_window(cache, tap_rec, tap_pos, taps, g, cig, b,
                                                        (uint32_t)row, list);
                        const int32_t base = n_bits - 2 * n1;
                        const int32_t k2 = b ? 2 : -2; /* dot = base + pc + k2 * (2 S - Wv) */
                        for (int32_t qw = 0; qw < ocw; ++qw) {
                            const uint32_t *wq = w + (g * ocw + qw) * block;
                            const int32_t nc = cog - 32 * qw < 32 ? cog - 32 * qw : 32;
                            const int32_t oc0 = g * cog + 32 * qw;
                            const int32_t depth = hs_sum(wq, list, len, q);
                            planes_to_dots(q, depth, nc, base, k2, wvc + oc0,
                                           pc == NULL ? NULL : pc + oc0, dots);
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
                        uint32_t q[8] = {p0, p1, p2, p3, p4, 0, 0, 0};
                        const int32_t nc = channels - 32 * j < 32 ? channels - 32 * j : 32;
                        planes_to_dots(q, 5, nc, taps, -1, NULL, corr == NULL ? NULL : corr + 32 * j,
                                       dots);
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

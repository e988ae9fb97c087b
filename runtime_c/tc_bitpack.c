/*
 * tinyc runtime: packing float32 / int8 activations into binary words and back (see
 * tc_binary.h for the conventions).
 *
 * Packing walks each vector once, 32 channels per output word, building the word with shifts;
 * the last word of a vector holds only the channels left, so its padding bits are zero.
 */
#include "tc_binary.h"
#include "tc_dsp.h"

#if defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2 && defined(__ARM_FP) &&          \
    (__ARM_FP & 4)
/* Single-precision FPU (Cortex-M4F, M7, M33, M55): from the highest channel down, VCMP x, t
 * leaves C = !(x < t) (greater, equal or unordered: a NaN packs as +1, as x < t is false), VMRS
 * copies it to the APSR and ADC shifts it into the word: three instructions per value, the
 * values and thresholds loaded eight or four at a time by VLDMDB (then one at a time); the
 * word of complements is inverted at the end.  GCC's version of the C below takes about 11. */
#define TC_PACK_BIT(sx, st) "vcmp.f32 " sx ", " st "\n\tvmrs APSR_nzcv, fpscr\n\tadc %2, %2, %2\n\t"

static inline uint32_t pack_word_f32(const float *x, const float *t, int32_t n)
{
    const float *xe = x + n, *te = t + n; /* VLDMDB walks down from the ends */
    uint32_t not_below = 0;
    int32_t b = n;
    for (; (b & 3) != 0; --b) {
        __asm__("vldmdb %0!, {s0}\n\tvldmdb %1!, {s1}\n\t" TC_PACK_BIT("s0", "s1")
                : "+r"(xe), "+r"(te), "+r"(not_below) : : "s0", "s1", "cc", "memory");
    }
    if ((b & 4) != 0) {
        __asm__("vldmdb %0!, {s0-s3}\n\tvldmdb %1!, {s8-s11}\n\t"
                TC_PACK_BIT("s3", "s11") TC_PACK_BIT("s2", "s10")
                TC_PACK_BIT("s1", "s9") TC_PACK_BIT("s0", "s8")
                : "+r"(xe), "+r"(te), "+r"(not_below) : : "s0", "s1", "s2", "s3", "s8", "s9",
                  "s10", "s11", "cc", "memory");
        b -= 4;
    }
    for (; b > 0; b -= 8) {
        __asm__("vldmdb %0!, {s0-s7}\n\tvldmdb %1!, {s8-s15}\n\t"
                TC_PACK_BIT("s7", "s15") TC_PACK_BIT("s6", "s14")
                TC_PACK_BIT("s5", "s13") TC_PACK_BIT("s4", "s12")
                TC_PACK_BIT("s3", "s11") TC_PACK_BIT("s2", "s10")
                TC_PACK_BIT("s1", "s9") TC_PACK_BIT("s0", "s8")
                : "+r"(xe), "+r"(te), "+r"(not_below) : : "s0", "s1", "s2", "s3", "s4", "s5",
                  "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "cc",
                  "memory");
    }
    return ~not_below & tc_bmask(n);
}
#undef TC_PACK_BIT
#else
/* The bits x[b] < t[b] of b < n (n <= 32) as a word, the highest channel first, each bit
 * shifted in. */
static inline uint32_t pack_word_f32(const float *x, const float *t, int32_t n)
{
    uint32_t word = 0;
    for (int32_t b = n - 1; b >= 0; --b) {
        word <<= 1;
        if (x[b] < t[b]) {
            word |= 1u;
        }
    }
    return word;
}
#endif

void tc_bitpack_f32(const tc_bitpack_params_t *p, const float *x, const float *thr, uint32_t *y)
{
    const int32_t channels = p->channels;
    const int32_t words = tc_bwords(channels);
    float one[32]; /* the scalar threshold, for every channel of a word */
    if (thr == NULL) {
        for (int32_t b = 0; b < 32; ++b) {
            one[b] = p->threshold_f32;
        }
    }
    /* word k of every vector in turn: its thresholds and count stay put */
    for (int32_t k = 0; k < words; ++k) {
        const int32_t n = channels - 32 * k < 32 ? channels - 32 * k : 32;
        const float *t = thr != NULL ? thr + 32 * k : one;
        const float *xk = x + 32 * k;
        uint32_t *yk = y + k;
        for (int32_t i = 0; i < p->outer; ++i, xk += channels, yk += words) {
            *yk = pack_word_f32(xk, t, n);
        }
    }
}

/* The constants of nibble_below (DSP builds), kept in registers across a loop (an empty asm
 * hides their values, so GCC does not rematerialize them at every use). */
typedef struct {
    uint32_t zero, lane_bits;
} nibble_consts_t;

#if TC_DSP

/* The bits x[b] < t[b] of four signed bytes as a nibble (bit b): SSUB8 sets GE in the lanes
 * where x - t >= 0 (exact: the lanes' differences have nine bits), SEL leaves the lane's bit
 * value 1, 2, 4 or 8 in the others, and USAD8 (absolute differences from zero, summed) adds
 * the four lanes. */
static inline uint32_t nibble_below(const int8_t *x, const int8_t *t, const nibble_consts_t *k)
{
    uint32_t m;
    __asm__("ssub8   %0, %1, %2\n\t"
            "sel     %0, %3, %4\n\t"
            "usad8   %0, %0, %3"
            : "=&r"(m)
            : "r"(tc_load_s32(x)), "r"(tc_load_s32(t)), "r"(k->zero), "r"(k->lane_bits)
            : "cc");
    return m;
}
#endif

/* The bits x[b] < t[b] of b < n (n <= 32) as a word. */
static inline uint32_t pack_word_s8(const int8_t *x, const int8_t *t, int32_t n,
                                    const nibble_consts_t *k)
{
#if TC_DSP
    if (n >= 4) {
        /* From the top down, each group of four shifting the word up by its nibble: first the
         * n % 4 values of a ragged end (the top bits of the last four values' nibble), then
         * the whole groups, unrolled (a jump into the sequence by their count). */
        const int32_t rest = n & 3;
        uint32_t word = rest != 0 ? nibble_below(x + n - 4, t + n - 4, k) >> (4 - rest) : 0u;
#define TC_PACK_GROUP(g)                                                                       \
    case (g) + 1:                                                                              \
        word = (word << 4) | nibble_below(x + 4 * (g), t + 4 * (g), k);
        switch (n >> 2) {
            TC_PACK_GROUP(7) TC_FALLTHROUGH;
            TC_PACK_GROUP(6) TC_FALLTHROUGH;
            TC_PACK_GROUP(5) TC_FALLTHROUGH;
            TC_PACK_GROUP(4) TC_FALLTHROUGH;
            TC_PACK_GROUP(3) TC_FALLTHROUGH;
            TC_PACK_GROUP(2) TC_FALLTHROUGH;
            TC_PACK_GROUP(1) TC_FALLTHROUGH;
            TC_PACK_GROUP(0)
            break;
        default:
            break;
        }
#undef TC_PACK_GROUP
        return word;
    }
#endif
    (void)k;
    uint32_t word = 0;
    for (int32_t b = 0; b < n; ++b) {
        word |= (uint32_t)(x[b] < t[b]) << b;
    }
    return word;
}

void tc_bitpack_s8(const tc_bitpack_params_t *p, const int8_t *x, const int8_t *thr,
                   const uint32_t *always, uint32_t *y)
{
    const int32_t channels = p->channels;
    const int32_t words = tc_bwords(channels);
    int8_t one[32]; /* the scalar threshold, for every channel of a word */
    uint32_t all = 0; /* the scalar threshold is above 127: every bit set */
    if (thr == NULL) {
        const int32_t t = p->threshold_s8;
        memset(one, tc_clamp_s32(t, INT8_MIN, INT8_MAX), sizeof one); /* two's complement byte */
        all = t > INT8_MAX ? ~0u : 0u;
    }
    nibble_consts_t consts = {0u, 0x08040201u};
#if TC_DSP
    __asm__("" : "+r"(consts.zero), "+r"(consts.lane_bits));
#endif
    /* word k of every vector in turn: its thresholds, count and forced bits stay put */
    for (int32_t k = 0; k < words; ++k) {
        const int32_t n = channels - 32 * k < 32 ? channels - 32 * k : 32;
        const int8_t *t = thr != NULL ? thr + 32 * k : one;
        const uint32_t set = (always != NULL ? always[k] : 0u) | (all & tc_bmask(n));
        const int8_t *xk = x + 32 * k;
        uint32_t *yk = y + k;
        for (int32_t i = 0; i < p->outer; ++i, xk += channels, yk += words) {
            *yk = pack_word_s8(xk, t, n, &consts) | set;
        }
    }
}

void tc_bitunpack_f32(const tc_bitunpack_params_t *p, const uint32_t *x, float *y)
{
    const int32_t channels = p->channels;
    for (int32_t i = 0; i < p->outer; ++i, y += channels) {
        for (int32_t c0 = 0; c0 < channels; c0 += 32, ++x) {
            const int32_t n = channels - c0 < 32 ? channels - c0 : 32;
            const uint32_t word = *x;
            for (int32_t b = 0; b < n; ++b) {
                y[c0 + b] = ((word >> b) & 1u) != 0 ? -1.0f : 1.0f;
            }
        }
    }
}

void tc_bitunpack_s8(const tc_bitunpack_params_t *p, const uint32_t *x, int8_t *y)
{
    const int32_t channels = p->channels;
    const int8_t plus = (int8_t)p->plus_s8;
    const int8_t minus = (int8_t)p->minus_s8;
    for (int32_t i = 0; i < p->outer; ++i, y += channels) {
        for (int32_t c0 = 0; c0 < channels; c0 += 32, ++x) {
            const int32_t n = channels - c0 < 32 ? channels - c0 : 32;
            const uint32_t word = *x;
            for (int32_t b = 0; b < n; ++b) {
                y[c0 + b] = ((word >> b) & 1u) != 0 ? minus : plus;
            }
        }
    }
}

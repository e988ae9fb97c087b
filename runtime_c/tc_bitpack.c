/*
 * tinyc runtime: packing float32 / int8 activations into binary words and back (see
 * tc_binary.h for the conventions).
 *
 * Packing walks each vector once, 32 channels per output word, building the word with shifts;
 * the last word of a vector holds only the channels left, so its padding bits are zero.
 */
#include "tc_binary.h"

/* pack_word_<suffix>(x, t, t_step, n): the bits x[b] < t[b * t_step] of b < n (t_step 0: one
 * threshold for all) as a word.  The bit is set under the comparison's condition rather than
 * computed and shifted in: a compare (and on the FPU a status move) and a conditional OR per
 * value on a Cortex-M4F. */
#define TC_PACK_WORD(suffix, X, T)                                                             \
    static inline uint32_t pack_word_##suffix(const X *x, const T *t, int32_t t_step,           \
                                              int32_t n)                                       \
    {                                                                                          \
        uint32_t word = 0, bit = 1;                                                            \
        for (int32_t b = 0; b < n; ++b, bit <<= 1, t += t_step) {                              \
            if ((T)x[b] < *t) {                                                                \
                word |= bit;                                                                   \
            }                                                                                  \
        }                                                                                      \
        return word;                                                                           \
    }
TC_PACK_WORD(f32, float, float)
TC_PACK_WORD(s8, int8_t, int32_t)
#undef TC_PACK_WORD

/* Packs x [outer, channels] against thr [channels] (or the single threshold t0 when thr is
 * NULL) into y, one word per 32 channels. */
#define TC_BITPACK(suffix, X, T, t0)                                                           \
    do {                                                                                       \
        const int32_t channels = p->channels;                                                  \
        const T *t = thr != NULL ? thr : &(t0);                                                \
        const int32_t t_step = thr != NULL ? 1 : 0;                                            \
        for (int32_t i = 0; i < p->outer; ++i, x += channels) {                                \
            for (int32_t c0 = 0; c0 < channels; c0 += 32, ++y) {                               \
                const int32_t n = channels - c0 < 32 ? channels - c0 : 32;                     \
                *y = pack_word_##suffix(x + c0, t + c0 * t_step, t_step, n);                   \
            }                                                                                  \
        }                                                                                      \
    } while (0)

void tc_bitpack_f32(const tc_bitpack_params_t *p, const float *x, const float *thr, uint32_t *y)
{
    TC_BITPACK(f32, float, float, p->threshold_f32);
}

void tc_bitpack_s8(const tc_bitpack_params_t *p, const int8_t *x, const int32_t *thr, uint32_t *y)
{
    TC_BITPACK(s8, int8_t, int32_t, p->threshold_s8);
}

#undef TC_BITPACK

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

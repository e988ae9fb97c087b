/*
 * tinyc runtime: what the optimized int8 kernels share: word access to byte arrays and the
 * ARMv7E-M DSP extension (Cortex-M4, M7, M33 / M55 with DSP), with its portable stand-in.
 *
 * TC_DSP is 1 when the compiler targets a core with the DSP extension (__ARM_FEATURE_DSP, as
 * GCC, Clang and Arm Compiler define it for -mcpu=cortex-m4 and up) and optimizes; the
 * optimized kernels then take their SIMD paths, which are separate functions from the portable
 * C paths they must agree with bit for bit (tests/test_kernels_s8_fast.py runs both on QEMU
 * and on the host).  The SIMD paths' inner loops are inline assembly that needs up to 13
 * registers at once, which only an optimizing build can provide (any of -O1, -O2, -O3, -Os,
 * -Og, with or without a frame pointer); an unoptimized (-O0, debugging) build takes the
 * portable paths.
 *
 * The packed layout they share ("sxtb16 order"): four int8 values b0 b1 b2 b3 of one 32-bit
 * word become two words of int16 pairs, (b0, b2) and (b1, b3) - what SXTB16 and SXTB16 with
 * ROR #8 produce in one instruction each.  A dot product of two groups of four is then two
 * SMLADs, whichever way both sides were packed, as long as both were packed alike.
 * In memory (little endian) the pairs are the int16 sequence b0, b2, b1, b3.
 */
#ifndef TC_DSP_H
#define TC_DSP_H

#include <string.h>

#include "tc_common.h"
#include "tc_requant.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__OPTIMIZE__)
#include <arm_acle.h>
#define TC_DSP 1
#else
#define TC_DSP 0
#endif

/* Inner loops are kept out of line (TC_NOINLINE) so that the compiler allocates registers for
 * them alone; their output stages are specialised (TC_ALWAYS_INLINE with a constant flag). */

/* v clamped to [-128, 127] (SSAT #8 on the DSP build). */
static inline int32_t tc_sat_s8(int32_t v)
{
#if TC_DSP
    return __ssat(v, 8);
#else
    return tc_clamp_s32(v, INT8_MIN, INT8_MAX);
#endif
}

/* A 32-bit word from any address (one LDR where the core allows unaligned access; memcpy is
 * the strict-aliasing-safe spelling the compilers turn into it). */
static inline int32_t tc_load_s32(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void tc_store_s32(void *p, int32_t v)
{
    memcpy(p, &v, sizeof v);
}

/* Four int8 values from src as int16 in sxtb16 order: dst[0..3] = src[0], src[2], src[1],
 * src[3]. */
static inline void tc_expand_s8x4(const int8_t *src, int16_t *dst)
{
    dst[0] = src[0];
    dst[1] = src[2];
    dst[2] = src[1];
    dst[3] = src[3];
}

#if TC_DSP
/* SXTB16 Rd, Rm, ROR #8: (int16)(int8)byte1 | (int16)(int8)byte3 << 16. */
static inline int32_t tc_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* PKHBT Rd, Rn, Rm, LSL #16: the low halfword of lo, the low halfword of hi above it. */
static inline int32_t tc_pkhbt16(int32_t lo, int32_t hi)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

/* PKHTB Rd, Rn, Rm, ASR #16: the high halfword of lo, the high halfword of hi above it. */
static inline int32_t tc_pkhtb16(int32_t hi, int32_t lo)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(hi), "r"(lo));
    return r;
}

/* The int8 output of one doubled sum T = 2 * acc of a narrow record (tc_requant.h: multiplier
 * M, narrow_round RA with the output offset in it, narrow_shift R) with the clamp [-128, 127],
 * stored at ADDR: SMMLAR, ADD, ASR, SSAT, STRB (H is clobbered).  The operands are assembler
 * text: registers in the assembly routines, %[name] operands in inline assembly.  The one
 * output stage of the GEMM panels, the depthwise kernels and the table ADD. */
#define TC_STORE_S8(T, ADDR, M, RA, R, H)                                                      \
    "  smmlar " H ", " T ", " M ", " RA "\n"                                                  \
    "  add " H ", " H ", " T ", asr #31\n"                                                     \
    "  asr " H ", " H ", " R "\n"                                                             \
    "  ssat " H ", #8, " H "\n"                                                               \
    "  strb " H ", " ADDR "\n"

/* The four int8 values of the word at src as two words of int16 pairs in sxtb16 order. */
static inline void tc_expand_word_dsp(const int8_t *src, int32_t *lo, int32_t *hi)
{
    const int32_t w = tc_load_s32(src);
    *lo = __sxtb16(w);
    *hi = tc_sxtb16_ror8(w);
}
#endif

#endif /* TC_DSP_H */

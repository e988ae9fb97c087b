/*
 * tinyc runtime: fast binary convolutions (see tc_binary.h for the conventions, the layouts and
 * the exact arithmetic they share with the portable tc_bconv_*).  C99: the speed comes from
 * the algorithms, which suit every core (Cortex-M0 to M55 and the host).  Where GCC spills
 * registers in the hot paths, Thumb-2 assembly (Cortex-M3 and up) replaces the C, which stays
 * beside it for the other cores and the host and gives the same bytes (tests/
 * test_binary_fast.py runs both): the slice sums of tc_bconv_sparse_* (hs_sum: about 7.8
 * instructions per listed word in C, 7 in assembly with the block and slice overhead, on
 * qemu-m4), its row listing for groups of whole words (list_row), the output stages
 * (emit_word: _s8, and _f32 with an FPU), the mismatch sums of tc_bfc_sliced_* (xs_sum: 9.4
 * instructions per input channel in C, 7.3 in assembly) and tc_bfc_sliced_b1's whole row loop.
 *
 * tc_bconv_sparse_*: weights packed along the output channels, so one logic operation handles
 * 32 output channels.  Every input row is listed once per layer into a cache of k_d * k_h rows
 * (stride-1 windows share rows and columns): per row and group, the positions
 * iw * (cig + 1) + ic of its 1 bits and, separately, of its 0 bits, in pixel order, each
 * pixel's lists padded to even length with position iw * (cig + 1) + cig (whose weight word is
 * zero), with per-pixel prefix counts (a nibble table, about 4 instructions per bit).  For each
 * output pixel and group only the bits of the window's minority value b (1 when at most half of
 * its N valid bits are 1, else 0) are visited.  With dilation_w 1, the window's b bits in one
 * input row are one contiguous slice of even length in the cached row (one slice per tap with
 * dilation_w > 1), and position + (tap - iw0) * (cig + 1) is the weight-row position, iw0 the
 * slice's first column and tap its first tap: slices are summed where they lie.  For each word
 * of 32 output channels the weight words at those positions are summed bit-sliced with
 * carry-save adders (Harley-Seal: 31 adders of 5 logic operations per 32 listed words, a
 * slice's rest in blocks of 16, 8, 4 and 2, the carries rippled into the higher
 * planes).  At most half of the N window bits are listed, and fewer when the activations are
 * mostly +1 or mostly -1.  The planes become per-channel counts S by a bit-matrix transpose
 * (8- or 16-bit lanes, 72 or 192 logic operations per 32 channels), and
 *   mismatches = n1 + Wv - 2 S   (b = 1)      mismatches = n1 - Wv + 2 S   (b = 0)
 * with n1 the window's 1 bits and Wv the channel's 1 weight bits over the valid taps, so
 *   dot = N - 2 * mismatches + pad_corr = N - 2 n1 + pad_corr + (b ? 2 : -2) * (2 S - Wv),
 * computed per channel straight from the transposed lanes into the output transform.  _b1
 * skips the transpose: dot < thr is a comparison of 2 S + (b ? N - n1 : n1) with per-channel
 * constants of the window's padding class (tc_binary.h), done in the planes (list_bits_out,
 * about 16 instructions per plane where the transpose and per-channel compare took 330 per
 * 32 channels: 463,040 -> 417,560 for a 3x3 layer of 32 channels, 16x16, on qemu-m4).
 *
 * tc_bconv_dw_*: depthwise (one input channel per output channel): per tap, x ^ w of 32
 * channels at once, added into a bit-sliced counter of five planes (four taps at a time through
 * carry-save adders, the rest by vertical adds); the
 * planes become the channels' mismatch counts M by the same transpose: dot = taps - 2 M.
 *
 * tc_bfc_sliced_* (1x1 convolutions, binary dense): per row, the words w ^ (x bit ? ~0 : 0) of
 * all input channels through the same carry-save tree, 32 output channels at a time; _b1 tests
 * M >= T on the bit planes directly (no transpose), the others go through the transpose.
 *
 * tc_bfc_list_* (the same layers, wide inputs): per row, the positions of its minority bits
 * listed once, then for each word of 32 output channels their weight words summed by hs_sum
 * (the sparse kernel's carry-save adders); _b1 compares in the planes against thresholds that
 * depend on the row's count of 1 bits (a ripple-carry add of that scalar into the borrow chain),
 * the others take emit_word as the sparse kernel does.
 */
#include <math.h>
#include <string.h>

#include "tc_binary.h"
#include "tc_dsp.h"

/* The drivers are inlined into each public function, where the output kind is a constant. */
#if defined(__GNUC__)
#define BCONV_INLINE inline __attribute__((always_inline))
#else
#define BCONV_INLINE inline
#endif

#define DW_MAX_TAPS 31 /* tc_bconv_dw_*: five planes count to 31 */
#define MAX_PLANES 16  /* S <= N / 2 < 2^15: at most 15 planes are ever nonzero */

/* Carry-save adder: *hi * 2 + *lo = a + b + c, bitwise. */
static inline void csa(uint32_t *hi, uint32_t *lo, uint32_t a, uint32_t b, uint32_t c)
{
    const uint32_t u = a ^ b;
    *hi = (a & b) | (u & c);
    *lo = u ^ c;
}

/* The carry-save blocks of the C hs_sum: hsN adds the N weight words w[off + l[0..N)] into the
 * planes from ones up (a Harley-Seal tree, N - 1 carry-save adders) and returns the carry out
 * of its top level: hs2 into the twos, hs4 the fours, hs8 the eights, hs16 the sixteens.
 * off + l[i] is always a valid index of w, while off alone may be negative. */
static BCONV_INLINE uint32_t hs2(uint32_t *ones, uint32_t *twos, uint32_t *fours,
                                 uint32_t *eights, const uint32_t *w, int32_t off,
                                 const uint16_t *l)
{
    uint32_t carry;
    (void)twos, (void)fours, (void)eights;
    csa(&carry, ones, *ones, w[off + l[0]], w[off + l[1]]);
    return carry;
}

/* hs4, hs8, hs16: two blocks of half the size and one carry-save adder at their level. */
#define HS_DOUBLE(name, half, level)                                                           \
    static BCONV_INLINE uint32_t name(uint32_t *ones, uint32_t *twos, uint32_t *fours,        \
                                      uint32_t *eights, const uint32_t *w, int32_t off,        \
                                      const uint16_t *l)                                       \
    {                                                                                          \
        const uint32_t a = half(ones, twos, fours, eights, w, off, l);                         \
        const uint32_t b = half(ones, twos, fours, eights, w, off, l + HALF_##name);           \
        uint32_t carry;                                                                        \
        csa(&carry, level, *level, a, b);                                                      \
        return carry;                                                                          \
    }
#define HALF_hs4 2
#define HALF_hs8 4
#define HALF_hs16 8
HS_DOUBLE(hs4, hs2, twos)
HS_DOUBLE(hs8, hs4, fours)
HS_DOUBLE(hs16, hs8, eights)

/* *plane += c bitwise; returns the carry out. */
static inline uint32_t half_add(uint32_t *plane, uint32_t c)
{
    const uint32_t carry = *plane & c;
    *plane ^= c;
    return carry;
}

/* Adds carry * 2^k into planes[k..top) (the planes in use; those from top on are not
 * initialised and taken into use as needed); returns the new top. */
static inline uint32_t *ripple(uint32_t *plane, uint32_t carry, uint32_t *top)
{
    for (; carry != 0 && plane < top; ++plane) {
        const uint32_t next = *plane & carry;
        *plane ^= carry;
        carry = next;
    }
    if (carry != 0) {
        *top++ = carry;
    }
    return top;
}

/* Stores the five register planes below those rippled into planes[5..top); returns the
 * number of planes in use. */
static inline int32_t planes_out(uint32_t *planes, uint32_t ones, uint32_t twos, uint32_t fours,
                                 uint32_t eights, uint32_t sixteens, const uint32_t *top)
{
    planes[0] = ones;
    planes[1] = twos;
    planes[2] = fours;
    planes[3] = eights;
    planes[4] = sixteens;
    return (int32_t)(top - planes);
}

/* A run of listed positions summed in place: len (even) uint16 positions from cache[start],
 * each naming weight word off + position.  (Indices, not pointers: the scratch memory holding
 * these is sized for 32-bit targets, and the host build runs the same code.) */
typedef struct {
    int32_t start, len, off;
} slice_t;

#if defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
/* Thumb-2 (Cortex-M3 and up): hs_sum_c in assembly, with every plane, pointer and temporary in
 * a register (the C version spills around its blocks: about 300 instructions per call on a
 * 3x3 layer of 32 channels).  Registers: r0-r3 ones .. eights, lr sixteens, r4 the position
 * pointer, r5 the slice's weight base w + 4 * off (formed as an integer), r6 the length left,
 * r7-r11 the carries and words in flight, r12 the adders' temporary; the stack holds w, cache,
 * the slice cursor and end, planes, top and a spilled carry.  A slice takes blocks of 32 words
 * (two of 16, 107 instructions each, and one adder at the sixteens), then 16, 8, 4 and 2 by
 * the bits of its length; each block's carry out is added at its level, and what leaves the
 * sixteens is rippled into planes[5..]. */
int32_t tc_bconv_hs_sum_t2(const uint32_t *w, const uint16_t *cache, const slice_t *sl,
                           int32_t n_sl, uint32_t *planes);
__asm__(
    ".pushsection .text.tc_bconv_hs_sum_t2,\"ax\",%progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".macro tc_hs_csa lo, a, b\n" /* a = carry of lo + a + b, lo = their sum bit; b kept */
    "  eor r12, \\lo, \\a\n"
    "  and \\a, \\a, \\lo\n"
    "  eor \\lo, r12, \\b\n"
    "  and r12, r12, \\b\n"
    "  orr \\a, \\a, r12\n"
    ".endm\n"
    ".macro tc_hs_pair a\n" /* a = carry of ones + the next two listed words */
    "  ldrh \\a, [r4], #2\n"
    "  ldrh r11, [r4], #2\n"
    "  ldr \\a, [r5, \\a, lsl #2]\n"
    "  ldr r11, [r5, r11, lsl #2]\n"
    "  tc_hs_csa r0, \\a, r11\n"
    ".endm\n"
    ".macro tc_hs4 a, c\n" /* a = carry of twos + the next four words */
    "  tc_hs_pair \\a\n"
    "  tc_hs_pair \\c\n"
    "  tc_hs_csa r1, \\a, \\c\n"
    ".endm\n"
    ".macro tc_hs8 a, c, d\n" /* a = carry of fours + the next eight words */
    "  tc_hs4 \\a, \\d\n"
    "  tc_hs4 \\c, \\d\n"
    "  tc_hs_csa r2, \\a, \\c\n"
    ".endm\n"
    ".macro tc_hs_half p, c\n" /* p += c bitwise, c = the carry out (r12 clobbered) */
    "  and r12, \\p, \\c\n"
    "  eor \\p, \\p, \\c\n"
    "  mov \\c, r12\n"
    ".endm\n"
    ".macro tc_hs_zero\n" /* the register planes r0-r3, lr = 0 */
    "  movs r0, #0\n"
    "  movs r1, #0\n"
    "  movs r2, #0\n"
    "  movs r3, #0\n"
    "  mov lr, #0\n"
    ".endm\n"
    ".macro tc_hs_begin p\n" /* planes at p: [sp, #16]; planes[5..8) = 0 (emit_word's 8
                                rows), top = planes + 5 at [sp, #20]; the register planes 0 */
    "  str \\p, [sp, #16]\n"
    "  movs r0, #0\n"
    "  str r0, [\\p, #20]\n"
    "  str r0, [\\p, #24]\n"
    "  str r0, [\\p, #28]\n"
    "  add r5, \\p, #20\n"
    "  str r5, [sp, #20]\n"
    "  tc_hs_zero\n"
    ".endm\n"
    ".macro tc_hs_end\n" /* the planes out, their number returned, the frame of 32 bytes
                            popped */
    "  ldr r4, [sp, #16]\n"
    "  stm r4, {r0, r1, r2, r3}\n"
    "  str lr, [r4, #16]\n"
    "  ldr r5, [sp, #20]\n"
    "  sub r0, r5, r4\n"
    "  asr r0, r0, #2\n"
    "  add sp, sp, #32\n"
    "  pop {r4-r11, pc}\n"
    ".endm\n"
    ".macro tc_hs_ripple c\n" /* adds c (nonzero lanes: carries out of the sixteens) into
                                 planes[5..top), a new plane at top if needed */
    "  cmp \\c, #0\n"
    "  beq 9f\n"
    "  ldr r8, [sp, #16]\n"
    "  add r8, r8, #20\n"
    "  ldr r9, [sp, #20]\n"
    "8:\n"
    "  cmp r8, r9\n"
    "  beq 7f\n"
    "  ldr r10, [r8]\n"
    "  and r11, r10, \\c\n"
    "  eor r10, r10, \\c\n"
    "  str r10, [r8], #4\n"
    "  movs \\c, r11\n"
    "  bne 8b\n"
    "  b 9f\n"
    "7:\n"
    "  str \\c, [r8], #4\n"
    "  str r8, [sp, #20]\n"
    "9:\n"
    ".endm\n"
    ".global tc_bconv_hs_sum_t2\n"
    ".type tc_bconv_hs_sum_t2, %function\n"
    ".thumb_func\n"
    "tc_bconv_hs_sum_t2:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #32\n"
    "  str r0, [sp, #0]\n"            /* w */
    "  str r1, [sp, #4]\n"            /* cache */
    "  add r3, r3, r3, lsl #1\n"
    "  add r3, r2, r3, lsl #2\n"
    "  str r2, [sp, #8]\n"            /* the slice cursor */
    "  str r3, [sp, #12]\n"           /* the end of the slices (12 bytes each) */
    "  ldr r4, [sp, #68]\n"           /* planes: the fifth argument, above 9 + 8 words */
    "  tc_hs_begin r4\n"
    "1:\n"                              /* next slice */
    "  ldr r7, [sp, #8]\n"
    "  ldr r8, [sp, #12]\n"
    "  cmp r7, r8\n"
    "  beq 6f\n"
    "  ldm r7!, {r4, r6, r9}\n"       /* start, len, off */
    "  str r7, [sp, #8]\n"
    "  ldr r8, [sp, #4]\n"
    "  add r4, r8, r4, lsl #1\n"
    "  ldr r8, [sp, #0]\n"
    "  add r5, r8, r9, lsl #2\n"
    "  subs r6, r6, #32\n"
    "  blt 3f\n"
    "2:\n"                              /* blocks of 32: two of 16, one adder at the sixteens */
    "  tc_hs8 r7, r8, r9\n"
    "  tc_hs8 r8, r9, r10\n"
    "  tc_hs_csa r3, r7, r8\n"
    "  str r7, [sp, #24]\n"
    "  tc_hs8 r7, r8, r9\n"
    "  tc_hs8 r8, r9, r10\n"
    "  tc_hs_csa r3, r7, r8\n"
    "  ldr r8, [sp, #24]\n"
    "  tc_hs_csa lr, r7, r8\n"
    "  tc_hs_ripple r7\n"
    "  subs r6, r6, #32\n"
    "  bge 2b\n"
    "3:\n"                              /* r6 = the length left - 32: its bits 4..1 */
    "  tst r6, #16\n"
    "  beq 4f\n"
    "  tc_hs8 r7, r8, r9\n"
    "  tc_hs8 r8, r9, r10\n"
    "  tc_hs_csa r3, r7, r8\n"
    "  tc_hs_half lr, r7\n"
    "  tc_hs_ripple r7\n"
    "4:\n"
    "  tst r6, #8\n"
    "  beq 5f\n"
    "  tc_hs8 r7, r8, r9\n"
    "  tc_hs_half r3, r7\n"
    "  tc_hs_half lr, r7\n"
    "  tc_hs_ripple r7\n"
    "5:\n"
    "  tst r6, #4\n"
    "  beq 10f\n"
    "  tc_hs4 r7, r8\n"
    "  tc_hs_half r2, r7\n"
    "  tc_hs_half r3, r7\n"
    "  tc_hs_half lr, r7\n"
    "  tc_hs_ripple r7\n"
    "10:\n"
    "  tst r6, #2\n"
    "  beq 1b\n"
    "  tc_hs_pair r7\n"
    "  tc_hs_half r1, r7\n"
    "  tc_hs_half r2, r7\n"
    "  tc_hs_half r3, r7\n"
    "  tc_hs_half lr, r7\n"
    "  tc_hs_ripple r7\n"
    "  b 1b\n"
    "6:\n"
    "  tc_hs_end\n"
    ".size tc_bconv_hs_sum_t2, .-tc_bconv_hs_sum_t2\n"
    ".popsection\n"
    ".macro tc_xs_pair a, i\n" /* a = carry of ones + w[0] ^ bit i, w[1] ^ bit i + 1 of r5 */
    "  ldm r4!, {\\a, r11}\n"
    "  sbfx r12, r5, #\\i, #1\n"
    "  eor \\a, \\a, r12\n"
    "  sbfx r12, r5, #(\\i + 1), #1\n"
    "  eor r11, r11, r12\n"
    "  tc_hs_csa r0, \\a, r11\n"
    ".endm\n"
    ".macro tc_xs4 a, c, i\n" /* a = carry of twos + the next four */
    "  tc_xs_pair \\a, \\i\n"
    "  tc_xs_pair \\c, (\\i + 2)\n"
    "  tc_hs_csa r1, \\a, \\c\n"
    ".endm\n"
    ".macro tc_xs8 a, c, d, i\n" /* a = carry of fours + the next eight */
    "  tc_xs4 \\a, \\d, \\i\n"
    "  tc_xs4 \\c, \\d, (\\i + 4)\n"
    "  tc_hs_csa r2, \\a, \\c\n"
    ".endm\n"
    ".macro tc_xs16 i\n" /* r7 = carry of eights + the next sixteen */
    "  tc_xs8 r7, r8, r9, \\i\n"
    "  tc_xs8 r8, r9, r10, (\\i + 8)\n"
    "  tc_hs_csa r3, r7, r8\n"
    ".endm\n"
    ".macro tc_xs_words\n" /* the planes r0-r3, lr (zero on entry; the higher ones rippled
                               into [sp, #16] from top [sp, #20]) += the mismatch words of the row
                               at [sp, #8], in_c at [sp, #12], weights from r4 (left at the end
                               of the last block of 16) */
    "1:\n"
    "  ldr r6, [sp, #12]\n"
    "  subs r6, r6, #32\n"
    "  str r6, [sp, #12]\n"
    "  ldr r7, [sp, #8]\n"
    "  ldr r5, [r7], #4\n"
    "  str r7, [sp, #8]\n"
    "  bge 2f\n"
    "  adds r6, r6, #32\n"          /* the last word: its in_c % 32 bits */
    "  movs r7, #1\n"
    "  lsl r7, r7, r6\n"
    "  subs r7, r7, #1\n"
    "  ands r5, r5, r7\n"
    "  cmp r6, #27\n"               /* 27-31: the whole word's tree costs least */
    "  bge 2f\n"
    "30:\n"                         /* r6 bits left from bit 0 of r5: 11 or more take a block
                                       of 16 (its zero weights past in_c cost less than three
                                       parts' carries), 10 or fewer go in parts */
    "  cmp r6, #11\n"
    "  blt 31f\n"
    "  tc_xs16 0\n"
    "  tc_hs_half lr, r7\n"
    "  tc_hs_ripple r7\n"
    "  lsr r5, r5, #16\n"
    "  subs r6, r6, #16\n"
    "  bgt 30b\n"
    "  b 3f\n"
    "31:\n"                         /* rounded up to pairs (weights 0 past in_c), blocks of
                                       8, 4 and 2 by the bits of the count, each carry added
                                       at its level */
    "  adds r6, r6, #1\n"
    "  bic r6, r6, #1\n"
    "  tst r6, #8\n"
    "  beq 32f\n"
    "  tc_xs8 r7, r8, r9, 0\n"
    "  tc_hs_half r3, r7\n"
    "  tc_hs_half lr, r7\n"
    "  tc_hs_ripple r7\n"
    "  lsr r5, r5, #8\n"
    "32:\n"
    "  tst r6, #4\n"
    "  beq 33f\n"
    "  tc_xs4 r7, r8, 0\n"
    "  tc_hs_half r2, r7\n"
    "  tc_hs_half r3, r7\n"
    "  tc_hs_half lr, r7\n"
    "  tc_hs_ripple r7\n"
    "  lsr r5, r5, #4\n"
    "33:\n"
    "  tst r6, #2\n"
    "  beq 34f\n"
    "  tc_xs_pair r7, 0\n"
    "  tc_hs_half r1, r7\n"
    "  tc_hs_half r2, r7\n"
    "  tc_hs_half r3, r7\n"
    "  tc_hs_half lr, r7\n"
    "  tc_hs_ripple r7\n"
    "34:\n"
    "  rsb r6, r6, #16\n"           /* past the block's unread (zero) weight words */
    "  add r4, r4, r6, lsl #2\n"
    "  b 3f\n"
    "2:\n"                          /* 32 bits: two blocks of 16, one adder at the sixteens */
    "  tc_xs16 0\n"
    "  mov r6, r7\n"
    "  tc_xs16 16\n"
    "  tc_hs_csa lr, r6, r7\n"
    "  tc_hs_ripple r6\n"
    "  ldr r6, [sp, #12]\n"
    "  cmp r6, #0\n"
    "  bgt 1b\n"
    "3:\n"
    ".endm\n"
    ".pushsection .text.tc_bfc_xs_sum_t2,\"ax\",%progbits\n"
    ".global tc_bfc_xs_sum_t2\n"
    ".type tc_bfc_xs_sum_t2, %function\n"
    ".thumb_func\n"
    "tc_bfc_xs_sum_t2:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #32\n"           /* the frame of tc_bconv_hs_sum_t2 (tc_hs_ripple) */
    "  mov r4, r0\n"                /* w */
    "  str r1, [sp, #8]\n"          /* x */
    "  str r2, [sp, #12]\n"         /* in_c */
    "  tc_hs_begin r3\n"           /* planes */
    "  tc_xs_words\n"
    "  tc_hs_end\n"
    ".size tc_bfc_xs_sum_t2, .-tc_bfc_xs_sum_t2\n"
    ".popsection\n"
    ".macro tc_xs_ge m\n" /* r6 = borrow out of plane m - plane t (the next word at r10) */
    "  ldr r11, [r10], #4\n"
    "  eor r12, \\m, r11\n"
    "  bic r12, r6, r12\n"
    "  bic r11, r11, \\m\n"
    "  orr r6, r11, r12\n"
    ".endm\n"
    ".pushsection .text.tc_bfc_sliced_b1_t2,\"ax\",%progbits\n"
    ".global tc_bfc_sliced_b1_t2\n"
    ".type tc_bfc_sliced_b1_t2, %function\n"
    ".thumb_func\n"
    "tc_bfc_sliced_b1_t2:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #120\n"          /* tc_xs_words' frame, k, planes[17], y, ... */
    "  str r0, [sp, #28]\n"         /* k */
    "  str r1, [sp, #0]\n"          /* the row of x */
    "  str r2, [sp, #100]\n"        /* y */
    "  str r3, [sp, #108]\n"        /* rows left */
    "  add r6, sp, #32\n"
    "  str r6, [sp, #16]\n"         /* planes */
    "10:\n"                         /* next row */
    "  ldr r6, [sp, #108]\n"
    "  subs r6, r6, #1\n"
    "  blt 19f\n"
    "  str r6, [sp, #108]\n"
    "  ldr r7, [sp, #28]\n"
    "  ldm r7, {r4, r8, r9}\n"      /* w, thr_planes, flip */
    "  str r8, [sp, #112]\n"
    "  str r9, [sp, #116]\n"
    "  ldr r8, [r7, #16]\n"
    "  str r8, [sp, #104]\n"        /* words of output channels left */
    "11:\n"                         /* next word of 32 output channels */
    "  ldr r7, [sp, #28]\n"
    "  ldr r8, [sp, #0]\n"
    "  str r8, [sp, #8]\n"
    "  ldr r8, [r7, #12]\n"
    "  str r8, [sp, #12]\n"         /* in_c */
    "  add r10, sp, #52\n"
    "  str r10, [sp, #20]\n"        /* top = planes + 5 */
    "  ldr r9, [r7, #20]\n"
    "  subs r9, r9, #5\n"           /* planes [5, depth_t) = 0: the compare reads them */
    "  ble 13f\n"
    "  movs r11, #0\n"
    "12:\n"
    "  str r11, [r10], #4\n"
    "  subs r9, r9, #1\n"
    "  bgt 12b\n"
    "13:\n"
    "  tc_hs_zero\n"
    "  tc_xs_words\n"
    "  ldr r7, [sp, #28]\n"         /* M >= T: no borrow out of M - T, plane by plane */
    "  ldr r9, [r7, #20]\n"
    "  ldr r10, [sp, #112]\n"
    "  movs r6, #0\n"
    "  tc_xs_ge r0\n"
    "  subs r9, r9, #1\n"
    "  beq 14f\n"
    "  tc_xs_ge r1\n"
    "  subs r9, r9, #1\n"
    "  beq 14f\n"
    "  tc_xs_ge r2\n"
    "  subs r9, r9, #1\n"
    "  beq 14f\n"
    "  tc_xs_ge r3\n"
    "  subs r9, r9, #1\n"
    "  beq 14f\n"
    "  tc_xs_ge lr\n"
    "  subs r9, r9, #1\n"
    "  beq 14f\n"
    "  add r8, sp, #52\n"
    "15:\n"
    "  ldr r7, [r8], #4\n"
    "  tc_xs_ge r7\n"
    "  subs r9, r9, #1\n"
    "  bne 15b\n"
    "14:\n"
    "  str r10, [sp, #112]\n"
    "  mvn r6, r6\n"
    "  ldr r8, [sp, #104]\n"
    "  subs r8, r8, #1\n"
    "  str r8, [sp, #104]\n"
    "  bne 16f\n"
    "  ldr r7, [sp, #28]\n"         /* the last word: its channels alone */
    "  ldr r7, [r7, #24]\n"
    "  and r6, r6, r7\n"
    "16:\n"
    "  ldr r7, [sp, #116]\n"
    "  ldr r11, [r7], #4\n"
    "  str r7, [sp, #116]\n"
    "  eor r6, r6, r11\n"
    "  ldr r7, [sp, #100]\n"
    "  str r6, [r7], #4\n"
    "  str r7, [sp, #100]\n"
    "  cmp r8, #0\n"
    "  bne 11b\n"
    "  ldr r7, [sp, #28]\n"         /* the next row of x */
    "  ldr r8, [r7, #28]\n"
    "  ldr r9, [sp, #0]\n"
    "  add r9, r9, r8, lsl #2\n"
    "  str r9, [sp, #0]\n"
    "  b 10b\n"
    "19:\n"
    "  add sp, sp, #120\n"
    "  pop {r4-r11, pc}\n"
    ".size tc_bfc_sliced_b1_t2, .-tc_bfc_sliced_b1_t2\n"
    ".purgem tc_xs_ge\n"
    ".purgem tc_xs_words\n"
    ".purgem tc_xs_pair\n"
    ".purgem tc_xs4\n"
    ".purgem tc_xs8\n"
    ".purgem tc_xs16\n"
    ".purgem tc_hs_csa\n"
    ".purgem tc_hs_pair\n"
    ".purgem tc_hs4\n"
    ".purgem tc_hs8\n"
    ".purgem tc_hs_half\n"
    ".purgem tc_hs_ripple\n"
    ".purgem tc_hs_zero\n"
    ".purgem tc_hs_begin\n"
    ".purgem tc_hs_end\n"
    ".popsection\n");
#define hs_sum tc_bconv_hs_sum_t2
#else
/* planes[k] bit j = bit k of sum of bit j of w[off + l] over the positions l of the slices.
 * Five planes stay in registers; each slice goes through blocks of 32, 16, 8, 4 and 2 words
 * (its length in binary), the carry out of each block is added at its level and what leaves
 * the sixteens is rippled into the higher planes.  Returns the planes in use (>= 5); up to
 * planes[7] the planes above are zero, the others not written. */
static int32_t hs_sum_c(const uint32_t *w, const uint16_t *cache, const slice_t *sl,
                        int32_t n_sl, uint32_t *planes)
{
    uint32_t ones = 0, twos = 0, fours = 0, eights = 0, sixteens = 0;
    uint32_t *top = planes + 5;
    planes[5] = planes[6] = planes[7] = 0; /* emit_word's 8 rows */
    for (int32_t s = 0; s < n_sl; ++s) {
        const uint16_t *l = cache + sl[s].start;
        const int32_t off = sl[s].off;
        int32_t len = sl[s].len;
        for (; len >= 32; len -= 32, l += 32) {
            const uint32_t a = hs16(&ones, &twos, &fours, &eights, w, off, l);
            const uint32_t b = hs16(&ones, &twos, &fours, &eights, w, off, l + 16);
            uint32_t thirtytwos;
            csa(&thirtytwos, &sixteens, sixteens, a, b);
            top = ripple(planes + 5, thirtytwos, top);
        }
        uint32_t carry = 0; /* into the thirty-twos: these blocks add at most 30 to counts below
                               32, so each lane carries at most once */
        if (len & 16) {
            carry = half_add(&sixteens, hs16(&ones, &twos, &fours, &eights, w, off, l));
            l += 16;
        }
        if (len & 8) {
            const uint32_t c = half_add(&eights, hs8(&ones, &twos, &fours, &eights, w, off, l));
            carry |= half_add(&sixteens, c);
            l += 8;
        }
        if (len & 4) {
            uint32_t c = half_add(&fours, hs4(&ones, &twos, &fours, &eights, w, off, l));
            c = half_add(&eights, c);
            carry |= half_add(&sixteens, c);
            l += 4;
        }
        if (len & 2) {
            uint32_t c = half_add(&twos, hs2(&ones, &twos, &fours, &eights, w, off, l));
            c = half_add(&fours, c);
            c = half_add(&eights, c);
            carry |= half_add(&sixteens, c);
        }
        top = ripple(planes + 5, carry, top);
    }
    return planes_out(planes, ones, twos, fours, eights, sixteens, top);
}
#define hs_sum hs_sum_c
#endif

#if defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
/* Thumb-2: emit_word's commonest cases in assembly: zero padding, counts below 256 (8 planes),
 * for _s8 and _f32 no clamp (_f32: a single-precision FPU) and any channel count.  All first
 * transpose the planes q in registers (transpose_counts, rows 8: one ldm, 12 swaps, one stm),
 * so that S_c is byte 4 (c % 8) + c / 8 of q, then per channel dot = base + k2 * (2 S_c - wv[c]):
 *   _f32: y[c] = (float)dot * mul[c] + bias[c], the multiply and the add rounded separately as
 *         in tc_bout_f32.  Per 8 channels: mul and bias by one vldm each, two channels' dots to
 *         the FPU by one vmov, the 8 outputs stored by one vstm (about 8.4 instructions per
 *         channel, 11.8 in C).
 * Registers after the transpose (r4-r11 the planes, r12 the swaps' temporary): r0 the counts
 * (one byte on per block of 8 channels), r1 wv, r5 base, r6 k2, r7 blocks left, r8-r11 the
 * channels in flight; _f32: r2 mul, r3 bias, r4 y, s0-s7 the
 * outputs, s8-s15 mul, s16-s23 bias.
 *   _s8, _f32_ch: one channel at a time for any 1 <= nc <= 32 (the partial words of layers
 *         with few channels too; _f32 takes them when nc < 32):
 *         _s8 y[c] = SSAT8((dot * mul[c] + bias[c]) >> shift) in 12 instructions, _f32_ch as
 *         _f32 in 13; 2 fewer for the _nowv forms (has_wv = 0: dot = base + 2 k2 S); about
 *         28 per channel in C on partial words.  Registers (tc_out_fn): r0 the counts, r1 wv,
 *         r2 mul, r3 bias, r4 y, r5 base, r6 k2 (2 k2 for _nowv), r7 channels left, r8
 *         shift, r9-r11 and s0-s2 temporaries. */
void tc_bconv_out_s8_t2(const uint32_t *q, const uint16_t *wv, const int32_t *mul,
                        const int32_t *bias, int8_t *y, int32_t base, int32_t k2, int32_t nc,
                        int32_t shift);
void tc_bconv_out_s8_nowv_t2(const uint32_t *q, const int32_t *mul, const int32_t *bias,
                             int8_t *y, int32_t base, int32_t k2, int32_t nc, int32_t shift);
#if defined(__ARM_FP) && (__ARM_FP & 4)
void tc_bconv_out_f32_t2(const uint32_t *q, const uint16_t *wv, const float *mul,
                         const float *bias, float *y, int32_t base, int32_t k2);
void tc_bconv_out_f32_ch_t2(const uint32_t *q, const uint16_t *wv, const float *mul,
                           const float *bias, float *y, int32_t base, int32_t k2, int32_t nc);
void tc_bconv_out_f32_ch_nowv_t2(const uint32_t *q, const float *mul, const float *bias,
                                float *y, int32_t base, int32_t k2, int32_t nc);
#define BCONV_OUT_F32_ASM 1
#define BCONV_OUT_F32_TEXT                                                                     \
    ".macro tc_out_pair j, m, sa, sb\n" /* channels m, m + 1 of block j: dots into sa, sb */ \
    "  ldrb r8, [r0, #4 * \\m + \\j]\n"                                                       \
    "  ldrb r9, [r0, #4 * \\m + 4 + \\j]\n"                                                   \
    "  ldrh r10, [r1, #2 * \\m + 16 * \\j]\n"                                                 \
    "  ldrh r11, [r1, #2 * \\m + 2 + 16 * \\j]\n"                                             \
    "  rsb r8, r10, r8, lsl #1\n"                                                              \
    "  rsb r9, r11, r9, lsl #1\n"                                                              \
    "  mla r8, r8, r6, r5\n"                                                                   \
    "  mla r9, r9, r6, r5\n"                                                                   \
    "  vmov \\sa, \\sb, r8, r9\n"                                                              \
    ".endm\n"                                                                                  \
    ".macro tc_out_one s, m, b\n" /* output s = float(s) * mul m + bias b */                  \
    "  vcvt.f32.s32 \\s, \\s\n"                                                                \
    "  vmul.f32 \\s, \\s, \\m\n"                                                               \
    "  vadd.f32 \\s, \\s, \\b\n"                                                               \
    ".endm\n"                                                                                  \
    ".macro tc_out_block j\n" /* channels 8 j .. 8 j + 7; r0, r1 at block 0 */                 \
    "  vldmia r2!, {s8-s15}\n"                                                                 \
    "  vldmia r3!, {s16-s23}\n"                                                                \
    "  tc_out_pair \\j, 0, s0, s1\n"                                                           \
    "  tc_out_pair \\j, 2, s2, s3\n"                                                           \
    "  tc_out_pair \\j, 4, s4, s5\n"                                                           \
    "  tc_out_pair \\j, 6, s6, s7\n"                                                           \
    "  tc_out_one s0, s8, s16\n"                                                               \
    "  tc_out_one s1, s9, s17\n"                                                               \
    "  tc_out_one s2, s10, s18\n"                                                              \
    "  tc_out_one s3, s11, s19\n"                                                              \
    "  tc_out_one s4, s12, s20\n"                                                              \
    "  tc_out_one s5, s13, s21\n"                                                              \
    "  tc_out_one s6, s14, s22\n"                                                              \
    "  tc_out_one s7, s15, s23\n"                                                              \
    "  vstmia r4!, {s0-s7}\n"                                                                  \
    ".endm\n"                                                                                  \
    ".pushsection .text.tc_bconv_out_f32_t2,\"ax\",%progbits\n"                                \
    ".global tc_bconv_out_f32_t2\n"                                                            \
    ".type tc_bconv_out_f32_t2, %function\n"                                                   \
    ".thumb_func\n"                                                                            \
    "tc_bconv_out_f32_t2:\n"                                                                   \
    "  push {r4-r11, lr}\n"                                                                    \
    "  vpush {s16-s23}\n"                                                                      \
    "  tc_out_transpose\n"                                                                     \
    "  ldr r4, [sp, #68]\n" /* y, base, k2: above 9 + 8 saved words */                        \
    "  ldr r5, [sp, #72]\n"                                                                    \
    "  ldr r6, [sp, #76]\n"                                                                    \
    "  movs r7, #2\n"                                                                          \
    "1:\n"                                                                                     \
    "  tc_out_block 0\n"                                                                       \
    "  tc_out_block 1\n"                                                                       \
    "  adds r0, r0, #2\n"                                                                      \
    "  adds r1, r1, #32\n"                                                                     \
    "  subs r7, r7, #1\n"                                                                      \
    "  bne 1b\n"                                                                               \
    "  vpop {s16-s23}\n"                                                                       \
    "  pop {r4-r11, pc}\n"                                                                     \
    ".size tc_bconv_out_f32_t2, .-tc_bconv_out_f32_t2\n"                                       \
    ".popsection\n"                                                                            \
    "tc_out_fn tc_bconv_out_f32_ch_t2, 1, 1\n"                                                 \
    "tc_out_fn tc_bconv_out_f32_ch_nowv_t2, 0, 1\n"                                            \
    ".purgem tc_out_block\n"                                                                   \
    ".purgem tc_out_pair\n"                                                                    \
    ".purgem tc_out_one\n"
#else
#define BCONV_OUT_F32_TEXT ""
#endif
__asm__(
    ".syntax unified\n" /* each function in its own section: only those used are linked */
    ".thumb\n"
    ".macro tc_out_swap a, b, s, mask\n" /* transpose_counts' swap of rows a and b = a + s */
    "  eor r12, \\b, \\a, lsr #\\s\n"
    "  and r12, r12, #\\mask\n"
    "  eor \\b, \\b, r12\n"
    "  eor \\a, \\a, r12, lsl #\\s\n"
    ".endm\n"
    ".macro tc_out_transpose\n" /* q[0..8) at r0, transposed in place */
    "  ldm r0, {r4-r11}\n"
    "  tc_out_swap r4, r8, 4, 0x0F0F0F0F\n"
    "  tc_out_swap r5, r9, 4, 0x0F0F0F0F\n"
    "  tc_out_swap r6, r10, 4, 0x0F0F0F0F\n"
    "  tc_out_swap r7, r11, 4, 0x0F0F0F0F\n"
    "  tc_out_swap r4, r6, 2, 0x33333333\n"
    "  tc_out_swap r5, r7, 2, 0x33333333\n"
    "  tc_out_swap r8, r10, 2, 0x33333333\n"
    "  tc_out_swap r9, r11, 2, 0x33333333\n"
    "  tc_out_swap r4, r5, 1, 0x55555555\n"
    "  tc_out_swap r6, r7, 1, 0x55555555\n"
    "  tc_out_swap r8, r9, 1, 0x55555555\n"
    "  tc_out_swap r10, r11, 1, 0x55555555\n"
    "  stm r0, {r4-r11}\n"
    ".endm\n"
    ".macro tc_out_ch m, wv, f32\n" /* channel m of the block at r0-r4; done when r7 is 0 */
    "  ldrb r9, [r0, #4 * \\m]\n"
    "  .if \\wv\n"
    "  ldrh r10, [r1, #2 * \\m]\n"
    "  rsb r9, r10, r9, lsl #1\n"
    "  .endif\n"
    "  mla r9, r9, r6, r5\n"
    "  .if \\f32\n"
    "  vmov s0, r9\n"
    "  vcvt.f32.s32 s0, s0\n"
    "  vldr s1, [r2, #4 * \\m]\n"
    "  vldr s2, [r3, #4 * \\m]\n"
    "  vmul.f32 s0, s0, s1\n"
    "  vadd.f32 s0, s0, s2\n"
    "  vstr s0, [r4, #4 * \\m]\n"
    "  .else\n"
    "  ldr r10, [r2, #4 * \\m]\n"
    "  ldr r11, [r3, #4 * \\m]\n"
    "  mla r9, r9, r10, r11\n"
    "  asr r9, r9, r8\n"
    "  ssat r9, #8, r9\n"
    "  strb r9, [r4, #\\m]\n"
    "  .endif\n"
    "  subs r7, r7, #1\n"
    "  beq 2f\n"
    ".endm\n"
    ".macro tc_out_fn name, wv, f32\n" /* one of the per-channel output stages */
    ".pushsection .text.\\name,\"ax\",%progbits\n"
    ".global \\name\n"
    ".type \\name, %function\n"
    ".thumb_func\n"
    "\\name:\n"
    "  push {r4-r11, lr}\n"
    "  tc_out_transpose\n"
    "  .if \\wv\n" /* y, base, k2, nc (, shift) above the 9 saved words */
    "  add r4, sp, #36\n"
    "  .if \\f32\n"
    "  ldm r4, {r4-r7}\n"
    "  .else\n"
    "  ldm r4, {r4-r8}\n"
    "  .endif\n"
    "  .else\n" /* y in r3; mul, bias to r2, r3 as with wv; base, k2, nc (, shift) */
    "  mov r4, r3\n"
    "  mov r3, r2\n"
    "  mov r2, r1\n"
    "  add r5, sp, #36\n"
    "  .if \\f32\n"
    "  ldm r5, {r5-r7}\n"
    "  .else\n"
    "  ldm r5, {r5-r8}\n"
    "  .endif\n"
    "  lsls r6, r6, #1\n" /* dot = base + 2 k2 S */
    "  .endif\n"
    "1:\n"
    "  tc_out_ch 0, \\wv, \\f32\n"
    "  tc_out_ch 1, \\wv, \\f32\n"
    "  tc_out_ch 2, \\wv, \\f32\n"
    "  tc_out_ch 3, \\wv, \\f32\n"
    "  tc_out_ch 4, \\wv, \\f32\n"
    "  tc_out_ch 5, \\wv, \\f32\n"
    "  tc_out_ch 6, \\wv, \\f32\n"
    "  tc_out_ch 7, \\wv, \\f32\n"
    "  adds r0, r0, #1\n"
    "  adds r1, r1, #16\n"
    "  adds r2, r2, #32\n"
    "  adds r3, r3, #32\n"
    "  adds r4, r4, #8 + 24 * \\f32\n"
    "  b 1b\n"
    "2:\n"
    "  pop {r4-r11, pc}\n"
    ".size \\name, .-\\name\n"
    ".popsection\n"
    ".endm\n"
    "tc_out_fn tc_bconv_out_s8_t2, 1, 0\n"
    "tc_out_fn tc_bconv_out_s8_nowv_t2, 0, 0\n"
    BCONV_OUT_F32_TEXT
    ".purgem tc_out_fn\n"
    ".purgem tc_out_ch\n"
    ".purgem tc_out_transpose\n"
    ".purgem tc_out_swap\n");
#define BCONV_OUT_S8_ASM 1
#endif

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

/* One plane of the bit-sliced M - T: the borrow out of plane k, from the borrow into it and
 * the planes m_k of M and t_k of T. */
static inline uint32_t borrow_step(uint32_t borrow, uint32_t m_k, uint32_t t_k)
{
    return (t_k & ~m_k) | (borrow & ~(m_k ^ t_k));
}

/* The lanes whose count M (bit-sliced: m[0..depth_t), the planes of M and zeros above them)
 * is at least T (t[0..depth_t)): no borrow out of M - T, computed plane by plane from the
 * lowest. */
static inline uint32_t lanes_at_least(const uint32_t *m, const uint32_t *t, int32_t depth_t)
{
    uint32_t borrow = 0;
    for (int32_t k = 0; k < depth_t; ++k) {
        borrow = borrow_step(borrow, m[k], t[k]);
    }
    return ~borrow;
}

/* lanes_at_least with the count's five lowest planes m0..m4 in registers (unrolled) and the
 * planes from 5 on in m[5..depth) (zero above). */
static BCONV_INLINE uint32_t lanes_at_least_regs(uint32_t m0, uint32_t m1, uint32_t m2,
                                                 uint32_t m3, uint32_t m4, const uint32_t *m,
                                                 int32_t depth, const uint32_t *t,
                                                 int32_t depth_t)
{
    const uint32_t low[5] = {m0, m1, m2, m3, m4};
    uint32_t borrow = 0;
#if defined(__GNUC__)
#pragma GCC unroll 5
#endif
    for (int32_t k = 0; k < 5; ++k) {
        if (k < depth_t) {
            borrow = borrow_step(borrow, low[k], t[k]);
        }
    }
    for (int32_t k = 5; k < depth_t; ++k) {
        borrow = borrow_step(borrow, k < depth ? m[k] : 0u, t[k]);
    }
    return ~borrow;
}

/* Bit length of v >= 0: the planes of a count up to v. */
static inline int32_t bit_length(int32_t v)
{
    int32_t n = 0;
    while (v >> n) {
        ++n;
    }
    return n;
}

/* _b1 of tc_bconv_sparse_* and tc_bfc_list_*: the lanes whose output bit (before flip) is 1,
 * from the planes s[0..depth) of the listed sums S: Z = 2 S + z >= C (c: the planes of C for
 * this b), done bit-sliced plane by plane: Z's planes are formed by a ripple-carry add of the
 * scalar z and fed straight into the borrow chain of Z - C.  For b = 1 the bit is Z < C, the
 * complement.  About 16 instructions per plane on qemu-m4 (P = 10 for a 3x3 window of 32
 * channels) against a transpose and 8 per channel. */
static BCONV_INLINE uint32_t list_bits_out(const uint32_t *s, int32_t depth, uint32_t z,
                                           const uint32_t *c, int32_t planes, uint32_t b)
{
    const int32_t top = depth + 1 < planes ? depth + 1 : planes; /* 2 S: planes 1 .. depth */
    uint32_t carry = 0, borrow = borrow_step(0u, 0u - (z & 1u), c[0]); /* plane 0 of 2 S: 0 */
    int32_t k = 1;
    for (; k < top; ++k) {
        const uint32_t a = s[k - 1];               /* plane k of 2 S */
        const uint32_t m = 0u - ((z >> k) & 1u); /* plane k of z */
        const uint32_t u = a ^ m;
        borrow = borrow_step(borrow, u ^ carry, c[k]);
        carry = (a & m) | (u & carry);
    }
    for (; k < planes; ++k) { /* 2 S is 0 from here */
        const uint32_t m = 0u - ((z >> k) & 1u);
        borrow = borrow_step(borrow, m ^ carry, c[k]);
        carry &= m;
    }
    return b ? borrow : ~borrow;
}

/* Merges the bits cmp (bit i: output channel oc0 + i, i < nc) of one _b1 pixel into its packed
 * words yb: *word carries the partial word between calls (channels come in increasing order);
 * a word is stored, XOR flip, once its last channel or out_c - 1 is in. */
static inline void put_bits(const tc_bout_t *o, uint32_t *yb, int32_t oc0, int32_t nc,
                            uint32_t cmp, uint32_t *word)
{
    const int32_t sh = oc0 & 31;
    const int32_t q0 = oc0 >> 5;
    const int32_t end = oc0 + nc;
    uint32_t acc = *word | (cmp << sh);
    if (sh + nc >= 32) {
        yb[q0] = acc ^ o->flip[q0];
        acc = sh == 0 ? 0u : cmp >> (32 - sh);
    }
    if (end == o->out_c && (end & 31) != 0) {
        yb[end >> 5] = acc ^ o->flip[end >> 5];
        acc = 0;
    }
    *word = acc;
}

/* emit_word with the lane width (rows), the channel count (nc) and whether the clamp is
 * applied (_f32: act_min / act_max; _s8: out_min / out_max narrower than [-128, 127], else one
 * saturation) as constants after inlining. */
static BCONV_INLINE void emit_lanes(const tc_bout_t *o, const uint32_t *q, int32_t rows,
                                    int32_t nc, int32_t clamp, int32_t base, int32_t k2,
                                    int32_t has_wv, const uint16_t *wv, const int32_t *pc,
                                    void *y, int32_t yo, int32_t oc0)
{
    const uint32_t lane_mask = rows == 8 ? 0xFFu : 0xFFFFu;
    const float *mul = o->mul + oc0, *bias = o->bias + oc0;
    const int32_t *mul_s8 = o->mul_s8 + oc0, *bias_s8 = o->bias_s8 + oc0;
    for (int32_t m = 0; m < rows && m < nc; ++m) {
        const uint32_t v = q[m];
#if defined(__GNUC__)
#pragma GCC unroll 4
#endif
        for (int32_t j = 0; j < 32 / rows; ++j) { /* lanes of q[m]: channels m + rows * j */
            const int32_t c = m + rows * j;
            if (c >= nc) {
                break;
            }
            const int32_t s = (int32_t)((v >> (rows * j)) & lane_mask);
            const int32_t dot = base + k2 * (2 * s - (has_wv ? (int32_t)wv[c] : 0)) +
                                (pc == NULL ? 0 : pc[c]); /* NULL: known after inlining */
            switch (o->kind) {
            case TC_BOUT_S32:
                ((int32_t *)y)[yo + oc0 + c] = dot;
                break;
            case TC_BOUT_F32:
                ((float *)y)[yo + oc0 + c] =
                    clamp ? tc_bout_f32(dot, mul[c], bias[c], o->act_min, o->act_max)
                          : (float)dot * mul[c] + bias[c];
                break;
            case TC_BOUT_S8:
                ((int8_t *)y)[yo + oc0 + c] =
                    clamp ? tc_bout_s8(dot, mul_s8[c], bias_s8[c], o->out_shift, o->out_min,
                                       o->out_max)
                          : (int8_t)tc_sat_s8(tc_bout_s8_value(dot, mul_s8[c], bias_s8[c],
                                                               o->out_shift));
                break;
            case TC_BOUT_B1: /* not here: every _b1 compares in the planes */
                break;
            }
        }
    }
}

/* Outputs oc0 .. oc0 + nc - 1 (nc <= 32; _s32, _f32, _s8) of the pixel at y + yo (elements):
 * the counts S_c of the bit-sliced planes
 * q[0..depth) (q has 16 words; q[depth..8) must be zero, the others are overwritten) are
 * transposed into lanes of 8 bits (depth <= 8) or 16, and each channel's
 * dot = base + k2 * (2 S_c - wv[c]) + pc[c] (wv read only when has_wv; pc may be NULL: zero)
 * goes straight through the output transform. */
static BCONV_INLINE void emit_word(const tc_bout_t *o, uint32_t *q, int32_t depth, int32_t nc,
                                   int32_t base, int32_t k2, int32_t has_wv, const uint16_t *wv,
                                   const int32_t *pc, void *y, int32_t yo, int32_t oc0)
{
    const int32_t clamp =
        (o->kind == TC_BOUT_F32 && !(o->act_min == -INFINITY && o->act_max == INFINITY)) ||
        (o->kind == TC_BOUT_S8 && !(o->out_min == INT8_MIN && o->out_max == INT8_MAX));
    for (int32_t k = depth; k < 16 && depth > 8; ++k) {
        q[k] = 0;
    }
#if BCONV_OUT_F32_ASM
    if (o->kind == TC_BOUT_F32 && depth <= 8 && nc == 32 && !clamp && pc == NULL) {
        static const uint16_t no_wv[32]; /* dot = base + 2 k2 S without Wv */
        tc_bconv_out_f32_t2(q, has_wv ? wv : no_wv, o->mul + oc0, o->bias + oc0,
                            (float *)y + yo + oc0, base, k2);
        return;
    }
    if (o->kind == TC_BOUT_F32 && depth <= 8 && !clamp && pc == NULL) { /* nc < 32 */
        float *yf = (float *)y + yo + oc0;
        if (has_wv) {
            tc_bconv_out_f32_ch_t2(q, wv, o->mul + oc0, o->bias + oc0, yf, base, k2, nc);
        } else {
            tc_bconv_out_f32_ch_nowv_t2(q, o->mul + oc0, o->bias + oc0, yf, base, k2, nc);
        }
        return;
    }
#endif
#if BCONV_OUT_S8_ASM
    if (o->kind == TC_BOUT_S8 && depth <= 8 && !clamp && pc == NULL) {
        int8_t *ys8 = (int8_t *)y + yo + oc0;
        if (has_wv) {
            tc_bconv_out_s8_t2(q, wv, o->mul_s8 + oc0, o->bias_s8 + oc0, ys8, base, k2, nc,
                               o->out_shift);
        } else {
            tc_bconv_out_s8_nowv_t2(q, o->mul_s8 + oc0, o->bias_s8 + oc0, ys8, base, k2, nc,
                                    o->out_shift);
        }
        return;
    }
#endif
    if (depth <= 8) {
        transpose_counts(q, 8);
        if (nc == 32 && !clamp) {
            emit_lanes(o, q, 8, 32, 0, base, k2, has_wv, wv, pc, y, yo, oc0);
        } else {
            emit_lanes(o, q, 8, nc, clamp, base, k2, has_wv, wv, pc, y, yo, oc0);
        }
    } else {
        transpose_counts(q, 16);
        emit_lanes(o, q, 16, nc, clamp, base, k2, has_wv, wv, pc, y, yo, oc0);
    }
}

/* Word strides of x (per d, h, w pixel) and the per-axis window geometry, gathered once per
 * call. */
typedef struct {
    int32_t in_words;
    int32_t x_s[3];  /* pixel strides in words along d, h, w */
    int32_t x_t[3];  /* tap strides (dilation * pixel stride) */
    int32_t in[3], k[3], st[3], dil[3], pad[3], out[3], lead[3], trail[3];
} xstrides_t;

static xstrides_t x_strides(const tc_bconv_params_t *p)
{
    const int32_t words = tc_bwords(p->in_c);
    const int32_t row = p->in_w * words;
    const int32_t slice = p->in_h * row;
    const xstrides_t s = {
        words,
        {slice, row, words},
        {p->dilation_d * slice, p->dilation_h * row, p->dilation_w * words},
        {p->in_d, p->in_h, p->in_w},
        {p->k_d, p->k_h, p->k_w},
        {p->stride_d, p->stride_h, p->stride_w},
        {p->dilation_d, p->dilation_h, p->dilation_w},
        {p->pad_d, p->pad_h, p->pad_w},
        {p->out_d, p->out_h, p->out_w},
        {p->lead_d, p->lead_h, p->lead_w},
        {p->trail_d, p->trail_h, p->trail_w},
    };
    return s;
}

/* A tap: the word offset of its pixel from the window's first valid pixel (x) and that of its
 * weight words, in_words * ((kd * k_h + kh) * k_w + kw) (the depthwise weights: one word per
 * 32 channels per tap). */
typedef struct {
    int32_t x, w;
} tap_t;

/* The windows of one output row (od, oh): along d and h they share their valid taps and
 * padding class.  Its taps are listed kw-major, the `per` valid (kd, kh) pairs for every kw of
 * the kernel, x offsets from column kw = 0: the valid taps of any window of the row, kw in
 * [k0, k1), are the run tap[k0 * per .. k1 * per). */
typedef struct {
    int32_t per;
    int32_t cls; /* cd * cls_h + ch; -1 before the first row */
    int32_t x0;  /* word offset of the first valid (kd, kh) pixel at input column 0 */
} row_t;

/* Row (od, oh) in r, its taps listed anew only when its class is not the last row's. */
static void row_at(const xstrides_t *s, int32_t od, int32_t oh, row_t *r, tap_t *tap)
{
    const int32_t o[2] = {od, oh};
    int32_t k0[2], n[2], cls = 0;
    r->x0 = 0;
    for (int32_t a = 0; a < 2; ++a) {
        const int32_t i0 = o[a] * s->st[a] - s->pad[a];
        int32_t k1;
        tc_window_range(i0, s->dil[a], s->k[a], s->in[a], &k0[a], &k1);
        n[a] = k1 - k0[a];
        cls = cls * (s->lead[a] + 1 + s->trail[a]) +
              tc_bconv_pad_class(o[a], s->lead[a], s->trail[a], s->out[a]);
        r->x0 += (i0 + k0[a] * s->dil[a]) * s->x_s[a];
    }
    if (cls == r->cls) {
        return;
    }
    r->cls = cls;
    r->per = n[0] * n[1];
    for (int32_t kw = 0, t = 0; kw < s->k[2]; ++kw) {
        for (int32_t kd = 0; kd < n[0]; ++kd) {
            for (int32_t kh = 0; kh < n[1]; ++kh, ++t) {
                tap[t].x = kd * s->x_t[0] + kh * s->x_t[1] + kw * s->x_t[2];
                tap[t].w = (((k0[0] + kd) * s->k[1] + k0[1] + kh) * s->k[2] + kw) * s->in_words;
            }
        }
    }
}

/* One window of a row: its valid taps, their number, its padding class
 * ((cd * cls_h + ch) * cls_w + cw) and x0, the word offset of its column kw = 0 (from which the
 * taps' x offsets count; before x's start for a leading window of x's first row). */
typedef struct {
    const tap_t *tap;
    int32_t taps, cls, x0;
} window_t;

static window_t window_at(const xstrides_t *s, const row_t *r, const tap_t *tap, int32_t ow)
{
    const int32_t i0 = ow * s->st[2] - s->pad[2];
    int32_t k0, k1;
    tc_window_range(i0, s->dil[2], s->k[2], s->in[2], &k0, &k1);
    const window_t win = {
        tap + k0 * r->per, (k1 - k0) * r->per,
        r->cls * (s->lead[2] + 1 + s->trail[2]) +
            tc_bconv_pad_class(ow, s->lead[2], s->trail[2], s->out[2]),
        r->x0 + i0 * s->x_s[2]};
    return win;
}

/* ---- tc_bconv_sparse_* ----------------------------------------------------------------------- */

/* The working memory of tc_bconv_sparse_* (tc_bconv_sparse_scratch_size), in this order:
 *   seg_t    seg[taps]        the window's runs of taps (below)
 *   slice_t  slice[taps]      ... and the positions each run sums in place
 *   int32_t  tag[k_d * k_h]   the input row held by each slot of the cache
 *   int32_t  row[k_d * k_h], slot[k_d * k_h]    the rows the current output row reads, their slots
 *   uint16_t cache[k_d * k_h][groups][REC_SIZE(in_w, cig)]
 * The cache holds k_d * k_h input rows, each listed once per layer (stride-1 windows share
 * rows and columns).  Per row and group, a record: three prefix tables of in_w + 1 entries,
 * entry iw counting over the pixels before iw: ones[] their 1 bits, list1[] and list0[] the
 * lengths of their padded 1 and 0 lists; then in_w * (cig + 2) + LIST_GAP positions
 * iw * (cig + 1) + ic: those of the 1 bits in pixel order from the start, those of the 0 bits
 * in pixel order downwards from the end.  Each pixel's list of 1 bits and of 0 bits is padded
 * to an even length with position iw * (cig + 1) + cig, whose weight word is zero, so the 1
 * (or 0) bits of any run of adjacent pixels are one slice of even length, summed in place. */
#define LIST_GAP 4 /* uint16 between a record's 1 and 0 lists (list_row) */
#define REC_PREFIX(in_w) (3 * ((in_w) + 1))
#define REC_SIZE(in_w, cig) (REC_PREFIX(in_w) + (in_w) * ((cig) + 2) + LIST_GAP)

typedef struct {
    int32_t taps, slots, rec, slot_size;
} sparse_sizes_t;

/* A run of taps of one window: n adjacent input pixels from column a of the cached row whose
 * group-0 record is at cache[rec], read by the taps t .. t + n - 1 (k_d, k_h, k_w order), so
 * that the weight word of the record's position iw * (cig + 1) + ic is off + position,
 * off = (t - a) * (cig + 1). */
typedef struct {
    int32_t rec, a, n, off;
} seg_t;

static sparse_sizes_t sparse_sizes(const tc_bconv_params_t *p)
{
    sparse_sizes_t z;
    const int32_t cig = p->in_c / p->groups;
    z.taps = p->k_d * p->k_h * p->k_w;
    z.slots = p->k_d * p->k_h;
    z.rec = REC_SIZE(p->in_w, cig);
    z.slot_size = p->groups * z.rec;
    return z;
}

size_t tc_bconv_sparse_scratch_size(const tc_bconv_params_t *p)
{
    const sparse_sizes_t z = sparse_sizes(p);
    const size_t words = 7u * (size_t)z.taps + 3u * (size_t)z.slots; /* seg, slice, slots */
    const size_t halves = (size_t)z.slots * (size_t)z.slot_size;
    return words * sizeof(int32_t) + halves * sizeof(uint16_t);
}

/* Per nibble value v: the positions 0..3 of its 1 bits ascending, then those of its 0 bits
 * descending (so for a nibble of n < 4 valid bits, masked, the 4 - n invalid ones come first
 * among the 0 bits), and the number of its 1 bits. */
static const uint16_t NIBBLE_POS[16][4] = {
    {3, 2, 1, 0}, {0, 3, 2, 1}, {1, 3, 2, 0}, {0, 1, 3, 2}, {2, 3, 1, 0}, {0, 2, 3, 1},
    {1, 2, 3, 0}, {0, 1, 2, 3}, {3, 2, 1, 0}, {0, 3, 2, 1}, {1, 3, 2, 0}, {0, 1, 3, 2},
    {2, 3, 1, 0}, {0, 2, 3, 1}, {1, 2, 3, 0}, {0, 1, 2, 3}};
static const uint8_t NIBBLE_ONES[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};

/* Lists the n <= 32 bits of v (bits from n on zero) a nibble at a time: its four table
 * positions plus base2 + k (the nibble's first position, in both 16-bit halves of a word) are
 * stored at the end of the 1 list and below the start of the 0 list, and each list then grows
 * by its share.  The 0 list's stores address z - 4 (j + 1), z its start plus the 1 bits so
 * far and j the nibble (a constant once unrolled): one pointer update per nibble. */
static BCONV_INLINE void list_bits(uint32_t v, int32_t n, uint32_t base2, uint16_t **ones,
                                   uint16_t **zeros)
{
    const uint16_t *hi_table = &NIBBLE_POS[0][2];
    uint16_t *o = *ones;
    uint16_t *z = *zeros;
    int32_t j = 0;
#if defined(__GNUC__)
#pragma GCC unroll 8
#endif
    for (int32_t k = 0; k < n; k += 4, ++j) {
        const uint32_t nib = (v >> k) & 15u;
        const int32_t k1 = NIBBLE_ONES[nib];
        uint32_t lo, hi; /* positions 0, 1 and 2, 3 */
        memcpy(&lo, NIBBLE_POS[nib], sizeof lo);
        memcpy(&hi, hi_table + 4 * nib, sizeof hi);
        lo += base2 + (uint32_t)k * 0x00010001u;
        hi += base2 + (uint32_t)k * 0x00010001u;
        memcpy(o, &lo, sizeof lo);
        memcpy(o + 2, &hi, sizeof hi);
        memcpy(z - 4 * j - 4, &lo, sizeof lo);
        memcpy(z - 4 * j - 2, &hi, sizeof hi);
        o += k1;
        z += k1;
    }
    *ones = o;
    *zeros = z - 4 * j;
}

/* The records of one input row (xr: its pixel 0) into rec (see the scratch layout), by
 * list_bits (positions in both 16-bit halves of a word: no carry, they stay below 2^16); the
 * gap of LIST_GAP positions between the lists takes the stores that reach past them.  After
 * each pixel the padding position goes to both lists, kept by the one with an odd count. */
static BCONV_INLINE void list_row_fields(const uint32_t *xr, int32_t in_w, int32_t in_words,
                                         int32_t groups, int32_t cig, uint16_t *rec,
                                         int32_t whole_words)
{
    for (int32_t g = 0; g < groups; ++g, rec += REC_SIZE(in_w, cig)) {
        uint16_t *const pre_ones = rec;
        uint16_t *const pre_list1 = rec + in_w + 1;
        uint16_t *const pre_list0 = rec + 2 * (in_w + 1);
        uint16_t *const pos = rec + REC_PREFIX(in_w);
        uint16_t *const end = pos + in_w * (cig + 2) + LIST_GAP;
        uint16_t *ones = pos;
        uint16_t *zeros = end; /* filled downwards */
        uint32_t base2 = 0;    /* the base position, twice */
        int32_t n1 = 0;        /* 1 bits so far */
        for (int32_t iw = 0; iw < in_w; ++iw) {
            const uint32_t *px = xr + iw * in_words;
            uint16_t *const ones0 = ones;
            pre_ones[iw] = (uint16_t)n1;
            pre_list1[iw] = (uint16_t)(ones - pos);
            pre_list0[iw] = (uint16_t)(end - zeros);
            for (int32_t done = 0; done < cig; done += 32) {
                const int32_t n = whole_words || cig - done >= 32 ? 32 : cig - done;
                const uint32_t v = whole_words ? px[(g * cig + done) >> 5]
                                               : tc_bits_get(px, g * cig + done, n) & tc_bmask(n);
                if (n == 32) { /* inlined with n constant: no bounds checks */
                    list_bits(v, 32, base2, &ones, &zeros);
                } else {
                    list_bits(v, n, base2, &ones, &zeros);
                }
                /* a partial last nibble: its 4 - n % 4 invalid bits, the lowest of its 0 list
                 * entries, are dropped */
                zeros += -n & 3;
                base2 += (uint32_t)n * 0x00010001u;
            }
            const int32_t k1 = (int32_t)(ones - ones0);
            ones[0] = (uint16_t)base2; /* iw * (cig + 1) + cig */
            zeros[-1] = (uint16_t)base2;
            ones += k1 & 1;
            zeros -= (cig - k1) & 1;
            base2 += 0x00010001u;
            n1 += k1;
        }
        pre_ones[in_w] = (uint16_t)n1;
        pre_list1[in_w] = (uint16_t)(ones - pos);
        pre_list0[in_w] = (uint16_t)(end - zeros);
    }
}

#if defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
/* Thumb-2: list_row_fields of one group whose channels are whole words (cig % 32 == 0) in
 * assembly, 13 instructions per nibble and about 30 per pixel around them (GCC spills the
 * pointers: about 15.5 and 60).  Per pixel: its three prefix entries, then per word 8 nibbles
 * as list_bits (r9 the word, r10 the nibble then its 1 bits, r11 / r12 its positions 0-1 /
 * 2-3), then the padding position to both lists, kept by the one with an odd count (cig is
 * even, so both counts are odd or neither).  Registers: r0 the pixel's words, r1 the prefix
 * entry, r2 the 1 list's end, r3 the 0 list's start, r4 the base position (twice), r5 the 1
 * bits so far, r6 / r7 NIBBLE_POS's positions 0-1 / 2-3, r8 NIBBLE_ONES; the stack holds the
 * counts, strides and list origins. */
typedef struct {
    uint16_t *pos, *end;        /* the record's lists: 1s up from pos, 0s down from end */
    const uint16_t *nibble_pos; /* NIBBLE_POS */
    const uint8_t *nibble_ones; /* NIBBLE_ONES */
    int32_t in_w, skip, words; /* pixels, bytes from one's last word read to the next, words */
} list_job_t;

void tc_bconv_list_row_t2(const uint32_t *px, uint16_t *pre, const list_job_t *job);
__asm__(
    ".pushsection .text.tc_bconv_list_row_t2,\"ax\",%progbits\n"
    ".syntax unified\n"
    ".thumb\n"
    ".macro tc_list_nibble j\n"
    "  ubfx r10, r9, #4 * \\j, #4\n"
    "  ldr r11, [r6, r10, lsl #3]\n"
    "  ldr r12, [r7, r10, lsl #3]\n"
    "  ldrb r10, [r8, r10]\n"
    "  add r11, r11, r4\n"
    "  add r12, r12, r4\n"
    "  str r11, [r2]\n"
    "  str r12, [r2, #4]\n"
    "  str r11, [r3, #-8 * \\j - 8]\n"
    "  str r12, [r3, #-8 * \\j - 4]\n"
    "  add r2, r2, r10, lsl #1\n"
    "  add r3, r3, r10, lsl #1\n"
    "  add r4, r4, #0x40004\n"
    ".endm\n"
    ".macro tc_list_prefix\n" /* the prefix entries of the pixel at r1 */
    "  ldr lr, [sp, #4]\n"
    "  strh r5, [r1]\n"
    "  ldr r10, [sp, #16]\n"
    "  sub r10, r2, r10\n"
    "  lsr r10, r10, #1\n"
    "  strh r10, [r1, lr]\n"
    "  ldr r10, [sp, #20]\n"
    "  sub r10, r10, r3\n"
    "  lsr r10, r10, #1\n"
    "  strh r10, [r1, lr, lsl #1]\n"
    ".endm\n"
    ".global tc_bconv_list_row_t2\n"
    ".type tc_bconv_list_row_t2, %function\n"
    ".thumb_func\n"
    "tc_bconv_list_row_t2:\n"
    "  push {r4-r11, lr}\n"
    "  sub sp, sp, #32\n"
    "  ldr r3, [r2, #16]\n"
    "  str r3, [sp, #0]\n"        /* pixels left */
    "  add r3, r3, #1\n"
    "  lsl r3, r3, #1\n"
    "  str r3, [sp, #4]\n"        /* bytes from one prefix table to the next */
    "  ldr r3, [r2, #20]\n"
    "  str r3, [sp, #8]\n"        /* bytes from a pixel's last word read to the next pixel */
    "  ldr r3, [r2, #24]\n"
    "  str r3, [sp, #12]\n"       /* words per pixel */
    "  ldr r6, [r2, #8]\n"
    "  add r7, r6, #4\n"
    "  ldr r8, [r2, #12]\n"
    "  ldr r3, [r2, #4]\n"
    "  str r3, [sp, #20]\n"       /* end */
    "  ldr r2, [r2, #0]\n"
    "  str r2, [sp, #16]\n"       /* pos */
    "  movs r4, #0\n"
    "  movs r5, #0\n"
    "1:\n"
    "  tc_list_prefix\n"
    "  add r1, r1, #2\n"
    "  str r2, [sp, #28]\n"       /* the pixel's 1 list */
    "  ldr r10, [sp, #12]\n"
    "  str r10, [sp, #24]\n"      /* words left */
    "2:\n"
    "  ldr r9, [r0], #4\n"
    "  tc_list_nibble 0\n"
    "  tc_list_nibble 1\n"
    "  tc_list_nibble 2\n"
    "  tc_list_nibble 3\n"
    "  tc_list_nibble 4\n"
    "  tc_list_nibble 5\n"
    "  tc_list_nibble 6\n"
    "  tc_list_nibble 7\n"
    "  sub r3, r3, #64\n"
    "  ldr r10, [sp, #24]\n"
    "  subs r10, r10, #1\n"
    "  str r10, [sp, #24]\n"
    "  bne 2b\n"
    "  ldr r10, [sp, #28]\n"
    "  sub r10, r2, r10\n"        /* 2 k1 */
    "  strh r4, [r2]\n"
    "  strh r4, [r3, #-2]\n"
    "  and r11, r10, #2\n"
    "  add r2, r2, r11\n"
    "  sub r3, r3, r11\n"
    "  add r4, r4, #0x10001\n"
    "  add r5, r5, r10, lsr #1\n"
    "  ldr r11, [sp, #8]\n"
    "  add r0, r0, r11\n"
    "  ldr r10, [sp, #0]\n"
    "  subs r10, r10, #1\n"
    "  str r10, [sp, #0]\n"
    "  bne 1b\n"
    "  tc_list_prefix\n"
    "  add sp, sp, #32\n"
    "  pop {r4-r11, pc}\n"
    ".size tc_bconv_list_row_t2, .-tc_bconv_list_row_t2\n"
    ".purgem tc_list_nibble\n"
    ".purgem tc_list_prefix\n"
    ".popsection\n");

/* list_row, its fields read as whole words where the groups' channels are (cig % 32 == 0). */
static void list_row(const uint32_t *xr, int32_t in_w, int32_t in_words, int32_t groups,
                     int32_t cig, uint16_t *rec)
{
    if ((cig & 31) == 0) {
        for (int32_t g = 0; g < groups; ++g, rec += REC_SIZE(in_w, cig)) {
            uint16_t *const pos = rec + REC_PREFIX(in_w);
            const list_job_t job = {pos, pos + in_w * (cig + 2) + LIST_GAP, &NIBBLE_POS[0][0],
                                    NIBBLE_ONES, in_w, (in_words - cig / 32) * 4, cig / 32};
            tc_bconv_list_row_t2(xr + g * cig / 32, rec, &job);
        }
    } else {
        list_row_fields(xr, in_w, in_words, groups, cig, rec, 0);
    }
}
#else
/* list_row, its fields read as whole words where the groups' channels are (cig % 32 == 0). */
static void list_row(const uint32_t *xr, int32_t in_w, int32_t in_words, int32_t groups,
                     int32_t cig, uint16_t *rec)
{
    if ((cig & 31) == 0) {
        list_row_fields(xr, in_w, in_words, groups, cig, rec, 1);
    } else {
        list_row_fields(xr, in_w, in_words, groups, cig, rec, 0);
    }
}
#endif

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

/* The runs of valid taps of the window at output column ow of the output row whose d and h
 * axes are wd and wh (rows cached in slot[]): one per row for dilation_w 1, else one per tap.
 * Returns their number. */
static int32_t window_runs(const tc_bconv_params_t *p, const sparse_sizes_t *z,
                           tc_window_axis_t wd, tc_window_axis_t wh, tc_window_axis_t ww,
                           const int32_t *slot, seg_t *seg)
{
    const int32_t per_tap = p->dilation_w != 1;
    const int32_t cig1 = p->in_c / p->groups + 1;
    int32_t s = 0;
    for (int32_t kd = 0, i = 0; kd < wd.count; ++kd) {
        for (int32_t kh = 0; kh < wh.count; ++kh, ++i) {
            const int32_t tap0 = ((wd.first + kd) * p->k_h + wh.first + kh) * p->k_w + ww.first;
            for (int32_t kw = 0; kw < (per_tap ? ww.count : ww.count > 0); ++kw, ++s) {
                seg[s].rec = slot[i] * z->slot_size;
                seg[s].a = ww.at + kw * p->dilation_w;
                seg[s].n = per_tap ? 1 : ww.count;
                seg[s].off = (tap0 + kw - seg[s].a) * cig1;
            }
        }
    }
    return s;
}

/* The 1 bits over the runs moved `shift` input columns on (the window slid along the width
 * since window_runs), in the records g_off after the runs' ones (group g: g_off =
 * g * REC_SIZE). */
static BCONV_INLINE int32_t window_ones(const uint16_t *cache, const seg_t *seg, int32_t n_seg,
                                        int32_t g_off, int32_t shift)
{
    int32_t n1 = 0;
    for (int32_t s = 0; s < n_seg; ++s) {
        const uint16_t *pre = cache + seg[s].rec + g_off + seg[s].a + shift;
        n1 += pre[seg[s].n] - pre[0];
    }
    return n1;
}

/* The slices of the bits equal to b over the runs moved `shift` columns on, in the records g_off
 * after theirs (padded lists, see the scratch layout); cig1 = cig + 1.  Inlined per b. */
static BCONV_INLINE void window_slices_b(const uint16_t *cache, const seg_t *seg, int32_t n_seg,
                                         int32_t g_off, int32_t shift, int32_t in_w,
                                         int32_t cig1, int32_t rec_size, int32_t b, slice_t *sl)
{
    const int32_t list = b ? in_w + 1 : 2 * (in_w + 1); /* the prefix table of b's list */
    for (int32_t s = 0; s < n_seg; ++s) {
        const int32_t rec = seg[s].rec + g_off;
        const uint16_t *pre = cache + rec + seg[s].a + shift + list;
        const int32_t first = pre[0], end = pre[seg[s].n];
        sl[s].len = end - first;
        sl[s].start = b ? rec + REC_PREFIX(in_w) + first : rec + rec_size - end;
        sl[s].off = seg[s].off - shift * cig1;
    }
}

static BCONV_INLINE void window_slices(const uint16_t *cache, const seg_t *seg, int32_t n_seg,
                                       int32_t g_off, int32_t shift, int32_t in_w, int32_t cig1,
                                       int32_t rec_size, int32_t b, slice_t *sl)
{
    if (b) {
        window_slices_b(cache, seg, n_seg, g_off, shift, in_w, cig1, rec_size, 1, sl);
    } else {
        window_slices_b(cache, seg, n_seg, g_off, shift, in_w, cig1, rec_size, 0, sl);
    }
}

/* The outputs of one pixel (at y + yo) from the runs of its window, moved `shift` columns on
 * (n_bits valid bits per group): per group the minority value b, its slices, and per word of
 * 32 output channels their sums and the output stage.  Inlined with groups and ocw constant
 * where they are 1. */
static BCONV_INLINE void sparse_pixel(const tc_bconv_params_t *p, const uint32_t *w,
                                      const uint16_t *wvc, const int32_t *pc,
                                      const uint32_t *thr_table, int32_t planes_c,
                                      const tc_bout_t *out, const uint16_t *cache,
                                      const seg_t *seg, int32_t n_seg, int32_t shift,
                                      int32_t n_bits, int32_t groups, int32_t ocw, slice_t *sl,
                                      uint32_t *q, void *y, int32_t yo)
{
    const int32_t cig = p->in_c / groups;
    const int32_t cog = p->out_c / groups;
    const int32_t rec_size = REC_SIZE(p->in_w, cig);
    const int32_t block = p->k_d * p->k_h * p->k_w * (cig + 1); /* words per 32 channels */
    uint32_t word = 0; /* _b1: the output word being assembled */
    for (int32_t g = 0; g < groups; ++g) {
        const int32_t n1 = window_ones(cache, seg, n_seg, g * rec_size, shift);
        const int32_t b = 2 * n1 <= n_bits;
        window_slices(cache, seg, n_seg, g * rec_size, shift, p->in_w, cig + 1, rec_size, b, sl);
        const int32_t base = n_bits - 2 * n1;
        const int32_t k2 = b ? 2 : -2; /* dot = base + pc + k2 * (2 S - Wv) */
        for (int32_t qw = 0; qw < ocw; ++qw) {
            const int32_t nc = cog - 32 * qw < 32 ? cog - 32 * qw : 32;
            const int32_t oc0 = g * cog + 32 * qw;
            const int32_t depth = hs_sum(w + (g * ocw + qw) * block, cache, sl, n_seg, q);
            if (out->kind == TC_BOUT_B1) { /* M >= T in the planes, as tc_bfc_list_b1 */
                const uint32_t z = b ? (uint32_t)(n_bits - n1) : (uint32_t)n1;
                const uint32_t *c = thr_table + ((b * groups + g) * ocw + qw) * planes_c;
                put_bits(out, (uint32_t *)y + yo, oc0, nc,
                         list_bits_out(q, depth, z, c, planes_c, (uint32_t)b) & tc_bmask(nc),
                         &word);
                continue;
            }
            if (pc == NULL) { /* each call inlined for its own case */
                emit_word(out, q, depth, nc, base, k2, 1, wvc + oc0, NULL, y, yo, oc0);
            } else {
                emit_word(out, q, depth, nc, base, k2, 1, wvc + oc0, pc + oc0, y, yo, oc0);
            }
        }
    }
}

static BCONV_INLINE void sparse_run(const tc_bconv_params_t *p, const uint32_t *x,
                                     const uint32_t *w, const uint16_t *wv,
                                     const int32_t *pad_corr, const uint16_t *thr_class,
                                     const uint32_t *thr_planes, const tc_bout_t *out, void *y,
                                     void *scratch)
{
    const sparse_sizes_t z = sparse_sizes(p);
    const int32_t groups = p->groups;
    const int32_t cig = p->in_c / groups;
    const int32_t ocw = tc_bwords(p->out_c / groups);
    const int32_t single = groups == 1 && ocw == 1;
    const int32_t y_step = out->kind == TC_BOUT_B1 ? tc_bwords(p->out_c) : p->out_c;
    const int32_t cls_h = p->lead_h + 1 + p->trail_h;
    const int32_t cls_w = p->lead_w + 1 + p->trail_w;
    /* _b1: the thresholds' planes P and the words of one padding class's table [2, groups,
     * ocw, P] */
    const int32_t planes_c = bit_length(2 * p->k_d * p->k_h * p->k_w * cig + 1);
    const int32_t table_size = 2 * groups * ocw * planes_c;
    seg_t *seg = (seg_t *)scratch;
    slice_t *sl = (slice_t *)(seg + z.taps);
    int32_t *tag = (int32_t *)(sl + z.taps);
    int32_t *rows = tag + z.slots;
    int32_t *slot = rows + z.slots;
    uint16_t *cache = (uint16_t *)(slot + z.slots);
    uint32_t q[MAX_PLANES];

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
                int32_t n_seg = 0, n_bits = 0, shift = 0;
                for (int32_t ow = 0; ow < p->out_w; ++ow, yo += y_step) {
                    const int32_t cw = tc_bconv_pad_class(ow, p->lead_w, p->trail_w, p->out_w);
                    if (ow > p->lead_w && cw == p->lead_w) { /* interior, as ow - 1 was */
                        shift += p->stride_w;
                    } else {
                        shift = 0;
                        const tc_window_axis_t ww = tc_window_axis(
                            ow, p->stride_w, p->pad_w, p->dilation_w, p->k_w, p->in_w);
                        n_seg = window_runs(p, &z, wd, wh, ww, slot, seg);
                        n_bits = wd.count * wh.count * ww.count * cig;
                    }
                    const int32_t cls = (cd * cls_h + ch) * cls_w + cw;
                    const uint16_t *wvc = wv == NULL ? NULL : wv + cls * p->out_c;
                    const int32_t *pc = pad_corr == NULL ? NULL : pad_corr + cls * p->out_c;
                    const uint32_t *thr_table =
                        thr_class == NULL ? NULL : thr_planes + thr_class[cls] * table_size;
                    if (single) {
                        sparse_pixel(p, w, wvc, pc, thr_table, planes_c, out, cache, seg, n_seg,
                                     shift, n_bits, 1, 1, sl, q, y, yo);
                    } else {
                        sparse_pixel(p, w, wvc, pc, thr_table, planes_c, out, cache, seg, n_seg,
                                     shift, n_bits, groups, ocw, sl, q, y, yo);
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
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S32, NULL, NULL);
    sparse_run(p, x, w, wv, pad_corr, NULL, NULL, &out, y, scratch);
}

void tc_bconv_sparse_f32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                         const uint16_t *wv, const int32_t *pad_corr, const float *mul,
                         const float *bias, float *y, void *scratch)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_F32, mul, bias);
    sparse_run(p, x, w, wv, pad_corr, NULL, NULL, &out, y, scratch);
}

void tc_bconv_sparse_s8(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                        const uint16_t *wv, const int32_t *pad_corr, const int32_t *mul,
                        const int32_t *bias, int8_t *y, void *scratch)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S8, mul, bias);
    sparse_run(p, x, w, wv, pad_corr, NULL, NULL, &out, y, scratch);
}

void tc_bconv_sparse_b1(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                        const uint16_t *thr_class, const uint32_t *thr_planes,
                        const uint32_t *flip, uint32_t *y, void *scratch)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_B1, NULL, flip);
    sparse_run(p, x, w, NULL, NULL, thr_class, thr_planes, &out, y, scratch);
}

/* ---- tc_bconv_dw_* --------------------------------------------------------------------------- */

/* Adds the carry c of weight 2 into the planes p1 .. p4 (counts <= 31). */
static inline void dw_carry_twos(uint32_t *p1, uint32_t *p2, uint32_t *p3, uint32_t *p4,
                                 uint32_t c)
{
    c = half_add(p1, c);
    c = half_add(p2, c);
    *p4 ^= half_add(p3, c);
}

/* The mismatch words x ^ w of one tap: 32 channels. */
#define DW_TAP(tp) (xj[(tp).x] ^ wj[(tp).w])

static BCONV_INLINE void dw_run(const tc_bconv_params_t *p, const uint32_t *x,
                                 const uint32_t *w, const int32_t *pad_corr,
                                 const uint16_t *thr_class, const uint32_t *thr_planes,
                                 const tc_bout_t *out, void *y)
{
    const int32_t channels = p->out_c;
    const int32_t cw = tc_bwords(channels);
    const int32_t depth_t = bit_length(p->k_d * p->k_h * p->k_w + 1); /* _b1 */
    const int32_t y_step = out->kind == TC_BOUT_B1 ? cw : channels;
    const xstrides_t s = x_strides(p);
    const int32_t x_step = s.st[2] * s.x_s[2]; /* words from one window to the next along w */
    tap_t tap[DW_MAX_TAPS];
    row_t row = {0, -1, 0};

    for (int32_t n = 0, yo = 0; n < p->batch; ++n) {
        const uint32_t *xn = x + n * p->in_d * s.x_s[0];
        for (int32_t od = 0; od < p->out_d; ++od) {
            for (int32_t oh = 0; oh < p->out_h; ++oh) {
                row_at(&s, od, oh, &row, tap);
                window_t win = {tap, 0, 0, 0};
                for (int32_t ow = 0; ow < p->out_w; ++ow, yo += y_step) {
                    if (ow > s.lead[2] && ow < s.out[2] - s.trail[2]) { /* interior, as ow - 1 */
                        win.x0 += x_step;
                    } else {
                        win = window_at(&s, &row, tap, ow);
                    }
                    const int32_t taps = win.taps;
                    /* where the taps' x offsets count from (address arithmetic in
                     * integers: it may lie before x) */
                    const uintptr_t xw = (uintptr_t)xn + (uintptr_t)(intptr_t)(
                        (taps > 0 ? win.x0 : 0) * (int32_t)sizeof(uint32_t));
                    const int32_t *corr = pad_corr == NULL ? NULL : pad_corr + win.cls * channels;
                    const tap_t *end4 = win.tap + (taps & ~3);
                    for (int32_t j = 0; j < cw; ++j) {
                        const uint32_t *xj = (const uint32_t *)xw + j;
                        const uint32_t *wj = w + j;
                        uint32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0;
                        const tap_t *tp = win.tap;
                        for (; tp < end4; tp += 4) { /* four taps: three carry-save adders */
                            uint32_t twos_a, twos_b, fours;
                            csa(&twos_a, &p0, p0, DW_TAP(tp[0]), DW_TAP(tp[1]));
                            csa(&twos_b, &p0, p0, DW_TAP(tp[2]), DW_TAP(tp[3]));
                            csa(&fours, &p1, p1, twos_a, twos_b);
                            fours = half_add(&p2, fours);
                            p4 ^= half_add(&p3, fours); /* taps <= 31: no carry out of p4 */
                        }
                        /* the last taps % 4: a carry-save adder for two or three; the
                         * carry into the twos rippled up */
                        uint32_t twos;
                        switch (taps & 3) {
                        case 3: {
                            uint32_t fours;
                            csa(&twos, &p0, p0, DW_TAP(tp[0]), DW_TAP(tp[1]));
                            csa(&fours, &p1, p1, twos, half_add(&p0, DW_TAP(tp[2])));
                            fours = half_add(&p2, fours);
                            p4 ^= half_add(&p3, fours);
                            break;
                        }
                        case 2:
                            csa(&twos, &p0, p0, DW_TAP(tp[0]), DW_TAP(tp[1]));
                            dw_carry_twos(&p1, &p2, &p3, &p4, twos);
                            break;
                        case 1:
                            dw_carry_twos(&p1, &p2, &p3, &p4, half_add(&p0, DW_TAP(tp[0])));
                            break;
                        default:
                            break;
                        }
                        const int32_t nc = channels - 32 * j < 32 ? channels - 32 * j : 32;
                        if (out->kind == TC_BOUT_B1) { /* M >= T on the planes, no transpose */
                            const uint32_t ge = lanes_at_least_regs(
                                p0, p1, p2, p3, p4, NULL, 5,
                                thr_planes + (thr_class[win.cls] * cw + j) * depth_t, depth_t);
                            ((uint32_t *)y)[yo + j] = (ge & tc_bmask(nc)) ^ out->flip[j];
                        } else {
                            /* the planes and zeros up to emit_word's 8 rows (not a full
                             * initializer: that would clear all MAX_PLANES words per word) */
                            uint32_t q[MAX_PLANES];
                            q[0] = p0, q[1] = p1, q[2] = p2, q[3] = p3, q[4] = p4;
                            q[5] = q[6] = q[7] = 0;
                            emit_word(out, q, 5, nc, taps, -1, 0, NULL,
                                      corr == NULL ? NULL : corr + 32 * j, y, yo, 32 * j);
                        }
                    }
                }
            }
        }
    }
}
#undef DW_TAP

void tc_bconv_dw_s32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                     const int32_t *pad_corr, int32_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S32, NULL, NULL);
    dw_run(p, x, w, pad_corr, NULL, NULL, &out, y);
}

void tc_bconv_dw_f32(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                     const int32_t *pad_corr, const float *mul, const float *bias, float *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_F32, mul, bias);
    dw_run(p, x, w, pad_corr, NULL, NULL, &out, y);
}

void tc_bconv_dw_s8(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                    const int32_t *pad_corr, const int32_t *mul, const int32_t *bias, int8_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_S8, mul, bias);
    dw_run(p, x, w, pad_corr, NULL, NULL, &out, y);
}

void tc_bconv_dw_b1(const tc_bconv_params_t *p, const uint32_t *x, const uint32_t *w,
                    const uint16_t *thr_class, const uint32_t *thr_planes,
                    const uint32_t *flip, uint32_t *y)
{
    const tc_bout_t out = tc_bconv_out(p, TC_BOUT_B1, NULL, flip);
    dw_run(p, x, w, NULL, thr_class, thr_planes, &out, y);
}

/* ---- tc_bfc_sliced_* ------------------------------------------------------------------------- */

#if defined(__ARM_ARCH_ISA_THUMB) && __ARM_ARCH_ISA_THUMB >= 2
/* Thumb-2: xs_sum_c in assembly (tc_bfc_xs_sum_t2, beside tc_bconv_hs_sum_t2, whose carry-save
 * macros and ripple it shares): each pair of input channels is one LDM of their weight words,
 * two SBFX / EOR for the masks and one adder (15 per pair), about 7.3 instructions per input
 * channel against 9.4 for GCC's code of the C.  Where the last block of 16 holds 10 channels
 * or fewer, only its pairs are read, in parts of 8, 4 and 2 (the C reads its first 8 alone
 * where it holds no more):
 * a 1x1 layer on 20 channels (the EEG blocks) takes 267 instructions per word of output
 * channels instead of 335. */
int32_t tc_bfc_xs_sum_t2(const uint32_t *w, const uint32_t *x, int32_t in_c, uint32_t *planes);
#define xs_sum tc_bfc_xs_sum_t2

/* tc_bfc_sliced_b1 whole in assembly (tc_bfc_sliced_b1_t2): per row and word of 32 output
 * channels the same sums, then M >= T on the planes (five instructions per plane of the
 * thresholds), the word masked to its channels, XOR flip and stored; the loops' state on the
 * stack.  The layer's constants, at the offsets the assembly reads: */
typedef struct {
    const uint32_t *w;          /* 0: weights, blocks * 16 words per word of output channels */
    const uint32_t *thr_planes; /* 4: depth_t planes per word */
    const uint32_t *flip;       /* 8 */
    int32_t in_c;               /* 12 */
    int32_t ocw;                /* 16: words of output channels */
    int32_t depth_t;            /* 20: bit_length(in_c + 1) */
    uint32_t last_mask;         /* 24: the channels of the last word */
    int32_t in_words;           /* 28: words per row of x */
} xs_b1_t;
void tc_bfc_sliced_b1_t2(const xs_b1_t *k, const uint32_t *x, uint32_t *y, int32_t rows);
#define BFC_SLICED_B1_ASM 1
#else
/* Adds the 16 words w[i] ^ (bit i of v ? ~0 : 0), i < 16 (the mismatch bits of 32 output
 * channels at 16 input channels), into the planes ones .. eights; returns the carry into the
 * sixteens.  The same Harley-Seal tree as hs16, two blocks of 8 and one adder at the eights. */
#define XW(i) (w[i] ^ (uint32_t)((int32_t)(v << (31 - (i))) >> 31))
static BCONV_INLINE uint32_t xs8(uint32_t *ones, uint32_t *twos, uint32_t *fours,
                                 const uint32_t *w, uint32_t v)
{
    uint32_t t1, t2, f1, f2, eights;
    csa(&t1, ones, *ones, XW(0), XW(1));
    csa(&t2, ones, *ones, XW(2), XW(3));
    csa(&f1, twos, *twos, t1, t2);
    csa(&t1, ones, *ones, XW(4), XW(5));
    csa(&t2, ones, *ones, XW(6), XW(7));
    csa(&f2, twos, *twos, t1, t2);
    csa(&eights, fours, *fours, f1, f2);
    return eights;
}
#undef XW

/* The bit-sliced mismatch counts of one word of 32 output channels over a row x of in_c
 * channels (weights w: 16 words per block of 16 input channels, zero past in_c; the padding
 * bits of x's last word ignored): planes as hs_sum leaves them, their number returned. */
static int32_t xs_sum_c(const uint32_t *w, const uint32_t *x, int32_t in_c, uint32_t *planes)
{
    const int32_t in_words = tc_bwords(in_c);
    const int32_t blocks = (in_c + 15) / 16;
    const uint32_t last = x[in_words - 1] & tc_bmask(in_c - 32 * (in_words - 1));
    uint32_t ones = 0, twos = 0, fours = 0, eights = 0, sixteens = 0;
    uint32_t *top = planes + 5;
    planes[5] = planes[6] = planes[7] = 0; /* emit_word's 8 rows */
    for (int32_t b = 0; b < blocks; ++b, w += 16) {
        const uint32_t v = (b / 2 == in_words - 1 ? last : x[b / 2]) >> (16 * (b & 1));
        const uint32_t e1 = xs8(&ones, &twos, &fours, w, v);
        const uint32_t e2 = in_c - 16 * b > 8 ? xs8(&ones, &twos, &fours, w + 8, v >> 8) : 0;
        uint32_t carry;
        csa(&carry, &eights, eights, e1, e2);
        top = ripple(planes + 5, half_add(&sixteens, carry), top);
    }
    return planes_out(planes, ones, twos, fours, eights, sixteens, top);
}
#define xs_sum xs_sum_c
#endif

static BCONV_INLINE void bfc_sliced_run(const tc_bfc_params_t *p, const uint32_t *x,
                                        const uint32_t *w, const uint32_t *thr_planes,
                                        const tc_bout_t *out, void *y)
{
    const int32_t in_c = p->in_c, out_c = p->out_c;
    const int32_t in_words = tc_bwords(in_c);
    const int32_t blocks = (in_c + 15) / 16;
    const int32_t ocw = tc_bwords(out_c);
    const int32_t y_step = out->kind == TC_BOUT_B1 ? ocw : out_c;
    const int32_t depth_t = bit_length(in_c + 1); /* _b1: planes of the thresholds */
    uint32_t q[MAX_PLANES];

    for (int32_t n = 0, yo = 0; n < p->batch; ++n, x += in_words, yo += y_step) {
        for (int32_t qw = 0; qw < ocw; ++qw) {
            const int32_t nc = out_c - 32 * qw < 32 ? out_c - 32 * qw : 32;
            const int32_t depth = xs_sum(w + qw * blocks * 16, x, in_c, q);
            if (out->kind == TC_BOUT_B1) {
                /* bit = (dot < thr) ^ flip with dot = in_c - 2 M, i.e. M >= T: no borrow out
                 * of M - T, done bit-sliced over the planes (T: the compiler's thr_planes) */
                const uint32_t ge = lanes_at_least_regs(q[0], q[1], q[2], q[3], q[4], q, depth,
                                                        thr_planes + qw * depth_t, depth_t);
                ((uint32_t *)y)[yo + qw] = (ge & tc_bmask(nc)) ^ out->flip[qw];
                continue;
            }
            emit_word(out, q, depth, nc, in_c, -1, 0, NULL, NULL, y, yo, 32 * qw);
        }
    }
}

void tc_bfc_sliced_s32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                       int32_t *y)
{
    const tc_bout_t out = tc_bfc_out(p, TC_BOUT_S32, NULL, NULL);
    bfc_sliced_run(p, x, w, NULL, &out, y);
}

void tc_bfc_sliced_f32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                       const float *mul, const float *bias, float *y)
{
    const tc_bout_t out = tc_bfc_out(p, TC_BOUT_F32, mul, bias);
    bfc_sliced_run(p, x, w, NULL, &out, y);
}

void tc_bfc_sliced_s8(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                      const int32_t *mul, const int32_t *bias, int8_t *y)
{
    const tc_bout_t out = tc_bfc_out(p, TC_BOUT_S8, mul, bias);
    bfc_sliced_run(p, x, w, NULL, &out, y);
}

void tc_bfc_sliced_b1(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                      const uint32_t *thr_planes, const uint32_t *flip, uint32_t *y)
{
#if defined(BFC_SLICED_B1_ASM)
    const xs_b1_t k = {w, thr_planes, flip, p->in_c, tc_bwords(p->out_c), bit_length(p->in_c + 1),
                       tc_bmask(p->out_c - 32 * (tc_bwords(p->out_c) - 1)), tc_bwords(p->in_c)};
    tc_bfc_sliced_b1_t2(&k, x, y, p->batch);
#else
    const tc_bout_t out = tc_bfc_out(p, TC_BOUT_B1, NULL, flip);
    bfc_sliced_run(p, x, w, thr_planes, &out, y);
#endif
}

/* ---- tc_bfc_list_* --------------------------------------------------------------------------- */

size_t tc_bfc_list_scratch_size(const tc_bfc_params_t *p)
{
    /* at most in_c / 2 minority bits, and a padding position to make the length even */
    return (size_t)((p->in_c / 2 + 2) & ~1) * sizeof(uint16_t);
}

/* Lists the positions of the bits of x (in_words words, the last masked by tail) equal to b,
 * padded to even length with position in_c (a zero weight word); returns the length. */
static int32_t list_row_bits(const uint32_t *x, int32_t in_words, uint32_t tail, uint32_t b,
                             int32_t in_c, uint16_t *list)
{
    int32_t n = 0;
    for (int32_t j = 0; j < in_words; ++j) {
        uint32_t v = (b ? x[j] : ~x[j]) & (j == in_words - 1 ? tail : ~0u);
        const int32_t top = 32 * j + 31; /* the position of bit 31 */
        while (v != 0) {
            const int32_t lz = tc_clz_u32(v);
            list[n++] = (uint16_t)(top - lz);
            v &= ~(0x80000000u >> lz);
        }
    }
    if (n & 1) {
        list[n++] = (uint16_t)in_c;
    }
    return n;
}

/* Per row: n1 of its in_c bits are 1; b = 1 when n1 <= in_c / 2, else 0; the positions of its b
 * bits (at most half) are listed once and, for each word of 32 output channels, their weight
 * words summed bit-sliced (hs_sum: the carry-save adders of tc_bconv_sparse_*) into S, the
 * channels' 1 weights at the listed positions.  Then, with Wv the channel's 1 weights,
 *   mismatches M = n1 + Wv - 2 S (b = 1)     M = n1 - Wv + 2 S (b = 0)
 *   dot = in_c - 2 M = in_c - 2 n1 + (b ? 2 : -2) * (2 S - Wv)
 * through emit_word for _s32/_f32/_s8; _b1 tests M >= T in the planes, as
 *   b = 1:  Z = 2 S + in_c - n1 < C1 = Wv - T + in_c + 1
 *   b = 0:  Z = 2 S + n1 >= C0 = T + Wv
 * with C0, C1 (0 <= C < 2^P, P the bit length of 2 in_c + 1) the compiler's planes. */
static BCONV_INLINE void bfc_list_run(const tc_bfc_params_t *p, const uint32_t *x,
                                      const uint32_t *w, const uint16_t *wv,
                                      const uint32_t *thr_planes, const tc_bout_t *out,
                                      void *y, uint16_t *list)
{
    const int32_t in_c = p->in_c, out_c = p->out_c;
    const int32_t in_words = tc_bwords(in_c);
    const int32_t ocw = tc_bwords(out_c);
    const int32_t y_step = out->kind == TC_BOUT_B1 ? ocw : out_c;
    const int32_t planes_c = bit_length(2 * in_c + 1); /* _b1 */
    const uint32_t tail = tc_bmask(in_c - 32 * (in_words - 1));
    uint32_t q[MAX_PLANES];

    for (int32_t n = 0, yo = 0; n < p->batch; ++n, x += in_words, yo += y_step) {
        int32_t n1 = 0;
        for (int32_t j = 0; j < in_words; ++j) {
            n1 += tc_popcount_u32(x[j] & (j == in_words - 1 ? tail : ~0u));
        }
        const uint32_t b = 2 * n1 <= in_c;
        const slice_t sl = {0, list_row_bits(x, in_words, tail, b, in_c, list), 0};
        for (int32_t qw = 0; qw < ocw; ++qw) {
            const int32_t nc = out_c - 32 * qw < 32 ? out_c - 32 * qw : 32;
            const int32_t depth = hs_sum(w + qw * (in_c + 1), list, &sl, 1, q);
            if (out->kind == TC_BOUT_B1) {
                const uint32_t z = b ? (uint32_t)(in_c - n1) : (uint32_t)n1;
                const uint32_t *c = thr_planes + ((int32_t)b * ocw + qw) * planes_c;
                const uint32_t bits = list_bits_out(q, depth, z, c, planes_c, b);
                ((uint32_t *)y)[yo + qw] = (bits & tc_bmask(nc)) ^ out->flip[qw];
                continue;
            }
            emit_word(out, q, depth, nc, in_c - 2 * n1, b ? 2 : -2, 1, wv + 32 * qw, NULL, y,
                      yo, 32 * qw);
        }
    }
}

void tc_bfc_list_s32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                     const uint16_t *wv, int32_t *y, void *scratch)
{
    const tc_bout_t out = tc_bfc_out(p, TC_BOUT_S32, NULL, NULL);
    bfc_list_run(p, x, w, wv, NULL, &out, y, (uint16_t *)scratch);
}

void tc_bfc_list_f32(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                     const uint16_t *wv, const float *mul, const float *bias, float *y,
                     void *scratch)
{
    const tc_bout_t out = tc_bfc_out(p, TC_BOUT_F32, mul, bias);
    bfc_list_run(p, x, w, wv, NULL, &out, y, (uint16_t *)scratch);
}

void tc_bfc_list_s8(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                    const uint16_t *wv, const int32_t *mul, const int32_t *bias, int8_t *y,
                    void *scratch)
{
    const tc_bout_t out = tc_bfc_out(p, TC_BOUT_S8, mul, bias);
    bfc_list_run(p, x, w, wv, NULL, &out, y, (uint16_t *)scratch);
}

void tc_bfc_list_b1(const tc_bfc_params_t *p, const uint32_t *x, const uint32_t *w,
                    const uint32_t *thr_planes, const uint32_t *flip, uint32_t *y, void *scratch)
{
    const tc_bout_t out = tc_bfc_out(p, TC_BOUT_B1, NULL, flip);
    bfc_list_run(p, x, w, NULL, thr_planes, &out, y, (uint16_t *)scratch);
}

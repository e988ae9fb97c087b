/*
 * Board support for the Arm MPS2 machines emulated by QEMU (mps2-an385/an386/an500).
 *
 * Console: Arm semihosting (newlib's librdimon, --specs=rdimon.specs). printf reaches the
 * host's stdout, fopen() reaches host files relative to QEMU's working directory, and the
 * value returned by main() becomes QEMU's exit code. QEMU must run with
 * -semihosting-config enable=on,target=native.
 *
 * Counter: SysTick, clocked from the 25 MHz system clock (TINYC_BOARD_CLOCK_HZ, from the
 * board's clock_hz). Under -icount shift=0 QEMU advances virtual time by exactly 1 ns per
 * guest instruction, so one SysTick tick is 1e9 / 25e6 = 40 instructions.
 * Measured (tests/test_boards.py, test_firmware_runs_on_qemu): loops of K = 4 and K = 7
 * instructions per iteration run N = 100000, 200000, 250000 and 500000 times read exactly
 * K * N or K * N + 40 instructions (the two board_counter() calls cost less than one tick), on
 * mps2-an385, mps2-an386 and mps2-an500 alike, and the same numbers on every run. A 40 ns tick
 * is therefore 40 instructions, whatever the instructions are.
 *
 * SysTick counts down from SYSTICK_RELOAD (0xFFFFFF) and interrupts at each wrap; the interrupt
 * counts wraps of SYSTICK_RELOAD + 1 ticks, which makes the 64-bit counter. A wrap comes every
 * 2^24 * 40 = 671 million instructions and its handler adds a few instructions (5 at -O2)
 * to the count (with a 4096-tick period, 8 000 000 instructions read 8 000 240 over 48 wraps).
 */
#include <stddef.h>
#include <stdint.h>

#include "board_platform.h"
#include "cortexm_regs.h"
#include "tinyc_board.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif

/* Virtual nanoseconds (= instructions under -icount shift=0) per SysTick tick. */
#define INSTRUCTIONS_PER_TICK (1000000000u / (TINYC_BOARD_CLOCK_HZ))
typedef char instructions_per_tick_is_whole[(1000000000u % (TINYC_BOARD_CLOCK_HZ)) == 0 ? 1 : -1];

/* SysTick period minus one, in ticks. Tests define a small value (-DTINYC_SYSTICK_RELOAD=4095)
 * to exercise the wrap handling in a short run; firmware keeps the 24-bit maximum. */
#ifndef TINYC_SYSTICK_RELOAD
#define TINYC_SYSTICK_RELOAD SYST_MAX_RELOAD
#endif
#define SYSTICK_RELOAD ((uint32_t)(TINYC_SYSTICK_RELOAD))

/* Semihosting operations (Arm "Semihosting for AArch32 and AArch64", version 2.0). */
#define SEMIHOSTING_SYS_WRITEC 0x03u
#define SEMIHOSTING_SYS_EXIT_EXTENDED 0x20u
#define SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT 0x20026u

extern void initialise_monitor_handles(void);

const char *const board_counter_unit = "instructions";

/* Number of SysTick wraps (SYSTICK_RELOAD + 1 ticks each) seen by SysTick_Handler. */
static volatile uint32_t systick_wraps;
static int board_ready;

static uint32_t semihosting_call(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_init(void)
{
    if (board_ready) {
        return;
    }
    board_ready = 1;
    initialise_monitor_handles();
    SYST_CSR = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
}

void SysTick_Handler(void)
{
    systick_wraps = systick_wraps + 1u;
}

uint64_t board_counter(void)
{
    uint32_t primask = cortexm_irq_save();
    uint32_t wraps = systick_wraps;
    uint32_t current = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        /* SysTick wrapped but its interrupt has not run yet (it is masked here): count the
         * wrap now and re-read, since `current` may predate the wrap. */
        wraps += 1u;
        current = SYST_CVR;
    }
    cortexm_irq_restore(primask);
    /* One period reads RELOAD, RELOAD-1, ..., 1, 0; the wrap (and its interrupt) happens on
     * the step from 1 to 0, so 0 is the first tick of the next period. (Right after board_init
     * the counter also reads 0 for one tick before its first reload, without a wrap.) */
    uint32_t into_period = current == 0u ? 0u : SYSTICK_RELOAD + 1u - current;
    uint64_t ticks = (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + into_period;
    return ticks * INSTRUCTIONS_PER_TICK;
}

void board_raw_write(const char *text, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        semihosting_call(SEMIHOSTING_SYS_WRITEC, &text[i]);
    }
}

void board_halt(int code)
{
    const uint32_t block[2] = {SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    for (;;) {
        semihosting_call(SEMIHOSTING_SYS_EXIT_EXTENDED, block);
    }
}

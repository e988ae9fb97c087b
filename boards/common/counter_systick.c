/*
 * board_counter() from SysTick, for emulated boards (counter: {kind: systick, unit:
 * instructions}). QEMU runs with -icount shift=0, where every guest instruction advances virtual
 * time by exactly 1 ns; SysTick, clocked from the core clock (TINYC_BOARD_CLOCK_HZ, the board's
 * clock_hz: the rate QEMU gives SysTick on that machine), ticks every 10^9 / clock_hz virtual ns.
 * The tick count converted to virtual ns is therefore a count of instructions.
 *
 * Resolution: one tick. On mps2 (25 MHz) that is exactly 40 instructions, and the count is
 * exact: tests/test_boards.py (test_firmware_runs_on_qemu) runs loops of K = 4 and K = 7
 * instructions N = 100000 ... 500000 times and reads K * N or K * N + 40, the same on every run.
 * On netduinoplus2 (168 MHz) a tick is 5.95 instructions and on mps3-an547 (32 MHz) 31.25; the
 * conversion rounds down.
 *
 * SysTick counts down from SYSTICK_RELOAD (0xFFFFFF) and interrupts at each wrap; the interrupt
 * counts wraps of SYSTICK_RELOAD + 1 ticks, which makes the 64-bit counter. A wrap comes every
 * 2^24 ticks (671 million instructions at 25 MHz) and its handler adds a few instructions (5 at
 * -O2) to the count (with a 4096-tick period, 8 000 000 instructions read 8 000 240 over 48
 * wraps).
 */
#include <stdint.h>

#include "board_platform.h"
#include "cortexm_regs.h"
#include "tinyc_board.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif

#define NS_PER_SECOND 1000000000u

/* SysTick period minus one, in ticks. Tests define a small value (-DTINYC_SYSTICK_RELOAD=4095)
 * to exercise the wrap handling in a short run; firmware keeps the 24-bit maximum. */
#ifndef TINYC_SYSTICK_RELOAD
#define TINYC_SYSTICK_RELOAD SYST_MAX_RELOAD
#endif
#define SYSTICK_RELOAD ((uint32_t)(TINYC_SYSTICK_RELOAD))

const char *const board_counter_unit = "instructions";
const uint32_t board_counter_hz = NS_PER_SECOND;

/* Number of SysTick wraps (SYSTICK_RELOAD + 1 ticks each) seen by SysTick_Handler. */
static volatile uint32_t systick_wraps;

void board_counter_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = SYSTICK_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
}

void SysTick_Handler(void)
{
    systick_wraps = systick_wraps + 1u;
}

/* Ticks to virtual ns: a multiplication when a tick is a whole number of ns (mps2), else exact
 * 64-bit arithmetic split so that nothing overflows. */
static uint64_t ticks_to_ns(uint64_t ticks)
{
#if (NS_PER_SECOND % (TINYC_BOARD_CLOCK_HZ)) == 0
    return ticks * (NS_PER_SECOND / (TINYC_BOARD_CLOCK_HZ));
#else
    const uint64_t hz = (TINYC_BOARD_CLOCK_HZ);
    return (ticks / hz) * NS_PER_SECOND + (ticks % hz) * NS_PER_SECOND / hz;
#endif
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
     * the step from 1 to 0, so 0 is the first tick of the next period. (Right after
     * board_counter_start the counter also reads 0 for one tick before its first reload,
     * without a wrap.) */
    uint32_t into_period = current == 0u ? 0u : SYSTICK_RELOAD + 1u - current;
    uint64_t ticks = (uint64_t)wraps * (SYSTICK_RELOAD + 1u) + into_period;
    return ticks_to_ns(ticks);
}

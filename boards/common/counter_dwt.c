/*
 * board_counter() from the DWT cycle counter, for real Cortex-M3/M4/M7/M33 silicon (counter:
 * {kind: dwt_cyccnt, unit: cycles}). CYCCNT counts core clock cycles in 32 bits and wraps
 * after 2^32 cycles (23.9 s at 180 MHz, 8.9 s at 480 MHz). board_counter() extends it to 64
 * bits by noticing each wrap; SysTick interrupts every 2^24 cycles only to call board_counter(),
 * so no wrap is missed even when the harness does not read the counter for a long time.
 *
 * QEMU does not emulate the DWT (CYCCNT reads 0): emulated boards use counter_systick.c.
 */
#include <stdint.h>

#include "board_platform.h"
#include "cortexm_regs.h"
#include "tinyc_board.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif

const char *const board_counter_unit = "cycles";
const uint32_t board_counter_hz = TINYC_BOARD_CLOCK_HZ;

/* 64-bit extension of DWT_CYCCNT: its high word and the last low word seen. */
static uint32_t cycles_high;
static uint32_t cycles_last;

void board_counter_start(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = DWT_LAR_UNLOCK_KEY; /* needed on Cortex-M7, ignored elsewhere */
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;

    SYST_CSR = 0;
    SYST_RVR = SYST_MAX_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
}

uint64_t board_counter(void)
{
    uint32_t primask = cortexm_irq_save();
    uint32_t now = DWT_CYCCNT;
    if (now < cycles_last) {
        cycles_high += 1u;
    }
    cycles_last = now;
    uint64_t cycles = ((uint64_t)cycles_high << 32) | now;
    cortexm_irq_restore(primask);
    return cycles;
}

/* Runs every 2^24 cycles, far more often than CYCCNT wraps (2^32), to keep the extension. */
void SysTick_Handler(void)
{
    (void)board_counter();
}

/*
 * Board support for the STM32F7 family, register level, no vendor SDK: nucleo-f746zg
 * (STM32F746ZG, reference manual RM0385). The registers and the clock set-up sequence are the
 * STM32F4's (boards/common/stm32_f4f7.h); the board API is boards/common/stm32_board.h.
 *
 * Clock (clock_setup: pll): 216 MHz from the PLL fed by the 16 MHz internal HSI oscillator.
 * Sequence of RM0385 section 5.3 (RCC registers) and section 4.1.4 (entering over-drive mode,
 * needed above 180 MHz):
 *   1. power interface clock on; regulator voltage scale 1 (PWR_CR1.VOS = 11);
 *   2. PLL: HSI / M=8 = 2 MHz, x N=216 = 432 MHz VCO, / P=2 = 216 MHz (Q=9 gives the unused
 *      48 MHz output); PLL on, wait PLLRDY;
 *   3. over-drive on (ODEN, wait ODRDY), then switch to it (ODSWEN, wait ODSWRDY);
 *   4. flash: 7 wait states for 210-216 MHz at 2.7-3.6 V (RM0385 section 3.3.2, table 7),
 *      prefetch and the ART accelerator on;
 *   5. AHB /1 = 216 MHz, APB1 /4 = 54 MHz (max 54), APB2 /2 = 108 MHz (max 108); SYSCLK =
 *      PLL, wait until SWS says so.
 * Then the Cortex-M7 L1 instruction and data caches are turned on (cortexm_enable_caches). A
 * step that never completes falls back to the HSI, is named on the console, and halts.
 *
 * Memory: the 64 KiB DTCM at 0x20000000 is the board's fast_ram (zero wait states, not
 * cached); SRAM1 + SRAM2 (256 KiB at 0x20010000) hold .data, .bss and the stack.
 * Console: USART3 on PD8 (TX) / PD9 (RX), AF7, wired to the ST-LINK virtual COM port of the
 * Nucleo-144 (UM1974 section 6.9). Kernel clock: APB1 (RCC_DCKCFGR2 reset value).
 */
#include <stddef.h>
#include <stdint.h>

#include "cortexm_regs.h"
#include "stm32_f4f7.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif
#if !defined(TINYC_BOARD_CLOCK_SETUP_PLL) || (TINYC_BOARD_CLOCK_HZ) != 216000000u
#error "stm32f7: the board file must say clock_setup: pll and clock_hz: 216000000"
#endif

#define APB1_HZ ((TINYC_BOARD_CLOCK_HZ) / 4u)
#define APB2_HZ ((TINYC_BOARD_CLOCK_HZ) / 2u)

/* Flash interface (RM0385 section 3.7). */
#define FLASH_ACR_ARTEN (1u << 9)
#define FLASH_LATENCY 7u

static const char *clock_setup(void)
{
    /* PLLM = 8 [5:0], PLLN = 216 [14:6], PLLP = /2 (00) [17:16], PLLSRC = HSI (0) [22],
     * PLLQ = 9 [27:24]. */
    const char *failed = stm32f4f7_pll_overdrive_setup(
        (8u << 0) | (216u << 6) | (0u << 16) | (9u << 24), FLASH_LATENCY, FLASH_ACR_ARTEN);
    if (failed == NULL) {
        cortexm_enable_caches();
    }
    return failed;
}

#include "stm32_board.h"

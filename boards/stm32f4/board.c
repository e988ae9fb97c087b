/*
 * Board support for STM32F4 parts, register level, no vendor SDK: nucleo-f446re (STM32F446RE,
 * reference manual RM0390) and qemu-f405 (STM32F405 as QEMU's netduinoplus2 emulates it,
 * RM0090; same RCC, GPIO and USART addresses). The registers and the clock set-up sequence are
 * the STM32F7's too (boards/common/stm32_f4f7.h); the board API is boards/common/stm32_board.h.
 *
 * Clock (TINYC_BOARD_CLOCK_SETUP_PLL, board file clock_setup: pll): 180 MHz from the PLL fed
 * by the 16 MHz internal HSI oscillator, which every board has (the ST-LINK's 8 MHz MCO would
 * need the right solder bridges). Sequence of RM0390 section 6.3 (RCC registers) and section
 * 5.1.4 (entering over-drive mode, needed above 168 MHz):
 *   1. power interface clock on; regulator voltage scale 1 (PWR_CR.VOS = 11, only writable
 *      while the PLL is off);
 *   2. PLL: HSI / M=8 = 2 MHz (the recommended VCO input), x N=180 = 360 MHz VCO, / P=2 =
 *      180 MHz (Q=7 and R=2 are unused outputs, kept in range); PLL on, wait PLLRDY;
 *   3. over-drive on (ODEN, wait ODRDY), then switch to it (ODSWEN, wait ODSWRDY);
 *   4. flash: 5 wait states for 150-180 MHz at 2.7-3.6 V (RM0390 section 3.4.1, table 5),
 *      prefetch and both ART caches on;
 *   5. AHB /1 = 180 MHz, APB1 /4 = 45 MHz (max 45), APB2 /2 = 90 MHz (max 90); SYSCLK = PLL,
 *      wait until SWS says so.
 * Each wait is bounded; if a step never completes, the board falls back to the HSI, prints
 * which step failed on the console and halts. Without clock set-up (QEMU, which does not model
 * the RCC) the core runs at the reset clock and TINYC_BOARD_CLOCK_HZ describes it.
 *
 * Console: the USART the board file names (uart: USART2 on PA2/PA3, AF7, on the Nucleo-64,
 * wired to the ST-LINK virtual COM port), polled, 8N1. Bytes go out unchanged.
 * Counter: counter_dwt.c on silicon, counter_systick.c under QEMU (the board file decides).
 */
#include <stddef.h>
#include <stdint.h>

#include "stm32_f4f7.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif

#define STM32_USART_V1 1 /* the F4 generation USART: SR/DR (RM0390 section 25.6) */

#if defined(TINYC_BOARD_CLOCK_SETUP_PLL)
#if !defined(TINYC_MCU_STM32F446RE)
#error "stm32f4: clock_setup pll is written for the STM32F446 only"
#endif
#if (TINYC_BOARD_CLOCK_HZ) != 180000000u
#error "stm32f4: the PLL set-up makes 180 MHz; set clock_hz: 180000000 in the board file"
#endif
#define APB1_HZ ((TINYC_BOARD_CLOCK_HZ) / 4u)
#define APB2_HZ ((TINYC_BOARD_CLOCK_HZ) / 2u)

/* Flash interface (RM0390 section 3.8). */
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)
#define FLASH_LATENCY 5u

static const char *clock_setup(void)
{
    /* PLLM = 8 [5:0], PLLN = 180 [14:6], PLLP = /2 (00) [17:16], PLLSRC = HSI (0) [22],
     * PLLQ = 7 [27:24], PLLR = 2 [30:28]. */
    return stm32f4f7_pll_overdrive_setup((8u << 0) | (180u << 6) | (0u << 16) | (7u << 24) |
                                             (2u << 28),
                                         FLASH_LATENCY, FLASH_ACR_ICEN | FLASH_ACR_DCEN);
}
#else
#define APB1_HZ (TINYC_BOARD_CLOCK_HZ)
#define APB2_HZ (TINYC_BOARD_CLOCK_HZ)

/* No clock set-up: the core keeps the reset clock. */
static const char *clock_setup(void)
{
    return NULL;
}
#endif

#include "stm32_board.h"

/*
 * Board support for the STM32U5 family (TrustZone disabled, the factory state; non-secure
 * register aliases), register level, no vendor SDK: nucleo-u575zi-q (STM32U575ZI, Cortex-M33,
 * reference manual RM0456).
 *
 * Clock (clock_setup: pll): 160 MHz from PLL1 fed by the 16 MHz internal HSI16 oscillator.
 * Sequence of RM0456 section 10.5.4 (dynamic voltage scaling: range 1 and the EPOD booster,
 * needed above 55 MHz), 11.8 (RCC registers) and 7.3.3 / table 54 (flash wait states):
 *   1. PWR clock on; HSI16 on, wait HSIRDY;
 *   2. PLL1 source = HSI16 with PLL1MBOOST = /1, so the EPOD booster gets 16 MHz (at most
 *      16 MHz allowed);
 *   3. voltage range 1 (PWR_VOSR.VOS = 11), wait VOSRDY; booster on (BOOSTEN), wait BOOSTRDY;
 *   4. flash: 4 wait states for 128-160 MHz in range 1, prefetch on;
 *   5. PLL1: HSI16 / M=1 = 16 MHz (input range 8-16 MHz, PLL1RGE = 11), x N=20 = 320 MHz VCO,
 *      / R=2 = 160 MHz; PLL1 on, wait PLL1RDY;
 *   6. AHB, APB1, APB2, APB3 /1 (reset values); SYSCLK = PLL1, wait SWS.
 * Then the instruction cache (ICACHE, RM0456 chapter 8) is enabled. A step that never
 * completes falls back to the reset clock (MSIS 4 MHz), is named on the console, and halts.
 *
 * Console: USART1 on PA9 (TX) / PA10 (RX), AF7, wired to the ST-LINK virtual COM port of the
 * Nucleo-144 MB1549 (UM2861 section 7.9). Kernel clock: PCLK2 (RCC_CCIPR1 reset value).
 * The board API is boards/common/stm32_board.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "cortexm_regs.h"
#include "stm32_common.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif
#if !defined(TINYC_BOARD_CLOCK_SETUP_PLL) || (TINYC_BOARD_CLOCK_HZ) != 160000000u
#error "stm32u5: the board file must say clock_setup: pll and clock_hz: 160000000"
#endif

/* Reset and clock control, non-secure alias (RM0456 section 11.8). */
#define RCC_BASE 0x46020C00u
#define RCC_CR CORTEXM_REG32(RCC_BASE + 0x000u)
#define RCC_CFGR1 CORTEXM_REG32(RCC_BASE + 0x01Cu)
#define RCC_PLL1CFGR CORTEXM_REG32(RCC_BASE + 0x028u)
#define RCC_PLL1DIVR CORTEXM_REG32(RCC_BASE + 0x034u)
#define RCC_AHB2ENR1 CORTEXM_REG32(RCC_BASE + 0x08Cu)
#define RCC_AHB3ENR CORTEXM_REG32(RCC_BASE + 0x094u)
#define RCC_APB1ENR1 CORTEXM_REG32(RCC_BASE + 0x09Cu)
#define RCC_APB2ENR CORTEXM_REG32(RCC_BASE + 0x0A4u)
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR1_SW_MASK (0x3u << 0)
#define RCC_CFGR1_SW_PLL1 (0x3u << 0)
#define RCC_CFGR1_SWS_MASK (0x3u << 2)
#define RCC_CFGR1_SWS_PLL1 (0x3u << 2)
#define RCC_PLL1CFGR_SRC_HSI16 (0x2u << 0)
#define RCC_PLL1CFGR_RGE_8_16MHZ (0x3u << 2)
#define RCC_PLL1CFGR_REN (1u << 18)
#define RCC_AHB3ENR_PWREN (1u << 2)

/* Power control, non-secure alias (RM0456 section 10.10). */
#define PWR_VOSR CORTEXM_REG32(0x46020800u + 0x0Cu)
#define PWR_VOSR_BOOSTRDY (1u << 14)
#define PWR_VOSR_VOSRDY (1u << 15)
#define PWR_VOSR_VOS_RANGE1 (0x3u << 16)
#define PWR_VOSR_BOOSTEN (1u << 18)

/* Flash interface, non-secure registers (RM0456 section 7.9). */
#define FLASH_ACR CORTEXM_REG32(0x40022000u)
#define FLASH_LATENCY 4u
#define FLASH_ACR_PRFTEN (1u << 8)

/* Instruction cache (RM0456 section 8.7). */
#define ICACHE_CR CORTEXM_REG32(0x40030400u)
#define ICACHE_CR_EN (1u << 0)

/* GPIO ports A, B, ... are 0x400 apart from 0x42020000; their clocks are AHB2ENR1 bits 0, 1. */
#define GPIO_PORT_BASE(port) (0x42020000u + 0x400u * (port))
#define GPIO_ENR RCC_AHB2ENR1

#define MSIS_HZ 4000000u
#define FALLBACK_CLOCK_HZ MSIS_HZ

/* The console USART (RM0456 section 2.3.2 memory map; 11.8.30/32 clock enables). */
#if defined(TINYC_UART_USART1)
#define UART_BASE 0x40013800u
#define UART_ENR RCC_APB2ENR
#define UART_EN (1u << 14)
#elif defined(TINYC_UART_USART2)
#define UART_BASE 0x40004400u
#define UART_ENR RCC_APB1ENR1
#define UART_EN (1u << 17)
#elif defined(TINYC_UART_USART3)
#define UART_BASE 0x40004800u
#define UART_ENR RCC_APB1ENR1
#define UART_EN (1u << 18)
#else
#error "stm32u5: uart.instance must be USART1, USART2 or USART3"
#endif
#define UART_CLOCK_HZ (TINYC_BOARD_CLOCK_HZ)

/* Returns NULL on success, else the name of the step that did not complete. */
static const char *clock_setup(void)
{
    RCC_AHB3ENR |= RCC_AHB3ENR_PWREN;
    (void)RCC_AHB3ENR;
    RCC_CR |= RCC_CR_HSION;
    if (!stm32_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, STM32_WAIT_LIMIT)) {
        return "HSI16";
    }
    /* PLL1SRC = HSI16 [1:0], PLL1RGE = 8-16 MHz [3:2], PLL1M = 1 (field 0) [11:8],
     * PLL1MBOOST = /1 (0) [15:12], PLL1REN [18]. */
    RCC_PLL1CFGR = RCC_PLL1CFGR_SRC_HSI16 | RCC_PLL1CFGR_RGE_8_16MHZ | (0u << 8) | (0u << 12) |
                   RCC_PLL1CFGR_REN;
    PWR_VOSR = (PWR_VOSR & ~(0x3u << 16)) | PWR_VOSR_VOS_RANGE1;
    if (!stm32_wait(&PWR_VOSR, PWR_VOSR_VOSRDY, PWR_VOSR_VOSRDY, STM32_WAIT_LIMIT)) {
        return "voltage range 1";
    }
    PWR_VOSR |= PWR_VOSR_BOOSTEN;
    if (!stm32_wait(&PWR_VOSR, PWR_VOSR_BOOSTRDY, PWR_VOSR_BOOSTRDY, STM32_WAIT_LIMIT)) {
        return "EPOD booster";
    }
    FLASH_ACR = FLASH_LATENCY | FLASH_ACR_PRFTEN;
    if (!stm32_wait(&FLASH_ACR, 0xFu, FLASH_LATENCY, STM32_WAIT_LIMIT)) {
        return "flash wait states";
    }
    /* Each field holds its divider minus one: N = 20, P = 2, Q = 2, R = 2. */
    RCC_PLL1DIVR = ((20u - 1u) << 0) | ((2u - 1u) << 9) | ((2u - 1u) << 16) | ((2u - 1u) << 24);
    RCC_CR |= RCC_CR_PLL1ON;
    if (!stm32_wait(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY, STM32_WAIT_LIMIT)) {
        return "PLL1 lock";
    }
    RCC_CFGR1 = (RCC_CFGR1 & ~RCC_CFGR1_SW_MASK) | RCC_CFGR1_SW_PLL1;
    if (!stm32_wait(&RCC_CFGR1, RCC_CFGR1_SWS_MASK, RCC_CFGR1_SWS_PLL1, STM32_WAIT_LIMIT)) {
        return "switch to PLL1";
    }
    ICACHE_CR |= ICACHE_CR_EN;
    return NULL;
}

/* After a failed set-up: SYSCLK back to the MSIS (the buses are still /1). */
static void clock_fallback(void)
{
    RCC_CFGR1 &= ~RCC_CFGR1_SW_MASK;
}

#include "stm32_board.h"

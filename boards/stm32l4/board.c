/*
 * Board support for the STM32L4 and STM32L4+ families, register level, no vendor SDK:
 * disco-l475vg-iot01a (STM32L475VG, reference manual RM0351) and nucleo-l4r5zi (STM32L4R5ZI,
 * RM0432; the MLPerf Tiny reference board).
 *
 * Clock (clock_setup: pll), from the 16 MHz internal HSI16 oscillator through the main PLL,
 * SYSCLK = PLLR output; all bus prescalers /1:
 *   STM32L475 (RM0351 section 6.4, RCC registers; 5.1.7 dynamic voltage scaling; 3.3.3 table
 *   11, wait states): 80 MHz in range 1 (the reset range): flash 4 wait states, then PLL: HSI16
 *   / M=1 = 16 MHz, x N=10 = 160 MHz VCO, / R=2 = 80 MHz.
 *   STM32L4R5 (RM0432 section 6.4; 5.1.8 range 1 boost mode; 3.3.3 table 12): 120 MHz needs
 *   range 1 boost mode, entered as RM0432 section 6.2.9 says: AHB prescaler /2 first, R1MODE =
 *   0, flash 5 wait states, PLL: HSI16 / M=1 x N=15 = 240 MHz VCO / R=2 = 120 MHz, switch,
 *   wait at least 1 us, then AHB /1.
 * A step that never completes falls back to the reset clock (MSI 4 MHz), is named on the
 * console, and halts.
 *
 * Console (the ST-LINK virtual COM port): LPUART1 on PG7 (TX) / PG8 (RX), AF8, on the
 * Nucleo-L4R5ZI (UM2179 section 6.9; port G is powered from VDDIO2, so PWR_CR2.IOSV is set
 * first); USART1 on PB6 (TX) / PB7 (RX), AF7, on the B-L475E-IOT01A (UM2153 section 7.13).
 * Kernel clock: PCLK (RCC_CCIPR reset value). The board API is boards/common/stm32_board.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "cortexm_regs.h"
#include "stm32_common.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif
#if !defined(TINYC_BOARD_CLOCK_SETUP_PLL)
#error "stm32l4: the board file must say clock_setup: pll"
#endif

#if defined(TINYC_MCU_STM32L4R5ZI)
#define L4_PLUS 1
#define PLL_N 15u
#define FLASH_LATENCY 5u
#if (TINYC_BOARD_CLOCK_HZ) != 120000000u
#error "stm32l4: the STM32L4R5 set-up makes 120 MHz; set clock_hz: 120000000"
#endif
#elif defined(TINYC_MCU_STM32L475VG)
#define L4_PLUS 0
#define PLL_N 10u
#define FLASH_LATENCY 4u
#if (TINYC_BOARD_CLOCK_HZ) != 80000000u
#error "stm32l4: the STM32L475 set-up makes 80 MHz; set clock_hz: 80000000"
#endif
#else
#error "stm32l4: mcu must be stm32l4r5zi or stm32l475vg"
#endif

/* Reset and clock control (RM0351 / RM0432 section 6.4). */
#define RCC_BASE 0x40021000u
#define RCC_CR CORTEXM_REG32(RCC_BASE + 0x00u)
#define RCC_CFGR CORTEXM_REG32(RCC_BASE + 0x08u)
#define RCC_PLLCFGR CORTEXM_REG32(RCC_BASE + 0x0Cu)
#define RCC_AHB2ENR CORTEXM_REG32(RCC_BASE + 0x4Cu)
#define RCC_APB1ENR1 CORTEXM_REG32(RCC_BASE + 0x58u)
#define RCC_APB1ENR2 CORTEXM_REG32(RCC_BASE + 0x5Cu)
#define RCC_APB2ENR CORTEXM_REG32(RCC_BASE + 0x60u)
#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_MASK (0x3u << 0)
#define RCC_CFGR_SW_PLL (0x3u << 0)
#define RCC_CFGR_SWS_MASK (0x3u << 2)
#define RCC_CFGR_SWS_PLL (0x3u << 2)
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_HPRE_DIV2 (0x8u << 4)
#define RCC_PLLCFGR_SRC_HSI16 (0x2u << 0)
#define RCC_PLLCFGR_PLLREN (1u << 24)
#define RCC_APB1ENR1_PWREN (1u << 28)

/* Power control (RM0351 section 5.4, RM0432 section 5.4). */
#define PWR_BASE 0x40007000u
#define PWR_CR2 CORTEXM_REG32(PWR_BASE + 0x04u)
#define PWR_CR5 CORTEXM_REG32(PWR_BASE + 0x80u) /* STM32L4+ only */
#define PWR_CR2_IOSV (1u << 9)
#define PWR_CR5_R1MODE (1u << 8)

/* Flash interface (RM0351 / RM0432 section 3.7). */
#define FLASH_ACR CORTEXM_REG32(0x40022000u)
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIO ports A, B, ... are 0x400 apart from 0x48000000; their clocks are AHB2ENR bits 0, 1. */
#define GPIO_PORT_BASE(port) (0x48000000u + 0x400u * (port))
#define GPIO_ENR RCC_AHB2ENR
#define GPIO_PORT_G 6u

#define MSI_HZ 4000000u
#define FALLBACK_CLOCK_HZ MSI_HZ

/* The console UART (RM0432 section 2.2.2 memory map; 6.4.19-21 clock enables). */
#if defined(TINYC_UART_LPUART1)
#define UART_BASE 0x40008000u
#define UART_ENR RCC_APB1ENR2
#define UART_EN (1u << 0)
#define UART_BRR(clock_hz) STM32_LPUART_BRR(clock_hz, TINYC_UART_BAUD)
#elif defined(TINYC_UART_USART1)
#define UART_BASE 0x40013800u
#define UART_ENR RCC_APB2ENR
#define UART_EN (1u << 14)
#elif defined(TINYC_UART_USART2)
#define UART_BASE 0x40004400u
#define UART_ENR RCC_APB1ENR1
#define UART_EN (1u << 17)
#else
#error "stm32l4: uart.instance must be LPUART1, USART1 or USART2"
#endif
#define UART_CLOCK_HZ (TINYC_BOARD_CLOCK_HZ)

/* Before the console's clocks: the power interface clock on and, if a console pin is on port
 * G, VDDIO2 declared valid (port G runs from it). */
static void console_power_on(void)
{
    RCC_APB1ENR1 |= RCC_APB1ENR1_PWREN;
    (void)RCC_APB1ENR1;
    if ((TINYC_UART_TX_PORT) == GPIO_PORT_G || (TINYC_UART_RX_PORT) == GPIO_PORT_G) {
        PWR_CR2 |= PWR_CR2_IOSV;
    }
}
#define CONSOLE_POWER_ON console_power_on

/* Returns NULL on success, else the name of the step that did not complete. */
static const char *clock_setup(void)
{
    RCC_APB1ENR1 |= RCC_APB1ENR1_PWREN;
    (void)RCC_APB1ENR1;
    RCC_CR |= RCC_CR_HSION;
    if (!stm32_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, STM32_WAIT_LIMIT)) {
        return "HSI16";
    }
    if (L4_PLUS) {
        /* Boost mode: AHB /2 while switching to the higher clock (RM0432 section 6.2.9). */
        RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_HPRE_MASK) | RCC_CFGR_HPRE_DIV2;
        PWR_CR5 &= ~PWR_CR5_R1MODE;
    }
    FLASH_ACR = FLASH_LATENCY | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    if (!stm32_wait(&FLASH_ACR, 0xFu, FLASH_LATENCY, STM32_WAIT_LIMIT)) {
        return "flash wait states";
    }
    /* PLLSRC = HSI16 [1:0], PLLM = 1 (field 0) [6:4] or [7:4] on L4+, PLLN [14:8],
     * PLLR = /2 (00) [26:25], PLLREN [24]. */
    RCC_PLLCFGR = RCC_PLLCFGR_SRC_HSI16 | (0u << 4) | (PLL_N << 8) | (0u << 25) |
                  RCC_PLLCFGR_PLLREN;
    RCC_CR |= RCC_CR_PLLON;
    if (!stm32_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY, STM32_WAIT_LIMIT)) {
        return "PLL lock";
    }
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    if (!stm32_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL, STM32_WAIT_LIMIT)) {
        return "switch to PLL";
    }
    if (L4_PLUS) {
        /* At least 1 us at HCLK = 60 MHz before AHB /1: 120 loop iterations of >= 1 cycle. */
        for (volatile uint32_t i = 0; i < 120u; ++i) {
        }
        RCC_CFGR &= ~RCC_CFGR_HPRE_MASK;
    }
    return NULL;
}

/* After a failed set-up: SYSCLK back to the MSI, all buses /1. */
static void clock_fallback(void)
{
    RCC_CFGR = 0;
}

#include "stm32_board.h"

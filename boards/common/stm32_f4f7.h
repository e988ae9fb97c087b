/*
 * What the STM32F4 and STM32F7 share, register level (RM0390 F446, RM0090 F405, RM0385 F746):
 * the reset and clock control, power and flash addresses and bits the board support uses, the
 * GPIO and console USART map, and the clock set-up sequence, PLL from the 16 MHz HSI with
 * over-drive, that both follow (RM0390 sections 6.3 and 5.1.4, RM0385 sections 5.3 and 4.1.4).
 * The F7 keeps the F4 layout for all of these; RM0385 only renames PWR_CR/PWR_CSR to
 * PWR_CR1/PWR_CSR1 and FLASH_ACR bit 9 (ICEN) to ARTEN.
 *
 * Included by boards/stm32f4/board.c and boards/stm32f7/board.c, which define APB1_HZ and
 * APB2_HZ (the bus clocks once clock_setup() has run) and then include stm32_board.h.
 * Internal to boards/.
 */
#ifndef TINYC_STM32_F4F7_H
#define TINYC_STM32_F4F7_H

#include <stddef.h>
#include <stdint.h>

#include "cortexm_regs.h"
#include "stm32_common.h"

/* Reset and clock control (RM0390 section 6.3, RM0385 section 5.3). */
#define RCC_BASE 0x40023800u
#define RCC_CR CORTEXM_REG32(RCC_BASE + 0x00u)
#define RCC_PLLCFGR CORTEXM_REG32(RCC_BASE + 0x04u)
#define RCC_CFGR CORTEXM_REG32(RCC_BASE + 0x08u)
#define RCC_AHB1ENR CORTEXM_REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR CORTEXM_REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR CORTEXM_REG32(RCC_BASE + 0x44u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_PLL (0x2u << 0)
#define RCC_CFGR_SWS_MASK (0x3u << 2)
#define RCC_CFGR_SWS_PLL (0x2u << 2)
#define RCC_CFGR_PPRE1_DIV4 (0x5u << 10)
#define RCC_CFGR_PPRE2_DIV2 (0x4u << 13)
#define RCC_APB1ENR_PWREN (1u << 28)

/* Power controller (RM0390 section 5.4, RM0385 section 4.4). */
#define PWR_BASE 0x40007000u
#define PWR_CR CORTEXM_REG32(PWR_BASE + 0x00u)
#define PWR_CSR CORTEXM_REG32(PWR_BASE + 0x04u)
#define PWR_CR_VOS_SCALE1 (0x3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)

/* Flash interface (RM0390 section 3.8, RM0385 section 3.7); the wait states are bits [3:0]. */
#define FLASH_ACR CORTEXM_REG32(0x40023C00u)
#define FLASH_ACR_PRFTEN (1u << 8)

/* GPIO ports A, B, ... are 0x400 apart from 0x40020000; their clocks are AHB1ENR bits 0, 1. */
#define GPIO_PORT_BASE(port) (0x40020000u + 0x400u * (port))
#define GPIO_ENR RCC_AHB1ENR

#define HSI_HZ 16000000u
#define FALLBACK_CLOCK_HZ HSI_HZ

/* The console USART (RM0390 / RM0385 section 2.2.2, memory map; RM0390 6.3.13/14 and RM0385
 * 5.3.13/14, clock enables). */
#if defined(TINYC_UART_USART1)
#define UART_BASE 0x40011000u
#define UART_ENR RCC_APB2ENR
#define UART_EN (1u << 4)
#define UART_CLOCK_HZ APB2_HZ
#elif defined(TINYC_UART_USART2)
#define UART_BASE 0x40004400u
#define UART_ENR RCC_APB1ENR
#define UART_EN (1u << 17)
#define UART_CLOCK_HZ APB1_HZ
#elif defined(TINYC_UART_USART3)
#define UART_BASE 0x40004800u
#define UART_ENR RCC_APB1ENR
#define UART_EN (1u << 18)
#define UART_CLOCK_HZ APB1_HZ
#else
#error "stm32f4/stm32f7: uart.instance must be USART1, USART2 or USART3"
#endif

/*
 * Raises SYSCLK to the main PLL fed by the HSI, in the order RM0390 section 6.3 / 5.1.4 and
 * RM0385 section 5.3 / 4.1.4 give:
 *   1. HSI on; power interface clock on; regulator voltage scale 1 (VOS = 11, only writable
 *      while the PLL is off);
 *   2. RCC_PLLCFGR = pllcfgr (source HSI); PLL on, wait PLLRDY;
 *   3. over-drive on (ODEN, wait ODRDY), then switch to it (ODSWEN, wait ODSWRDY);
 *   4. FLASH_ACR = flash_latency wait states | prefetch | flash_accelerators, wait until the
 *      latency reads back;
 *   5. AHB /1, APB1 /4, APB2 /2; SYSCLK = PLL, wait until SWS says so.
 * Returns NULL on success, else the name of the step that did not complete.
 */
static inline const char *stm32f4f7_pll_overdrive_setup(uint32_t pllcfgr, uint32_t flash_latency,
                                                       uint32_t flash_accelerators)
{
    RCC_CR |= RCC_CR_HSION;
    if (!stm32_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, STM32_WAIT_LIMIT)) {
        return "HSI";
    }
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    PWR_CR |= PWR_CR_VOS_SCALE1;

    RCC_PLLCFGR = pllcfgr;
    RCC_CR |= RCC_CR_PLLON;
    if (!stm32_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY, STM32_WAIT_LIMIT)) {
        return "PLL lock";
    }
    PWR_CR |= PWR_CR_ODEN;
    if (!stm32_wait(&PWR_CSR, PWR_CSR_ODRDY, PWR_CSR_ODRDY, STM32_WAIT_LIMIT)) {
        return "over-drive";
    }
    PWR_CR |= PWR_CR_ODSWEN;
    if (!stm32_wait(&PWR_CSR, PWR_CSR_ODSWRDY, PWR_CSR_ODSWRDY, STM32_WAIT_LIMIT)) {
        return "over-drive switch";
    }
    FLASH_ACR = flash_latency | FLASH_ACR_PRFTEN | flash_accelerators;
    if (!stm32_wait(&FLASH_ACR, 0xFu, flash_latency, STM32_WAIT_LIMIT)) {
        return "flash wait states";
    }
    RCC_CFGR = RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR |= RCC_CFGR_SW_PLL;
    if (!stm32_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL, STM32_WAIT_LIMIT)) {
        return "switch to PLL";
    }
    return NULL;
}

/* After a failed set-up: SYSCLK back to the HSI, all buses /1. */
static void clock_fallback(void)
{
    RCC_CFGR = 0;
}

#endif /* TINYC_STM32_F4F7_H */

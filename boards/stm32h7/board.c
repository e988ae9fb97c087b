/*
 * Board support for the STM32H7 family (single core, LDO supply), register level, no vendor
 * SDK: nucleo-h743zi2 (STM32H743ZI, reference manual RM0433).
 *
 * Clock (clock_setup: pll): 400 MHz from PLL1 fed by the 64 MHz internal HSI oscillator, at
 * voltage scale 1 (400 MHz is the VOS1 maximum on both silicon revisions; 480 MHz would need
 * revision V and VOS0). Sequence of RM0433 section 6.8 (power supply configuration), 6.6.2
 * (voltage scaling), 8.7 (RCC registers) and 4.3.8 / table 17 (flash wait states):
 *   1. supply: LDO on, bypass off, configuration locked (PWR_CR3 = LDOEN; the register is
 *      write-once after reset), wait ACTVOSRDY;
 *   2. voltage scale 1 (PWR_D3CR.VOS = 11), wait VOSRDY;
 *   3. flash: 4 wait states, WRHIGHFREQ = 10 (covers the 200 MHz AXI clock at VOS1 with
 *      margin);
 *   4. PLL1: HSI / DIVM1=8 = 8 MHz (input range 8-16 MHz, PLL1RGE = 11), wide VCO x DIVN1=100 =
 *      800 MHz, / DIVP1=2 = 400 MHz (Q = 100 MHz and R = 400 MHz outputs enabled, unused);
 *      PLL1 on, wait PLL1RDY;
 *   5. bus dividers: D1CPRE /1 (CPU 400 MHz), HPRE /2 (AXI/AHB 200 MHz, max 200), D1PPRE,
 *      D2PPRE1, D2PPRE2, D3PPRE /2 (APB 100 MHz, max 100); SYSCLK = PLL1, wait SWS.
 * Then the Cortex-M7 L1 caches are turned on. A step that never completes falls back to the
 * HSI, is named on the console, and halts.
 *
 * Memory: the 128 KiB DTCM at 0x20000000 is the board's fast_ram; the 512 KiB AXI SRAM at
 * 0x24000000 holds .data, .bss and the stack (D2/D3 SRAMs are not used).
 * Console: USART3 on PD8 (TX) / PD9 (RX), AF7, wired to the ST-LINK virtual COM port of the
 * Nucleo-144 MB1364 (UM2407 section 6.9). Kernel clock: APB1 (RCC_D2CCIP2R reset value).
 * The board API is boards/common/stm32_board.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "cortexm_regs.h"
#include "stm32_common.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif
#if !defined(TINYC_BOARD_CLOCK_SETUP_PLL) || (TINYC_BOARD_CLOCK_HZ) != 400000000u
#error "stm32h7: the board file must say clock_setup: pll and clock_hz: 400000000"
#endif

/* Reset and clock control (RM0433 section 8.7). */
#define RCC_BASE 0x58024400u
#define RCC_CR CORTEXM_REG32(RCC_BASE + 0x000u)
#define RCC_CFGR CORTEXM_REG32(RCC_BASE + 0x010u)
#define RCC_D1CFGR CORTEXM_REG32(RCC_BASE + 0x018u)
#define RCC_D2CFGR CORTEXM_REG32(RCC_BASE + 0x01Cu)
#define RCC_D3CFGR CORTEXM_REG32(RCC_BASE + 0x020u)
#define RCC_PLLCKSELR CORTEXM_REG32(RCC_BASE + 0x028u)
#define RCC_PLLCFGR CORTEXM_REG32(RCC_BASE + 0x02Cu)
#define RCC_PLL1DIVR CORTEXM_REG32(RCC_BASE + 0x030u)
#define RCC_AHB4ENR CORTEXM_REG32(RCC_BASE + 0x0E0u)
#define RCC_APB1LENR CORTEXM_REG32(RCC_BASE + 0x0E8u)
#define RCC_APB2ENR CORTEXM_REG32(RCC_BASE + 0x0F0u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR_SW_MASK (0x7u << 0)
#define RCC_CFGR_SW_PLL1 (0x3u << 0)
#define RCC_CFGR_SWS_MASK (0x7u << 3)
#define RCC_CFGR_SWS_PLL1 (0x3u << 3)
#define RCC_DIV2 0x4u /* the 3-bit APB prescaler code for /2 */
#define RCC_HPRE_DIV2 0x8u /* the 4-bit AHB prescaler code for /2 */
#define RCC_PLLCFGR_PLL1RGE_8_16MHZ (0x3u << 2)
#define RCC_PLLCFGR_DIVP1EN (1u << 16)
#define RCC_PLLCFGR_DIVQ1EN (1u << 17)
#define RCC_PLLCFGR_DIVR1EN (1u << 18)

/* Power control (RM0433 section 6.8). */
#define PWR_BASE 0x58024800u
#define PWR_CSR1 CORTEXM_REG32(PWR_BASE + 0x04u)
#define PWR_CR3 CORTEXM_REG32(PWR_BASE + 0x0Cu)
#define PWR_D3CR CORTEXM_REG32(PWR_BASE + 0x18u)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_D3CR_VOS_SCALE1 (0x3u << 14)
#define PWR_D3CR_VOSRDY (1u << 13)

/* Flash interface (RM0433 section 4.9). */
#define FLASH_ACR CORTEXM_REG32(0x52002000u)
#define FLASH_LATENCY 4u
#define FLASH_ACR_WRHIGHFREQ_2 (0x2u << 4)

/* GPIO ports A, B, ... are 0x400 apart from 0x58020000; their clocks are AHB4ENR bits 0, 1. */
#define GPIO_PORT_BASE(port) (0x58020000u + 0x400u * (port))
#define GPIO_ENR RCC_AHB4ENR

#define HSI_HZ 64000000u
#define FALLBACK_CLOCK_HZ HSI_HZ
#define APB_HZ ((TINYC_BOARD_CLOCK_HZ) / 4u) /* CPU / HPRE 2 / PPRE 2 */

/* The console USART (RM0433 section 2.3.2 memory map; 8.7.40/42 clock enables). */
#if defined(TINYC_UART_USART1)
#define UART_BASE 0x40011000u
#define UART_ENR RCC_APB2ENR
#define UART_EN (1u << 4)
#elif defined(TINYC_UART_USART2)
#define UART_BASE 0x40004400u
#define UART_ENR RCC_APB1LENR
#define UART_EN (1u << 17)
#elif defined(TINYC_UART_USART3)
#define UART_BASE 0x40004800u
#define UART_ENR RCC_APB1LENR
#define UART_EN (1u << 18)
#else
#error "stm32h7: uart.instance must be USART1, USART2 or USART3"
#endif
#define UART_CLOCK_HZ APB_HZ

/* Returns NULL on success, else the name of the step that did not complete. */
static const char *clock_setup(void)
{
    PWR_CR3 = PWR_CR3_LDOEN;
    if (!stm32_wait(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY, STM32_WAIT_LIMIT)) {
        return "LDO supply";
    }
    PWR_D3CR = (PWR_D3CR & ~(0x3u << 14)) | PWR_D3CR_VOS_SCALE1;
    if (!stm32_wait(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY, STM32_WAIT_LIMIT)) {
        return "voltage scale 1";
    }
    FLASH_ACR = FLASH_LATENCY | FLASH_ACR_WRHIGHFREQ_2;
    if (!stm32_wait(&FLASH_ACR, 0xFu, FLASH_LATENCY, STM32_WAIT_LIMIT)) {
        return "flash wait states";
    }
    RCC_CR |= RCC_CR_HSION;
    if (!stm32_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, STM32_WAIT_LIMIT)) {
        return "HSI";
    }
    /* PLLSRC = HSI (00) [1:0], DIVM1 = 8 [9:4]; DIVM2/DIVM3 keep their reset value 32. */
    RCC_PLLCKSELR = (0u << 0) | (8u << 4) | (32u << 12) | (32u << 20);
    RCC_PLLCFGR = RCC_PLLCFGR_PLL1RGE_8_16MHZ | RCC_PLLCFGR_DIVP1EN | RCC_PLLCFGR_DIVQ1EN |
                  RCC_PLLCFGR_DIVR1EN; /* integer mode, wide VCO (VCOSEL = 0) */
    /* Each field holds its divider minus one: N = 100, P = 2, Q = 8, R = 2. */
    RCC_PLL1DIVR = ((100u - 1u) << 0) | ((2u - 1u) << 9) | ((8u - 1u) << 16) | ((2u - 1u) << 24);
    RCC_CR |= RCC_CR_PLL1ON;
    if (!stm32_wait(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY, STM32_WAIT_LIMIT)) {
        return "PLL1 lock";
    }
    RCC_D1CFGR = (0u << 8) | (RCC_DIV2 << 4) | RCC_HPRE_DIV2; /* D1CPRE, D1PPRE, HPRE */
    RCC_D2CFGR = (RCC_DIV2 << 8) | (RCC_DIV2 << 4);           /* D2PPRE2, D2PPRE1 */
    RCC_D3CFGR = (RCC_DIV2 << 4);                              /* D3PPRE */
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL1;
    if (!stm32_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL1, STM32_WAIT_LIMIT)) {
        return "switch to PLL1";
    }
    cortexm_enable_caches();
    return NULL;
}

/* After a failed set-up: SYSCLK back to the HSI, all buses /1. */
static void clock_fallback(void)
{
    RCC_CFGR &= ~RCC_CFGR_SW_MASK;
    RCC_D1CFGR = 0;
    RCC_D2CFGR = 0;
    RCC_D3CFGR = 0;
}

#include "stm32_board.h"

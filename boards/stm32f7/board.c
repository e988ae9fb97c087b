/*
 * Board support for the STM32F7 family, register level, no vendor SDK: nucleo-f746zg
 * (STM32F746ZG, reference manual RM0385).
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

#include "board_platform.h"
#include "cortexm_regs.h"
#include "stm32_common.h"
#include "tinyc_board.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif
#if !defined(TINYC_BOARD_CLOCK_SETUP_PLL) || (TINYC_BOARD_CLOCK_HZ) != 216000000u
#error "stm32f7: the board file must say clock_setup: pll and clock_hz: 216000000"
#endif

/* Reset and clock control (RM0385 section 5.3). */
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

/* Power controller (RM0385 section 4.4). */
#define PWR_BASE 0x40007000u
#define PWR_CR1 CORTEXM_REG32(PWR_BASE + 0x00u)
#define PWR_CSR1 CORTEXM_REG32(PWR_BASE + 0x04u)
#define PWR_CR1_VOS_SCALE1 (0x3u << 14)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)

/* Flash interface (RM0385 section 3.7). */
#define FLASH_ACR CORTEXM_REG32(0x40023C00u)
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ARTEN (1u << 9)
#define FLASH_LATENCY 7u

/* GPIO ports A, B, ... are 0x400 apart from 0x40020000; their clocks are AHB1ENR bits 0, 1. */
#define GPIO_PORT_BASE(port) (0x40020000u + 0x400u * (port))

#define HSI_HZ 16000000u
#define APB1_HZ ((TINYC_BOARD_CLOCK_HZ) / 4u)
#define APB2_HZ ((TINYC_BOARD_CLOCK_HZ) / 2u)
#define WAIT_LIMIT 1000000u

/* The console USART (RM0385 section 2.2.2 memory map; 5.3.13/14 clock enables). */
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
#error "stm32f7: uart.instance must be USART1, USART2 or USART3"
#endif

static int board_ready;

static void console_init(uint32_t uart_clock_hz)
{
    RCC_AHB1ENR |= (1u << (TINYC_UART_TX_PORT)) | (1u << (TINYC_UART_RX_PORT));
    UART_ENR |= UART_EN;
    (void)UART_ENR; /* read back: the clock must be running before the registers are used */
    stm32_usartv2_console_start(UART_BASE, GPIO_PORT_BASE(TINYC_UART_TX_PORT), TINYC_UART_TX_PIN,
                                GPIO_PORT_BASE(TINYC_UART_RX_PORT), TINYC_UART_RX_PIN,
                                TINYC_UART_AF, STM32_USART_BRR(uart_clock_hz, TINYC_UART_BAUD));
}

/* Returns NULL on success, else the name of the step that did not complete. */
static const char *clock_setup(void)
{
    RCC_CR |= RCC_CR_HSION;
    if (!stm32_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, WAIT_LIMIT)) {
        return "HSI";
    }
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    PWR_CR1 |= PWR_CR1_VOS_SCALE1;

    /* PLLM = 8 [5:0], PLLN = 216 [14:6], PLLP = /2 (00) [17:16], PLLSRC = HSI (0) [22],
     * PLLQ = 9 [27:24]. */
    RCC_PLLCFGR = (8u << 0) | (216u << 6) | (0u << 16) | (9u << 24);
    RCC_CR |= RCC_CR_PLLON;
    if (!stm32_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY, WAIT_LIMIT)) {
        return "PLL lock";
    }
    PWR_CR1 |= PWR_CR1_ODEN;
    if (!stm32_wait(&PWR_CSR1, PWR_CSR1_ODRDY, PWR_CSR1_ODRDY, WAIT_LIMIT)) {
        return "over-drive";
    }
    PWR_CR1 |= PWR_CR1_ODSWEN;
    if (!stm32_wait(&PWR_CSR1, PWR_CSR1_ODSWRDY, PWR_CSR1_ODSWRDY, WAIT_LIMIT)) {
        return "over-drive switch";
    }
    FLASH_ACR = FLASH_LATENCY | FLASH_ACR_PRFTEN | FLASH_ACR_ARTEN;
    if (!stm32_wait(&FLASH_ACR, 0xFu, FLASH_LATENCY, WAIT_LIMIT)) {
        return "flash wait states";
    }
    RCC_CFGR = RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR |= RCC_CFGR_SW_PLL;
    if (!stm32_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL, WAIT_LIMIT)) {
        return "switch to PLL";
    }
    return NULL;
}

void board_init(void)
{
    if (board_ready) {
        return;
    }
    board_ready = 1;
    const char *failed = clock_setup();
    if (failed != NULL) {
        RCC_CFGR = 0; /* back to the HSI, all buses /1 */
        console_init(HSI_HZ);
        stm32_clock_failed(failed);
    }
    cortexm_enable_caches();
    console_init(UART_CLOCK_HZ);
    board_counter_start();
}

void board_uart_putc(char c)
{
    stm32_usartv2_putc(UART_BASE, c);
}

int board_uart_getc(void)
{
    return stm32_usartv2_getc(UART_BASE);
}

void board_halt(int code)
{
    (void)code; /* no host to hand it to; a debugger can read it from r0 of this frame */
    stm32_usartv2_halt(UART_BASE);
}

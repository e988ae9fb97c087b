/*
 * Board support for STM32F4 parts, register level, no vendor SDK: nucleo-f446re (STM32F446RE,
 * reference manual RM0390) and qemu-f405 (STM32F405 as QEMU's netduinoplus2 emulates it,
 * RM0090; same RCC, GPIO and USART addresses).
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

#include "board_platform.h"
#include "cortexm_regs.h"
#include "stm32_common.h"
#include "tinyc_board.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif

/* Reset and clock control (RM0390 section 6.3). */
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

/* Power controller (RM0390 section 5.4). */
#define PWR_BASE 0x40007000u
#define PWR_CR CORTEXM_REG32(PWR_BASE + 0x00u)
#define PWR_CSR CORTEXM_REG32(PWR_BASE + 0x04u)
#define PWR_CR_VOS_SCALE1 (0x3u << 14)
#define PWR_CR_ODEN (1u << 16)
#define PWR_CR_ODSWEN (1u << 17)
#define PWR_CSR_ODRDY (1u << 16)
#define PWR_CSR_ODSWRDY (1u << 17)

/* Flash interface (RM0390 section 3.8). */
#define FLASH_ACR CORTEXM_REG32(0x40023C00u)
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIO ports A, B, ... are 0x400 apart from 0x40020000; their clocks are AHB1ENR bits 0, 1. */
#define GPIO_PORT_BASE(port) (0x40020000u + 0x400u * (port))

#define HSI_HZ 16000000u
#define WAIT_LIMIT 1000000u

/* The console USART (RM0390 section 2.2.2, memory map; section 6.3.13/14, clock enables). */
#if defined(TINYC_UART_USART1)
#define UART_BASE 0x40011000u
#define UART_ENR RCC_APB2ENR
#define UART_EN (1u << 4)
#define UART_ON_APB2 1
#elif defined(TINYC_UART_USART2)
#define UART_BASE 0x40004400u
#define UART_ENR RCC_APB1ENR
#define UART_EN (1u << 17)
#define UART_ON_APB2 0
#elif defined(TINYC_UART_USART3)
#define UART_BASE 0x40004800u
#define UART_ENR RCC_APB1ENR
#define UART_EN (1u << 18)
#define UART_ON_APB2 0
#else
#error "stm32f4: uart.instance must be USART1, USART2 or USART3"
#endif

static int board_ready;

static void console_init(uint32_t uart_clock_hz)
{
    RCC_AHB1ENR |= (1u << (TINYC_UART_TX_PORT)) | (1u << (TINYC_UART_RX_PORT));
    UART_ENR |= UART_EN;
    (void)UART_ENR; /* read back: the clock must be running before the registers are used */
    stm32_gpio_alternate(GPIO_PORT_BASE(TINYC_UART_TX_PORT), TINYC_UART_TX_PIN, TINYC_UART_AF);
    stm32_gpio_alternate(GPIO_PORT_BASE(TINYC_UART_RX_PORT), TINYC_UART_RX_PIN, TINYC_UART_AF);
    USARTV1_CR1(UART_BASE) = 0;
    USARTV1_BRR(UART_BASE) = STM32_USART_BRR(uart_clock_hz, TINYC_UART_BAUD);
    USARTV1_CR1(UART_BASE) = USARTV1_CR1_UE | USARTV1_CR1_TE | USARTV1_CR1_RE;
}

#if defined(TINYC_BOARD_CLOCK_SETUP_PLL)
#if !defined(TINYC_MCU_STM32F446RE)
#error "stm32f4: clock_setup pll is written for the STM32F446 only"
#endif
#if (TINYC_BOARD_CLOCK_HZ) != 180000000u
#error "stm32f4: the PLL set-up makes 180 MHz; set clock_hz: 180000000 in the board file"
#endif
#define APB1_HZ ((TINYC_BOARD_CLOCK_HZ) / 4u)
#define APB2_HZ ((TINYC_BOARD_CLOCK_HZ) / 2u)

/* Returns NULL on success, else the name of the step that did not complete. */
static const char *clock_setup(void)
{
    RCC_CR |= RCC_CR_HSION;
    if (!stm32_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY, WAIT_LIMIT)) {
        return "HSI";
    }
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    PWR_CR |= PWR_CR_VOS_SCALE1;

    /* PLLM = 8 [5:0], PLLN = 180 [14:6], PLLP = /2 (00) [17:16], PLLSRC = HSI (0) [22],
     * PLLQ = 7 [27:24], PLLR = 2 [30:28]. */
    RCC_PLLCFGR = (8u << 0) | (180u << 6) | (0u << 16) | (7u << 24) | (2u << 28);
    RCC_CR |= RCC_CR_PLLON;
    if (!stm32_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY, WAIT_LIMIT)) {
        return "PLL lock";
    }
    PWR_CR |= PWR_CR_ODEN;
    if (!stm32_wait(&PWR_CSR, PWR_CSR_ODRDY, PWR_CSR_ODRDY, WAIT_LIMIT)) {
        return "over-drive";
    }
    PWR_CR |= PWR_CR_ODSWEN;
    if (!stm32_wait(&PWR_CSR, PWR_CSR_ODSWRDY, PWR_CSR_ODSWRDY, WAIT_LIMIT)) {
        return "over-drive switch";
    }
    FLASH_ACR = 5u | FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    if (!stm32_wait(&FLASH_ACR, 0xFu, 5u, WAIT_LIMIT)) {
        return "flash wait states";
    }
    RCC_CFGR = RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_CFGR |= RCC_CFGR_SW_PLL;
    if (!stm32_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL, WAIT_LIMIT)) {
        return "switch to PLL";
    }
    return NULL;
}
#else
#define APB1_HZ (TINYC_BOARD_CLOCK_HZ)
#define APB2_HZ (TINYC_BOARD_CLOCK_HZ)
#endif

void board_init(void)
{
    if (board_ready) {
        return;
    }
    board_ready = 1;
#if defined(TINYC_BOARD_CLOCK_SETUP_PLL)
    const char *failed = clock_setup();
    if (failed != NULL) {
        RCC_CFGR = 0; /* back to the HSI, all buses /1 */
        console_init(HSI_HZ);
        stm32_clock_failed(failed);
    }
#endif
    console_init(UART_ON_APB2 ? APB2_HZ : APB1_HZ);
    board_counter_start();
}

void board_uart_putc(char c)
{
    while ((USARTV1_SR(UART_BASE) & USARTV1_SR_TXE) == 0u) {
    }
    USARTV1_DR(UART_BASE) = (uint8_t)c;
}

int board_uart_getc(void)
{
    for (;;) {
        uint32_t sr = USARTV1_SR(UART_BASE);
        if (sr & (USARTV1_SR_RXNE | USARTV1_SR_ORE)) {
            /* Reading SR then DR clears an overrun too (RM0390 section 25.6.1). */
            uint32_t data = USARTV1_DR(UART_BASE);
            if (sr & USARTV1_SR_RXNE) {
                return (int)(data & 0xFFu);
            }
        }
    }
}

void board_halt(int code)
{
    while ((USARTV1_SR(UART_BASE) & USARTV1_SR_TC) == 0u) {
    }
#if defined(TINYC_BOARD_EMULATED)
    /* Under QEMU (-semihosting-config enable=on) hand the exit code to the emulator, which
     * then ends; on silicon without a debugger a semihosting call would fault instead. */
    const uint32_t block[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit */
    register uint32_t r0 __asm__("r0") = 0x20u;             /* SYS_EXIT_EXTENDED */
    register const uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
#else
    (void)code; /* no host to hand it to; a debugger can read it from r0 of this frame */
#endif
    cortexm_irq_save();
    for (;;) {
        __asm__ volatile("wfi");
    }
}

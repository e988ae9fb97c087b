/*
 * Board support for STM32F4 parts, written against the reference manual (RM0390 for the
 * STM32F446) with no vendor SDK. Used by nucleo-f446re.
 *
 * Clock: the core runs from the 16 MHz internal HSI oscillator, as after reset. Raising it to
 * 180 MHz (HSE bypass from the ST-LINK's 8 MHz + PLL, flash wait states, power scale) is a
 * later task; until then TINYC_BOARD_CLOCK_HZ (the board's clock_hz) is 16 MHz and cycle
 * counts are the same at any clock, apart from flash wait states.
 *
 * Console: USART2 on PA2 (TX) / PA3 (RX), alternate function 7, 115200 baud 8N1, polled. On the
 * Nucleo-64 it is wired to the ST-LINK virtual COM port. Bytes go out unchanged ("\n" is not
 * turned into "\r\n"), so binary protocols pass through.
 *
 * Counter: the DWT cycle counter (CYCCNT, 32 bits, wraps after 2^32 cycles = 268 s at 16 MHz,
 * 23.9 s at 180 MHz). board_counter() extends it to 64 bits by noticing each wrap; SysTick
 * interrupts every 2^24 cycles only to call board_counter(), so no wrap is missed even when
 * the harness does not read the counter for a long time.
 */
#include <stddef.h>
#include <stdint.h>

#include "board_platform.h"
#include "cortexm_regs.h"
#include "tinyc_board.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif

#define CONSOLE_BAUD 115200u

/* Reset and clock control (RM0390 section 6.3). */
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR CORTEXM_REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR CORTEXM_REG32(RCC_BASE + 0x40u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)

/* GPIO port A (RM0390 section 7.4). */
#define GPIOA_BASE 0x40020000u
#define GPIOA_MODER CORTEXM_REG32(GPIOA_BASE + 0x00u)
#define GPIOA_OSPEEDR CORTEXM_REG32(GPIOA_BASE + 0x08u)
#define GPIOA_PUPDR CORTEXM_REG32(GPIOA_BASE + 0x0Cu)
#define GPIOA_AFRL CORTEXM_REG32(GPIOA_BASE + 0x20u)
#define GPIO_MODE_ALTERNATE 0x2u
#define GPIO_SPEED_HIGH 0x2u
#define GPIO_PULL_UP 0x1u
#define GPIO_AF7_USART2 0x7u

/* USART2 (RM0390 section 25.6). */
#define USART2_BASE 0x40004400u
#define USART2_SR CORTEXM_REG32(USART2_BASE + 0x00u)
#define USART2_DR CORTEXM_REG32(USART2_BASE + 0x04u)
#define USART2_BRR CORTEXM_REG32(USART2_BASE + 0x08u)
#define USART2_CR1 CORTEXM_REG32(USART2_BASE + 0x0Cu)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)

/* USART2 hangs on APB1, which runs at the core clock while no prescaler is set (HSI, reset). */
#define APB1_CLOCK_HZ (TINYC_BOARD_CLOCK_HZ)

const char *const board_counter_unit = "cycles";

/* 64-bit extension of DWT_CYCCNT: its high word and the last low word seen. */
static uint32_t cycles_high;
static uint32_t cycles_last;
static int board_ready;

static void console_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR; /* read back: the clock must be running before the registers are used */

    for (uint32_t pin = 2; pin <= 3; ++pin) { /* PA2 = TX, PA3 = RX */
        GPIOA_MODER = (GPIOA_MODER & ~(0x3u << (2 * pin))) | (GPIO_MODE_ALTERNATE << (2 * pin));
        GPIOA_OSPEEDR = (GPIOA_OSPEEDR & ~(0x3u << (2 * pin))) | (GPIO_SPEED_HIGH << (2 * pin));
        GPIOA_PUPDR = (GPIOA_PUPDR & ~(0x3u << (2 * pin))) | (GPIO_PULL_UP << (2 * pin));
        GPIOA_AFRL = (GPIOA_AFRL & ~(0xFu << (4 * pin))) | (GPIO_AF7_USART2 << (4 * pin));
    }

    /* Oversampling by 16: BRR = f_APB1 / baud, rounded (mantissa and 4-bit fraction). */
    USART2_CR1 = 0;
    USART2_BRR = (APB1_CLOCK_HZ + CONSOLE_BAUD / 2u) / CONSOLE_BAUD;
    USART2_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

static void counter_init(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = DWT_LAR_UNLOCK_KEY; /* needed on Cortex-M7, ignored on Cortex-M4 */
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;

    SYST_CSR = 0;
    SYST_RVR = SYST_MAX_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE_CPU;
}

void board_init(void)
{
    if (board_ready) {
        return;
    }
    board_ready = 1;
    console_init();
    counter_init();
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

void board_console_putc(char c)
{
    while ((USART2_SR & USART_SR_TXE) == 0u) {
    }
    USART2_DR = (uint8_t)c;
}

int board_console_getc(void)
{
    while ((USART2_SR & USART_SR_RXNE) == 0u) {
    }
    return (int)(USART2_DR & 0xFFu);
}

void board_raw_write(const char *text, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        board_console_putc(text[i]);
    }
}

void board_halt(int code)
{
    (void)code; /* no host to hand it to; a debugger can read it from r0 of this frame */
    while ((USART2_SR & USART_SR_TC) == 0u) {
    }
    cortexm_irq_save();
    for (;;) {
        __asm__ volatile("wfi");
    }
}

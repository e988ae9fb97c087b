/*
 * Peripheral register layouts shared by the STM32 families tinyc supports (F4, F7, H7, L4, L4+,
 * U5), written from ST's reference manuals (RM0390 F446, RM0090 F405, RM0385 F746, RM0433 H743,
 * RM0351 L475, RM0432 L4R5, RM0456 U575) without any vendor header. Base addresses and the
 * reset and clock control differ per family and live in boards/stm32<family>/board.c (the F4
 * and F7 share theirs: stm32_f4f7.h); the layouts below are the same everywhere they are used.
 * stm32_board.h builds the board API from them. Internal to boards/.
 *
 * The console UART comes from the board file (field uart, passed as -D flags by Board.cflags):
 *   TINYC_UART_<INSTANCE>                  which USART/LPUART (e.g. TINYC_UART_USART3)
 *   TINYC_UART_TX_PORT / TINYC_UART_TX_PIN  transmit pin, port 0 = A, 1 = B, ...
 *   TINYC_UART_RX_PORT / TINYC_UART_RX_PIN  receive pin
 *   TINYC_UART_AF                           alternate function number of both pins
 *   TINYC_UART_BAUD                         bit rate (8N1)
 */
#ifndef TINYC_STM32_COMMON_H
#define TINYC_STM32_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "board_platform.h"
#include "cortexm_regs.h"
#include "tinyc_board.h"

#if !defined(TINYC_UART_TX_PORT) || !defined(TINYC_UART_TX_PIN) || \
    !defined(TINYC_UART_RX_PORT) || !defined(TINYC_UART_RX_PIN) || !defined(TINYC_UART_AF)
#error "the board file must give uart.tx, uart.rx and uart.af (Board.cflags passes them)"
#endif
#ifndef TINYC_UART_BAUD
#define TINYC_UART_BAUD 115200u
#endif

/* ---- GPIO port (e.g. RM0390 section 7.4; identical register map on every family) ---------- */
#define GPIO_MODER(base) CORTEXM_REG32((base) + 0x00u)
#define GPIO_OSPEEDR(base) CORTEXM_REG32((base) + 0x08u)
#define GPIO_PUPDR(base) CORTEXM_REG32((base) + 0x0Cu)
#define GPIO_AFR(base, pin) CORTEXM_REG32((base) + 0x20u + ((pin) >= 8u ? 4u : 0u))
#define GPIO_MODE_ALTERNATE 0x2u
#define GPIO_SPEED_HIGH 0x2u
#define GPIO_PULL_UP 0x1u

/* Puts `pin` of the GPIO port at `base` in alternate function `af`, fast, with a pull-up (an
 * idle UART line is high; the pull-up keeps RX quiet while nothing is connected). The port's
 * clock must already be on. */
static inline void stm32_gpio_alternate(uint32_t base, uint32_t pin, uint32_t af)
{
    GPIO_MODER(base) = (GPIO_MODER(base) & ~(0x3u << (2u * pin))) | (GPIO_MODE_ALTERNATE << (2u * pin));
    GPIO_OSPEEDR(base) = (GPIO_OSPEEDR(base) & ~(0x3u << (2u * pin))) | (GPIO_SPEED_HIGH << (2u * pin));
    GPIO_PUPDR(base) = (GPIO_PUPDR(base) & ~(0x3u << (2u * pin))) | (GPIO_PULL_UP << (2u * pin));
    uint32_t shift = 4u * (pin & 7u);
    GPIO_AFR(base, pin) = (GPIO_AFR(base, pin) & ~(0xFu << shift)) | (af << shift);
}

/* ---- USART, F4 generation (RM0390 section 25.6, RM0090 section 30.6) ----------------------- */
#define USARTV1_SR(base) CORTEXM_REG32((base) + 0x00u)
#define USARTV1_DR(base) CORTEXM_REG32((base) + 0x04u)
#define USARTV1_BRR(base) CORTEXM_REG32((base) + 0x08u)
#define USARTV1_CR1(base) CORTEXM_REG32((base) + 0x0Cu)
#define USARTV1_SR_ORE (1u << 3)
#define USARTV1_SR_RXNE (1u << 5)
#define USARTV1_SR_TC (1u << 6)
#define USARTV1_SR_TXE (1u << 7)
#define USARTV1_CR1_RE (1u << 2)
#define USARTV1_CR1_TE (1u << 3)
#define USARTV1_CR1_UE (1u << 13)

/* Sends one byte through a first-generation USART at `base`. */
static inline void stm32_usartv1_putc(uint32_t base, char c)
{
    while ((USARTV1_SR(base) & USARTV1_SR_TXE) == 0u) {
    }
    USARTV1_DR(base) = (uint8_t)c;
}

/* Waits for and returns one byte. Reading SR then DR clears an overrun too (RM0390 section
 * 25.6.1), so an overrun costs the lost byte only. */
static inline int stm32_usartv1_getc(uint32_t base)
{
    for (;;) {
        uint32_t sr = USARTV1_SR(base);
        if (sr & (USARTV1_SR_RXNE | USARTV1_SR_ORE)) {
            uint32_t data = USARTV1_DR(base);
            if (sr & USARTV1_SR_RXNE) {
                return (int)(data & 0xFFu);
            }
        }
    }
}

/* Waits until the last byte has left the shift register (before halting or resetting). */
static inline void stm32_usartv1_flush(uint32_t base)
{
    while ((USARTV1_SR(base) & USARTV1_SR_TC) == 0u) {
    }
}

/* Enables a first-generation USART at `base` for 8N1 with baud-rate divider `brr`
 * (transmitter and receiver on). Its bus clock must already run. */
static inline void stm32_usartv1_enable(uint32_t base, uint32_t brr)
{
    USARTV1_CR1(base) = 0;
    USARTV1_BRR(base) = brr;
    USARTV1_CR1(base) = USARTV1_CR1_UE | USARTV1_CR1_TE | USARTV1_CR1_RE;
}

/* ---- USART/LPUART, F7/H7/L4/U5 generation (RM0385 section 31.8, RM0433 48.7, RM0351 40.8,
 * RM0432 50.8, RM0456 67.8; LPUART: RM0432 section 51.7) ------------------------------------- */
#define USARTV2_CR1(base) CORTEXM_REG32((base) + 0x00u)
#define USARTV2_BRR(base) CORTEXM_REG32((base) + 0x0Cu)
#define USARTV2_ISR(base) CORTEXM_REG32((base) + 0x1Cu)
#define USARTV2_ICR(base) CORTEXM_REG32((base) + 0x20u)
#define USARTV2_RDR(base) CORTEXM_REG32((base) + 0x24u)
#define USARTV2_TDR(base) CORTEXM_REG32((base) + 0x28u)
#define USARTV2_CR1_UE (1u << 0)
#define USARTV2_CR1_RE (1u << 2)
#define USARTV2_CR1_TE (1u << 3)
#define USARTV2_ISR_ORE (1u << 3)
#define USARTV2_ISR_RXNE (1u << 5)
#define USARTV2_ISR_TC (1u << 6)
#define USARTV2_ISR_TXE (1u << 7)
#define USARTV2_ICR_ORECF (1u << 3)

/* BRR for a bit rate: oversampling by 16 (USART), rounded to nearest. With oversampling by 16
 * the F4 mantissa/fraction split equals this plain quotient. */
#define STM32_USART_BRR(clock_hz, baud) (((clock_hz) + (baud) / 2u) / (baud))
/* LPUART: BRR = 256 * f_ck / baud (RM0432 section 51.4.7), at least 0x300. */
#define STM32_LPUART_BRR(clock_hz, baud) \
    ((uint32_t)((256ull * (clock_hz) + (baud) / 2u) / (baud)))

/* Sends one byte through a second-generation USART/LPUART at `base`. */
static inline void stm32_usartv2_putc(uint32_t base, char c)
{
    while ((USARTV2_ISR(base) & USARTV2_ISR_TXE) == 0u) {
    }
    USARTV2_TDR(base) = (uint8_t)c;
}

/* Waits for and returns one byte; an overrun (a byte lost while nobody read) is cleared, or
 * reception would stop on some parts. */
static inline int stm32_usartv2_getc(uint32_t base)
{
    for (;;) {
        uint32_t isr = USARTV2_ISR(base);
        if (isr & USARTV2_ISR_ORE) {
            USARTV2_ICR(base) = USARTV2_ICR_ORECF;
        }
        if (isr & USARTV2_ISR_RXNE) {
            return (int)(USARTV2_RDR(base) & 0xFFu);
        }
    }
}

/* Waits until the last byte has left the shift register (before halting or resetting). */
static inline void stm32_usartv2_flush(uint32_t base)
{
    while ((USARTV2_ISR(base) & USARTV2_ISR_TC) == 0u) {
    }
}

/* Enables a second-generation USART/LPUART at `base` for 8N1 with baud-rate divider `brr`
 * (transmitter and receiver on). Its bus clock must already run. */
static inline void stm32_usartv2_enable(uint32_t base, uint32_t brr)
{
    USARTV2_CR1(base) = 0;
    USARTV2_BRR(base) = brr;
    USARTV2_CR1(base) = USARTV2_CR1_UE | USARTV2_CR1_TE | USARTV2_CR1_RE;
}

/* How many reads clock set-up allows each step (stm32_wait's limit). */
#define STM32_WAIT_LIMIT 1000000u

/* Busy-waits until (register & mask) == value, at most `limit` reads; returns 0 on time-out.
 * Clock set-up uses it so that a part that never becomes ready (wrong board file) ends in a
 * fault report instead of a silent hang. */
static inline int stm32_wait(volatile uint32_t *reg, uint32_t mask, uint32_t value, uint32_t limit)
{
    while (limit-- > 0u) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

/* Reports on the console (which the caller has set up at the reset clock) that the clock
 * set-up step `step` never completed, and halts with BOARD_EXIT_FAULT. */
__attribute__((noreturn)) static inline void stm32_clock_failed(const char *step)
{
    static const char prefix[] = "tinyc: clock set-up failed: ";
    size_t len = 0;
    while (step[len] != '\0') {
        ++len;
    }
    board_raw_write(prefix, sizeof prefix - 1u);
    board_raw_write(step, len);
    board_raw_write("\r\n", 2u);
    board_halt(BOARD_EXIT_FAULT);
}

#endif /* TINYC_STM32_COMMON_H */

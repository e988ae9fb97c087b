/*
 * The board API (board_init, board_uart_putc/getc, board_halt) of every STM32 family, written
 * once. A family's boards/stm32<family>/board.c holds only what differs - its register bases,
 * its clock tree set-up, the clocks of the console's pins and USART - and includes this file
 * once, at its end, after defining:
 *
 *   UART_BASE               base address of the console USART/LPUART (board file field uart)
 *   UART_ENR, UART_EN       the RCC enable register of its bus clock, and the bit in it
 *   UART_CLOCK_HZ           its kernel clock once clock_setup() has succeeded
 *   UART_BRR(clock_hz)      optional: its baud-rate divider (default: a USART oversampling by
 *                           16; an LPUART needs STM32_LPUART_BRR)
 *   STM32_USART_V1          defined if the USART is the F4 generation (SR/DR registers); else
 *                           it is the second generation (ISR/RDR/TDR), as on F7/H7/L4/U5
 *   GPIO_ENR                the RCC enable register whose bit n clocks GPIO port n
 *   GPIO_PORT_BASE(port)    base address of GPIO port 0 = A, 1 = B, ...
 *   FALLBACK_CLOCK_HZ       the core and bus clock after clock_fallback()
 *   CONSOLE_POWER_ON()      optional: what must run before the console's clocks are enabled
 *                           (an I/O supply to declare valid)
 *   static const char *clock_setup(void)
 *       raises the core clock (PLL, voltage scaling, flash wait states, caches); returns NULL
 *       on success, else the name of the step that never completed (stm32_wait timed out)
 *   static void clock_fallback(void)
 *       after a failed clock_setup(): back to the reset clock source with all buses /1
 *
 * board_init() runs clock_setup(), then brings up the console at UART_CLOCK_HZ; if a step
 * failed it brings the console up at FALLBACK_CLOCK_HZ instead, names the step and halts.
 * Internal to boards/.
 */
#ifndef TINYC_STM32_BOARD_H
#define TINYC_STM32_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "board_platform.h"
#include "cortexm_regs.h"
#include "stm32_common.h"
#include "tinyc_board.h"

#ifndef UART_BRR
#define UART_BRR(clock_hz) STM32_USART_BRR(clock_hz, TINYC_UART_BAUD)
#endif

#if defined(STM32_USART_V1)
#define console_enable stm32_usartv1_enable
#define console_putc stm32_usartv1_putc
#define console_getc stm32_usartv1_getc
#define console_flush stm32_usartv1_flush
#else
#define console_enable stm32_usartv2_enable
#define console_putc stm32_usartv2_putc
#define console_getc stm32_usartv2_getc
#define console_flush stm32_usartv2_flush
#endif

/* Semihosting (Arm "Semihosting for AArch32 and AArch64", version 2.0), for emulated boards. */
#define SEMIHOSTING_SYS_EXIT_EXTENDED 0x20u
#define SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int board_ready;

/* Clocks the console's GPIO port(s) and USART, puts TX and RX in their alternate function and
 * enables the USART for 8N1 at TINYC_UART_BAUD from a kernel clock of uart_clock_hz. */
static void console_init(uint32_t uart_clock_hz)
{
#if defined(CONSOLE_POWER_ON)
    CONSOLE_POWER_ON();
#endif
    GPIO_ENR |= (1u << (TINYC_UART_TX_PORT)) | (1u << (TINYC_UART_RX_PORT));
    UART_ENR |= UART_EN;
    (void)UART_ENR; /* read back: the clock must be running before the registers are used */
    stm32_gpio_alternate(GPIO_PORT_BASE(TINYC_UART_TX_PORT), TINYC_UART_TX_PIN, TINYC_UART_AF);
    stm32_gpio_alternate(GPIO_PORT_BASE(TINYC_UART_RX_PORT), TINYC_UART_RX_PIN, TINYC_UART_AF);
    console_enable(UART_BASE, UART_BRR(uart_clock_hz));
}

void board_init(void)
{
    if (board_ready) {
        return;
    }
    board_ready = 1;
    const char *failed = clock_setup();
    if (failed != NULL) {
        clock_fallback();
        console_init(FALLBACK_CLOCK_HZ);
        stm32_clock_failed(failed);
    }
    console_init(UART_CLOCK_HZ);
    board_counter_start();
}

void board_uart_putc(char c)
{
    console_putc(UART_BASE, c);
}

int board_uart_getc(void)
{
    return console_getc(UART_BASE);
}

/* Waits until the last byte has left, then hands the exit code to QEMU on an emulated board
 * (run with -semihosting-config enable=on; on silicon without a debugger the semihosting call
 * would fault instead), masks interrupts and sleeps for good. */
void board_halt(int code)
{
    console_flush(UART_BASE);
#if defined(TINYC_BOARD_EMULATED)
    const uint32_t block[2] = {SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    register uint32_t r0 __asm__("r0") = SEMIHOSTING_SYS_EXIT_EXTENDED;
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

#endif /* TINYC_STM32_BOARD_H */

/*
 * What each Cortex-M platform (boards/<platform>/board.c) provides to the shared code in
 * boards/common/ (startup_cortexm.c, retarget_uart.c). Internal: the harness uses only
 * tinyc_board.h.
 */
#ifndef TINYC_BOARD_PLATFORM_H
#define TINYC_BOARD_PLATFORM_H

#include <stddef.h>

/*
 * Writes len bytes to the console without buffering, without libc and without interrupts, so
 * it works inside a fault handler. Semihosting boards write to the host's stderr; UART boards
 * busy-wait on the transmitter (board_uart_putc).
 */
void board_raw_write(const char *text, size_t len);

/*
 * Ends the program with the given exit code and never returns. Semihosting boards hand the
 * code to the host (QEMU exits with it); real boards without a host stop the CPU.
 */
void board_halt(int code) __attribute__((noreturn));

/* The SysTick exception handler; the board's counter (counter_systick.c or counter_dwt.c)
 * defines it. */
void SysTick_Handler(void);

/* Starts the counter behind board_counter(): boards/common/counter_<kind>.c, chosen by the
 * board file's counter.kind. board_init() calls it once, after the clock set-up. */
void board_counter_start(void);

#endif /* TINYC_BOARD_PLATFORM_H */

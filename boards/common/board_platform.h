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
 * busy-wait on the transmitter.
 */
void board_raw_write(const char *text, size_t len);

/*
 * Ends the program with the given exit code and never returns. Semihosting boards hand the
 * code to the host (QEMU exits with it); real boards without a host stop the CPU.
 */
void board_halt(int code) __attribute__((noreturn));

/* The SysTick exception handler; each platform's board.c defines it (the counter uses it). */
void SysTick_Handler(void);

/*
 * UART-console platforms only (console: uart), used by boards/common/retarget_uart.c:
 * board_console_putc() sends one byte, waiting while the transmitter is busy;
 * board_console_getc() waits for one received byte and returns it (0-255).
 */
void board_console_putc(char c);
int board_console_getc(void);

#endif /* TINYC_BOARD_PLATFORM_H */

/*
 * tinyc board API: the few services a generated model harness needs from the hardware.
 *
 * Every board implements this header (boards/<platform>/board.c, plus the shared Cortex-M
 * startup in boards/common/). The harness calls board_init() first in main(), prints through
 * printf, and brackets each inference or layer with board_counter():
 *
 *     board_init();
 *     uint64_t start = board_counter();
 *     model_run(input, output);
 *     uint64_t spent = board_counter() - start;   // in units of board_counter_unit
 *
 * Units, by board (see boards/<id>.yaml, field `counter`):
 *   "instructions"  emulated boards (SysTick): QEMU runs with -icount shift=0, where each guest
 *                   instruction is exactly 1 ns of virtual time, and the SysTick count is
 *                   converted to virtual ns. On mps2 SysTick ticks every 40 ns (25 MHz), so the
 *                   count is exact to 40 instructions and identical from run to run.
 *   "cycles"        real Cortex-M4/M7/M33 silicon: the DWT cycle counter (core clock cycles).
 *   "ns"            the native host build: CLOCK_MONOTONIC wall time.
 * Instructions are not cycles; never present one as the other.
 *
 * The serial benchmark firmware also uses the board's UART (board_uart_putc/getc): the ST-LINK
 * virtual COM port on the Nucleo and Discovery boards, UART0 (or USART2) on QEMU, stdin/stdout
 * on the host build.
 */
#ifndef TINYC_BOARD_H
#define TINYC_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Exit code of the firmware when the CPU faults (HardFault, or any exception without a
 * handler). On QEMU the fault handler prints one line to stderr and ends the emulator with this
 * code instead of hanging; on real boards the firmware stops after printing the line.
 */
#define BOARD_EXIT_FAULT 100

/*
 * Brings up the console (printf on stdout) and starts the counter. Call it first in main(),
 * before any printf. Calling it again restarts nothing and is harmless.
 */
void board_init(void);

/*
 * Monotonic 64-bit counter in units of board_counter_unit. Only differences are meaningful;
 * the origin is unspecified (roughly the time of board_init()). Wrap-around of the 24-bit
 * SysTick or 32-bit DWT hardware counters is absorbed in an interrupt, so the value never goes
 * back. Safe to call from interrupt handlers and with interrupts masked, as long as they stay
 * masked for less than one hardware period (671 million instructions on QEMU, 2^32 cycles with
 * the DWT counter).
 */
uint64_t board_counter(void);

/* The unit of board_counter(): "instructions", "cycles" or "ns". */
extern const char *const board_counter_unit;

/*
 * board_counter() units per second: the core clock for "cycles"; 10^9 for "instructions"
 * (virtual nanoseconds under -icount shift=0, not real time) and for "ns".
 */
extern const uint32_t board_counter_hz;

/*
 * A board_counter() value or difference in microseconds (rounded down), for timestamps such as
 * the MLPerf Tiny protocol's m-lap-us. Exact 64-bit arithmetic: no overflow for any count.
 */
static inline uint64_t board_counter_to_us(uint64_t count)
{
    return (count / board_counter_hz) * 1000000u +
           (count % board_counter_hz) * 1000000u / board_counter_hz;
}

/*
 * The board's serial port, set up by board_init() (115200 baud 8N1 on real boards unless the
 * board file says otherwise). board_uart_putc() sends one byte unchanged ("\n" is not turned
 * into "\r\n"), waiting while the transmitter is busy; board_uart_getc() waits for one received
 * byte and returns it (0-255), or -1 when the port is closed for good (host build at end of
 * input). Polled, no interrupts, no buffering beyond the hardware's.
 */
void board_uart_putc(char c);
int board_uart_getc(void);

/*
 * Stack measurement by painting. The stack region is filled with a known pattern at reset;
 * board_stack_used() returns the deepest extent the stack has reached since then (or since the
 * last board_stack_paint()), in bytes from the top of the stack, interrupt frames included.
 * board_stack_paint() repaints the unused part below the current stack pointer, so a later
 * board_stack_used() covers only what ran in between (plus the caller's frames at paint time).
 * On boards that cannot measure it (the host build) board_stack_used() returns 0.
 */
void board_stack_paint(void);
size_t board_stack_used(void);

/* Size in bytes of the stack region reserved by the linker script (0 on the host build). */
size_t board_stack_size(void);

#ifdef __cplusplus
}
#endif

#endif /* TINYC_BOARD_H */

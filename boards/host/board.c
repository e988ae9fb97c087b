/*
 * The board API for a native build on the development machine (gcc on x86-64 or any POSIX
 * system), used to run generated code next to the reference interpreters.
 *
 * Console: the C library's stdio as usual. Counter: CLOCK_MONOTONIC wall time in nanoseconds,
 * counted from the first call of board_init() or board_counter(). Stack measurement is not
 * available (board_stack_used() and board_stack_size() return 0). The serial port is stdin and
 * stdout (flushed at each line end), so the serial benchmark firmware can be driven through
 * pipes.
 */
#define _POSIX_C_SOURCE 199309L

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "tinyc_board.h"

const char *const board_counter_unit = "ns";
const uint32_t board_counter_hz = 1000000000u;

static uint64_t origin_ns;
static int origin_set;

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

void board_init(void)
{
    if (!origin_set) {
        origin_ns = monotonic_ns();
        origin_set = 1;
    }
}

void board_uart_putc(char c)
{
    putchar((unsigned char)c);
    if (c == '\n') {
        fflush(stdout); /* a line is complete: let the reader on the pipe see it */
    }
}

int board_uart_getc(void)
{
    int c = getchar();
    return c == EOF ? -1 : c;
}

uint64_t board_counter(void)
{
    board_init();
    return monotonic_ns() - origin_ns;
}

void board_stack_paint(void) {}

size_t board_stack_used(void)
{
    return 0;
}

size_t board_stack_size(void)
{
    return 0;
}

/*
 * Board support for the Arm MPS2/MPS3 FPGA images emulated by QEMU: mps2-an385 (Cortex-M3),
 * mps2-an386 (Cortex-M4F), mps2-an500 (Cortex-M7) and mps3-an547 (Cortex-M55).
 *
 * Console: Arm semihosting (newlib's librdimon, --specs=rdimon.specs). printf reaches the
 * host's stdout, fopen() reaches host files relative to QEMU's working directory, and the
 * value returned by main() becomes QEMU's exit code. QEMU must run with
 * -semihosting-config enable=on,target=native.
 *
 * Serial port: the CMSDK APB UART0 (Arm CoreLink SDK TRM, DDI 0479, section 4.3), which QEMU
 * connects to its first -serial backend (a pseudo-terminal for `tinyc bench --port`). Base
 * address 0x40004000 on the MPS2 images (AN385/AN386/AN500 application notes, memory map) and
 * 0x49303000 on AN547. QEMU does not model the bit rate; BAUDDIV is still set as on the FPGA
 * (system clock / baud, at least 16, or QEMU ignores the transmitter).
 *
 * Clock: whatever QEMU gives the machine (no PLL); the counter is counter_systick.c.
 */
#include <stddef.h>
#include <stdint.h>

#include "board_platform.h"
#include "cortexm_regs.h"
#include "tinyc_board.h"

#ifndef TINYC_BOARD_CLOCK_HZ
#error "TINYC_BOARD_CLOCK_HZ must be defined (Board.cflags passes the board's clock_hz)"
#endif
#ifndef TINYC_UART_BAUD
#define TINYC_UART_BAUD 115200u
#endif

/* CMSDK APB UART0. */
#if defined(TINYC_MCU_MPS3_AN547)
#define UART0_BASE 0x49303000u
#else
#define UART0_BASE 0x40004000u
#endif
#define UART0_DATA CORTEXM_REG32(UART0_BASE + 0x000u)
#define UART0_STATE CORTEXM_REG32(UART0_BASE + 0x004u)
#define UART0_CTRL CORTEXM_REG32(UART0_BASE + 0x008u)
#define UART0_BAUDDIV CORTEXM_REG32(UART0_BASE + 0x010u)
#define UART_STATE_TX_FULL (1u << 0)
#define UART_STATE_RX_FULL (1u << 1)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)

/* Semihosting operations (Arm "Semihosting for AArch32 and AArch64", version 2.0). */
#define SEMIHOSTING_SYS_WRITEC 0x03u
#define SEMIHOSTING_SYS_EXIT_EXTENDED 0x20u
#define SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT 0x20026u

extern void initialise_monitor_handles(void);

static int board_ready;

static uint32_t semihosting_call(uint32_t operation, const void *argument)
{
    register uint32_t r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_init(void)
{
    if (board_ready) {
        return;
    }
    board_ready = 1;
    initialise_monitor_handles();
    UART0_CTRL = 0;
    UART0_BAUDDIV = (TINYC_BOARD_CLOCK_HZ) / (TINYC_UART_BAUD);
    UART0_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN;
    board_counter_start();
}

void board_uart_putc(char c)
{
    while (UART0_STATE & UART_STATE_TX_FULL) {
    }
    UART0_DATA = (uint8_t)c;
}

int board_uart_getc(void)
{
    while ((UART0_STATE & UART_STATE_RX_FULL) == 0u) {
    }
    return (int)(UART0_DATA & 0xFFu);
}

void board_raw_write(const char *text, size_t len)
{
    for (size_t i = 0; i < len; ++i) {
        semihosting_call(SEMIHOSTING_SYS_WRITEC, &text[i]);
    }
}

void board_halt(int code)
{
    const uint32_t block[2] = {SEMIHOSTING_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    for (;;) {
        semihosting_call(SEMIHOSTING_SYS_EXIT_EXTENDED, block);
    }
}

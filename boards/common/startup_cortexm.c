/*
 * Reset and exception handling shared by every Cortex-M3/M4/M7 board.
 *
 * Holds what is the same on all of them: the vector table (core exceptions only), the reset
 * sequence (FPU on, .data copied, .bss zeroed, stack painted, C++/constructor init, main), a
 * fault handler that reports and terminates instead of hanging, and the stack-painting helpers.
 * What differs between platforms (console, exit, counter) is in boards/<platform>/board.c
 * behind board_platform.h.
 *
 * The vector table lists the 16 core exceptions and no device interrupts: the board code
 * enables none (the consoles and counters are polled or use SysTick). A platform that needs a
 * device interrupt must extend the table.
 *
 * Linker-script symbols used (boards/common/sections_cortexm.ld): _estack, _sidata, _sdata,
 * _edata, _sbss, _ebss, __stack_start__, __stack_end__.
 */
#include <stdint.h>
#include <stdlib.h>

#include "board_platform.h"
#include "cortexm_regs.h"
#include "tinyc_board.h"

extern uint32_t _estack;
extern uint32_t _sidata;
extern uint32_t _sdata;
extern uint32_t _edata;
extern uint32_t _sbss;
extern uint32_t _ebss;
extern uint32_t __stack_start__;
extern uint32_t __stack_end__;

extern int main(void);
extern void __libc_init_array(void);

/* Fill pattern of the unused stack. */
#define STACK_PAINT_WORD 0x5AC5A5C5u

void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void);
void HardFault_Handler(void);
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void tinyc_fault_report(const uint32_t *frame) __attribute__((noreturn));

/* An entry of the vector table: the initial stack pointer, then handler addresses. */
typedef union {
    const void *stack_top;
    void (*handler)(void);
} vector_entry;

__attribute__((section(".isr_vector"), used)) const vector_entry tinyc_vector_table[16] = {
    {.stack_top = &_estack},
    {.handler = Reset_Handler},
    {.handler = NMI_Handler},
    {.handler = HardFault_Handler},
    {.handler = MemManage_Handler},
    {.handler = BusFault_Handler},
    {.handler = UsageFault_Handler},
    {.stack_top = 0},
    {.stack_top = 0},
    {.stack_top = 0},
    {.stack_top = 0},
    {.handler = SVC_Handler},
    {.handler = DebugMon_Handler},
    {.stack_top = 0},
    {.handler = PendSV_Handler},
    {.handler = SysTick_Handler},
};

/* __libc_init_array() calls these; with -nostartfiles nobody else provides them. */
void _init(void);
void _fini(void);
void _init(void) {}
void _fini(void) {}

void Reset_Handler(void)
{
    /* Vectors at their link address, whatever the boot alias (STM32 parts boot with flash
     * mapped at 0 and VTOR = 0). */
    SCB_VTOR = (uint32_t)(uintptr_t)tinyc_vector_table;
#if defined(__ARM_FP)
    /* Grant full access to the FPU (CP10/CP11) before any floating-point instruction runs. */
    SCB_CPACR |= SCB_CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" : : : "memory");
#endif
    const uint32_t *from = &_sidata;
    for (uint32_t *to = &_sdata; to < &_edata;) {
        *to++ = *from++;
    }
    for (uint32_t *to = &_sbss; to < &_ebss;) {
        *to++ = 0;
    }
    board_stack_paint();
    __libc_init_array();
    exit(main());
}

/* Appends text to buf at *pos, bounded by size. */
static void append_text(char *buf, size_t size, size_t *pos, const char *text)
{
    while (*text != '\0' && *pos < size) {
        buf[(*pos)++] = *text++;
    }
}

/* Appends value as 0x followed by 8 hexadecimal digits. */
static void append_hex32(char *buf, size_t size, size_t *pos, uint32_t value)
{
    append_text(buf, size, pos, "0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        if (*pos < size) {
            buf[(*pos)++] = "0123456789abcdef"[(value >> shift) & 0xFu];
        }
    }
}

/*
 * Reports an exception that should never happen and ends the program with BOARD_EXIT_FAULT.
 * frame is the exception stack frame (r0-r3, r12, lr, pc, xpsr). Deliberately libc-free:
 * after a fault the heap or stdio state may be what is broken.
 */
__attribute__((used, noreturn)) void tinyc_fault_report(const uint32_t *frame)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    char line[96];
    size_t pos = 0;
    append_text(line, sizeof line, &pos, "tinyc: ");
    append_text(line, sizeof line, &pos,
                (ipsr & 0x1FFu) == 3u ? "HardFault" : "unexpected exception");
    append_text(line, sizeof line, &pos, " (exception ");
    append_hex32(line, sizeof line, &pos, ipsr & 0x1FFu);
    append_text(line, sizeof line, &pos, ") at pc=");
    append_hex32(line, sizeof line, &pos, frame[6]);
    append_text(line, sizeof line, &pos, " lr=");
    append_hex32(line, sizeof line, &pos, frame[5]);
    append_text(line, sizeof line, &pos, "\n");
    board_raw_write(line, pos);
    board_halt(BOARD_EXIT_FAULT);
}

/* Finds the stacked frame (main or process stack, from EXC_RETURN bit 2) and reports it. */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile("tst lr, #4\n\t"
                     "ite eq\n\t"
                     "mrseq r0, msp\n\t"
                     "mrsne r0, psp\n\t"
                     "b tinyc_fault_report\n\t");
}

__attribute__((naked)) void Default_Handler(void)
{
    __asm__ volatile("tst lr, #4\n\t"
                     "ite eq\n\t"
                     "mrseq r0, msp\n\t"
                     "mrsne r0, psp\n\t"
                     "b tinyc_fault_report\n\t");
}

void board_stack_paint(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *word = &__stack_start__; word < sp; ++word) {
        *word = STACK_PAINT_WORD;
    }
}

size_t board_stack_used(void)
{
    const uint32_t *word = &__stack_start__;
    while (word < &__stack_end__ && *word == STACK_PAINT_WORD) {
        ++word;
    }
    return (size_t)((const char *)&__stack_end__ - (const char *)word);
}

size_t board_stack_size(void)
{
    return (size_t)((const char *)&__stack_end__ - (const char *)&__stack_start__);
}

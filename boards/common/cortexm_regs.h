/*
 * Architectural Cortex-M (ARMv7-M) core registers used by the board support: SysTick, the
 * System Control Block, the debug monitor control register and the DWT cycle counter.
 *
 * These addresses are fixed by the ARMv7-M Architecture Reference Manual (chapters B3.2, B3.3,
 * C1.6, C1.8) and are the same on every Cortex-M3/M4/M7; nothing here is vendor specific.
 * Internal to boards/: generated model code never includes this header.
 */
#ifndef TINYC_CORTEXM_REGS_H
#define TINYC_CORTEXM_REGS_H

#include <stdint.h>

#define CORTEXM_REG32(address) (*(volatile uint32_t *)(address))

/* SysTick: a 24-bit down-counter that reloads from RVR after reaching 0 and can interrupt. */
#define SYST_CSR CORTEXM_REG32(0xE000E010u) /* control and status */
#define SYST_RVR CORTEXM_REG32(0xE000E014u) /* reload value */
#define SYST_CVR CORTEXM_REG32(0xE000E018u) /* current value; any write clears it to 0 */
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define SYST_MAX_RELOAD 0x00FFFFFFu

/* System Control Block. */
#define SCB_ICSR CORTEXM_REG32(0xE000ED04u)  /* interrupt control and state */
#define SCB_ICSR_PENDSTSET (1u << 26)        /* a SysTick exception is pending */
#define SCB_CPACR CORTEXM_REG32(0xE000ED88u) /* coprocessor access control */
#define SCB_CPACR_CP10_CP11_FULL (0xFu << 20)

/* Debug exception and monitor control: TRCENA powers the DWT and ITM units. */
#define DEMCR CORTEXM_REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)

/* Data Watchpoint and Trace unit: CYCCNT counts core clock cycles (32 bits, wraps). */
#define DWT_CTRL CORTEXM_REG32(0xE0001000u)
#define DWT_CYCCNT CORTEXM_REG32(0xE0001004u)
#define DWT_LAR CORTEXM_REG32(0xE0001FB0u) /* lock access; locked after reset on Cortex-M7 */
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_LAR_UNLOCK_KEY 0xC5ACCE55u

/* Masks interrupts and returns the previous PRIMASK, for cortexm_irq_restore(). */
static inline uint32_t cortexm_irq_save(void)
{
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) : : "memory");
    return primask;
}

/* Restores PRIMASK as cortexm_irq_save() found it (interrupts stay masked if they were). */
static inline void cortexm_irq_restore(uint32_t primask)
{
    __asm__ volatile("msr primask, %0" : : "r"(primask) : "memory");
}

#endif /* TINYC_CORTEXM_REGS_H */

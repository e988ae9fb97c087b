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
#define SCB_VTOR CORTEXM_REG32(0xE000ED08u)  /* vector table offset */
#define SCB_CCR CORTEXM_REG32(0xE000ED14u)   /* configuration and control */
#define SCB_CCR_DC (1u << 16)                /* data cache enable (Cortex-M7) */
#define SCB_CCR_IC (1u << 17)                /* instruction cache enable (Cortex-M7) */
#define SCB_CPACR CORTEXM_REG32(0xE000ED88u) /* coprocessor access control */
#define SCB_CPACR_CP10_CP11_FULL (0xFu << 20)

/* Cache identification and maintenance (ARMv7-M ARM B3.2.2 and B2.2.7; Cortex-M7 only). */
#define SCB_CCSIDR CORTEXM_REG32(0xE000ED80u)  /* cache size id of the level CSSELR selects */
#define SCB_CSSELR CORTEXM_REG32(0xE000ED84u)  /* cache size selection: 0 = level 1 data */
#define SCB_ICIALLU CORTEXM_REG32(0xE000EF50u) /* invalidate all instruction cache */
#define SCB_DCISW CORTEXM_REG32(0xE000EF60u)   /* invalidate data cache line by set/way */

/* Debug exception and monitor control: TRCENA powers the DWT and ITM units. */
#define DEMCR CORTEXM_REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)

/* Data Watchpoint and Trace unit: CYCCNT counts core clock cycles (32 bits, wraps). */
#define DWT_CTRL CORTEXM_REG32(0xE0001000u)
#define DWT_CYCCNT CORTEXM_REG32(0xE0001004u)
#define DWT_LAR CORTEXM_REG32(0xE0001FB0u) /* lock access; locked after reset on Cortex-M7 */
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_LAR_UNLOCK_KEY 0xC5ACCE55u

/*
 * Turns on the Cortex-M7 level 1 instruction and data caches, following the ARMv7-M ARM
 * (B2.2.7, "Cache maintenance operations"): both caches are invalidated first, since their
 * content is undefined after reset, then enabled in CCR. The data cache is write-back; nothing
 * in the tinyc firmware uses DMA, so no maintenance is needed afterwards. Call it once, early,
 * before any data is cached. Cortex-M3/M4/M33 have no such caches: do not call it there.
 */
static inline void cortexm_enable_caches(void)
{
    __asm__ volatile("dsb\n\tisb" : : : "memory");
    SCB_ICIALLU = 0u;
    SCB_CSSELR = 0u; /* level 1 data cache */
    __asm__ volatile("dsb" : : : "memory");
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u; /* NumSets - 1 in bits [27:13] */
    uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;   /* Associativity - 1 in bits [12:3] */
    uint32_t line_shift = (ccsidr & 0x7u) + 4u;      /* log2(words per line) - 2, in bytes */
    /* The way number sits in the top log2(ways) bits (ARMv7-M ARM B2.2.7, DCISW). */
    uint32_t way_shift = ways == 1u ? 0u : (uint32_t)__builtin_clz(ways - 1u);
    for (uint32_t set = 0; set < sets; ++set) {
        for (uint32_t way = 0; way < ways; ++way) {
            SCB_DCISW = (way << way_shift) | (set << line_shift);
        }
    }
    __asm__ volatile("dsb" : : : "memory");
    SCB_CCR |= SCB_CCR_IC | SCB_CCR_DC;
    __asm__ volatile("dsb\n\tisb" : : : "memory");
}

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

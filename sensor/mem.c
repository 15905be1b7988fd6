#define SN_LOG_MOD "mem"
#include "mem.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

void sn_mem_prefault(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    static const uintptr_t page = 4096; /* x86-64 and arm64's base page size, or a divisor */
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE); /* advice: failure is harmless */
#else
    (void)p;
    (void)n;
#endif
}

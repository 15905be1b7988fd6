/* mem: memory helpers shared by the table modules.
 *
 * Thread safety: none needed (no state).
 */
#ifndef SN_MEM_H
#define SN_MEM_H

#include <stddef.h>

/* Maps the pages of [p, p + n) writable now (madvise MADV_POPULATE_WRITE where the kernel
 * has it; otherwise nothing). For zeroed tables that are read before they are written (hash
 * bucket arrays): the first read of an untouched page maps the shared zero page, and the
 * write that follows replaces it, which in a process with threads on other cores interrupts
 * every one of them to flush its TLB (measured: some 2,000 such interrupts in a 2-worker
 * run of the TLS bench capture). Populating up front costs one fault per page, once. p is
 * borrowed; partial pages at either end are left alone. */
void sn_mem_prefault(void *p, size_t n);

#endif

/* Unit tests for sensor/mem.c: prefaulting maps a zeroed table's pages, keeps it zero, and
 * leaves partial pages at the ends alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"

#define PAGES 64

static unsigned resident(uint8_t *p, size_t pages)
{
    unsigned char vec[PAGES];
    assert_int_equal(mincore(p, pages * 4096, vec), 0);
    unsigned n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

static void test_maps_whole_pages(void **state)
{
    (void)state;
    uint8_t *p = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                      0);
    assert_true(p != MAP_FAILED);
    assert_int_equal(resident(p, PAGES), 0);
    /* from the middle of page 1 to the middle of page 60: pages 2..59 are whole */
    sn_mem_prefault(p + 4096 + 100, 59 * 4096);
#ifdef MADV_POPULATE_WRITE
    unsigned char vec[PAGES];
    assert_int_equal(mincore(p, PAGES * 4096, vec), 0);
    assert_int_equal(vec[1] & 1, 0);  /* partial page at the start: left alone */
    assert_int_equal(vec[60] & 1, 0); /* partial page at the end: left alone */
    assert_int_equal(resident(p + 2 * 4096, 58), 58);
#endif
    for (size_t i = 0; i < PAGES * 4096; i++)
        assert_int_equal(p[i], 0);
    p[5 * 4096] = 7; /* still writable */
    assert_int_equal(p[5 * 4096], 7);
    munmap(p, PAGES * 4096);
}

static void test_small_and_empty(void **state)
{
    (void)state;
    uint8_t b[100] = {0};
    sn_mem_prefault(b, sizeof(b)); /* less than a page: nothing to do, no crash */
    sn_mem_prefault(b, 0);
    sn_mem_prefault(NULL, 0);
    for (size_t i = 0; i < sizeof(b); i++)
        assert_int_equal(b[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maps_whole_pages),
        cmocka_unit_test(test_small_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

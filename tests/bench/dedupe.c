/* tests/bench/dedupe.c - the natural-key store (daemon/pipeline/dedupe.c) alone:
 * what a remembered key costs in memory and time.
 *
 *   dedupe [N ...]     (default 100000 1000000 5000000)
 *
 * For each N: N distinct keys recorded in random order (as filings of N
 * tasks), then N lookups of known keys, N of unknown ones, a snapshot and
 * a restore of it. Prints one key=value line per N: the store's own count
 * of bytes per key, the allocator's (mallinfo2: bytes in use after minus
 * before, so malloc headers and bucket slack included), and ns per key of
 * each step. Restore is O(n): its ns/key stays flat as N grows. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "riskd/kit.h"
#include "internal.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static int run(uint64_t n)
{
    rk__dedupe d, r;
    rk_buf b = {0};
    char task[32];
    uint64_t i, found = 0;
    int64_t t0 = INT64_C(1740787200000);
    size_t before, after;
    double t, ins, hit, miss, snap, rest;

    before = mallinfo2().uordblks;
    rk__dedupe_init(&d);
    rk__dedupe_set_window(&d, 400 * RK_DAY);
    t = now_ns();
    for (i = 0; i < n; i++) {
        snprintf(task, sizeof(task), "T%llu", (unsigned long long)mix(i));
        if (rk__dedupe_record(&d, rk__dedupe_filing_key(task), (uint32_t)i,
                              t0 + (int64_t)(i % 365) * RK_DAY) != 0)
            return -1;
    }
    ins = (now_ns() - t) / (double)n;
    after = mallinfo2().uordblks;
    t = now_ns();
    for (i = 0; i < n; i++) {
        snprintf(task, sizeof(task), "T%llu", (unsigned long long)mix(i));
        found += rk__dedupe_filing_known(&d, task, t0 + 365 * RK_DAY);
    }
    hit = (now_ns() - t) / (double)n;
    t = now_ns();
    for (i = n; i < 2 * n; i++) {
        snprintf(task, sizeof(task), "T%llu", (unsigned long long)mix(i));
        found += rk__dedupe_filing_known(&d, task, t0 + 365 * RK_DAY);
    }
    miss = (now_ns() - t) / (double)n;
    t = now_ns();
    rk__dedupe_snapshot(&d, &b);
    snap = (now_ns() - t) / (double)n;
    rk__dedupe_init(&r);
    rk__dedupe_set_window(&r, 400 * RK_DAY);
    t = now_ns();
    if (b.oom || rk__dedupe_restore(&r, b.data, b.len) != 0)
        return -1;
    rest = (now_ns() - t) / (double)n;
    printf("keys=%llu store_B_per_key=%.2f malloc_B_per_key=%.2f found=%llu "
           "record_ns=%.0f known_ns=%.0f unknown_ns=%.0f snapshot_ns=%.1f restore_ns=%.1f "
           "snapshot_B_per_key=%.1f\n",
           (unsigned long long)n, (double)rk__dedupe_bytes(&d) / (double)n,
           (double)(after - before) / (double)n, (unsigned long long)found, ins, hit, miss,
           snap, rest, (double)b.len / (double)n);
    rk_buf_free(&b);
    rk__dedupe_free(&r);
    rk__dedupe_free(&d);
    return found == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const uint64_t def[] = {100000, 1000000, 5000000};
    int i;
    if (argc > 1) {
        for (i = 1; i < argc; i++)
            if (run(strtoull(argv[i], NULL, 10)) != 0)
                return 1;
        return 0;
    }
    for (i = 0; i < 3; i++)
        if (run(def[i]) != 0)
            return 1;
    return 0;
}

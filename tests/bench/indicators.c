/* tests/bench/indicators.c - memory of the indicators for a province:
 * 2,000 units (in 20 regions) and 40,000 officers over a 30-day window.
 *
 *   indicators [UNITS OFFICERS]      (default 2000 40000)
 *
 * Three runs of the module alone (rk__ind_memory after the events):
 *   units     every unit active every day (one case opened a day, no
 *             officers): bytes per unit, next to the documented figure
 *             (riskd(8) INDICATORS: about 400 bytes per key plus 76 per day
 *             with data, 2.7 KB for a unit active every day);
 *   officers  the same plus every officer active every third day (a case
 *             opened naming them): the extra bytes per officer, next to
 *             400 + 10 x 76 = 1,160;
 *   filings   a month of filings (two officers each, every officer every
 *             third day: OFFICERS x 10 / 2 filings), each scanned and rated:
 *             the total and the bytes per filing (its task record), next to
 *             the documented ~120 bytes plus its id, and 40 per key and
 *             enterprise.
 * It reports; it never fails on a large result. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pipeline/indicators.h"

#define DAY INT64_C(86400000)
#define H INT64_C(3600000)
#define DAYS 30
#define T0 INT64_C(1756656000000)   /* 2025-09-01T00:00:00+08:00 */

static rk__ind *mk(void)
{
    rk__ind_settings s;
    memset(&s, 0, sizeof(s));
    s.window = 30 * DAY;
    s.scan_deadline = 24 * H;
    s.bad_score = 2;
    s.exclude_kinds = 1u << RK_KIND_COMPLAINT;
    s.tz_offset_s = 8 * 3600;
    return rk__ind_new(&s);
}

static void unit_days(rk__ind *ind, unsigned units, int day)
{
    char unit[32], region[32], cs[48];
    unsigned u;
    rk_event ev;
    for (u = 0; u < units; u++) {
        memset(&ev, 0, sizeof(ev));
        snprintf(unit, sizeof(unit), "U%04u", u);
        snprintf(region, sizeof(region), "R%02u", u % 20);
        snprintf(cs, sizeof(cs), "C%u-%d", u, day);
        ev.type = RK_EV_CASE_OPENED;
        ev.ts = T0 + day * DAY + 10 * H;
        ev.unit_id = unit;
        ev.region = region;
        ev.case_id = cs;
        rk__ind_event(ind, &ev);
    }
}

static void officer_days(rk__ind *ind, unsigned units, unsigned officers, int day)
{
    char unit[32], off[32], cs[48];
    const char *offs[1] = {off};
    unsigned o;
    rk_event ev;
    for (o = (unsigned)day % 3; o < officers; o += 3) {
        memset(&ev, 0, sizeof(ev));
        snprintf(unit, sizeof(unit), "U%04u", o % units);
        snprintf(off, sizeof(off), "O%05u", o);
        snprintf(cs, sizeof(cs), "K%u-%d", o, day);
        ev.type = RK_EV_CASE_OPENED;
        ev.ts = T0 + day * DAY + 11 * H;
        ev.unit_id = unit;
        ev.case_id = cs;
        ev.officers = offs;
        ev.n_officers = 1;
        rk__ind_event(ind, &ev);
    }
}

static void filing_days(rk__ind *ind, unsigned units, unsigned officers, int day,
                        unsigned long *nfilings)
{
    char unit[32], o1[32], o2[32], task[48], ent[32];
    const char *offs[2] = {o1, o2};
    unsigned o;
    rk_event ev;
    for (o = (unsigned)day % 3 * 2; o + 1 < officers; o += 6) {
        int64_t planned = T0 + day * DAY + 9 * H;
        snprintf(unit, sizeof(unit), "U%04u", o % units);
        snprintf(o1, sizeof(o1), "O%05u", o);
        snprintf(o2, sizeof(o2), "O%05u", o + 1);
        snprintf(task, sizeof(task), "T%u-%d", o, day);
        snprintf(ent, sizeof(ent), "E%06u", (o * 7 + (unsigned)day * 13) % 200000);
        memset(&ev, 0, sizeof(ev));
        ev.type = RK_EV_INSPECTION_FILED;
        ev.ts = planned - H;
        ev.planned_at = planned;
        ev.task_id = task;
        ev.unit_id = unit;
        ev.enterprise_id = ent;
        ev.officers = offs;
        ev.n_officers = 2;
        rk__ind_event(ind, &ev);
        ev.type = RK_EV_INSPECTION_SCANNED;
        ev.ts = planned + H;
        rk__ind_event(ind, &ev);
        ev.type = RK_EV_INSPECTION_RATED;
        ev.ts = planned + 3 * H;
        ev.score = 4 + (int)(o % 2);
        rk__ind_event(ind, &ev);
        (*nfilings)++;
    }
}

int main(int argc, char **argv)
{
    unsigned units = argc > 2 ? (unsigned)atoi(argv[1]) : 2000;
    unsigned officers = argc > 2 ? (unsigned)atoi(argv[2]) : 40000;
    size_t mem_u, mem_uo, mem_f, ents, tasks;
    unsigned long nfilings = 0;
    rk__ind *a = mk(), *b = mk(), *c = mk();
    int d;

    if (a == NULL || b == NULL || c == NULL || units == 0 || officers < 2) {
        fprintf(stderr, "usage: indicators [UNITS OFFICERS]\n");
        return 1;
    }
    for (d = 0; d < DAYS; d++) {
        rk__ind_advance(a, T0 + d * DAY + 8 * H);
        rk__ind_advance(b, T0 + d * DAY + 8 * H);
        rk__ind_advance(c, T0 + d * DAY + 8 * H);
        unit_days(a, units, d);
        unit_days(b, units, d);
        officer_days(b, units, officers, d);
        filing_days(c, units, officers, d, &nfilings);
    }
    mem_u = rk__ind_memory(a, &ents, NULL);
    printf("indicators memory, %u units, %u officers, %d days of window\n", units, officers,
           DAYS);
    printf("  units     %8.1f MB  %6.0f bytes per unit     (documented: about 2,700 for a "
           "unit active every day)\n", (double)mem_u / 1e6, (double)mem_u / units);
    mem_uo = rk__ind_memory(b, &ents, NULL);
    printf("  officers  %8.1f MB  %6.0f bytes per officer  (documented: about 1,160 for an "
           "officer active every third day)\n", (double)mem_uo / 1e6,
           (double)(mem_uo - mem_u) / officers);
    mem_f = rk__ind_memory(c, &ents, &tasks);
    printf("  filings   %8.1f MB  %lu filings, %zu keys, %zu tasks: %.0f bytes per filing "
           "with its keys' share (documented: ~120 per filing plus its id, 40 per key and "
           "enterprise)\n", (double)mem_f / 1e6, nfilings, ents, tasks,
           (double)mem_f / (double)nfilings);
    rk__ind_free(a);
    rk__ind_free(b);
    rk__ind_free(c);
    return 0;
}

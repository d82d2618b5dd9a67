/* indicators_int.h - the indicators module's records, shared by its two
 * files only: indicators.c (counting, expiry, reading) and
 * indicators_snap.c (the checkpoint section, both formats). Nothing else
 * includes it.
 *
 * Ids are held once. A unit, officer or region id is the key of its
 * `ent` (which never goes away), and tasks and cases point at their ents;
 * enterprise and joint ids are interned (`istr`, reference-counted, freed
 * with the last task or pair that names them). Tasks, cases, pairs and
 * ents sit in intrusive hash tables (rk_itab) with their hash cached, so a
 * lookup hashes the id once and compares strings only on a hash match. */
#ifndef RISKD_INDICATORS_INT_H
#define RISKD_INDICATORS_INT_H

#include "riskd/kit.h"
#include "indicators.h"

#define IND_DAY_MS INT64_C(86400000)
#define IND_EMPTY INT32_MIN
#define IND_NO_DAY (INT32_MIN / 2)  /* now_day before any time: no underflow */
#define IND_MAX_ENTS 64             /* keys an event counts for */
#define IND_NWRITTEN 5              /* the window and the four slots */

typedef struct ind_day {
    int32_t day;
    rk__ind_counts n;
} ind_day;

/* A key: unit, officer, region or `all`. */
typedef struct ind_ent {
    struct ind_ent *next;           /* ents table link */
    uint64_t h;
    uint32_t idx;                   /* creation order (ind->byidx) */
    uint8_t scope;
    bool listed;                    /* on the dirty list */
    uint16_t ndays, capdays;
    int32_t mon[2], qtr[2];         /* slot periods, IND_EMPTY when unused */
    rk__ind_counts m[2], q[2];
    ind_day *days;                  /* sorted by day */
    int64_t last_update;            /* event time */
    uint32_t written[IND_NWRITTEN]; /* digest last taken: the window, mon[0], mon[1],
                                     * qtr[0], qtr[1] (0: not taken) */
    char key[];
} ind_ent;

/* A month or quarter slot that left its key (a newer period took it)
 * with figures not taken yet: its final hash, for the next write. */
typedef struct ind_final {
    ind_ent *e;
    rk__ind_counts n;
    int64_t last_update;
    int32_t idx;                    /* the month or the quarter */
    bool quarter;
} ind_final;

/* An interned enterprise or joint id. */
typedef struct ind_str {
    struct ind_str *next;
    uint64_t h;
    uint32_t refs;
    uint32_t idx;                   /* its slot in ind->strv */
    char s[];
} ind_str;

typedef struct ind_task {
    struct ind_task *next;
    uint64_t h;
    int64_t planned_at;             /* INT64_MIN: not filed yet */
    int64_t scan_ts;                /* INT64_MIN: not scanned */
    int64_t seen;                   /* latest event time about it */
    ind_ent *unit, *region;
    ind_str *enterprise, *joint;
    ind_ent **off;                  /* distinct officers */
    uint32_t noff;
    uint32_t heap_pos;
    uint8_t kind;
    bool filed, passed, rated;
    uint64_t counted;               /* bit per key of the task (task_ents order) */
    char id[];
} ind_task;

typedef struct ind_case {
    struct ind_case *next;
    uint64_t h;
    int64_t ts;
    ind_ent *unit, *region;
    int64_t fen;
    bool lenient;
    char id[];
} ind_case;

/* (key, enterprise) 'E' or (key, joint id) 'J': what was counted. By the
 * hundred thousand: 40 bytes each, from slabs (no malloc per pair), the
 * key and the id by number. */
typedef struct ind_pair {
    struct ind_pair *next;          /* pairs table link, or the free list */
    uint32_t e;                     /* the key's idx */
    uint32_t x;                     /* the id's idx */
    int32_t last_day;
    int32_t mon[2], qtr[2];
    char kind;
} ind_pair;

#define IND_SLAB 4096               /* pairs per slab */

struct rk__ind {
    rk__ind_settings s;
    int32_t wdays;
    int64_t now;
    int32_t now_day;
    rk_itab ents;                   /* (scope, id) -> ind_ent */
    ind_ent **byidx;                /* every ent by idx */
    size_t nents, capents;
    ind_ent *all;                   /* the `all` key, once made */
    rk_itab strs;                   /* enterprise and joint ids */
    ind_str **strv;                 /* every id by idx (NULL: a free slot) */
    uint32_t *freev;                /* free slots of strv */
    size_t nstrv, capstrv, nfree;
    rk_itab tasks;                  /* task_id -> ind_task */
    rk_itab cases;                  /* case_id -> ind_case */
    rk_itab pairs;                  /* (kind, ent, str) -> ind_pair */
    ind_pair **slabs;               /* the pairs' memory */
    size_t nslabs;
    ind_pair *pfree;                /* free pairs */
    rk_map unit_region;             /* unit_id -> region (char *) */
    rk_heap deadlines;              /* filed tasks not passed, by deadline */
    ind_ent **dirty;
    size_t ndirty, capdirty;
    size_t day_bytes;               /* bytes of all day buckets */
    size_t rec_bytes;               /* bytes of tasks, cases, pairs, strs, ents */
    uint64_t expired_amendments;    /* amendments of records already dropped */
    int64_t swept;                  /* the horizon of the last sweep */
    ind_final *finals;              /* final hashes to take (indicators.c, Writing) */
    size_t nfinals, capfinals;
    ind_final *sent;                /* those the last collect took */
    size_t nsent, capsent;
    bool no_finals;                 /* nobody writes (a replay): none kept */
    uint64_t finals_dropped;        /* past the bound, while nobody wrote */
    int64_t mday;                   /* month_of's last day (INT64_MIN: none) */
    int32_t mmon;                   /* and its month */
};

/* indicators.c, for indicators_snap.c */
ind_ent *rk__ind_ent(rk__ind *ind, int scope, const char *id, bool create);
ind_str *rk__ind_str(rk__ind *ind, const char *s);      /* +1 reference */
int rk__ind_str_hole(rk__ind *ind);     /* a NULL slot at the end of strv (restore) */
void rk__ind_str_unref(rk__ind *ind, ind_str *x);
ind_task *rk__ind_task(rk__ind *ind, const char *id, bool create);
ind_case *rk__ind_case(rk__ind *ind, const char *id, bool create);
ind_pair *rk__ind_pair(rk__ind *ind, char kind, ind_ent *e, ind_str *x, bool *fresh);
rk__ind_counts *rk__ind_day_slot(rk__ind *ind, ind_ent *e, int32_t day, bool create);
int rk__ind_task_officers(rk__ind *ind, ind_task *t, const char *const *off, size_t n);
void rk__ind_mark(rk__ind *ind, ind_ent *e);
int64_t rk__ind_deadline(const rk__ind *ind, const ind_task *t);
int32_t rk__ind_month_of_day(int64_t day);

#endif

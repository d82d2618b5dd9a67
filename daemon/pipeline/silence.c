/* silence.c - operators' silences, matched when an alert is emitted.
 *
 * An operator (riskctl silence add) stores a silence in the hash
 * riskd:silences: field = silence id, value = a JSON object
 *   {"id", "detector", "rule" (absent: every rule), "match": {subject
 *    field: value, ...} (absent or empty: any subject), "until" (epoch ms,
 *    wall clock), "reason", "author", "created_at"}.
 * The engine re-reads the hash every second (output_live.c), so a silence takes
 * effect without a reload, on every riskd sharing the Redis. An alert is
 * silenced when an active silence (wall now < until) has its detector, its
 * rule if given, and every match field equal to the alert's subject field.
 * A silenced alert is still written to the alert stream, with
 * "silenced": true and "silenced_by": the silence's id, but not published:
 * nothing is lost. The publish script counts the alerts each silence
 * matched (rk__silence_hits_key). Silences compare
 * with the wall clock, so they apply to live runs only (a replay shows what
 * the detectors raise). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define N_FIELDS 6
static const char *const fields[N_FIELDS] = {
    "unit_id", "officer_id", "enterprise_id", "task_id", "case_id", "region"
};

typedef struct silence {
    char *id;                       /* the record's "id" (else its hash field) */
    char *detector;
    char *rule;                     /* NULL: any rule */
    char *match[N_FIELDS];          /* NULL: any value */
    int64_t until;
} silence;

struct rk__silences {
    silence *v;
    size_t n;
};

rk__silences *rk__silences_new(void)
{
    return calloc(1, sizeof(rk__silences));
}

static void clear(rk__silences *s)
{
    size_t i, k;
    for (i = 0; i < s->n; i++) {
        free(s->v[i].id);
        free(s->v[i].detector);
        free(s->v[i].rule);
        for (k = 0; k < N_FIELDS; k++)
            free(s->v[i].match[k]);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

void rk__silences_free(rk__silences *s)
{
    if (s == NULL)
        return;
    clear(s);
    free(s);
}

/* Every match key must be a subject field and every value a string. */
static bool match_valid(json_t *m)
{
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        size_t k;
        bool known = false;
        for (k = 0; k < N_FIELDS; k++)
            known |= strcmp(key, fields[k]) == 0;
        if (!known || !json_is_string(v))
            return false;
    }
    return true;
}

static char *dup_str(json_t *j)
{
    return json_is_string(j) ? strdup(json_string_value(j)) : NULL;
}

size_t rk__silences_load(rk__silences *s, const char *const *values,
                         const size_t *lens, size_t n)
{
    return rk__silences_load_ids(s, NULL, NULL, values, lens, n);
}

size_t rk__silences_load_ids(rk__silences *s, const char *const *ids, const size_t *id_lens,
                             const char *const *values, const size_t *lens, size_t n)
{
    silence *v = calloc(n ? n : 1, sizeof(*v));
    size_t i, k, got = 0;

    if (v == NULL)
        return s->n;                /* keep the old set */
    for (i = 0; i < n; i++) {
        json_t *o = json_loadb(values[i], lens[i], 0, NULL), *m, *until;
        silence *x = &v[got];
        if (o == NULL)
            continue;
        until = json_object_get(o, "until");
        m = json_object_get(o, "match");
        x->detector = dup_str(json_object_get(o, "detector"));
        x->rule = dup_str(json_object_get(o, "rule"));
        if (x->detector == NULL || !json_is_integer(until) ||
            (m != NULL && !json_is_object(m))) {
            free(x->detector);
            free(x->rule);
            memset(x, 0, sizeof(*x));
            json_decref(o);
            continue;
        }
        x->until = json_integer_value(until);
        if (m != NULL && !match_valid(m)) {
            /* A typo must not widen a silence to "any value": skip it. */
            free(x->detector);
            free(x->rule);
            memset(x, 0, sizeof(*x));
            json_decref(o);
            continue;
        }
        for (k = 0; k < N_FIELDS; k++)
            x->match[k] = m ? dup_str(json_object_get(m, fields[k])) : NULL;
        x->id = dup_str(json_object_get(o, "id"));
        if (x->id == NULL && ids != NULL)
            x->id = strndup(ids[i], id_lens[i]);
        got++;
        json_decref(o);
    }
    clear(s);
    s->v = v;
    s->n = got;
    return got;
}

bool rk__silences_match(const rk__silences *s, const char *detector,
                        const rk_alert *a, int64_t now_wall)
{
    return rk__silences_which(s, detector, a, now_wall) != NULL;
}

const char *rk__silences_which(const rk__silences *s, const char *detector,
                               const rk_alert *a, int64_t now_wall)
{
    const char *subj[N_FIELDS] = {a->subject.unit_id, a->subject.officer_id,
                                  a->subject.enterprise_id, a->subject.task_id,
                                  a->subject.case_id, a->subject.region};
    size_t i, k;

    for (i = 0; s != NULL && i < s->n; i++) {
        const silence *x = &s->v[i];
        bool ok = now_wall < x->until && strcmp(x->detector, detector) == 0 &&
                  (x->rule == NULL || strcmp(x->rule, a->rule) == 0);
        for (k = 0; ok && k < N_FIELDS; k++)
            if (x->match[k] != NULL && (subj[k] == NULL || strcmp(x->match[k], subj[k]) != 0))
                ok = false;
        if (ok)
            return x->id != NULL ? x->id : "";
    }
    return NULL;
}

size_t rk__silences_count(const rk__silences *s)
{
    return s ? s->n : 0;
}

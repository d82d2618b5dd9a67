/* entries.c - a stream's entries in memory: entry ids parsed, the batch
 * buffers swapped and cleared, and the ids recorded for acknowledgement.
 * Plain data work, below every other file of the engine. */
#include <errno.h>

#include "engine_int.h"

int rk__parse_entry_id(const char *s, size_t len, rk_entry_ref *ref)
{
    uint64_t ms = 0, seq = 0;
    size_t i = 0;
    int digits = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        ms = ms * 10 + (uint64_t)(s[i] - '0');
    if (digits == 0 || digits > 19 || i >= len || s[i] != '-')
        return -1;
    for (i++, digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
        seq = seq * 10 + (uint64_t)(s[i] - '0');
    if (digits == 0 || digits > 19 || i != len)
        return -1;
    ref->ms = ms;
    ref->seq = seq > UINT32_MAX ? UINT32_MAX : (uint32_t)seq;
    return 0;
}

/* The buffer is used up: the batch read ahead becomes the buffer, and the
 * old buffer's storage waits for the next batch. */
void rk__take_next(stream_state *s)
{
    entry *b = s->buf;
    char *a = s->arena;
    size_t cap = s->cap, acap = s->arena_cap;
    s->buf = s->nbuf;
    s->cap = s->ncap;
    s->arena = s->narena;
    s->arena_cap = s->narena_cap;
    s->n = s->nn;
    s->pos = 0;
    s->head_state = 0;
    s->nbuf = b;
    s->ncap = cap;
    s->narena = a;
    s->narena_cap = acap;
    s->nn = 0;
}

void rk__clear_buffer(stream_state *s)
{
    size_t i;
    for (i = s->pos; i < s->n; i++)
        s->buf[i].data = NULL;
    for (i = 0; i < s->nn; i++)
        s->nbuf[i].data = NULL;
    s->n = s->pos = s->nn = 0;
    s->head_state = 0;
}

/* Record entry id "<ms>-<seq>" for the next acknowledgement. -1 when out
 * of memory or the id is not a stream entry id (Redis gives no other). */
int rk__ack_push(stream_state *s, const char *id)
{
    char *end;
    ack_id a;

    if (!(id[0] >= '0' && id[0] <= '9'))
        return -1;
    errno = 0;
    a.ms = strtoull(id, &end, 10);
    if (*end != '-' || !(end[1] >= '0' && end[1] <= '9'))
        return -1;
    a.seq = strtoull(end + 1, &end, 10);
    if (*end != '\0' || errno != 0)
        return -1;
    if (s->nacks == s->acks_cap) {
        size_t ncap = s->acks_cap ? s->acks_cap * 2 : 256;
        ack_id *na = realloc(s->acks, ncap * sizeof(*na));
        if (na == NULL)
            return -1;
        s->acks = na;
        s->acks_cap = ncap;
    }
    s->acks[s->nacks++] = a;
    return 0;
}

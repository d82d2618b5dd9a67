/* prom.c - Prometheus text exposition from numbers, in one pass.
 *
 * A renderer declares a family (its name and HELP/TYPE lines) and then its samples;
 * families are kept in the order first declared, each with its HELP/TYPE
 * header once and its samples after it, so several sources (the engines of
 * several partitions) can add to the same families and the result is
 * still valid exposition text. With a label set (rk__prom_label, say
 * partition="2") every sample added gets it first among its labels. The
 * text is written out once, by rk__prom_finish: nothing is rendered and
 * then read back. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "riskd/kit.h"
#include "internal.h"

void rk__prom_label(rk__prom *m, const char *label)
{
    snprintf(m->label, sizeof(m->label), "%s", label ? label : "");
}

void rk__prom_family(rk__prom *m, const char *name, const char *head)
{
    size_t i;
    for (i = 0; i < m->n; i++)
        if (strcmp(m->fam[i].name, name) == 0) {
            m->cur = &m->fam[i];
            return;
        }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        rk__prom_family_t *f = realloc(m->fam, nc * sizeof(*f));
        if (f == NULL) {
            m->cur = NULL;
            return;
        }
        m->fam = f;
        m->cap = nc;
    }
    m->cur = &m->fam[m->n];
    memset(m->cur, 0, sizeof(*m->cur));
    m->cur->name = strdup(name);
    if (m->cur->name == NULL) {
        m->cur = NULL;
        return;
    }
    m->n++;
    rk_buf_put_bytes(&m->cur->text, head, strlen(head));
}

void rk__prom_sample(rk__prom *m, const char *name, const char *fmt, ...)
{
    char rest[1024];
    va_list ap;
    rk_buf *b;
    if (m->cur == NULL)
        return;
    b = &m->cur->text;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);
    rk_buf_put_bytes(b, name, strlen(name));
    if (m->label[0] != '\0') {
        rk_buf_put_bytes(b, "{", 1);
        rk_buf_put_bytes(b, m->label, strlen(m->label));
        if (rest[0] == '{') {
            rk_buf_put_bytes(b, ",", 1);
            rk_buf_put_bytes(b, rest + 1, strlen(rest + 1));
        } else {
            rk_buf_put_bytes(b, "}", 1);
            rk_buf_put_bytes(b, rest, strlen(rest));
        }
    } else {
        rk_buf_put_bytes(b, rest, strlen(rest));
    }
    rk_buf_put_bytes(b, "\n", 1);
}

void rk__prom_finish(rk__prom *m, rk_buf *out)
{
    size_t i;
    for (i = 0; i < m->n; i++) {
        if (out != NULL)
            rk_buf_put_bytes(out, m->fam[i].text.data, m->fam[i].text.len);
        rk_buf_free(&m->fam[i].text);
        free(m->fam[i].name);
    }
    free(m->fam);
    memset(m, 0, sizeof(*m));
}

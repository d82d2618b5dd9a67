/* readerr.c - reads that Redis refuses.
 *
 * A read of the input streams can be answered with an error while the
 * connection is fine: an ACL user without +xreadgroup, say ("NOPERM ...",
 * or "ERR The user executing the script can't run this command" from the
 * fenced read's script). The engine retries every READ_RETRY_MS; this file
 * keeps what the operator needs to see:
 *
 *   the error   kept until a read succeeds; while it is set the engine is
 *               not healthy (riskd_up 0) and /healthz says "refused",
 *               quoting it (rk__engine_read_error).
 *   the count   riskd_reads_refused_total.
 *   the log     the first refusal in full, then at most one summary a
 *               minute ("N reads refused in the last 60 s: ..."), and one
 *               line when reads work again. */
#include "engine_int.h"

#define READ_ERR_LOG_MS 60000       /* a summary of refused reads at most this often */

void rk__read_err_init(rk__engine *e)
{
    rk__logrl_init(&e->read_rl, READ_ERR_LOG_MS);
}

void rk__read_refused(rk__engine *e, const char *what, const char *err)
{
    char text[RK_LOGRL_TEXT];
    int64_t now = rk__wall_ms();

    snprintf(text, sizeof(text), "Redis refuses to read the input streams (%s): %s", what,
             err ? err : "(no message)");
    snprintf(e->read_err, sizeof(e->read_err), "%s", text);
    e->read_refusals++;
    e->reads_refused_total++;
    if (rk__logrl_hit(&e->read_rl, rk__logbudget_global(), now, text))
        rk__log(RK_LOG_ERR, "%s; nothing is consumed, retrying every %d ms", text,
                READ_RETRY_MS);
}

void rk__read_ok(rk__engine *e)
{
    if (e->read_err[0] == '\0')
        return;
    rk__log(RK_LOG_NOTICE, "reading the input streams works again (%llu read(s) refused)",
            (unsigned long long)e->read_refusals);
    e->read_err[0] = '\0';
    e->read_refusals = 0;
    rk__read_err_init(e);           /* forget what is held */
}

void rk__read_err_flush(rk__engine *e, int64_t now)
{
    char first[RK_LOGRL_TEXT];
    uint64_t held;
    int64_t elapsed;

    if (rk__logrl_flush(&e->read_rl, rk__logbudget_global(), now, &held, &elapsed, first,
                        sizeof(first)))
        rk__log(RK_LOG_ERR, "%llu more read(s) refused in the last %lld s, the first: %s",
                (unsigned long long)held, (long long)((elapsed + 999) / 1000), first);
}

const char *rk__engine_read_error(const rk__engine *e)
{
    return e->read_err[0] != '\0' ? e->read_err : NULL;
}

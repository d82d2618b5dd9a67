/* logrl.c - rate limits for log lines that input can trigger.
 *
 * Whatever arrives on the streams (a million malformed entries, a producer
 * that misspells a type in every event, a nightly batch two days late), the
 * log must stay readable: a few lines a second at most. Two pieces do that,
 * both pure (the caller passes the wall time, so tests inject a clock):
 *
 *   rk__logrl      one category of lines (invalid entries, one unknown type,
 *                  late events ...): at most one line per `window`. An
 *                  occurrence is logged in full when the window since the
 *                  last line has passed and nothing is held; otherwise it is
 *                  held: counted, and the first held one kept as text. Once
 *                  the window has passed, rk__logrl_flush hands the caller
 *                  one summary of everything held ("41,233 entries
 *                  dead-lettered in the last 10 s, first error: ..."). So a
 *                  category writes at most one line per window, and nothing
 *                  held is forgotten: it is summarised at the next flush.
 *   rk__logbudget  a token bucket shared by every category of the process
 *                  (rk__logbudget_global: 2 lines a second, bursts of 10),
 *                  so many categories at once (a hundred new unknown types)
 *                  still give a few lines a second. A line the budget
 *                  refuses is held like any other and comes out in a later
 *                  summary.
 *
 * The wall clock may step back (NTP): a limiter then restarts its window
 * from the earlier time instead of staying silent until the clock catches
 * up, and the bucket refills from the new time. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

void rk__logbudget_init(rk__logbudget *b, double rate, double burst)
{
    b->rate = rate;
    b->burst = burst;
    b->tokens = burst;
    b->at = INT64_MIN;
}

bool rk__logbudget_take(rk__logbudget *b, int64_t now)
{
    if (b->at == INT64_MIN || now < b->at) {
        b->at = now;
    } else if (now > b->at) {
        b->tokens += (double)(now - b->at) / 1000.0 * b->rate;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->at = now;
    }
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

rk__logbudget *rk__logbudget_global(void)
{
    static rk__logbudget g;
    static bool init;
    if (!init) {
        rk__logbudget_init(&g, RK_LOGBUDGET_RATE, RK_LOGBUDGET_BURST);
        init = true;
    }
    return &g;
}

void rk__logrl_init(rk__logrl *rl, int64_t window)
{
    memset(rl, 0, sizeof(*rl));
    rl->window = window;
    rl->last = INT64_MIN;
}

/* Has the window since the last line passed at now? */
static bool window_passed(rk__logrl *rl, int64_t now)
{
    if (rl->last == INT64_MIN)
        return true;
    if (now < rl->last)
        rl->last = now;             /* the clock stepped back: restart */
    return now - rl->last >= rl->window;
}

bool rk__logrl_hit(rk__logrl *rl, rk__logbudget *b, int64_t now, const char *text)
{
    if (rl->held == 0 && window_passed(rl, now) &&
        (b == NULL || rk__logbudget_take(b, now))) {
        rl->last = now;
        return true;
    }
    if (rl->held == 0) {
        snprintf(rl->first, sizeof(rl->first), "%s", text ? text : "");
        rl->held_since = now;
    }
    rl->held++;
    return false;
}

bool rk__logrl_flush(rk__logrl *rl, rk__logbudget *b, int64_t now, uint64_t *held,
                     int64_t *elapsed, char *first, size_t len)
{
    int64_t since;
    if (rl->held == 0 || !window_passed(rl, now) ||
        (b != NULL && !rk__logbudget_take(b, now)))
        return false;
    since = rl->last != INT64_MIN ? rl->last : rl->held_since;
    *held = rl->held;
    *elapsed = now > since ? now - since : 0;
    snprintf(first, len, "%s", rl->first);
    rl->held = 0;
    rl->first[0] = '\0';
    rl->last = now;
    return true;
}

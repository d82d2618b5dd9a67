/* daemon/lib/buf.c - printf-formatted text appended to an rk_buf.
 *
 * The metrics of the engine, the input log and the node are rendered as
 * Prometheus text into one growing rk_buf (include/riskd/detector.h); this is
 * the one formatting helper they share. A line longer than 1023 bytes is
 * cut there. */
#include <stdarg.h>
#include <stdio.h>

#include "riskd/kit.h"
#include "internal.h"

void rk__buf_printf(rk_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        rk_buf_put_bytes(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* log.c - one line per thing worth logging, to stderr.
 *
 * Under systemd (JOURNAL_STREAM set, stderr connected to the journal) each
 * line starts with a "<N>" syslog priority so journald keeps the level and
 * adds its own timestamp. Otherwise a line is "<RFC 3339 time> <LEVEL>
 * <message>". Messages never contain a newline: any control character is
 * replaced by a space, so one call is one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static rk_log_level min_level = RK_LOG_INFO;
static int journal;                 /* stderr is the journal */

static const char *const level_names[] = {"DEBUG", "INFO", "NOTICE", "WARNING", "ERR"};
static const int level_prio[] = {7, 6, 5, 4, 3};

/* Decide once whether stderr is the journal: JOURNAL_STREAM holds
 * "<dev>:<inode>" of the journal's socket, compared with stderr's. */
void rk__log_init(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    journal = 0;
    if (js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
        fstat(2, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        journal = 1;
}

void rk__log_set_level(rk_log_level min)
{
    min_level = min;
}

void rk__vlog(rk_log_level level, const char *prefix, const char *fmt, va_list ap)
{
    char msg[1024], ts[40];
    size_t i;

    if (level < min_level)
        return;
    if (level > RK_LOG_ERR)
        level = RK_LOG_ERR;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    for (i = 0; msg[i] != '\0'; i++)
        if ((unsigned char)msg[i] < 0x20)
            msg[i] = ' ';
    if (journal) {
        fprintf(stderr, "<%d>%s%s\n", level_prio[level], prefix ? prefix : "", msg);
    } else {
        rk__format_rfc3339(rk__wall_ms(), 0, ts, sizeof(ts));
        fprintf(stderr, "%s %s %s%s\n", ts, level_names[level],
                prefix ? prefix : "", msg);
    }
}

void rk__log(rk_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rk__vlog(level, NULL, fmt, ap);
    va_end(ap);
}

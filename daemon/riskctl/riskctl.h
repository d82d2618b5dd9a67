/* daemon/riskctl/riskctl.h - what riskctl's files share (the program's
 * own header; the library's prototypes are in daemon/internal.h). */
#ifndef RISKCTL_H
#define RISKCTL_H

#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskd/kit.h"
#include "internal.h"

#define DEFAULT_CONFIG   "/etc/riskd/riskd.json"
#define SILENCES_KEY     RK_SILENCES_KEY    /* hash and channel */
#define REPLY_TIMEOUT_S  10
#define MAX_MATCH        16

/* Exit codes. */
#define EX_OK       0
#define EX_FAIL     1                       /* error, refusal, bad usage */
#define EX_REDIS    2                       /* cannot reach Redis (every command) */

/* Options, one bit each, so every subcommand can refuse the ones it does
 * not take. */
enum {
    O_DETECTOR = 1 << 0, O_RULE = 1 << 1, O_MATCH = 1 << 2, O_UNTIL = 1 << 3,
    O_REASON = 1 << 4, O_AUTHOR = 1 << 5, O_SEVERITY = 1 << 6, O_FROM = 1 << 7,
    O_COUNT = 1 << 8, O_ALL = 1 << 9, O_REDIS = 1 << 10,
    O_OPEN = 1 << 11, O_UNIT = 1 << 12, O_SINCE = 1 << 13, O_JSON = 1 << 14,
    O_BY = 1 << 15, O_NOTE = 1 << 16, O_URL = 1 << 17, O_INTERVAL = 1 << 18,
    O_METRICS = 1 << 19, O_DRY_RUN = 1 << 20, O_STREAM = 1 << 21
};

typedef struct opts {
    const char *config;             /* -c, or NULL */
    const char *host, *password, *user;
    int port;                       /* 0 = from the configuration */
    int db;                         /* -1 = from the configuration */
    const char *detector, *rule, *severity, *from, *until, *reason, *author;
    long long count;                /* 0 = follow for ever */
    const char *match[MAX_MATCH];
    size_t n_match;
    int all;
    int open, json;                 /* alerts --open, --json */
    const char *unit, *since;       /* alerts --unit, --since */
    const char *by, *note;          /* ack, close */
    const char *url, *metrics;      /* forward --url, --metrics */
    int64_t interval;               /* forward --interval, ms (0 = default) */
    int dry_run;                    /* silence add --dry-run */
    const char *stream;             /* dead --stream */
    unsigned given;                 /* O_* bits seen */
} opts;

typedef struct conn {
    redisContext *c;
    char host[256];
    int port;
    const char *password, *user;
    int db;
} conn;

/* common.c */
/* Print "riskctl: <message>" and a newline to stderr. */
void rk__ctl_errx(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
void rk__ctl_put_clean(FILE *f, const char *s);
int rk__ctl_is_name(const char *s);
int rk__ctl_load_config(const opts *o, rk__config **cfg);
int rk__ctl_reply_ok(const conn *k, const redisReply *r, const char *what);
/* The exit code after a failed command on k: EX_REDIS when the connection
 * is gone (hiredis's error set: EOF, reset, timeout), else EX_FAIL. */
int rk__ctl_fail_code(const conn *k);
int rk__ctl_conn_open(conn *k, char *err, size_t errlen);
int rk__ctl_conn_init(conn *k, const rk__config *cfg, const opts *o);
void rk__ctl_conn_close(conn *k);

/* The acting user of an audited change: opt when given, else $SUDO_USER,
 * $USER, "unknown". */
const char *rk__ctl_actor(const char *opt);
/* 2 * nbytes random hex digits (and a NUL) from /dev/urandom into out;
 * nbytes at most 32. 0, or -1 when /dev/urandom cannot be read. */
int rk__ctl_random_hex(char *out, size_t nbytes);

/* ctlread.c: readers the commands share (indicators, report, sample, alerts). */
/* The figures of an indicator hash (riskd(8), INDICATORS), in this order. */
enum {
    RK_CF_FILINGS, RK_CF_UNFILED, RK_CF_SBD, RK_CF_DLP, RK_CF_SCANNED, RK_CF_RATED,
    RK_CF_RATINGS, RK_CF_BAD, RK_CF_COUNTED, RK_CF_ENTERPRISES, RK_CF_OPENED, RK_CF_DECIDED,
    RK_CF_LENIENT, RK_CF_COMPLAINTS, RK_CF_REVIEWS, RK_CF_CORRECTIONS, RK_CF_OPEN_CRIT,
    RK_CF_OPEN_WARN, RK_CF_OPEN_INFO, RK_CF_N
};
extern const char *const rk__ctl_ind_fields[RK_CF_N];
/* The rates: name, numerator, denominator (-1: filings + unfiled). */
typedef struct rk__ctl_rate { const char *name; int num, den; } rk__ctl_rate;
#define RK_CTL_NRATES 7
extern const rk__ctl_rate rk__ctl_rates[RK_CTL_NRATES];
/* One key's figures for one period, summed over partitions. */
typedef struct rk__ctl_row {
    char *key;
    const char *name;               /* from the names list, or NULL */
    long long n[RK_CF_N];
    double fines;
    char from[40], to[40], updated[40];
} rk__ctl_row;
/* Rate i of r (*null set when its denominator is 0); the index of a rate's
 * name or -1. */
double rk__ctl_rate_of(const rk__ctl_row *r, size_t i, int *null);
int rk__ctl_rate_index(const char *name);
/* The names list stored in Redis, or NULL (none, unreadable: ids shown). */
rk__list *rk__ctl_names_load(conn *k);
/* The label of period (window, month, quarter, previous-month,
 * previous-quarter) from riskd:ind:periods. 0, -1 Redis lost, 1 none yet. */
int rk__ctl_ind_label(conn *k, const char *period, char *label, size_t len);
/* Add the hashes of scope/key/label (every partition) to row: 1 found,
 * 0 none, -1 Redis lost. */
int rk__ctl_ind_read(conn *k, const rk__config *cfg, const char *scope, const char *key,
                     const char *label, rk__ctl_row *row);
/* The same for rows[0..n) (their key set), pipelined; found[i] is the
 * number of hashes found for row i. 0, or -1 Redis lost. */
int rk__ctl_ind_read_many(conn *k, const rk__config *cfg, const char *scope, const char *label,
                          rk__ctl_row *rows, size_t n, int *found);
/* The keys of scope (riskd:ind:keys:<scope>, every partition), malloc'ed;
 * 0, or -1 Redis lost. */
/* The "data" field of every entry of stream from start (an XRANGE bound:
 * "-", or a time in ms) on, read in pages of `page` entries: cb(ud, data,
 * len) for each (entries without one are skipped). EX_OK, EX_REDIS when
 * Redis went away, EX_FAIL when it refused the read. */
int rk__ctl_each_data(conn *k, const char *stream, const char *start, int page,
                      void (*cb)(void *ud, const char *data, size_t len), void *ud);
int rk__ctl_ind_keys(conn *k, const rk__config *cfg, const char *scope, char ***keys,
                     size_t *n);
void rk__ctl_keys_free(char **keys, size_t n);
/* cb(alert) for every alert of the open hash (alerts.open_key); entries
 * that are not JSON objects are reported on stderr. EX_OK or an exit code
 * after printing. */
int rk__ctl_scan_open(conn *k, const rk__config *cfg, void (*cb)(json_t *a, void *ud),
                      void *ud);

/* The commands; each returns the exit code (EX_*). */
int rk__ctl_check(const char *path);                                    /* check.c */
int rk__ctl_indicators(int argc, char **argv);          /* indicators.c: parses argv itself */
int rk__ctl_report(int argc, char **argv);              /* report.c: parses argv itself */
int rk__ctl_sample(int argc, char **argv);              /* sample.c: parses argv itself */
int rk__ctl_tail(const rk__config *cfg, const opts *o);                  /* tail.c */
/* silence.c: rk__ctl_silence_check validates silence add's options
 * without Redis (0, or -1 after printing one line). */
int rk__ctl_silence_check(const rk__config *cfg, const opts *o);
/* o's --detector and --rule against what riskd runs: the built-in table
 * (rules.c) and, when cfg loads plugins, their detectors (any rule name
 * for those: plugins do not declare their rules). 0 (also when neither is
 * given), or -1 after one line naming the bad word and the known ones. */
int rk__ctl_check_names(const rk__config *cfg, const opts *o);
int rk__ctl_silence_add(conn *k, const rk__config *cfg, const opts *o);
int rk__ctl_silence_list(conn *k, const rk__config *cfg, const opts *o);
int rk__ctl_silence_expire(conn *k, const rk__config *cfg, const opts *o, const char *id);
int rk__ctl_status(const rk__config *cfg, const opts *o);                /* status.c */
int rk__ctl_alerts(conn *k, const rk__config *cfg, const opts *o);      /* alerts.c */
int rk__ctl_act(conn *k, const rk__config *cfg, const opts *o, const char *id, int closing);
int rk__ctl_forward(const rk__config *cfg, const opts *o);               /* forward.c */
/* dead.c: argv[0..argc) are the words after "dead" (list, show ID,
 * count; none: list). */
int rk__ctl_dead(const rk__config *cfg, const opts *o, int argc, char **argv);
/* time.c: --since/--from/--until values. */
/* Parse s, for option opt, as an RFC 3339 time or a duration before now
 * (2h: now minus 2 hours). Stores epoch ms into *out and returns 0, or
 * prints "riskctl: OPT: expected <also>an RFC 3339 time or a duration
 * ..., got 'S'" and returns -1 (also: what else opt takes, or NULL). */
int rk__ctl_parse_past(const char *opt, const char *also, const char *s, int64_t now,
                       int64_t *out);
/* Parse s, for option opt, as a whole number from min to max into *out:
 * 0, or -1 after printing what was expected and what was given. */
int rk__ctl_parse_int(const char *opt, const char *s, int min, int max, int *out);
/* The options every command that reads Redis takes for its address and
 * credentials: -c/--config, --host, -p/--port, -a/--password, -n/--db,
 * --user. RK_CTL_CONN_LONGOPTS goes in a command's getopt_long table (its
 * own long-only values start at 300) with "c:p:a:n:" in the short ones;
 * rk__ctl_conn_opt() takes one: 1 taken into *o, 0 not one of these, -1
 * a bad value (said on stderr). */
enum { RK_CTL_L_HOST = 290, RK_CTL_L_USER };
#define RK_CTL_CONN_LONGOPTS                                                          \
    {"config", required_argument, NULL, 'c'},                                         \
    {"host", required_argument, NULL, RK_CTL_L_HOST},                                 \
    {"port", required_argument, NULL, 'p'},                                           \
    {"password", required_argument, NULL, 'a'},                                       \
    {"db", required_argument, NULL, 'n'},                                             \
    {"user", required_argument, NULL, RK_CTL_L_USER}
int rk__ctl_conn_opt(opts *o, int opt, const char *arg);
/* True when s is a stream entry id: "ms" or "ms-seq" in decimal. */
int rk__ctl_is_entry_id(const char *s);
/* lists.c: argv[0..argc) are the words after "lists" (load KIND FILE,
 * show KIND); the help text of riskctl lists. */
int rk__ctl_lists(const opts *o, int argc, char **argv);
void rk__ctl_lists_help(FILE *f);

#endif

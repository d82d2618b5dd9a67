/* daemon/riskctl/main.c - riskctl, the operator's command line for riskd.
 *
 *   riskctl check [FILE]                 validate a configuration (riskd -t)
 *   riskctl tail [--detector D] [--severity S] [--from ID|TIME] [--count N]
 *   riskctl silence add --detector D [--rule R] [--match field=value]...
 *                       --until T --reason TEXT [--author NAME] [--dry-run]
 *   riskctl silence list [--all]
 *   riskctl silence expire ID [--author NAME]
 *   riskctl status
 *   riskctl alerts [--open] [--unit ID] [--detector D] [--rule R] [--severity S]
 *                  [--since TIME] [--json]
 *   riskctl ack ID --by NAME [--note TEXT]
 *   riskctl close ID --by NAME [--note TEXT]
 *   riskctl forward [--url URL] [--interval DURATION] [--metrics ADDR]
 *   riskctl lists load KIND FILE [--author NAME]
 *   riskctl lists show KIND [--json]
 *   riskctl indicators | report | sample ...   (each parses its own options)
 *   riskctl dead [list | show ID | count] [--since TIME] [--stream S] [--json]
 *
 * -h and --help are help everywhere ("riskctl CMD -h": CMD's usage only);
 * every refusal is one line on stderr and exit status 1, an unreachable
 * Redis exit status 2 (EX_* in riskctl.h).
 *
 * It is a short-lived, single-threaded program on hiredis's synchronous
 * API (the daemon's libuv machinery is not used) and links libriskd.a only
 * for the configuration loader, the registry check and the RFC 3339 code.
 * The Redis address, alert stream, input streams, group, checkpoint key
 * and metrics address come from the riskd configuration (-c FILE, default
 * /etc/riskd/riskd.json; the built-in defaults when that file does not
 * exist); --host/-p/-a/--user/-n override the Redis address and credentials.
 *
 * Silences live in the hash riskd:silences (field = a 16-hex-digit random
 * id, value = compact JSON; see riskctl(1)). Every
 * change is one MULTI/EXEC transaction under WATCH of the hash: HSET the
 * record, XADD an entry to the audit stream riskd:audit (trimmed like the
 * daemon's entries, MAXLEN ~ 100000) and PUBLISH the id on the channel
 * riskd:silences for whoever listens; a transaction aborted by a
 * concurrent change is retried. Running daemons re-read the hash every
 * second. Expiring a silence sets its "until" to now and keeps the
 * record.
 *
 * Everything printed from Redis (alerts, silence records) goes through
 * rk__ctl_put_clean(), which replaces control characters, so a crafted alert
 * cannot drive the operator's terminal. Colour is used only when stdout is
 * a terminal and NO_COLOR is not set.
 *
 * Files: main.c (options, dispatch), common.c (messages, configuration,
 * the Redis connection; shared through riskctl.h), one file per command
 * group: check.c, tail.c, silence.c, status.c, alerts.c (alerts, ack,
 * close), forward.c (the Alertmanager forwarder), lists.c, dead.c,
 * indicators.c, report.c, sample.c; ctlread.c holds the readers they
 * share, when.c parses times, durations, entry ids and numbers for all. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "riskctl.h"

/* Each command's synopsis, for "riskctl CMD -h" and (all of them) for
 * "riskctl -h". */
static const struct { const char *cmd, *text; } synopses[] = {
    {"check", "riskctl [options] check [FILE]\n"},
    {"tail", "riskctl [options] tail [--detector D] [--severity S] [--from ID|TIME] [--count N]\n"},
    {"silence", "riskctl [options] silence add --detector D [--rule R] [--match FIELD=VALUE]...\n"
                "                              --until TIME --reason TEXT [--author NAME] [--dry-run]\n"
                "riskctl [options] silence list [--all]\n"
                "riskctl [options] silence expire ID [--author NAME]\n"},
    {"status", "riskctl [options] status\n"},
    {"alerts", "riskctl [options] alerts [--open] [--unit ID] [--detector D] [--rule R]\n"
               "                         [--severity S] [--since TIME] [--json]\n"},
    {"ack", "riskctl [options] ack ID --by NAME [--note TEXT]\n"},
    {"close", "riskctl [options] close ID --by NAME [--note TEXT]\n"},
    {"dead", "riskctl [options] dead [list|count] [--since TIME] [--stream S] [--json]\n"
             "riskctl [options] dead show ID [--json]\n"},
    {"forward", "riskctl [options] forward [--url URL] [--interval DURATION] [--metrics ADDR]\n"},
    {"lists", "riskctl [options] lists load KIND FILE [--author NAME]\n"
              "riskctl [options] lists show KIND [--json]\n"},
    {"indicators", "riskctl [options] indicators [--scope unit|officer|region|all] [--key ID]\n"
                   "                             [--period PERIOD] [--sort FIELD] [--json]\n"},
    {"report", "riskctl [options] report --period month|quarter [--at 2025-09|2025Q3]\n"
               "                         [--scope unit|region|all] [--key ID] [--top N]\n"
               "                         [--lang zh-CN|en] --out FILE.html\n"},
    {"sample", "riskctl [options] sample [--period month|quarter] [--at 2025-09] --seed S\n"
               "                         [--share F] [--kind inspection|case] [--min-fine N]\n"
               "                         [--weighted] [--json]\n"},
};

/* The usage of cmd (every command when cmd is NULL or unknown). */
static void usage_of(FILE *f, const char *cmd)
{
    size_t i, n = sizeof(synopses) / sizeof(synopses[0]);
    const char *one = NULL;         /* the command whose usage alone is shown */
    for (i = 0; cmd != NULL && i < n; i++)
        if (strcmp(cmd, synopses[i].cmd) == 0)
            one = synopses[i].cmd;
    fputs("usage:\n", f);
    for (i = 0; i < n; i++)
        if (one == NULL || one == synopses[i].cmd) {
            const char *t = synopses[i].text;
            while (*t) {            /* indent every line by two */
                size_t l = strcspn(t, "\n");
                fprintf(f, "  %.*s\n", (int)l, t);
                t += l + (t[l] == '\n');
            }
        }
    fputs("options:\n"
          "  -c FILE          riskd configuration: Redis address and keys (default\n"
          "                   " DEFAULT_CONFIG ")\n"
          "  --host HOST, -p/--port PORT, -a/--password PASSWORD, --user USER, -n/--db DB\n"
          "                   Redis address and credentials (override the configuration)\n"
          "  -h, --help       this help (riskctl CMD -h: the help of CMD); --version\n", f);
    if (one == NULL || strcmp(one, "tail") == 0 || strcmp(one, "alerts") == 0 ||
        strcmp(one, "silence") == 0 || strcmp(one, "dead") == 0)
        fputs("TIME is RFC 3339 (2025-03-01T18:00:00+08:00) or a duration (90m, 2h, 7d): before\n"
              "now for --since and --from, after now for --until. tail --from also takes a\n"
              "stream entry id (1740793800000-0; 0 for the whole stream).\n", f);
    if (one == NULL || strcmp(one, "tail") == 0 || strcmp(one, "alerts") == 0)
        fputs("--severity S shows alerts of severity S and above (info < warning < critical).\n", f);
    if (one == NULL || strcmp(one, "silence") == 0)
        fputs("FIELD is one of unit_id, officer_id, enterprise_id, task_id, case_id, region.\n"
              "--dry-run prints how many open alerts the silence would match, and adds nothing.\n", f);
    if (one == NULL || strcmp(one, "dead") == 0)
        fputs("dead lists the dead-letter stream " RK_DEAD_STREAM " grouped by error (default: list);\n"
              "count counts its entries per kind of error; S is an input stream (its key, or\n"
              "scan/case).\n", f);
    fputs("Exit status: 0 done, 1 refused (bad usage or input, unknown id), 2 cannot reach Redis.\n", f);
}

static void usage(FILE *f)
{
    usage_of(f, NULL);
}

/* Wrong words or too many or too few for cmd: one line, as every refusal. */
static void bad_usage(const char *cmd)
{
    if (cmd == NULL)
        rk__ctl_errx("which command? (riskctl -h lists them)");
    else
        rk__ctl_errx("%s: wrong arguments (riskctl %s -h shows its usage)", cmd, cmd);
}

/* Parse a whole decimal number in [min, max] from s into *out. 0 or -1. */
static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ===================================================================
 * main
 * =================================================================== */

/* Refuse the options given that the subcommand `what` does not take
 * (allowed: its O_* bits). Returns 0 or -1 after printing. */
static int only(const opts *o, unsigned allowed, const char *what)
{
    static const char *const names[] = {
        "--detector", "--rule", "--match", "--until", "--reason", "--author",
        "--severity", "--from", "--count", "--all", "--host/-p/-a/--user/-n",
        "--open", "--unit", "--since", "--json", "--by", "--note", "--url", "--interval",
        "--metrics", "--dry-run", "--stream"
    };
    unsigned extra = o->given & ~allowed;
    for (unsigned b = 0; b < sizeof(names) / sizeof(names[0]); b++)
        if (extra & (1u << b)) {
            rk__ctl_errx("%s: %s is not an option of this command", what, names[b]);
            return -1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    enum { L_USER = 256, L_DETECTOR, L_RULE, L_MATCH, L_UNTIL, L_REASON, L_AUTHOR,
           L_SEVERITY, L_FROM, L_COUNT, L_ALL, L_VERSION, L_OPEN, L_UNIT,
           L_SINCE, L_JSON, L_BY, L_NOTE, L_URL, L_INTERVAL, L_METRICS, L_HOST, L_DRY_RUN,
           L_STREAM };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"host", required_argument, NULL, L_HOST},
        {"port", required_argument, NULL, 'p'},
        {"password", required_argument, NULL, 'a'},
        {"db", required_argument, NULL, 'n'},
        {"user", required_argument, NULL, L_USER},
        {"detector", required_argument, NULL, L_DETECTOR},
        {"rule", required_argument, NULL, L_RULE},
        {"match", required_argument, NULL, L_MATCH},
        {"until", required_argument, NULL, L_UNTIL},
        {"reason", required_argument, NULL, L_REASON},
        {"author", required_argument, NULL, L_AUTHOR},
        {"severity", required_argument, NULL, L_SEVERITY},
        {"from", required_argument, NULL, L_FROM},
        {"count", required_argument, NULL, L_COUNT},
        {"all", no_argument, NULL, L_ALL},
        {"open", no_argument, NULL, L_OPEN},
        {"unit", required_argument, NULL, L_UNIT},
        {"since", required_argument, NULL, L_SINCE},
        {"json", no_argument, NULL, L_JSON},
        {"by", required_argument, NULL, L_BY},
        {"note", required_argument, NULL, L_NOTE},
        {"url", required_argument, NULL, L_URL},
        {"interval", required_argument, NULL, L_INTERVAL},
        {"metrics", required_argument, NULL, L_METRICS},
        {"dry-run", no_argument, NULL, L_DRY_RUN},
        {"stream", required_argument, NULL, L_STREAM},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, L_VERSION},
        {NULL, 0, NULL, 0}
    };
    opts o;
    rk__config *cfg = NULL;
    conn k;
    const char *cmd, *sub;
    long long v;
    unsigned allowed;
    int opt, rc, npos, want, help = 0;

    memset(&o, 0, sizeof(o));
    o.db = -1;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++)      /* indicators takes options of its own */
        if (strcmp(argv[i], "indicators") == 0 &&
            (i == 1 || argv[i - 1][0] != '-' || strchr("cpan", argv[i - 1][1]) == NULL ||
             argv[i - 1][2] != '\0'))
            return rk__ctl_indicators(argc, argv);
    for (int i = 1; i < argc; i++)      /* so do report and sample */
        if ((strcmp(argv[i], "report") == 0 || strcmp(argv[i], "sample") == 0) &&
            (i == 1 || argv[i - 1][0] != '-' || strchr("cpan", argv[i - 1][1]) == NULL ||
             argv[i - 1][2] != '\0'))
            return argv[i][0] == 'r' ? rk__ctl_report(argc, argv) : rk__ctl_sample(argc, argv);
    opterr = 0;                         /* our own one-line messages */
    while ((opt = getopt_long(argc, argv, ":c:hp:a:n:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': o.config = optarg; break;
        case L_HOST: o.host = optarg; o.given |= O_REDIS; break;
        case 'a': o.password = optarg; o.given |= O_REDIS; break;
        case L_USER: o.user = optarg; o.given |= O_REDIS; break;
        case 'p':
            if (parse_ll(optarg, 1, 65535, &v) != 0) {
                rk__ctl_errx("--port: expected a port from 1 to 65535, got '%s'", optarg);
                return EX_FAIL;
            }
            o.port = (int)v;
            o.given |= O_REDIS;
            break;
        case 'n':
            if (parse_ll(optarg, 0, 1000000, &v) != 0) {
                rk__ctl_errx("--db: expected a database number, got '%s'", optarg);
                return EX_FAIL;
            }
            o.db = (int)v;
            o.given |= O_REDIS;
            break;
        case L_DETECTOR: o.detector = optarg; o.given |= O_DETECTOR; break;
        case L_RULE: o.rule = optarg; o.given |= O_RULE; break;
        case L_MATCH:
            if (o.n_match == MAX_MATCH) {
                rk__ctl_errx("--match: at most %d", MAX_MATCH);
                return EX_FAIL;
            }
            o.match[o.n_match++] = optarg;
            o.given |= O_MATCH;
            break;
        case L_UNTIL: o.until = optarg; o.given |= O_UNTIL; break;
        case L_REASON: o.reason = optarg; o.given |= O_REASON; break;
        case L_AUTHOR: o.author = optarg; o.given |= O_AUTHOR; break;
        case L_SEVERITY: o.severity = optarg; o.given |= O_SEVERITY; break;
        case L_FROM: o.from = optarg; o.given |= O_FROM; break;
        case L_COUNT:
            if (parse_ll(optarg, 1, INT64_MAX, &v) != 0) {
                rk__ctl_errx("--count: expected a positive number, got '%s'", optarg);
                return EX_FAIL;
            }
            o.count = v;
            o.given |= O_COUNT;
            break;
        case L_ALL: o.all = 1; o.given |= O_ALL; break;
        case L_OPEN: o.open = 1; o.given |= O_OPEN; break;
        case L_UNIT: o.unit = optarg; o.given |= O_UNIT; break;
        case L_SINCE: o.since = optarg; o.given |= O_SINCE; break;
        case L_JSON: o.json = 1; o.given |= O_JSON; break;
        case L_BY: o.by = optarg; o.given |= O_BY; break;
        case L_NOTE: o.note = optarg; o.given |= O_NOTE; break;
        case L_URL: o.url = optarg; o.given |= O_URL; break;
        case L_METRICS: o.metrics = optarg; o.given |= O_METRICS; break;
        case L_INTERVAL: {
            int64_t ms;
            if (rk_kit_parse_duration(optarg, &ms) != 0 || ms < RK_SECOND ||
                ms > RK_DAY) {
                rk__ctl_errx("--interval: expected a duration from 1s to 1d (30s, 1m), got '%s'",
                             optarg);
                return EX_FAIL;
            }
            o.interval = ms;
            o.given |= O_INTERVAL;
            break;
        }
        case L_DRY_RUN: o.dry_run = 1; o.given |= O_DRY_RUN; break;
        case L_STREAM: o.stream = optarg; o.given |= O_STREAM; break;
        case 'h': help = 1; break;
        case L_VERSION:
            printf("riskctl %s (hiredis %d.%d.%d, jansson %s)\n", RK_VERSION,
                   HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, JANSSON_VERSION);
            return EX_OK;
        case ':':
            rk__ctl_errx("%s needs a value (riskctl -h lists the options)", argv[optind - 1]);
            return EX_FAIL;
        default:
            rk__ctl_errx("unknown option %s (riskctl -h lists the options)",
                         optopt ? (char[]){'-', (char)optopt, '\0'} : argv[optind - 1]);
            return EX_FAIL;
        }
    }
    npos = argc - optind;
    cmd = npos > 0 ? argv[optind] : NULL;
    sub = npos > 1 ? argv[optind + 1] : NULL;
    if (help) {
        if (cmd != NULL && strcmp(cmd, "lists") == 0)
            rk__ctl_lists_help(stdout);
        else
            usage_of(stdout, cmd);
        return EX_OK;
    }
    if (cmd != NULL && strcmp(cmd, "lists") == 0)
        return rk__ctl_lists(&o, npos - 1, argv + optind + 1);
    if (cmd == NULL) {
        bad_usage(NULL);
        return EX_FAIL;
    }
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EX_OK;
    }
    if (strcmp(cmd, "check") == 0) {
        const char *path = sub ? sub : o.config ? o.config : DEFAULT_CONFIG;
        if (npos > 2) {
            bad_usage(cmd);
            return EX_FAIL;
        }
        if (only(&o, 0, "check") != 0)
            return EX_FAIL;
        return rk__ctl_check(path);
    }
    if (strcmp(cmd, "tail") == 0 || strcmp(cmd, "status") == 0) {
        int tail = cmd[0] == 't';
        if (npos != 1) {
            bad_usage(cmd);
            return EX_FAIL;
        }
        if (only(&o, O_REDIS | (tail ? O_DETECTOR | O_SEVERITY | O_FROM | O_COUNT : 0),
                 cmd) != 0 || rk__ctl_load_config(&o, &cfg) != 0)
            return EX_FAIL;
        rc = tail ? rk__ctl_tail(cfg, &o) : rk__ctl_status(cfg, &o);
        rk__config_free(cfg);
        return rc;
    }
    if (strcmp(cmd, "alerts") == 0 || strcmp(cmd, "ack") == 0 || strcmp(cmd, "close") == 0) {
        int list = cmd[0] == 'a' && cmd[1] == 'l';
        if (npos != (list ? 1 : 2)) {
            if (!list && npos < 2)
                rk__ctl_errx("%s: which alert? (riskctl %s ID --by NAME)", cmd, cmd);
            else
                bad_usage(cmd);
            return EX_FAIL;
        }
        allowed = list ? O_OPEN | O_UNIT | O_DETECTOR | O_RULE | O_SEVERITY | O_SINCE | O_JSON
                       : O_BY | O_NOTE;
        if (only(&o, O_REDIS | allowed, cmd) != 0 || rk__ctl_load_config(&o, &cfg) != 0)
            return EX_FAIL;
        if (!list && o.by == NULL) {
            rk__ctl_errx("%s: --by NAME is required", cmd);
            rk__config_free(cfg);
            return EX_FAIL;
        }
        if (rk__ctl_conn_init(&k, cfg, &o) != 0) {
            rk__config_free(cfg);
            return EX_REDIS;
        }
        rc = list ? rk__ctl_alerts(&k, cfg, &o)
                  : rk__ctl_act(&k, cfg, &o, sub, strcmp(cmd, "close") == 0);
        rk__ctl_conn_close(&k);
        rk__config_free(cfg);
        return rc;
    }
    if (strcmp(cmd, "dead") == 0) {
        if (only(&o, O_REDIS | O_SINCE | O_STREAM | O_JSON, cmd) != 0 ||
            rk__ctl_load_config(&o, &cfg) != 0)
            return EX_FAIL;
        rc = rk__ctl_dead(cfg, &o, npos - 1, argv + optind + 1);
        rk__config_free(cfg);
        return rc;
    }
    if (strcmp(cmd, "forward") == 0) {
        if (npos != 1) {
            bad_usage(cmd);
            return EX_FAIL;
        }
        if (only(&o, O_REDIS | O_URL | O_INTERVAL | O_METRICS, cmd) != 0 ||
            rk__ctl_load_config(&o, &cfg) != 0)
            return EX_FAIL;
        rc = rk__ctl_forward(cfg, &o);
        rk__config_free(cfg);
        return rc;
    }
    if (strcmp(cmd, "silence") != 0 || sub == NULL) {
        if (strcmp(cmd, "silence") != 0)
            rk__ctl_errx("unknown command \"%s\" (riskctl -h lists them)", cmd);
        else
            bad_usage(cmd);
        return EX_FAIL;
    }
    if (strcmp(sub, "add") == 0) {
        want = 2;
        allowed = O_DETECTOR | O_RULE | O_MATCH | O_UNTIL | O_REASON | O_AUTHOR | O_DRY_RUN;
    } else if (strcmp(sub, "list") == 0) {
        want = 2;
        allowed = O_ALL;
    } else if (strcmp(sub, "expire") == 0) {
        want = 3;
        allowed = O_AUTHOR;
    } else {
        rk__ctl_errx("unknown silence command \"%s\" (add, list, expire)", sub);
        return EX_FAIL;
    }
    if (npos != want) {
        bad_usage(cmd);
        return EX_FAIL;
    }
    if (only(&o, O_REDIS | allowed, "silence") != 0)
        return EX_FAIL;
    if (rk__ctl_load_config(&o, &cfg) != 0)
        return EX_FAIL;
    if (sub[0] == 'a' && rk__ctl_silence_check(cfg, &o) != 0) {
        rk__config_free(cfg);
        return EX_FAIL;
    }
    if (rk__ctl_conn_init(&k, cfg, &o) != 0) {
        rk__config_free(cfg);
        return EX_REDIS;
    }
    if (sub[0] == 'a')
        rc = rk__ctl_silence_add(&k, cfg, &o);
    else if (sub[0] == 'l')
        rc = rk__ctl_silence_list(&k, cfg, &o);
    else
        rc = rk__ctl_silence_expire(&k, cfg, &o, argv[optind + 2]);
    rk__ctl_conn_close(&k);
    rk__config_free(cfg);
    return rc;
}

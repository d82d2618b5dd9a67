/* tests/bench/report.c - riskctl report for a province's quarter.
 *
 *   report -p PORT --riskctl PATH [UNITS ALERTS OPEN]   (default 2000 100000 5000)
 *
 * Fills the Redis on PORT the way riskd and riskctl leave it for a
 * province: the indicator hashes of UNITS units and of `all` for 2025Q3,
 * 2025Q2, 2025-08 and 2025-09 (the current and previous quarter and month
 * riskd writes) with their key index and period labels, ALERTS alerts of
 * the quarter in the alert stream (every detector's rules, Chinese
 * summaries, 1 in 100 retracted later), OPEN open alerts (1 in 10
 * critical), and a names list of the units (riskctl lists load). Then
 * times `riskctl -p PORT report --period quarter --at 2025Q3 --out FILE`
 * (wall time of the process) and prints it next to the budget of 10 s,
 * with the file's size. It reports; it never fails on a slow result. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define BUDGET_S 10.0
#define Q3_START INT64_C(1751299200000)     /* 2025-07-01T00:00:00+08:00 */
#define Q3_MS (INT64_C(92) * 86400000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void drain(redisContext *c, long n)
{
    for (long i = 0; i < n; i++) {
        void *r;
        if (redisGetReply(c, &r) != REDIS_OK) {
            fprintf(stderr, "report bench: Redis: %s\n", c->errstr);
            exit(1);
        }
        freeReplyObject(r);
    }
}

static void hash(redisContext *c, const char *scope, const char *key, const char *label,
                 unsigned long h, long scale)
{
    long filings = scale * (20 + (long)(h % 40)), unfiled = (long)(h % 7) * scale / 4;
    long dlp = filings - scale, sbd = dlp - (long)(h % 5) * scale;
    redisAppendCommand(c,
        "HSET riskd:ind:%s:%s:%s filings %ld unfiled %ld filing_rate 0.9 scanned_by_deadline %ld "
        "deadline_passed %ld scan_rate 0.9 scanned %ld rated %ld rating_rate 0.8 ratings %ld "
        "bad_ratings %ld bad_rating_share 0.1 counted_inspections %ld enterprises %ld "
        "inspections_per_enterprise 1.2 cases_opened %ld cases_decided %ld fines %ld.5 "
        "lenient %ld lenient_share 0.2 complaints %ld reviews %ld corrections %ld "
        "correction_rate 0.3 open_critical 0 open_warning 0 open_info 0 "
        "from 2025-07-01T00:00:00.000+08:00 to 2025-10-01T00:00:00.000+08:00 "
        "updated_at 2025-10-01T00:00:00.000+08:00",
        scope, key, label, filings, unfiled, sbd, dlp, filings - scale, filings / 2, filings / 2,
        (long)(h % 4) * scale, filings - 2 * scale, filings / 2, (long)(h % 9) * scale,
        (long)(h % 8) * scale, (long)(h % 100000) * scale, (long)(h % 3) * scale,
        (long)(h % 6) * scale, (long)(h % 4) * scale, (long)(h % 2) * scale);
}

int main(int argc, char **argv)
{
    static const char *const rules[][3] = {
        {"unfiled_inspection", "scan_without_filing", "warning"},
        {"unfiled_inspection", "reported_without_filing", "critical"},
        {"unfiled_inspection", "filed_not_scanned", "info"},
        {"bad_rating", "bad_rating", "warning"},
        {"bad_rating", "officer_repeated", "critical"},
        {"fine_growth", "growth", "warning"},
        {"complaint_cluster", "cluster", "warning"},
        {"inspection_frequency", "repeat", "warning"},
        {"discretion", "out_of_benchmark", "warning"},
        {"review_correction", "corrections", "warning"},
    };
    static const char *const labels[] = {"2025Q3", "2025Q2", "2025-08", "2025-09"};
    const char *riskctl = NULL;
    long units = 2000, alerts = 100000, open = 5000, pending = 0, pos[3];
    int npos = 0;
    int port = 0, i, st;
    char dir[] = "/tmp/riskd-bench-report-XXXXXX", path[300], cmd[1200];
    redisContext *c;
    double t0, t1;
    FILE *f;
    long sz;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--riskctl") == 0 && i + 1 < argc)
            riskctl = argv[++i];
        else if (argv[i][0] != '-' && npos < 3)
            pos[npos++] = atol(argv[i]);
        else {
            fprintf(stderr, "usage: report -p PORT --riskctl PATH [UNITS ALERTS OPEN]\n");
            return 1;
        }
    }
    if (npos > 0)
        units = pos[0];
    if (npos > 1)
        alerts = pos[1];
    if (npos > 2)
        open = pos[2];
    if (port == 0 || riskctl == NULL || units < 1) {
        fprintf(stderr, "usage: report -p PORT --riskctl PATH [UNITS ALERTS OPEN]\n");
        return 1;
    }
    if (mkdtemp(dir) == NULL)
        return 1;
    c = redisConnect("127.0.0.1", port);
    if (c == NULL || c->err) {
        fprintf(stderr, "report bench: cannot connect to Redis on %d\n", port);
        return 1;
    }
    /* indicators */
    for (long u = 0; u < units; u++) {
        char key[32];
        unsigned long h = (unsigned long)u * 2654435761u;
        snprintf(key, sizeof(key), "U%05ld", u);
        for (i = 0; i < 4; i++)
            hash(c, "unit", key, labels[i], h >> i, i < 2 ? 3 : 1);
        redisAppendCommand(c, "ZADD riskd:ind:keys:unit %lld %s", (long long)Q3_START, key);
        pending += 5;
        if (pending >= 5000) {
            drain(c, pending);
            pending = 0;
        }
    }
    for (i = 0; i < 4; i++) {
        hash(c, "all", "all", labels[i], 7, units * (i < 2 ? 3 : 1));
        redisAppendCommand(c, "ZADD riskd:ind:periods %d %s", i, labels[i]);
        pending += 2;
    }
    drain(c, pending);
    pending = 0;
    /* the quarter's alerts, and retractions of 1 in 100 */
    for (long a = 0; a < alerts; a++) {
        unsigned long h = (unsigned long)a * 2654435761u;
        int r = (int)(h % 10);
        int64_t ts = Q3_START + (int64_t)(h % (unsigned long)Q3_MS);
        time_t secs = (time_t)(ts / 1000 + 8 * 3600);
        struct tm tm;
        char when[40];
        gmtime_r(&secs, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S+08:00", &tm);
        redisAppendCommand(c, "XADD alerts * data {\"id\":\"%032lx\",\"status\":\"firing\","
                           "\"detector\":\"%s\",\"rule\":\"%s\",\"severity\":\"%s\",\"ts\":\"%s\","
                           "\"emitted_at\":\"%s\",\"subject\":{\"unit_id\":\"U%05ld\","
                           "\"officer_id\":\"O%ld\"},\"value\":3,\"threshold\":3,\"summary\":"
                           "\"银川市市场监督管理局第%ld执法大队的执法人员在30天内收到3条差评。\","
                           "\"evidence\":[\"enforce:scan/1740793800000-0\"]}",
                           (unsigned long)a, rules[r][0], rules[r][1], rules[r][2], when, when,
                           (long)(h % (unsigned long)units), (long)(h % 40000), (long)(h % 1000));
        pending++;
        if (a % 100 == 99) {
            redisAppendCommand(c, "XADD alerts * data {\"id\":\"%032lx\",\"status\":\"retracted\","
                               "\"reason\":\"late data\"}", (unsigned long)a);
            pending++;
        }
        if (pending >= 5000) {
            drain(c, pending);
            pending = 0;
        }
    }
    for (long a = 0; a < open; a++) {
        unsigned long h = (unsigned long)(a + 7) * 2654435761u;
        redisAppendCommand(c, "HSET riskd:open o%ld {\"id\":\"o%ld\",\"status\":\"firing\","
                           "\"detector\":\"unfiled_inspection\",\"rule\":\"%s\",\"severity\":\"%s\","
                           "\"ts\":\"2025-09-%02ldT10:00:00+08:00\",\"subject\":{\"unit_id\":"
                           "\"U%05ld\"},\"summary\":\"企业报告了一次未备案的检查。\"}", a, a,
                           a % 10 == 0 ? "reported_without_filing" : "scan_without_filing",
                           a % 10 == 0 ? "critical" : "warning", 1 + (long)(h % 30),
                           (long)(h % (unsigned long)units));
        pending++;
        if (pending >= 5000) {
            drain(c, pending);
            pending = 0;
        }
    }
    drain(c, pending);
    redisFree(c);
    /* the names of the units */
    snprintf(path, sizeof(path), "%s/names.csv", dir);
    if ((f = fopen(path, "w")) == NULL)
        return 1;
    fputs("kind,id,name\n", f);
    for (long u = 0; u < units; u++)
        fprintf(f, "unit,U%05ld,宁夏回族自治区银川市市场监督管理局第%ld执法大队\n", u, u);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s -p %d lists load names %s > /dev/null", riskctl, port, path);
    if (system(cmd) != 0) {
        fprintf(stderr, "report bench: %s failed\n", cmd);
        return 1;
    }

    snprintf(path, sizeof(path), "%s/q3.html", dir);
    snprintf(cmd, sizeof(cmd), "%s -p %d report --period quarter --at 2025Q3 --out %s", riskctl,
             port, path);
    t0 = now_s();
    st = system(cmd);
    t1 = now_s();
    f = fopen(path, "rb");
    sz = -1;
    if (f != NULL) {
        fseek(f, 0, SEEK_END);
        sz = ftell(f);
        fclose(f);
    }
    printf("units=%ld alerts=%ld open=%ld report_s=%.3f budget_s=%.0f html_bytes=%ld exit=%d\n",
           units, alerts, open, t1 - t0, BUDGET_S, sz, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    remove(path);
    snprintf(path, sizeof(path), "%s/names.csv", dir);
    remove(path);
    rmdir(dir);
    return 0;
}

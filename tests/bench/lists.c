/* tests/bench/lists.c - loading a reference list of 100,000 rows.
 *
 *   lists [-p PORT] [--riskctl PATH] [N]      (default N 100000)
 *
 * Generates a names file and a benchmarks file of N rows each (Chinese
 * names of varied length, some quoted with commas and doubled quotes; CRLF
 * line ends, a BOM) in $TMPDIR, then for each: the parse alone
 * (rk__lists_parse_csv, in process) and, with -p, the whole
 * `riskctl -p PORT lists load KIND FILE` against that Redis (wall time of
 * the process: read, parse, stage, swap, audit). Prints one line per file
 * with the times next to the budget of 10 s for 100,000 rows. It reports;
 * it never fails on a slow result. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define BUDGET_S 10.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const family[] = {"王", "李", "张", "刘", "陈", "杨", "马", "欧阳", "赵", "黄"};
static const char *const given[] = {"建国", "晓燕", "志强", "明辉", "丽", "海涛", "静", "伟"};
static const char *const trade[] = {"清真食品", "农产品批发", "枸杞种植专业合作社", "餐饮管理",
                                    "道路运输", "建材"};

/* Write the names file of n rows to path. 0 or -1. */
static int gen_names(const char *path, unsigned long n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    fputs("\xef\xbb\xbfkind,id,name\r\n", f);
    for (unsigned long i = 0; i < n; i++) {
        unsigned long h = i * 2654435761u;
        switch (i % 3) {
        case 0:
            fprintf(f, "officer,O%lu,%s%s\r\n", i, family[h % 10], given[(h >> 8) % 8]);
            break;
        case 1:
            fprintf(f, "enterprise,E%lu,\"宁夏%s%s有限公司（第%lu分店, \"\"老字号\"\"）\"\r\n", i,
                    family[h % 10], trade[(h >> 8) % 6], h % 97);
            break;
        default:
            fprintf(f, "unit,U%lu,银川市市场监督管理局第%lu执法大队\r\n", i, h % 1000);
            break;
        }
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Write the benchmarks file of n rows to path. 0 or -1. */
static int gen_benchmarks(const char *path, unsigned long n)
{
    static const char *const level[] = {"", "轻微", "一般", "严重"};
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    fputs("item_code,level,min_fine,max_fine\n", f);
    for (unsigned long i = 0; i < n; i++) {
        unsigned long lo = (i * 37) % 50000;
        fprintf(f, "I%06lu,%s,%lu,%lu.50\n", i / 4, level[i % 4], lo, lo + 1000 + i % 9000);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Parse the file as kind in process: seconds, or -1. */
static double parse_time(rk__list_kind kind, const char *path, size_t *rows)
{
    FILE *f = fopen(path, "rb");
    char *data, err[RK_ERRLEN];
    long len;
    double t0, t;
    rk__list *l = NULL;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0)
        return -1;
    rewind(f);
    data = malloc((size_t)len + 1);
    if (data == NULL || fread(data, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(data);
        return -1;
    }
    fclose(f);
    t0 = now_s();
    if (rk__lists_parse_csv(kind, data, (size_t)len, &l, err, sizeof(err)) != 0) {
        fprintf(stderr, "lists: %s: %s\n", path, err);
        free(data);
        return -1;
    }
    t = now_s() - t0;
    *rows = rk__lists_count(l);
    rk__lists_free(l);
    free(data);
    return t;
}

/* riskctl -p port lists load kind path: seconds, or -1. */
static double load_time(const char *riskctl, const char *port, const char *kind,
                        const char *path)
{
    double t0;
    int st;
    pid_t pid;
    fflush(stdout);
    t0 = now_s();
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(126);
        execl(riskctl, riskctl, "-p", port, "lists", "load", kind, path, (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    const char *port = NULL, *riskctl = "build/riskctl", *tmp = getenv("TMPDIR");
    unsigned long n = 100000;
    char names[512], bench[512];
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            port = argv[++i];
        else if (strcmp(argv[i], "--riskctl") == 0 && i + 1 < argc)
            riskctl = argv[++i];
        else
            n = strtoul(argv[i], NULL, 10);
    }
    snprintf(names, sizeof(names), "%s/riskd-bench-names-%d.csv", tmp ? tmp : "/tmp",
             (int)getpid());
    snprintf(bench, sizeof(bench), "%s/riskd-bench-benchmarks-%d.csv", tmp ? tmp : "/tmp",
             (int)getpid());
    if (gen_names(names, n) != 0 || gen_benchmarks(bench, n) != 0) {
        fprintf(stderr, "lists: cannot write the files in %s\n", tmp ? tmp : "/tmp");
        return 1;
    }
    for (i = 0; i < 2; i++) {
        const char *path = i ? bench : names, *kind = i ? "benchmarks" : "names";
        size_t rows = 0;
        double p = parse_time(i ? RK_LIST_BENCHMARKS : RK_LIST_NAMES, path, &rows);
        double l = port ? load_time(riskctl, port, kind, path) : -1;
        printf("lists kind=%s rows=%zu parse_s=%.3f load_s=%.3f budget_s=%.0f\n", kind, rows,
               p, l, BUDGET_S * (double)n / 100000.0);
    }
    unlink(names);
    unlink(bench);
    return 0;
}

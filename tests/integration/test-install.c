/* tests/integration/test-install.c - `make install` into a scratch DESTDIR puts every
 * file where riskd(8) and the unit say, and what was installed works: the
 * binary runs, the shipped configuration passes `riskd -t` (also with the
 * installed plugin), the man pages render without warnings, the unit
 * passes `systemd-analyze verify`, and a plugin builds against the
 * installed headers alone.
 *
 * It runs make from the current directory (the repository root, as `make
 * test` does) with the same BUILD (and SAN=1 for a build/san tree), so the
 * install copies the binaries this test run was built from. Steps that need
 * a tool the host lacks (groff, systemd-analyze, pkg-config) are skipped
 * with a note. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

typedef struct fixture {
    char dest[256];                 /* DESTDIR */
    char work[300];                 /* scratch files beside it */
} fixture;

/* Run a shell command; store up to outlen-1 bytes of its combined output
 * in out (may be NULL). Returns its exit status, or -1. */
static int run(char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    FILE *p;
    size_t n = 0;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (strlen(cmd) + 8 >= sizeof(cmd))
        return -1;
    strcat(cmd, " 2>&1");
    if ((p = popen(cmd, "r")) == NULL)
        return -1;
    if (out != NULL && outlen > 0) {
        n = fread(out, 1, outlen - 1, p);
        out[n] = '\0';
    }
    {
        char sink[1024];
        while (fread(sink, 1, sizeof(sink), p) > 0)
            ;
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool have(const char *tool)
{
    return run(NULL, 0, "command -v %s >/dev/null", tool) == 0;
}

static void path_of(const fixture *f, const char *rel, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", f->dest, rel);
}

/* Assert rel exists under DESTDIR as a regular file with exactly mode. */
static void assert_file(const fixture *f, const char *rel, mode_t mode)
{
    char p[512];
    struct stat st;
    path_of(f, rel, p, sizeof(p));
    if (stat(p, &st) != 0)
        fail_msg("not installed: %s", rel);
    assert_true(S_ISREG(st.st_mode));
    if ((st.st_mode & 07777) != mode)
        fail_msg("%s: mode %o, expected %o", rel, (unsigned)(st.st_mode & 07777), (unsigned)mode);
    assert_true(st.st_size > 0);
}

static bool file_contains(const char *path, const char *text)
{
    FILE *fp = fopen(path, "r");
    char line[1024];
    bool found = false;
    if (fp == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), fp))
        found = strstr(line, text) != NULL;
    fclose(fp);
    return found;
}

/* make install DESTDIR=<scratch> PREFIX=/usr/local once for all tests. */
static int group_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR"), *build = it_build_dir();
    char out[8192];
    int rc;

    if (f == NULL)
        return -1;
    snprintf(f->dest, sizeof(f->dest), "%s/riskd-install-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(f->dest) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->work, sizeof(f->work), "%s/.work", f->dest);
    if (mkdir(f->work, 0700) != 0 || access("Makefile", R_OK) != 0) {
        fprintf(stderr, "test-install: run from the repository root\n");
        free(f);
        return -1;
    }
    rc = run(out, sizeof(out),
             "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install DESTDIR='%s' "
             "PREFIX=/usr/local BUILD='%s' %s",
             f->dest, build, strstr(build, "san") ? "SAN=1" : "");
    if (rc != 0) {
        fprintf(stderr, "make install failed (%d):\n%s\n", rc, out);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *f = *state;
    if (f != NULL && strstr(f->dest, "riskd-install-") != NULL)
        run(NULL, 0, "rm -rf '%s'", f->dest);
    free(f);
    return 0;
}

/* Every file is where it belongs, with the right mode. */
static void test_layout(void **state)
{
    fixture *f = *state;
    char p[512];

    assert_file(f, "usr/local/bin/riskd", 0755);
    assert_file(f, "usr/local/bin/riskctl", 0755);
    assert_file(f, "usr/local/bin/riskweb", 0755);
    assert_file(f, "usr/local/lib/systemd/system/riskweb.service", 0644);
    assert_file(f, "usr/local/share/man/man8/riskweb.8", 0644);
    assert_file(f, "usr/local/lib/riskd/plugins/two_officers.so", 0644);
    assert_file(f, "etc/riskd/riskd.json", 0644);
    assert_file(f, "usr/local/lib/systemd/system/riskd.service", 0644);
    assert_file(f, "usr/local/share/man/man8/riskd.8", 0644);
    assert_file(f, "usr/local/share/man/man7/riskd-detectors.7", 0644);
    assert_file(f, "usr/local/share/man/man7/riskd-plugin.7", 0644);
    assert_file(f, "usr/local/share/man/man1/riskctl.1", 0644);
    assert_file(f, "usr/local/share/man/man5/riskd.json.5", 0644);
    assert_file(f, "usr/local/share/riskd/prometheus/riskd-rules.yml", 0644);
    assert_file(f, "usr/local/share/riskd/grafana/riskd.json", 0644);
    assert_file(f, "usr/local/include/riskd/detector.h", 0644);
    assert_file(f, "usr/local/include/riskd/event.h", 0644);
    assert_file(f, "usr/local/include/riskd/kit.h", 0644);
    assert_file(f, "usr/local/include/riskd/config.h", 0644);
    assert_file(f, "usr/local/include/riskd/snapshot.h", 0644);
    assert_file(f, "usr/local/include/riskd/map.h", 0644);
    assert_file(f, "usr/local/include/riskd/heap.h", 0644);
    assert_file(f, "usr/local/include/riskd/window.h", 0644);
    /* Test-only plugins are not installed. */
    path_of(f, "usr/local/lib/riskd/plugins/bad_abi.so", p, sizeof(p));
    assert_int_equal(access(p, F_OK), -1);
}

/* The installed binary runs; the shipped configuration is valid, alone and
 * with the installed plugin enabled. */
static void test_binary_and_config(void **state)
{
    fixture *f = *state;
    char bin[512], cfg[512], plug[512], cfg2[512], out[4096];
    FILE *fp;

    path_of(f, "usr/local/bin/riskd", bin, sizeof(bin));
    path_of(f, "etc/riskd/riskd.json", cfg, sizeof(cfg));
    path_of(f, "usr/local/lib/riskd/plugins/two_officers.so", plug, sizeof(plug));
    assert_int_equal(run(out, sizeof(out), "'%s' --version", bin), 0);
    assert_memory_equal(out, "riskd ", 6);
    assert_int_equal(run(out, sizeof(out), "'%s' -t -c '%s'", bin, cfg), 0);
    assert_non_null(strstr(out, "configuration OK"));

    /* The shipped file with its plugins list pointing at the install. */
    snprintf(cfg2, sizeof(cfg2), "%s/with-plugin.json", f->work);
    assert_int_equal(run(out, sizeof(out),
                         "sed 's#\"plugins\": \\[\\]#\"plugins\": [\"%s\"]#' '%s' > '%s'",
                         plug, cfg, cfg2), 0);
    assert_true(file_contains(cfg2, "two_officers.so"));
    assert_int_equal(run(out, sizeof(out), "'%s' -t -c '%s'", bin, cfg2), 0);

    /* And -t still fails on a bad file (the check is real). */
    fp = fopen(cfg2, "w");
    assert_non_null(fp);
    fputs("{\"metrics\":{\"listen\":\"nope\"}}\n", fp);
    fclose(fp);
    assert_int_equal(run(out, sizeof(out), "'%s' -t -c '%s'", bin, cfg2), 1);
    assert_non_null(strstr(out, "metrics.listen"));
}

/* The unit says what riskd(8) and the task say. */
static void test_unit_contents(void **state)
{
    fixture *f = *state;
    static const char *const lines[] = {
        "Type=notify", "ExecStart=/usr/local/bin/riskd -c /etc/riskd/riskd.json",
        "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "WatchdogSec=30",
        "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", NULL
    };
    char unit[512];
    path_of(f, "usr/local/lib/systemd/system/riskd.service", unit, sizeof(unit));
    for (int i = 0; lines[i] != NULL; i++)
        if (!file_contains(unit, lines[i]))
            fail_msg("riskd.service lacks %s", lines[i]);
}

/* systemd-analyze verify passes on the installed unit (ExecStart pointed at
 * the installed binary, the installed man page on MANPATH). */
static void test_unit_verifies(void **state)
{
    fixture *f = *state;
    char unit[512], copy[512], bin[512], out[8192];

    if (!have("systemd-analyze")) {
        fprintf(stderr, "systemd-analyze not found: skipping\n");
        skip();
    }
    path_of(f, "usr/local/lib/systemd/system/riskd.service", unit, sizeof(unit));
    path_of(f, "usr/local/bin/riskd", bin, sizeof(bin));
    snprintf(copy, sizeof(copy), "%s/riskd.service", f->work);
    assert_int_equal(run(NULL, 0, "sed 's#^ExecStart=/usr/local/bin/riskd#ExecStart=%s#' '%s' > '%s'",
                         bin, unit, copy), 0);
    assert_true(file_contains(copy, bin));
    if (run(out, sizeof(out), "MANPATH='%s/usr/local/share/man:' systemd-analyze verify '%s'",
            f->dest, copy) != 0)
        fail_msg("systemd-analyze verify failed:\n%s", out);
    assert_null(strstr(out, "riskd.service:"));
    /* riskweb.service too. */
    path_of(f, "usr/local/lib/systemd/system/riskweb.service", unit, sizeof(unit));
    path_of(f, "usr/local/bin/riskweb", bin, sizeof(bin));
    snprintf(copy, sizeof(copy), "%s/riskweb.service", f->work);
    assert_int_equal(run(NULL, 0, "sed 's#^ExecStart=/usr/local/bin/riskweb#ExecStart=%s#' '%s' > '%s'",
                         bin, unit, copy), 0);
    if (run(out, sizeof(out), "MANPATH='%s/usr/local/share/man:' systemd-analyze verify '%s'",
            f->dest, copy) != 0)
        fail_msg("systemd-analyze verify failed:\n%s", out);
    assert_null(strstr(out, "riskweb.service:"));
}

/* The man pages render with groff -ww without a single warning, and
 * riskd(8) has every section it promises. */
static void test_man_page(void **state)
{
    fixture *f = *state;
    static const char *const sections[] = {
        "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "FILES",
        "CONFIGURATION", "ENDPOINTS", "EXIT STATUS", "SEE ALSO", "INPUT",
        "EVENT TIME", "OUTPUT", "METRICS", NULL
    };
    char page[512], page7[512], out[256];

    path_of(f, "usr/local/share/man/man8/riskd.8", page, sizeof(page));
    for (int i = 0; sections[i] != NULL; i++) {
        char sh[64];
        snprintf(sh, sizeof(sh), ".SH %s", sections[i]);
        if (!file_contains(page, sh))
            fail_msg("riskd.8 lacks section %s", sections[i]);
    }
    if (!have("groff")) {
        fprintf(stderr, "groff not found: skipping the rendering check\n");
        skip();
    }
    /* Only warnings reach `out`: the rendered page goes to /dev/null. */
    assert_int_equal(run(out, sizeof(out), "groff -man -Tutf8 -ww '%s' 2>&1 >/dev/null", page), 0);
    assert_string_equal(out, "");
    assert_int_equal(run(out, sizeof(out), "groff -man -Tutf8 -P-cbu '%s' | grep -q 'metrics.listen'", page), 0);
    /* riskd-detectors(7), installed beside it, likewise. */
    path_of(f, "usr/local/share/man/man7/riskd-detectors.7", page7, sizeof(page7));
    assert_int_equal(run(out, sizeof(out), "groff -man -Tutf8 -ww '%s' 2>&1 >/dev/null", page7), 0);
    assert_string_equal(out, "");
    assert_int_equal(run(out, sizeof(out), "groff -man -Tutf8 -P-cbu '%s' | grep -q 'scan_without_filing'",
                         page7), 0);
    /* riskctl(1), riskd.json(5) and riskd-plugin(7), installed beside them,
     * likewise, each with a word only it carries. */
    {
        static const char *const more[][2] = {
            {"usr/local/share/man/man1/riskctl.1", "SUDO_USER"},
            {"usr/local/share/man/man5/riskd.json.5", "dedupe_window"},
            {"usr/local/share/man/man7/riskd-plugin.7", "rk_detector_entry"},
        };
        for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
            path_of(f, more[i][0], page7, sizeof(page7));
            assert_int_equal(run(out, sizeof(out), "groff -man -Tutf8 -ww '%s' 2>&1 >/dev/null",
                                 page7), 0);
            assert_string_equal(out, "");
            assert_int_equal(run(out, sizeof(out), "groff -man -Tutf8 -P-cbu '%s' | grep -q '%s'",
                                 page7, more[i][1]), 0);
        }
    }
}

/* A plugin compiles against the installed headers alone. */
static void test_headers_build_a_plugin(void **state)
{
    fixture *f = *state;
    char out[4096];

    if (!have("pkg-config") || access("detectors/plugins/two_officers.c", R_OK) != 0) {
        fprintf(stderr, "pkg-config or the plugin source not found: skipping\n");
        skip();
    }
    /* No -Iinclude: "riskd/kit.h" must come from the install. */
    if (run(out, sizeof(out),
            "${CC:-cc} -std=c11 -Wall -Werror -fPIC -shared "
            "$(pkg-config --cflags jansson) -I'%s/usr/local/include' "
            "-o '%s/p.so' detectors/plugins/two_officers.c",
            f->dest, f->work) != 0)
        fail_msg("plugin does not build against the installed headers:\n%s", out);
    snprintf(out, sizeof(out), "%s/p.so", f->work);
    assert_int_equal(access(out, R_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_binary_and_config),
        cmocka_unit_test(test_unit_contents),
        cmocka_unit_test(test_unit_verifies),
        cmocka_unit_test(test_man_page),
        cmocka_unit_test(test_headers_build_a_plugin),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

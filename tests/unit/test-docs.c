/* tests/unit/test-docs.c - the documentation against the code and the tree.
 *
 *   outside    no file of the repository (tracked, or new and not ignored)
 *              names the design documents kept outside it: a clone must
 *              be complete without them.
 *   render     `man -l` renders every page (riskd(8), riskctl(1),
 *              riskd.json(5), riskd-detectors(7), riskd-plugin(7)) without
 *              a single groff warning (MANWIDTH=80, --warnings=w: every
 *              warning category).
 *   riskweb8   riskweb(8) renders and names every "# TYPE riskweb_..." of
 *              daemon/riskweb/.
 *   metrics    every metric name the daemon renders (a "# TYPE riskd_..."
 *              string in any .c file under daemon/ or detectors/) appears
 *              in riskd(8).
 *   config     every key daemon/lib/config.c accepts (its `keys[]` lists, each
 *              named by the cfg_section call that uses it, and `top[]`)
 *              appears in riskd.json(5) - as "section.key" anywhere, or as
 *              a word inside the page's ".SS section" block; a top-level
 *              key has a ".SS key" block - and in config/riskd.json. A list
 *              no cfg_section call names (a nested object's keys) only
 *              needs its keys somewhere in both. The keys every detector
 *              takes (daemon/pipeline/registry.c) are in riskd.json(5)'s
 *              ".SS detectors" block; each detector's own keys (the
 *              `*keys[]` lists of detectors/NAME.c and
 *              detectors/plugins/NAME.c) in its ".SS detectors.NAME"
 *              block, and, for a built-in, under detectors.NAME in
 *              config/riskd.json (except `cooldown`, whose default some
 *              detectors derive from other keys).
 *   riskctl    every command (the strcmp(cmd, ...) and, for silence,
 *              strcmp(sub, ...) of daemon/riskctl/main.c), every option
 *              (its getopt string and longopts table) and every exit
 *              status (EX_* of riskctl.h) appears in riskctl(1).
 *   readme     README.md has at most 250 lines: the rest lives in the
 *              man pages.
 *   detectors  every key a detector or the example plugin accepts (its
 *              `*keys[]` lists under detectors/) and every rule appears in
 *              riskd-detectors(7).
 *
 * The names are read from the sources, not listed here, so a key or metric
 * added without its documentation fails here. Pages are matched in their
 * source with font and character escapes removed (\fB, \(dq, \-, ...), a
 * name as a whole word (letters, digits and '_').
 *
 * Runs from the repository root (as `make test` does). The list of files
 * comes from `git ls-files` when the tree is a git checkout, else from
 * find(1) (build/ skipped). `man` missing skips the rendering check with a
 * note. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#define RISKD_8 "daemon/riskd/riskd.8"
#define DETECTORS_7 "detectors/riskd-detectors.7"
#define RISKCTL_1 "daemon/riskctl/riskctl.1"
#define RISKWEB_8 "daemon/riskweb/riskweb.8"
#define RISKD_JSON_5 "config/riskd.json.5"
#define PLUGIN_7 "include/riskd/riskd-plugin.7"
#define README_MAX_LINES 250

/* ===================================================================
 * Helpers
 * =================================================================== */

/* Run a shell command (stderr as the command redirects it) and return its
 * standard output as a malloc'ed string (never NULL); *status gets the
 * exit status, or -1. */
static char *run(int *status, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    FILE *p;
    char *out = NULL;
    size_t len = 0, cap = 0, n;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        n = fread(out + len, 1, cap - len - 1, p);
        if (n == 0)
            break;
        len += n;
    }
    out[len] = '\0';
    st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* The whole file as a malloc'ed string, or NULL when it cannot be read. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf != NULL)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *must_slurp(const char *path)
{
    char *s = slurp(path);
    if (s == NULL)
        fail_msg("cannot read %s (run from the repository root)", path);
    return s;
}

static bool word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* roff source -> plain text: comments (\" and \# to the end of the line)
 * and font escapes (\fB, \f(CW, \f[I]) dropped, special characters
 * (\(dq, \[...], \*(xx) and other escapes become a space, \- a '-', \&
 * and \% nothing. In place. */
static void unroff(char *s)
{
    char *w = s;
    while (*s != '\0') {
        if (*s != '\\') {
            *w++ = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case '\0':
            break;
        case 'f':
            s++;
            if (*s == '(') s += *(s + 1) && *(s + 2) ? 3 : 1;
            else if (*s == '[') { while (*s && *s != ']') s++; if (*s) s++; }
            else if (*s) s++;
            break;
        case '(':
            s++;
            if (*s) s++;
            if (*s) s++;
            *w++ = ' ';
            break;
        case '[':
            while (*s && *s != ']') s++;
            if (*s) s++;
            *w++ = ' ';
            break;
        case '*':
            s++;
            if (*s == '(') { s++; if (*s) s++; if (*s) s++; }
            else if (*s == '[') { while (*s && *s != ']') s++; if (*s) s++; }
            else if (*s) s++;
            *w++ = ' ';
            break;
        case '-':
            *w++ = '-';
            s++;
            break;
        case '"':                   /* a comment: to the end of the line */
        case '#':
            while (*s && *s != '\n') s++;
            break;
        case '&':
        case '%':
            s++;
            break;
        default:
            *w++ = ' ';
            s++;
            break;
        }
    }
    *w = '\0';
}

/* Whether `word` occurs in text[0..len) as a whole word. */
static bool has_word_n(const char *text, size_t len, const char *word)
{
    size_t wl = strlen(word);
    const char *p = text, *end = text + len;
    while (p + wl <= end) {
        const char *hit = memmem(p, (size_t)(end - p), word, wl);
        if (hit == NULL)
            return false;
        if ((hit == text || !word_char(hit[-1])) &&
            (hit + wl == end || !word_char(hit[wl])))
            return true;
        p = hit + 1;
    }
    return false;
}

static bool has_word(const char *text, const char *word)
{
    return has_word_n(text, strlen(text), word);
}

/* A man page read and flattened to text (see unroff). */
static char *page_text(const char *path)
{
    char *s = must_slurp(path);
    unroff(s);
    return s;
}

/* The block of the page (flattened) under ".SS name" (the first word of
 * the heading, quotes removed), up to the next .SS or .SH: its start and
 * length in *len; NULL when there is no such heading. */
static const char *subsection(const char *text, const char *name, size_t *len)
{
    const char *p = text;
    size_t nl = strlen(name);
    while ((p = strstr(p, ".SS ")) != NULL) {
        const char *h = p + 4, *body, *end;
        if (p != text && p[-1] != '\n') {
            p += 4;
            continue;
        }
        while (*h == ' ' || *h == '"') h++;
        if (strncmp(h, name, nl) != 0 || word_char(h[nl])) {
            p += 4;
            continue;
        }
        body = strchr(h, '\n');
        if (body == NULL)
            body = h + strlen(h);
        end = body;
        for (;;) {
            const char *n = strstr(end, "\n.S");
            if (n == NULL) { end = body + strlen(body); break; }
            if (n[3] == 'S' || n[3] == 'H') { end = n; break; }
            end = n + 3;
        }
        *len = (size_t)(end - p);
        return p;
    }
    return NULL;
}

/* A growing list of strings. */
typedef struct strlist {
    char **v;
    size_t n;
} strlist;

static void sl_add(strlist *l, const char *s, size_t n)
{
    l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
    assert_non_null(l->v);
    l->v[l->n] = strndup(s, n);
    assert_non_null(l->v[l->n]);
    l->n++;
}

static bool sl_has(const strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

static void sl_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Split a newline-separated command output into l (empty lines skipped). */
static void sl_lines(strlist *l, const char *out)
{
    while (*out != '\0') {
        const char *e = strchr(out, '\n');
        size_t n = e ? (size_t)(e - out) : strlen(out);
        if (n > 0)
            sl_add(l, out, n);
        out += n + (e != NULL);
    }
}

/* The quoted strings of a C initializer list starting at p ("{ ... NULL
 * }"), into l; returns the position after the list. */
static const char *c_string_list(const char *p, strlist *l)
{
    const char *end = strstr(p, "NULL");
    assert_non_null(end);
    while ((p = strchr(p, '"')) != NULL && p < end) {
        const char *q = strchr(p + 1, '"');
        assert_non_null(q);
        sl_add(l, p + 1, (size_t)(q - p - 1));
        p = q + 1;
    }
    return end;
}

/* ===================================================================
 * outside: no file names the documents kept outside the repository
 * =================================================================== */

static void test_no_outside_documents(void **state)
{
    /* Spelled in pieces so this file does not name them itself. */
    static const char *const needles[] = {
        "CONTR" "ACT.md", "DESI" "GN.md", "CONTR" "ACT \xc2\xa7", NULL
    };
    strlist files = {0};
    char *out;
    int st, bad = 0;

    (void)state;
    out = run(&st, "git rev-parse --is-inside-work-tree 2>/dev/null");
    free(out);
    if (st == 0)
        out = run(&st, "git ls-files --cached --others --exclude-standard 2>/dev/null");
    else
        out = run(&st, "find . -path ./build -prune -o -path ./.git -prune -o -type f -print");
    assert_int_equal(st, 0);
    sl_lines(&files, out);
    free(out);
    if (files.n < 20)
        fail_msg("only %zu files listed: not the repository root?", files.n);
    for (size_t i = 0; i < files.n; i++) {
        FILE *f = fopen(files.v[i], "rb");
        char *s;
        long n;
        if (f == NULL)
            continue;               /* deleted in the working tree */
        fclose(f);
        s = slurp(files.v[i]);
        if (s == NULL)
            continue;
        n = (long)strlen(s);        /* binary files: up to the first NUL */
        for (int k = 0; needles[k] != NULL; k++)
            if (memmem(s, (size_t)n, needles[k], strlen(needles[k])) != NULL) {
                fprintf(stderr, "%s names \"%s\", a document outside the repository\n",
                        files.v[i], needles[k]);
                bad++;
            }
        free(s);
    }
    sl_free(&files);
    assert_int_equal(bad, 0);
}

/* ===================================================================
 * render: man -l without warnings
 * =================================================================== */

static void check_render(const char *page)
{
    char *out;
    int st;

    out = run(&st, "command -v man >/dev/null");
    free(out);
    if (st != 0) {
        fprintf(stderr, "man not found: skipping the rendering check of %s\n", page);
        skip();
    }
    /* stdout to /dev/null, stderr (the warnings) to the pipe. */
    out = run(&st, "MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings=w -l '%s' 2>&1 >/dev/null",
              page);
    if (st != 0 || out[0] != '\0')
        fail_msg("man -l %s: status %d, warnings:\n%s", page, st, out);
    free(out);
    /* And it rendered something. */
    out = run(&st, "MANWIDTH=80 man -l '%s' 2>/dev/null | wc -l", page);
    assert_int_equal(st, 0);
    assert_true(atoi(out) > 50);
    free(out);
}

static void test_riskd8_renders(void **state)
{
    (void)state;
    check_render(RISKD_8);
}

static void test_detectors7_renders(void **state)
{
    (void)state;
    check_render(DETECTORS_7);
}

static void test_riskctl1_renders(void **state)
{
    (void)state;
    check_render(RISKCTL_1);
}

static void test_riskd_json5_renders(void **state)
{
    (void)state;
    check_render(RISKD_JSON_5);
}

static void test_plugin7_renders(void **state)
{
    (void)state;
    check_render(PLUGIN_7);
}

/* ===================================================================
 * metrics: every rendered metric is in riskd(8)
 * =================================================================== */

static void test_metrics_documented(void **state)
{
    strlist names = {0};
    char *page = page_text(RISKD_8), *out;
    int st, missing = 0;

    (void)state;
    out = run(&st, "find daemon detectors -name '*.c' -exec grep -ho '# TYPE riskd_[a-z0-9_]*' "
                   "{} + | sort -u | sed 's/^# TYPE //'");
    assert_int_equal(st, 0);
    sl_lines(&names, out);
    free(out);
    if (names.n < 20)
        fail_msg("only %zu metric names found in daemon/: the pattern no longer matches", names.n);
    for (size_t i = 0; i < names.n; i++)
        if (!has_word(page, names.v[i])) {
            fprintf(stderr, "metric %s is not documented in " RISKD_8 "\n", names.v[i]);
            missing++;
        }
    sl_free(&names);
    free(page);
    assert_int_equal(missing, 0);
}

/* riskweb(8) renders and names every metric riskweb renders. */
static void test_riskweb8(void **state)
{
    strlist names = {0};
    char *page, *out;
    int st, missing = 0;

    (void)state;
    check_render(RISKWEB_8);
    page = page_text(RISKWEB_8);
    out = run(&st, "grep -ho '# TYPE riskweb_[a-z0-9_]*' daemon/riskweb/*.c | sort -u | "
                   "sed 's/^# TYPE //'");
    assert_int_equal(st, 0);
    sl_lines(&names, out);
    free(out);
    if (names.n < 5)
        fail_msg("only %zu metric names found in daemon/riskweb/", names.n);
    for (size_t i = 0; i < names.n; i++)
        if (!has_word(page, names.v[i])) {
            fprintf(stderr, "metric %s is not documented in " RISKWEB_8 "\n", names.v[i]);
            missing++;
        }
    sl_free(&names);
    free(page);
    assert_int_equal(missing, 0);
}

/* ===================================================================
 * config: every key of config.c is in riskd(8) and config/riskd.json
 * =================================================================== */

/* Whether key is a member name anywhere in v (objects and arrays). */
static bool json_has_key(const json_t *v, const char *key)
{
    const char *k;
    json_t *m;
    size_t i;

    if (json_is_object(v)) {
        if (json_object_get(v, key) != NULL)
            return true;
        json_object_foreach((json_t *)(uintptr_t)v, k, m)
            if (json_has_key(m, key))
                return true;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m)
            if (json_has_key(m, key))
                return true;
    }
    return false;
}

/* The keys daemon/lib/config.c accepts, as "section.key" or "key" (top level). */
static void config_keys(strlist *keys)
{
    char *src = NULL, *out;
    const char *p;
    int st;

    src = slurp("daemon/lib/config.c");
    if (src == NULL) {
        /* Moved: find it. */
        out = run(&st, "find daemon -name config.c | head -n 1");
        out[strcspn(out, "\n")] = '\0';
        src = slurp(out);
        free(out);
    }
    if (src == NULL)
        fail_msg("daemon/config.c not found");
    /* Section lists: "keys[] = { ... NULL };" then, in the same function,
     * cfg_section(root, "name", keys, ...). A list without that call (the
     * keys of some nested object) is recorded as "*.key": checked loosely. */
    for (p = src; (p = strstr(p, "keys[] = {")) != NULL;) {
        strlist l = {0};
        const char *sec, *q, *fn_end;
        p = c_string_list(p, &l);
        sec = strstr(p, "cfg_section(root, \"");
        fn_end = strstr(p, "\n}\n");
        for (size_t i = 0; i < l.n; i++) {
            char k[256];
            if (sec != NULL && (fn_end == NULL || sec < fn_end)) {
                q = strchr(sec + strlen("cfg_section(root, \""), '"');
                snprintf(k, sizeof(k), "%.*s.%s",
                         (int)(q - sec - strlen("cfg_section(root, \"")),
                         sec + strlen("cfg_section(root, \""), l.v[i]);
            } else {
                snprintf(k, sizeof(k), "*.%s", l.v[i]);
            }
            sl_add(keys, k, strlen(k));
        }
        sl_free(&l);
    }
    p = strstr(src, "top[] = {");
    if (p == NULL)
        fail_msg("config.c: no top[] list of top-level keys");
    {
        strlist l = {0};
        c_string_list(p, &l);
        for (size_t i = 0; i < l.n; i++)
            sl_add(keys, l.v[i], strlen(l.v[i]));
        sl_free(&l);
    }
    free(src);
    if (keys->n < 30)
        fail_msg("only %zu configuration keys found in config.c", keys->n);
}

static void test_config_keys_documented(void **state)
{
    strlist keys = {0};
    char *page = page_text(RISKD_JSON_5);
    json_error_t jerr;
    json_t *shipped = json_load_file("config/riskd.json", JSON_REJECT_DUPLICATES, &jerr);
    int missing = 0;

    (void)state;
    if (shipped == NULL)
        fail_msg("config/riskd.json: %s", jerr.text);
    config_keys(&keys);
    for (size_t i = 0; i < keys.n; i++) {
        const char *k = keys.v[i], *dot = strchr(k, '.');
        const char *blk;
        size_t blen = 0;
        char sec[128];
        bool in_page, in_json;

        if (dot == NULL) {
            in_page = subsection(page, k, &blen) != NULL;
            in_json = json_object_get(shipped, k) != NULL;
        } else if (k[0] == '*') {
            in_page = has_word(page, dot + 1);
            in_json = json_has_key(shipped, dot + 1);
        } else {
            snprintf(sec, sizeof(sec), "%.*s", (int)(dot - k), k);
            blk = subsection(page, sec, &blen);
            in_page = has_word(page, k) || (blk != NULL && has_word_n(blk, blen, dot + 1));
            in_json = json_object_get(json_object_get(shipped, sec), dot + 1) != NULL;
        }
        if (!in_page) {
            fprintf(stderr, "configuration key %s is not documented in " RISKD_JSON_5 "%s\n", k,
                    dot ? "" : " (a .SS block of its own)");
            missing++;
        }
        if (!in_json) {
            fprintf(stderr, "configuration key %s is not in config/riskd.json\n", k);
            missing++;
        }
    }
    /* Sanity: the matcher does see a real key and misses a made-up one. */
    assert_true(sl_has(&keys, "streams.batch"));
    {
        size_t blen;
        const char *blk = subsection(page, "streams", &blen);
        assert_non_null(blk);
        assert_true(has_word_n(blk, blen, "batch"));
        assert_false(has_word_n(blk, blen, "batc"));
        assert_false(has_word(page, "no_such_key_anywhere"));
    }
    sl_free(&keys);
    json_decref(shipped);
    free(page);
    assert_int_equal(missing, 0);
}

/* ===================================================================
 * detectors: every detector key is in riskd-detectors(7)
 * =================================================================== */

static void test_detector_keys_documented(void **state)
{
    strlist files = {0}, keys = {0};
    char *page = page_text(DETECTORS_7), *out;
    int st, missing = 0;

    (void)state;
    out = run(&st, "find detectors -name '*.c' | sort");
    assert_int_equal(st, 0);
    sl_lines(&files, out);
    free(out);
    for (size_t i = 0; i < files.n; i++) {
        char *src = must_slurp(files.v[i]);
        const char *p = src;
        /* "static const char *const xx_keys[] = { ... NULL };" */
        while ((p = strstr(p, "keys[] = {")) != NULL)
            p = c_string_list(p, &keys);
        free(src);
    }
    if (keys.n < 20)
        fail_msg("only %zu detector keys found under detectors/", keys.n);
    for (size_t i = 0; i < keys.n; i++)
        if (!has_word(page, keys.v[i])) {
            fprintf(stderr, "detector key %s is not documented in " DETECTORS_7 "\n",
                    keys.v[i]);
            missing++;
        }
    /* The rules the detectors emit, too. */
    sl_free(&keys);
    for (size_t i = 0; i < files.n; i++) {
        char *src = must_slurp(files.v[i]);
        const char *p = src;
        while ((p = strstr(p, "rule = \"")) != NULL) {
            const char *q;
            p += strlen("rule = \"");
            q = strchr(p, '"');
            sl_add(&keys, p, (size_t)(q - p));
        }
        p = src;
        /* unfiled_inspection passes rule names to its emit(). */
        while ((p = strstr(p, "emit(s, \"")) != NULL) {
            const char *q;
            p += strlen("emit(s, \"");
            q = strchr(p, '"');
            sl_add(&keys, p, (size_t)(q - p));
        }
        free(src);
    }
    if (keys.n < 10)
        fail_msg("only %zu rule names found under detectors/", keys.n);
    for (size_t i = 0; i < keys.n; i++)
        if (!has_word(page, keys.v[i])) {
            fprintf(stderr, "rule %s is not documented in " DETECTORS_7 "\n", keys.v[i]);
            missing++;
        }
    sl_free(&keys);
    sl_free(&files);
    free(page);
    assert_int_equal(missing, 0);
}

/* The keys every detector takes (daemon/pipeline/registry.c reads them
 * with rk_kit_cfg_*(sub, prefix, "key", ...) and takes "overrides" out of
 * the detector's object) are in riskd.json(5)'s ".SS detectors" block;
 * each detector's own keys (the `*keys[]` lists of detectors/NAME.c and
 * detectors/plugins/NAME.c) are in its ".SS detectors.NAME" block and,
 * for a built-in, under detectors.NAME in config/riskd.json - except
 * `cooldown`, whose default some detectors derive from other keys (the
 * period, each rule's window). */
static void test_detector_config_documented(void **state)
{
    strlist files = {0}, common = {0};
    char *page = page_text(RISKD_JSON_5), *out, *reg;
    const char *blk, *p;
    size_t blen = 0;
    json_error_t jerr;
    json_t *shipped = json_load_file("config/riskd.json", JSON_REJECT_DUPLICATES, &jerr);
    int st, missing = 0, nkeys = 0;

    (void)state;
    if (shipped == NULL)
        fail_msg("config/riskd.json: %s", jerr.text);
    reg = slurp("daemon/pipeline/registry.c");
    if (reg == NULL) {
        out = run(&st, "find daemon -name registry.c | head -n 1");
        out[strcspn(out, "\n")] = '\0';
        reg = slurp(out);
        free(out);
    }
    if (reg == NULL)
        fail_msg("registry.c not found");
    for (p = reg; (p = strstr(p, "(sub, prefix, \"")) != NULL;) {
        const char *q;
        p += strlen("(sub, prefix, \"");
        q = strchr(p, '"');
        sl_add(&common, p, (size_t)(q - p));
    }
    if (strstr(reg, "cfg, \"overrides\")") != NULL)
        sl_add(&common, "overrides", strlen("overrides"));
    free(reg);
    if (!sl_has(&common, "enabled") || !sl_has(&common, "severity") ||
        !sl_has(&common, "overrides"))
        fail_msg("registry.c: enabled, severity and overrides no longer found");
    blk = subsection(page, "detectors", &blen);
    if (blk == NULL)
        fail_msg(RISKD_JSON_5 " has no .SS detectors block");
    for (size_t i = 0; i < common.n; i++)
        if (!has_word_n(blk, blen, common.v[i])) {
            fprintf(stderr, "detector key %s (every detector's) is not in the .SS detectors "
                    "block of " RISKD_JSON_5 "\n", common.v[i]);
            missing++;
        }
    sl_free(&common);

    out = run(&st, "find detectors -name '*.c' | sort");
    assert_int_equal(st, 0);
    sl_lines(&files, out);
    free(out);
    for (size_t i = 0; i < files.n; i++) {
        strlist keys = {0};
        char *src = must_slurp(files.v[i]), name[128], sec[160];
        const char *base = strrchr(files.v[i], '/');
        bool builtin = strstr(files.v[i], "/plugins/") == NULL;
        const json_t *obj;

        base = base ? base + 1 : files.v[i];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(base, "."), base);
        for (p = src; (p = strstr(p, "keys[] = {")) != NULL;)
            p = c_string_list(p, &keys);
        free(src);
        if (keys.n == 0)
            continue;
        snprintf(sec, sizeof(sec), "detectors.%s", name);
        blk = subsection(page, sec, &blen);
        obj = json_object_get(json_object_get(shipped, "detectors"), name);
        for (size_t k = 0; k < keys.n; k++) {
            nkeys++;
            if (blk == NULL || !has_word_n(blk, blen, keys.v[k])) {
                fprintf(stderr, "detector key %s.%s is not in the .SS %s block of "
                        RISKD_JSON_5 "\n", sec, keys.v[k], sec);
                missing++;
            }
            if (builtin && strcmp(keys.v[k], "cooldown") != 0 && !json_has_key(obj, keys.v[k])) {
                fprintf(stderr, "detector key %s.%s is not in config/riskd.json\n", sec,
                        keys.v[k]);
                missing++;
            }
        }
        sl_free(&keys);
    }
    if (nkeys < 20)
        fail_msg("only %d detector keys found under detectors/", nkeys);
    sl_free(&files);
    json_decref(shipped);
    free(page);
    assert_int_equal(missing, 0);
}

/* ===================================================================
 * riskctl: every command, option and exit status is in riskctl(1)
 * =================================================================== */

/* Every run of white space in s made one space, in place. */
static void squeeze(char *s)
{
    char *w = s;
    bool sp = false;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t' || *s == '\n') {
            if (!sp)
                *w++ = ' ';
            sp = true;
        } else {
            *w++ = *s;
            sp = false;
        }
    }
    *w = '\0';
}

/* Whether the option opt ("--from", "-c") occurs in text as a whole
 * option: not preceded by '-' or a word character, not followed by one. */
static bool has_option(const char *text, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *p = text; (p = strstr(p, opt)) != NULL; p++)
        if ((p == text || (p[-1] != '-' && !word_char(p[-1]))) &&
            !word_char(p[n]) && p[n] != '-')
            return true;
    return false;
}

/* The distinct quoted words after each `pat` (e.g. `strcmp(cmd, "`) in
 * src, into l. */
static void quoted_after(const char *src, const char *pat, strlist *l)
{
    for (const char *p = src; (p = strstr(p, pat)) != NULL;) {
        const char *q;
        p += strlen(pat);
        q = strchr(p, '"');
        if (q != NULL) {
            char w[64];
            snprintf(w, sizeof(w), "%.*s", (int)(q - p), p);
            if (!sl_has(l, w))
                sl_add(l, w, strlen(w));
        }
    }
}

static void test_riskctl_documented(void **state)
{
    strlist cmds = {0}, subs = {0}, opts = {0};
    char *src = must_slurp("daemon/riskctl/main.c"), *page = page_text(RISKCTL_1), *h;
    const char *p;
    int missing = 0;

    (void)state;
    squeeze(page);
    quoted_after(src, "strcmp(cmd, \"", &cmds);
    quoted_after(src, "strcmp(sub, \"", &subs);
    if (cmds.n < 4 || !sl_has(&cmds, "silence") || subs.n < 3)
        fail_msg("only %zu commands and %zu silence commands found in main.c: the "
                 "pattern no longer matches", cmds.n, subs.n);
    /* Long options: the longopts table, {"name", ... */
    p = strstr(src, "longopts[] = {");
    if (p == NULL)
        fail_msg("main.c: no longopts[] table");
    {
        const char *end = strstr(p, "{NULL");
        assert_non_null(end);
        while ((p = strstr(p, "{\"")) != NULL && p < end) {
            const char *q = strchr(p + 2, '"');
            char o[64];
            snprintf(o, sizeof(o), "--%.*s", (int)(q - p - 2), p + 2);
            sl_add(&opts, o, strlen(o));
            p = q;
        }
    }
    /* Short options: the getopt string. */
    p = strstr(src, "getopt_long(argc, argv, \"");
    if (p == NULL)
        fail_msg("main.c: no getopt_long call");
    for (p += strlen("getopt_long(argc, argv, \""); *p && *p != '"'; p++)
        if (*p != ':') {
            char o[3] = { '-', *p, '\0' };
            sl_add(&opts, o, 2);
        }
    if (opts.n < 15)
        fail_msg("only %zu options found in main.c", opts.n);
    for (size_t i = 0; i < cmds.n; i++) {
        char phrase[96];
        snprintf(phrase, sizeof(phrase), "riskctl %s", cmds.v[i]);
        if (strstr(page, phrase) == NULL) {
            fprintf(stderr, "command \"%s\" is not in " RISKCTL_1 "\n", phrase);
            missing++;
        }
    }
    for (size_t i = 0; i < subs.n; i++) {
        char phrase[96];
        snprintf(phrase, sizeof(phrase), "silence %s", subs.v[i]);
        if (strstr(page, phrase) == NULL) {
            fprintf(stderr, "command \"riskctl %s\" is not in " RISKCTL_1 "\n", phrase);
            missing++;
        }
    }
    for (size_t i = 0; i < opts.n; i++)
        if (!has_option(page, opts.v[i])) {
            fprintf(stderr, "option %s is not in " RISKCTL_1 "\n", opts.v[i]);
            missing++;
        }
    /* The exit statuses of riskctl.h, each a ".TP .B n" entry. */
    h = must_slurp("daemon/riskctl/riskctl.h");
    for (p = h; (p = strstr(p, "#define EX_")) != NULL; p++) {
        const char *v = p + strlen("#define EX_");
        char tag[32];
        while (word_char(*v)) v++;
        while (*v == ' ') v++;
        snprintf(tag, sizeof(tag), ".TP .B %d ", atoi(v));
        if (strstr(page, tag) == NULL) {
            fprintf(stderr, "exit status %d is not in " RISKCTL_1 "\n", atoi(v));
            missing++;
        }
    }
    free(h);
    sl_free(&cmds);
    sl_free(&subs);
    sl_free(&opts);
    free(src);
    free(page);
    assert_int_equal(missing, 0);
}

/* ===================================================================
 * readme: README.md is short
 * =================================================================== */

static void test_readme_short(void **state)
{
    char *s = must_slurp("README.md");
    int lines = 0;

    (void)state;
    for (const char *p = s; *p; p++)
        lines += *p == '\n';
    if (lines > README_MAX_LINES)
        fail_msg("README.md has %d lines, at most %d: move the detail to a man page",
                 lines, README_MAX_LINES);
    free(s);
}

/* ===================================================================
 * dependencies: tests/deps.sh installs what the build links, and the
 * README says why each package is there
 * =================================================================== */

/* The words of the shell variable `name="..."` in text (into out). */
static void shell_list(const char *text, const char *name, char *out, size_t n)
{
    char pat[32];
    const char *p, *q;
    snprintf(pat, sizeof(pat), "\n%s=\"", name);
    p = strstr(text, pat);
    if (p == NULL)
        fail_msg("tests/deps.sh: no list %s=\"...\"", name);
    p += strlen(pat);
    q = strchr(p, '"');
    assert_non_null(q);
    assert_true((size_t)(q - p) < n);
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '\t')
            *c = ' ';
}

static bool has_item(const char *list, const char *item)
{
    size_t l = strlen(item);
    for (const char *p = list; (p = strstr(p, item)) != NULL; p += l)
        if ((p == list || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\0'))
            return true;
    return false;
}

static void test_dependencies(void **state)
{
    /* what the Makefile links, and the Debian package that has it */
    static const char *const lib_pkg[][2] = {
        {"libuv", "libuv1-dev"}, {"hiredis", "libhiredis-dev"},
        {"jansson", "libjansson-dev"}, {"libxxhash", "libxxhash-dev"},
        {"-lhttp_parser", "libhttp-parser-dev"}, {"-lcsv", "libcsv-dev"},
        {"-lcurl", "libcurl4-openssl-dev"}, {"-lhiredis", "libhiredis-dev"},
    };
    char *mk = must_slurp("Makefile"), *deps = must_slurp("tests/deps.sh");
    char *readme = must_slurp("README.md"), build[2048], test[2048], word[128];
    const char *p;
    size_t i;

    (void)state;
    shell_list(deps, "build", build, sizeof(build));
    shell_list(deps, "test", test, sizeof(test));
    /* every library the Makefile names is in the map, its package in the
     * build list (the demo installs only that one) */
    for (p = mk; (p = strstr(p, " -l")) != NULL; p += 3) {
        size_t l = strcspn(p + 1, " \n\t)");
        bool known = false;
        if (l >= sizeof(word))
            continue;
        memcpy(word, p + 1, l);
        word[l] = '\0';
        if (strcmp(word, "-ldl") == 0 || strcmp(word, "-lm") == 0 ||
            strcmp(word, "-lpthread") == 0 || strcmp(word, "-lcmocka") == 0)
            continue;                       /* libc; cmocka is in the list below */
        for (i = 0; i < sizeof(lib_pkg) / sizeof(lib_pkg[0]); i++)
            known = known || strcmp(word, lib_pkg[i][0]) == 0;
        if (!known)
            fail_msg("the Makefile links %s: add its Debian package to tests/deps.sh "
                     "(build) and to this test's map", word);
    }
    p = strstr(mk, "\nPKGS := ");
    assert_non_null(p);
    for (i = 0; i < 4; i++)
        if (strstr(p, lib_pkg[i][0]) == NULL || strstr(p, lib_pkg[i][0]) > strchr(p + 1, '\n'))
            fail_msg("the Makefile's PKGS no longer names %s: update this test's map",
                     lib_pkg[i][0]);
    for (i = 0; i < sizeof(lib_pkg) / sizeof(lib_pkg[0]); i++)
        if (!has_item(build, lib_pkg[i][1]))
            fail_msg("tests/deps.sh build: %s (the build links %s) is missing", lib_pkg[i][1],
                     lib_pkg[i][0]);
    if (!has_item(build, "libcmocka-dev") || !has_item(build, "redis-server"))
        fail_msg("tests/deps.sh build: libcmocka-dev and redis-server belong there");
    /* every package of either list has its line in README's table */
    for (int k = 0; k < 2; k++) {
        char *list = k == 0 ? build : test, *save = NULL, *w;
        char copy[2048];
        snprintf(copy, sizeof(copy), "%s", list);
        for (w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
            snprintf(word, sizeof(word), "`%s`", w);
            if (strstr(readme, word) == NULL)
                fail_msg("README.md does not say why %s is a dependency (tests/deps.sh)", w);
        }
    }
    free(mk);
    free(deps);
    free(readme);
}

/* The matcher itself: escapes are removed, words are whole. */
static void test_unroff(void **state)
{
    char s[] = "\\fBriskd_up\\fR, \\(dqunit_id\\(dq \\f(CWa\\-b\\fP x\\&y \\[lq]z\\[rq]"
               " \\\" hidden_key\nnext";
    (void)state;
    unroff(s);
    assert_string_equal(s, "riskd_up,  unit_id  a-b xy  z  \nnext");
    assert_false(has_word(s, "hidden_key"));
    assert_true(has_word(s, "riskd_up"));
    assert_true(has_word(s, "unit_id"));
    assert_false(has_word(s, "riskd"));
    assert_false(has_word(s, "unit"));
    assert_true(has_word(s, "z"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unroff),
        cmocka_unit_test(test_no_outside_documents),
        cmocka_unit_test(test_riskd8_renders),
        cmocka_unit_test(test_detectors7_renders),
        cmocka_unit_test(test_riskctl1_renders),
        cmocka_unit_test(test_riskd_json5_renders),
        cmocka_unit_test(test_plugin7_renders),
        cmocka_unit_test(test_metrics_documented),
        cmocka_unit_test(test_riskweb8),
        cmocka_unit_test(test_config_keys_documented),
        cmocka_unit_test(test_detector_keys_documented),
        cmocka_unit_test(test_detector_config_documented),
        cmocka_unit_test(test_riskctl_documented),
        cmocka_unit_test(test_readme_short),
        cmocka_unit_test(test_dependencies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tests/lib/itest_ctl.c - see itest_ctl.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"
#include "itest_ctl.h"

void itc_riskctl_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/riskctl", it_build_dir());
}

void itc_run(itc_result *r, const char *dir, int timeout_ms, const char *const *args)
{
    char bin[512];
    itc_riskctl_path(bin, sizeof(bin));
    itc_run_prog(r, dir, timeout_ms, bin, args);
}

void itc_run_prog(itc_result *r, const char *dir, int timeout_ms, const char *path,
                  const char *const *args)
{
    char bin[512], errpath[512];
    char *argv[64];
    size_t n = 0, len = 0;
    int p[2], waited = 0, st;
    pid_t pid;
    FILE *ef;

    memset(r, 0, sizeof(*r));
    r->status = -1;
    snprintf(bin, sizeof(bin), "%s", path);
    snprintf(errpath, sizeof(errpath), "%s/ctl-stderr", dir);
    argv[n++] = bin;
    for (; args[n - 1] != NULL && n < 63; n++)
        argv[n] = (char *)(uintptr_t)args[n - 1];
    argv[n] = NULL;
    if (pipe(p) != 0)
        return;
    pid = fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (e < 0)
            _exit(126);
        dup2(p[1], 1);
        dup2(e, 2);
        close(p[0]);
        close(p[1]);
        close(e);
        execv(bin, argv);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        int k = poll(&pfd, 1, 100);
        if (k > 0) {
            ssize_t got = read(p[0], r->out + len, sizeof(r->out) - 1 - len);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            len += (size_t)got;
            if (len == sizeof(r->out) - 1)
                break;
        } else if ((waited += 100) >= timeout_ms) {
            kill(pid, SIGKILL);
            break;
        }
    }
    r->out[len] = '\0';
    close(p[0]);
    if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
        r->status = WEXITSTATUS(st);
    if ((ef = fopen(errpath, "r")) != NULL) {
        size_t k = fread(r->err, 1, sizeof(r->err) - 1, ef);
        r->err[k] = '\0';
        fclose(ef);
    }
}

pid_t itc_spawn(const char *path, const char *logpath, const char *const *args)
{
    char *argv[64];
    size_t n = 0;
    pid_t pid;

    argv[n++] = (char *)(uintptr_t)path;
    for (; args[n - 1] != NULL && n < 63; n++)
        argv[n] = (char *)(uintptr_t)args[n - 1];
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd < 0 || nul < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        close(nul);
        execv(path, argv);
        _exit(127);
    }
    return pid;
}

int itc_stop(pid_t pid, int sig, int timeout_ms)
{
    int st, waited = 0;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0)
            return -1;
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        it_sleep_ms(20);
        waited += 20;
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

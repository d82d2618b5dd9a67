/* tests/lib/itest_ctl.h - running build/riskctl (and other programs) from
 * integration tests: to the end with its output captured, or in the
 * background with its output in a file. */
#ifndef RISKD_TEST_ITEST_CTL_H
#define RISKD_TEST_ITEST_CTL_H

#include <stddef.h>
#include <sys/types.h>

typedef struct itc_result {
    int status;                     /* exit status, or -1 (killed, timed out) */
    char out[65536];
    char err[8192];
} itc_result;

/* Run $BUILD/riskctl with args (NULL-terminated) to the end, at most
 * timeout_ms, stdout and stderr into r (stderr through a file in dir). */
void itc_run(itc_result *r, const char *dir, int timeout_ms, const char *const *args);
/* The same for the program at path (riskd, riskweb). */
void itc_run_prog(itc_result *r, const char *dir, int timeout_ms, const char *path,
                  const char *const *args);
/* Start the program path with args (argv[0] = path, then args, NULL-
 * terminated) in the background, stdout and stderr appended to logpath.
 * Returns the pid or -1. */
pid_t itc_spawn(const char *path, const char *logpath, const char *const *args);
/* The path of $BUILD/riskctl into buf. */
void itc_riskctl_path(char *buf, size_t len);
/* SIGTERM (or sig) pid and reap it within timeout_ms (then SIGKILL);
 * returns the exit status, 128 + signal, or -1. */
int itc_stop(pid_t pid, int sig, int timeout_ms);

#endif

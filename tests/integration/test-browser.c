/* tests/integration/test-browser.c - runs tests/browser/test_page.py: riskweb's
 * page in headless Chromium through Selenium (the script starts its own
 * redis-server and riskweb from $BUILD). It fails, saying what is missing,
 * when /usr/bin/chromium, /usr/bin/chromedriver or Debian's
 * python3-selenium is not installed (.ci/run installs them): a browser
 * test that passes without a browser would prove nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

int main(void)
{
    const char *py = "/usr/bin/python3";
    char cmd[256];
    int st;

    snprintf(cmd, sizeof(cmd), "%s -c 'import selenium' 2>/dev/null", py);
    if (access("/usr/bin/chromium", X_OK) != 0 || access("/usr/bin/chromedriver", X_OK) != 0 ||
        system(cmd) != 0) {
        printf("test-browser: FAILED: needs chromium, chromium-driver and python3-selenium "
               "(apt-get install chromium chromium-driver python3-selenium)\n");
        return 1;
    }
    fflush(stdout);
    st = fork();
    if (st == 0) {
        execl(py, "python3", "tests/browser/test_page.py", it_build_dir(), (char *)NULL);
        _exit(127);
    }
    if (st < 0 || waitpid(st, &st, 0) < 0)
        return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* daemon/riskctl/check.c - riskctl check [FILE]: load and validate a
 * configuration as riskd -t does (the schema, then the detectors' own
 * checks through the registry). No Redis. */
#include <stdio.h>
#include <string.h>

#include "riskctl.h"

/* riskctl check FILE: load and validate like riskd -t. Returns the exit
 * code: 0 and "FILE: configuration OK" on stdout, or 1 with the error on
 * stderr. */
int rk__ctl_check(const char *path)
{
    char err[RK_ERRLEN];
    rk__config *cfg;
    opts o;
    int rc;

    memset(&o, 0, sizeof(o));
    o.config = path;
    if (rk__ctl_load_config(&o, &cfg) != 0)
        return EX_FAIL;
    rc = rk__registry_check(cfg, err, sizeof(err));
    rk__config_free(cfg);
    if (rc != 0) {
        rk__ctl_errx("%s: %s", path, err);
        return EX_FAIL;
    }
    printf("%s: configuration OK\n", path);
    return EX_OK;
}

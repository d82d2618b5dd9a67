/* daemon/riskctl/report.c - riskctl report (being written). */
#include "riskctl.h"
int rk__ctl_report(int argc, char **argv) { (void)argc; (void)argv; return EX_FAIL; }

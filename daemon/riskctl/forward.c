/* stub */
#include "riskctl.h"
int rk__ctl_forward(const rk__config *cfg, const opts *o) { (void)cfg; (void)o; return EX_FAIL; }

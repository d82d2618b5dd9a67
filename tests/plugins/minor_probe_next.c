/* tests/plugins/minor_probe_next.c - minor_probe declaring an ABI minor
 * newer than riskd's, which riskd must refuse (see minor_probe.c). */
#define MINOR_PROBE_NEXT 1
#include "minor_probe.c"

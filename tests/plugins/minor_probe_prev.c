/* tests/plugins/minor_probe_prev.c - minor_probe built as a plugin of the
 * previous ABI minor (see minor_probe.c). */
#define MINOR_PROBE_PREV 1
#include "minor_probe.c"

/* riskd/kit.h - the plugin kit: every helper header at once.
 *
 * Nothing in the kit is part of the ABI (riskd/detector.h and
 * riskd/event.h are): it is header-only (static inline), compiled into
 * each detector, so that every detector - built-in or plugin - validates
 * its configuration, encodes its snapshot and keeps its per-key state the
 * same way, without linking against the daemon.
 *
 *   riskd/config.h     rk_kit_cfg_*: typed configuration getters with the
 *                      daemon's "<key>: expected ..." errors; durations.
 *   riskd/snapshot.h   rk_buf_put_* / rk_rd_*: the snapshot encoding.
 *   riskd/map.h        rk_map (string -> void *), rk_itab (intrusive hash
 *                      table), string hashes.
 *   riskd/heap.h       rk_heap: a min-heap of (time, record), the expiry
 *                      queue of every detector.
 *   riskd/window.h     rk_win / rk_winset: sliding windows on event time.
 *   riskd/text.h       rk_say_*, rk_kit_name: alert summaries in the
 *                      configured language, with names.
 *
 * Include this, or only the headers you use.
 */
#ifndef RISKD_KIT_H
#define RISKD_KIT_H

#include "riskd/detector.h"
#include "riskd/event.h"
#include "riskd/config.h"
#include "riskd/snapshot.h"
#include "riskd/map.h"
#include "riskd/heap.h"
#include "riskd/window.h"
#include "riskd/text.h"

#endif /* RISKD_KIT_H */

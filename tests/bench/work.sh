#!/bin/sh
# tests/bench/work.sh - the instructions riskd executes per event while it
# drains a backlog, beside a baseline riskd on the same backlog (make bench,
# part "work"; or alone: BENCH_BASE_RISKD=... sh tests/bench/work.sh).
#
# Why: on a shared virtual machine the wall-clock drain rate of one binary
# swings by tens of per cent between two runs, so a 5 % difference between
# two builds cannot be read from it. The number of instructions is the same
# from run to run (valgrind's callgrind counts them), so it shows what a
# change adds to the work per event; the drain and latency parts give the
# wall clock.
#
# One throwaway redis-server on a free loopback port; for riskd (and for
# BENCH_BASE_RISKD when set, with its plugins/two_officers.so): load
# BENCH_WORK events (default 50,000) with loadgen, start riskd under
# `valgrind --tool=callgrind` (state.interval 1h: no checkpoint while it
# drains, only the one of the clean stop; streams.claim_idle 1h: a slow run
# does not claim and read again its own entries, still pending for want of
# a checkpoint), wait until the group's lag is 0
# on both streams, stop it with SIGTERM. Prints, per event, the
# instructions of the event path - what riskd does with each batch the
# input streams' read returns (the read callback, on_read, inclusive:
# parsing, deduplication, ordering, the detectors, the indicators'
# counting, formatting and sending the alerts) - and of the whole riskd
# process (the checkpoint child it forks at the stop left out), and
# riskd/base of each, and the share of the event path the open alerts'
# lifecycle takes in each binary (its entry points, inclusive: a detector's
# look-ups, filing and forgetting of its open alerts, the store's adds,
# finds and open_ttl closes, the notices written) with what that adds to
# an event path without it. The event path is the figure to compare (two runs of
# one binary agree within about 0.3 %): the whole process adds the work of
# the timers (lease, the indicators' writes every 5 s, the wall tick) and
# of the replies to what they send, which grows with how long the run takes
# under callgrind, so on a busy machine it swings by 10 % and more. Callgrind runs riskd ~50x slower: about a minute per binary at
# 50,000 events.
# It reports; it never fails on a large result.
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)
BUILD=${BUILD:-build}
B="$top/$BUILD"
N=${BENCH_WORK:-50000}
BASE=${BENCH_BASE_RISKD:-}
OUT=${BENCH_OUT:-}

for bin in riskd bench/loadgen; do
    [ -x "$B/$bin" ] || { echo "missing $B/$bin: run make bench" >&2; exit 1; }
done
command -v valgrind >/dev/null || { echo "work: valgrind is not installed" >&2; exit 1; }
run="$B/bench/work"
rm -rf "$run"
mkdir -p "$run"
port=""
vp=""
cleanup() {
    [ -n "$vp" ] && kill -9 "$vp" 2>/dev/null || true
    [ -n "$port" ] && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

. "$top/tests/bench/redis.sh"
bench_redis "$run" 4409

say() { if [ -n "$OUT" ]; then echo "$1" | tee -a "$OUT"; else echo "$1"; fi; }

lag() { # lag STREAM: the group's lag, empty while it does not exist
    redis-cli -p "$port" XINFO GROUPS "$1" 2>/dev/null | awk 'p { print; exit } /^lag$/ { p = 1 }'
}

# measure NAME RISKD: prints the riskd process's instruction count
measure() {
    name=$1; bin=$2
    cat > "$run/$name.json" <<JSON
{
  "redis": {"port": $port},
  "metrics": {"listen": ""},
  "streams": {"consumer": "bench", "claim_idle": "1h"},
  "clock": {"wall_advance": false},
  "state": {"interval": "1h"},
  "plugins": ["$(dirname "$bin")/plugins/two_officers.so"]
}
JSON
    redis-cli -p "$port" flushall >/dev/null
    "$B/bench/loadgen" -p "$port" -n "$N" >/dev/null
    valgrind --tool=callgrind --callgrind-out-file="$run/$name.%p.out" \
        "$bin" -c "$run/$name.json" 2>"$run/$name.log" &
    vp=$!
    i=0
    while [ $i -lt 7200 ]; do
        sleep 0.5; i=$((i + 1))
        [ "$(lag enforce:scan)" = 0 ] && [ "$(lag enforce:case)" = 0 ] && break
    done
    kill -TERM "$vp"
    wait "$vp" || true
    # valgrind runs riskd in its own process: the file of that pid is the
    # loop's, the others are the checkpoint children's
    f="$run/$name.$vp.out"
    vp=""
    total=$(grep -E '^(summary|totals):' "$f" | head -1 | awk '{ print $2 }')
    # (from the run's folder: from the tree's, callgrind_annotate also lists
    # some functions under their sources' relative paths, a second time)
    ann=$(cd "$run" && callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null |
        sed '/-- Auto-annotated source/,$d')
    path=$(echo "$ann" | awk '/:(rk__)?on_read / { gsub(",", "", $1); print $1; exit }')
    # The open alerts' share (issue 17's +10 %): inclusive, the entry points
    # of the lifecycle, none calling another - a detector's look-ups, filing,
    # resolve times and forgetting (detectors/lifecycle.c), the store's adds,
    # finds and open_ttl closes, and the notices written.
    life=$(echo "$ann" | awk '
        /:(rk__open_get|rk__open_add|rk__open_due|rk__open_remove|rk__open_drop|rk__open_let_go|rk__ostore_add|rk__ostore_find|rk__ostore_pop_due|live_notice)( |$)/ &&
        !seen[$0]++ { gsub(",", "", $1); s += $1 } END { printf "%.0f", s }')
    echo "$path $total $life"
}

say "WORK  instructions per event (callgrind) draining $N events, all detectors on: the event path"
say "      (what riskd does with each batch it reads: parse, dedupe, order, detect, count, alert) and the whole process"
say "$(printf '%-10s %16s %12s %16s %12s' riskd 'event path' 'per event' process 'per event')"
row() { awk -v v="$1" -v a="$2" -v b="$3" -v n="$N" \
    'BEGIN { printf "%-10s %16.0f %12.0f %16.0f %12.0f", v, a, a / n, b, b / n }'; }
set -- $(measure riskd "$B/riskd")
ir=$1; irt=$2; irl=$3
say "$(row riskd "$ir" "$irt")"
if [ -n "$BASE" ]; then
    [ -x "$BASE" ] || { echo "BENCH_BASE_RISKD=$BASE: not an executable" >&2; exit 1; }
    set -- $(measure base "$BASE")
    irb=$1; irbt=$2; irbl=$3
    say "$(row base "$irb" "$irbt")"
    say "$(awk -v a="$ir" -v b="$irb" -v c="$irt" -v d="$irbt" 'BEGIN {
        printf "riskd/base instructions per event: event path %.4f (within 5 %%: <= 1.05), process %.4f", a / b, c / d }')"
fi
share() { awk -v w="$1" -v l="$2" -v a="$3" 'BEGIN { if (a > 0 && l != "")
    printf "%-10s the open alerts (lifecycle) take %.1f %% of the event path: they add %.1f %% to it (bound: 10 %%)", w, 100 * l / a, 100 * l / (a - l) }'; }
say "$(share riskd "$irl" "$ir")"
if [ -n "$BASE" ]; then say "$(share base "$irbl" "$irb")"; fi

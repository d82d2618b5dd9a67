#!/bin/sh
# tests/bench/takeover.sh - how long a standby takes to consume after the
# active riskd dies (make bench, part "takeover"; or alone:
# sh tests/bench/takeover.sh after make).
#
# One throwaway redis-server on a free loopback port, two riskd processes
# (consumers a and b) with the shipped lease settings (state.lease_ttl 5s,
# unless BENCH_LEASE_TTL says otherwise) and a small history in the streams
# (BENCH_TAKEOVER_EVENTS entries, so each takeover restores a checkpoint and
# claims). Then BENCH_TAKEOVERS times (default 10): SIGKILL the active one,
# note the time, and read in the other's log the time of its "partition 0:
# consuming" line (riskd logs wall-clock ms; same host, same clock); restart
# the killed one as the new standby and wait until it says so. Prints each
# kill-to-consuming time, the median and the max, beside the bound riskd(8)
# DEPLOYMENT documents for that lease_ttl:
#   lease_ttl (the dead holder's lease runs out) + 2 x lease_ttl/3 (a tick
#   that sees the lease free, the tick after that acquires it) + 1.5 s (the
#   takeover wait) + the pipeline's start.
# It reports; it never fails on a slow result.
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)
BUILD=${BUILD:-build}
B="$top/$BUILD"
N=${BENCH_TAKEOVERS:-10}
TTL=${BENCH_LEASE_TTL:-5}
EVENTS=${BENCH_TAKEOVER_EVENTS:-2000}
OUT=${BENCH_OUT:-}

for bin in riskd bench/loadgen; do
    [ -x "$B/$bin" ] || { echo "missing $B/$bin: run make bench" >&2; exit 1; }
done
run="$B/bench/takeover"
rm -rf "$run"
mkdir -p "$run"
port=""
pa=""
pb=""
cleanup() {
    for p in $pa $pb; do kill -9 "$p" 2>/dev/null || true; done
    [ -n "$port" ] && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

. "$top/tests/bench/redis.sh"
bench_redis "$run" 7919

for c in a b; do
    cat > "$run/$c.json" <<JSON
{
  "redis": {"port": $port},
  "metrics": {"listen": ""},
  "streams": {"consumer": "$c"},
  "state": {"lease_ttl": "${TTL}s"}
}
JSON
done
"$B/bench/loadgen" -p "$port" -n "$EVENTS" >/dev/null

ms_now() { date +%s%3N; }
# The wall-clock ms of the n-th line (1-based) of file $1 containing $2.
line_ms() {
    grep -F "$2" "$1" | sed -n "${3}p" | cut -c1-23 | {
        read -r ts || exit 0
        date -d "${ts}Z" +%s%3N
    }
}
count() { grep -c -F "$2" "$1" 2>/dev/null || true; }
# wait_count FILE TEXT N: until FILE has N lines with TEXT (60 s at most).
wait_count() {
    i=0
    while [ "$(count "$1" "$2")" -lt "$3" ]; do
        i=$((i + 1))
        [ $i -gt 1200 ] && { echo "timed out waiting for \"$2\" in $1" >&2; tail -5 "$1" >&2; exit 1; }
        sleep 0.05
    done
}
start() { # start NAME: riskd with NAME.json, log appended to NAME.log
    "$B/riskd" -c "$run/$1.json" 2>>"$run/$1.log" &
    eval "p$1=$!"
}

start a
wait_count "$run/a.log" "ready (active)" 1
start b
wait_count "$run/b.log" "ready (standby)" 1
active=a
standby=b
times=""
k=0
while [ $k -lt "$N" ]; do
    k=$((k + 1))
    want=$(( $(count "$run/$standby.log" "partition 0: consuming") + 1 ))
    eval "pid=\$p$active"
    t0=$(ms_now)
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    wait_count "$run/$standby.log" "partition 0: consuming" "$want"
    t1=$(line_ms "$run/$standby.log" "partition 0: consuming" "$want")
    d=$((t1 - t0))
    times="$times $d"
    printf 'takeover %2d: %s consuming %5d ms after %s was killed\n' "$k" "$standby" "$d" "$active"
    # The killed one comes back as the standby.
    ready=$(( $(count "$run/$active.log" "ready (standby)") + 1 ))
    start "$active"
    wait_count "$run/$active.log" "ready (standby)" "$ready"
    t=$active; active=$standby; standby=$t
done
echo "$times" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk -v ttl="$TTL" -v n="$N" '
    { v[NR] = $1 }
    END {
        med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        bound = ttl * 1000 + 2 * ttl * 1000 / 3 + 1500
        printf "TAKEOVER  %d kills of the active riskd, lease_ttl %ds, one Redis: kill -> consuming\n", n, ttl
        printf "          median %.1f s, max %.1f s, min %.1f s; documented bound %.1f s + the pipeline start\n", \
            med / 1000, v[NR] / 1000, v[1] / 1000, bound / 1000
    }' | if [ -n "$OUT" ]; then tee -a "$OUT"; else cat; fi

#!/bin/sh
# tests/bench/run.sh - riskd's performance benchmark (make bench).
#
# Starts a throwaway redis-server (--save '' --appendonly no) on a free
# loopback port under $BUILD/bench/run/, and measures build/riskd with all
# detectors on (the four built-ins and the two_officers plugin) against it:
#
#   drain     for each backlog size: load it with loadgen, drain it once with
#             nullconsumer (XREADGROUP COUNT 500 + XACK, nothing else: the
#             physical limit of one connection) and once with riskd (drain:
#             time until the group's lag is 0 on both streams; "acked" adds
#             the wait for the last checkpoint's XACKs). riskd/null is the
#             ratio; the rows side by side show whether the cost per event
#             stays flat as the backlog (and the history) grows. Each size
#             is drained three ways: riskd as shipped ("dedupe"), riskd with
#             state.dedupe_window "0s" ("no-dedupe": the release before
#             natural-key deduplication, the baseline of its cost), and the
#             same backlog with every 10th event written twice ("10%-rep":
#             what repeated input costs); dedupe/no-dedupe is printed.
#   dedupe    tests/bench/dedupe.c: the natural-key store alone at 100k, 1M
#             and 5M keys - bytes per remembered filing (the store's count
#             and the allocator's), ns per record / lookup, snapshot and
#             restore ns per key (restore is O(n)).
#   indicators tests/bench/indicators.c: the indicators' memory per unit,
#             per officer and per filing for a province (2,000 units, 40,000
#             officers), next to the figures riskd(8) INDICATORS documents.
#   lists     tests/bench/lists.c: a names file and a benchmarks file of
#             100,000 rows each, parsed alone and loaded whole with
#             riskctl lists load (budget: 10 s each).
#   report    tests/bench/report.c: riskctl report --period quarter for a
#             province (2,000 units, 100,000 alerts in the quarter, 5,000
#             open) against the 10 s budget.
#   latency   for each rate: a fresh riskd on empty streams, latency writes
#             the mix at that rate for BENCH_LAT_SECONDS and times XADD ->
#             alert on alerts:* (p50 / p99 / p99.9 / max); then the same
#             with nullrelay instead of riskd (XREADGROUP BLOCK, PUBLISH of
#             the probes, XACK: the floor of that path on this machine).
#   work      tests/bench/work.sh: instructions per event of riskd (and of
#             BENCH_BASE_RISKD) draining 50,000 events under callgrind -
#             the same from run to run, where the wall clock is not.
#   takeover  tests/bench/takeover.sh: two riskd, the active one SIGKILLed
#             BENCH_TAKEOVERS times (default 10, ~100 s): kill-to-consuming
#             median and max beside the bound riskd(8) documents.
#   memory    for each count: riskd on empty streams, then that many filings
#             (10k units, 100k officers, all inside 20 h of event time so
#             every filing stays live); peak RSS (VmHWM) minus the idle RSS
#             before the feed, per live filing.
#
# It reports; it never fails on a slow result. Knobs (environment):
#   BENCH_SIZES        backlogs to drain      (default "100000 1000000"; the full
#                      set, ~17 min on 2 cores: "100000 1000000 5000000")
#   BENCH_RATES        latency rates, ev/s    (default "1000 5000 20000")
#   BENCH_LAT_SECONDS  seconds per rate       (default 20)
#   BENCH_MEM          live filings           (default "100000 1000000")
#   BENCH_STATE_INTERVAL  riskd state.interval (default "5s", the shipped
#                      config's value; "1s" checkpoints five times as often)
#   BENCH_PARTS        which parts to run     (default "drain latency memory dedupe lists indicators report work takeover")
#   BENCH_DEDUPE       keys for the dedupe part (default "100000 1000000 5000000")
#   BENCH_OUT          the table is also written here ($BUILD/bench/results.txt)
#   BENCH_BASE_RISKD   a baseline riskd binary (say an earlier commit's, built
#                      in a worktree: git worktree add /tmp/base REV && make -C
#                      /tmp/base; then /tmp/base/build/riskd, with its own
#                      plugins/two_officers.so beside it). The drain then also
#                      runs it on each backlog ("base" rows, and riskd/base),
#                      and the latency part at each rate: the two side by side
#                      in one run, on one machine state.
# e.g. a quick run: BENCH_SIZES=100000 BENCH_MEM=100000 BENCH_LAT_SECONDS=5 make bench
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)
BUILD=${BUILD:-build}
B="$top/$BUILD"
SIZES=${BENCH_SIZES:-"100000 1000000"}
RATES=${BENCH_RATES:-"1000 5000 20000"}
LAT_SECONDS=${BENCH_LAT_SECONDS:-20}
MEM=${BENCH_MEM:-"100000 1000000"}
INTERVAL=${BENCH_STATE_INTERVAL:-5s}
PARTS=${BENCH_PARTS:-"drain latency memory dedupe lists indicators report work takeover"}
OUT=${BENCH_OUT:-$B/bench/results.txt}
BASE=${BENCH_BASE_RISKD:-}

for bin in riskd bench/loadgen bench/nullconsumer bench/nullrelay bench/drain bench/latency bench/dedupe bench/lists bench/indicators bench/report; do
    [ -x "$B/$bin" ] || { echo "missing $B/$bin: run make bench" >&2; exit 1; }
done

run="$B/bench/run"
rm -rf "$run"
mkdir -p "$run"
port=""
redis_pid=""
cleanup() {
    [ -n "$port" ] && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

. "$top/tests/bench/redis.sh"
bench_redis "$run" 0
redis_pid=$(cat "$run/redis.pid")
rc() { redis-cli -p "$port" "$@" >/dev/null; }

cat > "$run/riskd.json" <<JSON
{
  "redis": {"port": $port},
  "metrics": {"listen": ""},
  "streams": {"consumer": "bench"},
  "clock": {"wall_advance": false},
  "state": {"interval": "$INTERVAL"},
  "plugins": ["$B/plugins/two_officers.so"]
}
JSON
sed 's/"state": {/"state": {"dedupe_window": "0s", /' "$run/riskd.json" > "$run/riskd-nodedupe.json"
if [ -n "$BASE" ]; then
    [ -x "$BASE" ] || { echo "BENCH_BASE_RISKD=$BASE: not an executable" >&2; exit 1; }
    sed "s#$B/plugins/two_officers.so#$(dirname "$BASE")/plugins/two_officers.so#" \
        "$run/riskd.json" > "$run/riskd-base.json"
fi

kv() { # kv KEY LINE: the value of KEY= in a key=value line
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
memkb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)
{
    echo "riskd $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?') bench, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "machine: $(nproc) CPUs ($cpu), $(awk -v k="$memkb" 'BEGIN { printf "%.1f GiB", k / 1048576 }') RAM, $(uname -sr), $(redis-server --version | sed 's/ sha=.*//')"
    echo "riskd: all detectors on (4 built-ins + two_officers), streams.batch 500, state.interval $INTERVAL"
    echo
} | tee "$OUT"

if echo "$PARTS" | grep -q drain; then
    {
        echo "DRAIN  backlog preloaded; null = XREADGROUP COUNT 500 + XACK only; riskd = lag 0 (acked = + last checkpoint's XACK)"
        echo "       dedupe = as shipped; no-dedupe = state.dedupe_window 0s (baseline); 10%-rep = every 10th event written twice"
        printf '%10s %-10s %10s %10s %10s %7s %10s %9s %9s %9s %9s\n' \
            backlog riskd "load/s" "null/s" "riskd/s" "r/null" "acked/s" "riskd-cpu" "redis-cpu" "us/event" "HWM-MB"
    } | tee -a "$OUT"
    for n in $SIZES; do
        for v in dedupe no-dedupe 10%-rep ${BASE:+base}; do
            cfg="$run/riskd.json"; rep=""; bin="$B/riskd"
            [ "$v" = no-dedupe ] && cfg="$run/riskd-nodedupe.json"
            [ "$v" = 10%-rep ] && rep="--repeat-every 10"
            [ "$v" = base ] && { cfg="$run/riskd-base.json"; bin="$BASE"; }
            rc flushall
            load=$("$B/bench/loadgen" -p "$port" -n "$n" $rep)
            null=$("$B/bench/nullconsumer" -p "$port")
            d=$("$B/bench/drain" -p "$port" --redis-pid "$redis_pid" --timeout 7200 -- \
                "$bin" -c "$cfg" 2>"$run/riskd-drain-$n-$v.log")
            f="$run/drain-$n-$(echo "$v" | tr -d %).txt"
            echo "$load" > "$f"; echo "$null" >> "$f"; echo "$d" >> "$f"
            [ "$v" = dedupe ] && on=$(kv rate "$d")
            [ "$v" = no-dedupe ] && off=$(kv rate "$d")
            [ "$v" = base ] && base=$(kv rate "$d")
            awk -v n="$n" -v v="$v" -v l="$(kv rate "$load")" -v z="$(kv rate "$null")" -v r="$(kv rate "$d")" \
                -v a="$(kv rate_acked "$d")" -v t="$(kv t_read "$d")" -v c="$(kv cpu_s "$d")" \
                -v rcpu="$(kv redis_cpu_s "$d")" -v h="$(kv hwm_kb "$d")" 'BEGIN {
                printf "%10d %-10s %10d %10d %10d %7.3f %10d %8.0f%% %8.0f%% %9.2f %9.1f\n",
                    n, v, l, z, r, r / z, a, 100 * c / t, 100 * rcpu / t, 1e6 * c / n, h / 1024 }' | tee -a "$OUT"
        done
        awk -v n="$n" -v a="$on" -v b="$off" 'BEGIN {
            printf "%10d dedupe/no-dedupe drain rate: %.3f (target >= 0.9)\n", n, a / b }' | tee -a "$OUT"
        [ -n "$BASE" ] && awk -v n="$n" -v a="$on" -v b="$base" 'BEGIN {
            printf "%10d riskd/base drain rate: %.3f (within 5 %%: >= 0.95)\n", n, a / b }' | tee -a "$OUT"
    done
    echo | tee -a "$OUT"
fi

if echo "$PARTS" | grep -q latency; then
    {
        echo "LATENCY  XADD -> alert on alerts:<detector>, steady rate for ${LAT_SECONDS}s (first 2 s not counted), fresh riskd"
        printf '%10s %10s %9s %9s %9s %9s %9s %9s  %s\n' \
            "target/s" "sent/s" samples "p50-ms" "p99-ms" "p99.9-ms" "max-ms" "cpu" "consumer"
    } | tee -a "$OUT"
    for r in $RATES; do
      for v in riskd ${BASE:+base}; do
        cfg="$run/riskd.json"; bin="$B/riskd"
        [ "$v" = base ] && { cfg="$run/riskd-base.json"; bin="$BASE"; }
        rc flushall
        d=$("$B/bench/drain" -p "$port" --redis-pid "$redis_pid" \
            --feed "'$B/bench/latency' -p $port -r $r -d $LAT_SECONDS > '$run/latency-$r-$v.txt'" -- \
            "$bin" -c "$cfg" 2>"$run/riskd-latency-$r-$v.log")
        l=$(cat "$run/latency-$r-$v.txt")
        echo "$d" >> "$run/latency-$r-$v.txt"
        awk -v t="$r" -v a="$(kv achieved "$l")" -v s="$(kv samples "$l")" \
            -v p50="$(kv p50_ms "$l")" -v p99="$(kv p99_ms "$l")" -v p999="$(kv p999_ms "$l")" \
            -v mx="$(kv max_ms "$l")" -v c="$(kv cpu_s "$d")" -v tr="$LAT_SECONDS" -v v="$v" 'BEGIN {
            printf "%10d %10d %9d %9.3f %9.3f %9.3f %9.3f %8.0f%%  %s\n",
                t, a, s, p50, p99, p999, mx, 100 * c / tr, v }' | tee -a "$OUT"
      done
        # The same path through the null relay (nullrelay.c): the floor.
        rc flushall
        "$B/bench/nullrelay" -p "$port" &
        relay=$!
        sleep 0.3
        "$B/bench/latency" -p "$port" -r "$r" -d "$LAT_SECONDS" > "$run/latency-relay-$r.txt"
        c=$(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$relay/stat")
        kill "$relay"
        wait "$relay" || true
        l=$(cat "$run/latency-relay-$r.txt")
        awk -v t="$r" -v a="$(kv achieved "$l")" -v s="$(kv samples "$l")" \
            -v p50="$(kv p50_ms "$l")" -v p99="$(kv p99_ms "$l")" -v p999="$(kv p999_ms "$l")" \
            -v mx="$(kv max_ms "$l")" -v c="$c" -v tr="$LAT_SECONDS" 'BEGIN {
            printf "%10d %10d %9d %9.3f %9.3f %9.3f %9.3f %8.0f%%  null relay\n",
                t, a, s, p50, p99, p999, mx, 100 * c / tr }' | tee -a "$OUT"
    done
    echo | tee -a "$OUT"
fi

if echo "$PARTS" | grep -q memory; then
    {
        echo "MEMORY  N live filings (10k units, 100k officers, within 20 h: none expired or scanned), riskd consuming live"
        printf '%10s %10s %10s %10s %12s %12s %12s\n' filings "idle-MB" "HWM-MB" "RSS-MB" "HWM-B/filing" "RSS-B/filing" "ckpt-B/filing"
    } | tee -a "$OUT"
    for n in $MEM; do
        rc flushall
        d=$("$B/bench/drain" -p "$port" --timeout 7200 \
            --feed "'$B/bench/loadgen' -p $port -n $n --filings-only --units 10000 --officers 100000 --days 0.83 > '$run/memory-load-$n.txt'" -- \
            "$B/riskd" -c "$run/riskd.json" 2>"$run/riskd-memory-$n.log")
        echo "$d" > "$run/memory-$n.txt"
        awk -v n="$n" -v b="$(kv base_kb "$d")" -v h="$(kv hwm_kb "$d")" -v s="$(kv rss_kb "$d")" \
            -v st="$(kv state_bytes "$d")" 'BEGIN {
            printf "%10d %10.1f %10.1f %10.1f %12.0f %12.0f %12.0f\n",
                n, b / 1024, h / 1024, s / 1024, (h - b) * 1024 / n, (s - b) * 1024 / n, st / n }' | tee -a "$OUT"
    done
    echo | tee -a "$OUT"
fi
if echo "$PARTS" | grep -q dedupe; then
    {
        echo "DEDUPE  natural-key store alone (tests/bench/dedupe.c): N filings remembered, random order"
        printf '%10s %12s %12s %10s %10s %10s %12s %12s\n' keys "store-B/key" "malloc-B/key" \
            "record-ns" "known-ns" "unknown-ns" "snapshot-ns" "restore-ns"
    } | tee -a "$OUT"
    for n in ${BENCH_DEDUPE:-100000 1000000 5000000}; do
        d=$("$B/bench/dedupe" "$n")
        echo "$d" > "$run/dedupe-$n.txt"
        awk -v n="$n" -v s="$(kv store_B_per_key "$d")" -v m="$(kv malloc_B_per_key "$d")" \
            -v r="$(kv record_ns "$d")" -v k="$(kv known_ns "$d")" -v u="$(kv unknown_ns "$d")" \
            -v sn="$(kv snapshot_ns "$d")" -v rs="$(kv restore_ns "$d")" 'BEGIN {
            printf "%10d %12.2f %12.2f %10.0f %10.0f %10.0f %12.1f %12.1f\n", n, s, m, r, k, u, sn, rs }' \
            | tee -a "$OUT"
    done
    echo "(target: at most 16 B per remembered filing at a province's scale, 1M and more)" | tee -a "$OUT"
    echo | tee -a "$OUT"
fi
if echo "$PARTS" | grep -q lists; then
    {
        echo "LISTS  a reference list of 100,000 rows (tests/bench/lists.c): parse alone, riskctl lists load whole"
        printf '%12s %10s %10s %10s %10s\n' kind rows parse-s load-s budget-s
    } | tee -a "$OUT"
    "$B/bench/lists" -p "$port" --riskctl "$B/riskctl" 100000 > "$run/lists.txt"
    while read -r line; do
        awk -v k="$(kv kind "$line")" -v r="$(kv rows "$line")" -v p="$(kv parse_s "$line")" \
            -v l="$(kv load_s "$line")" -v b="$(kv budget_s "$line")" 'BEGIN {
            printf "%12s %10d %10.3f %10.3f %10.0f\n", k, r, p, l, b }' | tee -a "$OUT"
    done < "$run/lists.txt"
    echo | tee -a "$OUT"
fi
if echo "$PARTS" | grep -q indicators; then
    "$B/bench/indicators" 2000 40000 | tee -a "$OUT"
    echo | tee -a "$OUT"
fi
if echo "$PARTS" | grep -q report; then
    {
        echo "REPORT  riskctl report --period quarter for a province (tests/bench/report.c)"
        printf '%8s %8s %8s %10s %10s %12s\n' units alerts open report-s budget-s html-bytes
    } | tee -a "$OUT"
    redis-cli -p "$port" flushall >/dev/null
    line=$("$B/bench/report" -p "$port" --riskctl "$B/riskctl" 2000 100000 5000)
    awk -v u="$(kv units "$line")" -v a="$(kv alerts "$line")" -v o="$(kv open "$line")" \
        -v s="$(kv report_s "$line")" -v b="$(kv budget_s "$line")" -v h="$(kv html_bytes "$line")" \
        'BEGIN { printf "%8d %8d %8d %10.3f %10.0f %12d\n", u, a, o, s, b, h }' | tee -a "$OUT"
    echo | tee -a "$OUT"
fi
if echo "$PARTS" | grep -q work; then
    BUILD="$BUILD" BENCH_OUT="$OUT" sh tests/bench/work.sh
    echo | tee -a "$OUT"
fi
if echo "$PARTS" | grep -q takeover; then
    BUILD="$BUILD" BENCH_OUT="$OUT" sh tests/bench/takeover.sh
    echo | tee -a "$OUT"
fi
echo "raw key=value results and riskd logs: $run"

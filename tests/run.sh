#!/bin/sh
# Run each test binary in its own process with a time limit, TEST_JOBS of
# them at a time (default 1), longest first. A test's output is held until
# it ends and then printed whole, between "=== name" and "--- name: 12 s",
# so that tests running side by side never interleave their lines. Closes
# with the five slowest and one line "N passed, N failed" counting binaries.
#
# Usage: tests/run.sh BIN...
#   TEST_TIMEOUT  seconds per binary (default 600: a hang guard; the longest
#                 binary takes some 140 s under the sanitizers when quiet)
#   TEST_JOBS     binaries at once (default 1). Each runs with IT_SLOT set
#                 to its job slot, from which tests/lib/itest.c takes the
#                 loopback ports of the servers it starts, so that tests
#                 side by side never race for a port.
#
# Internal: tests/run.sh --one SLOTDIR BIN runs one binary for the pool.
set -u

if [ "${1:-}" = "--one" ]; then
    dir=$2; t=$3; name=$(basename "$t")
    # The slot: the first free one of TEST_JOBS, claimed with mkdir (atomic).
    s=0
    while ! mkdir "$dir/slot.$s" 2>/dev/null; do
        s=$(( (s + 1) % ${TEST_JOBS:-1} ))
        [ "$s" = 0 ] && sleep 0.1
    done
    t0=$(date +%s)
    # In a session of its own, whose id the file $name.sid keeps: the
    # servers a test starts run in process groups of their own but stay in
    # its session, so what a test killed by the time limit leaves running
    # is found and stopped below, not left to load the tests after it.
    IT_SLOT=$s setsid -w sh -c 'echo $$ >"$0"; exec timeout -k 5 "$1" "$2"' \
        "$dir/$name.sid" "${TEST_TIMEOUT:-600}" "$t" >"$dir/$name.out" 2>&1
    rc=$?
    [ -s "$dir/$name.sid" ] && pkill -KILL -s "$(cat "$dir/$name.sid")" 2>/dev/null
    rm -f "$dir/$name.sid"
    dt=$(($(date +%s) - t0))
    rmdir "$dir/slot.$s"
    [ "$rc" = 124 ] && echo "--- $name: timed out after ${TEST_TIMEOUT:-600}s" >>"$dir/$name.out"
    # Print the whole block under a lock (one writer at a time).
    (
        flock 9
        printf '=== %s\n' "$name"
        cat "$dir/$name.out"
        printf -- '--- %s: %d s\n' "$name" "$dt"
        printf '%s %s %s\n' "$rc" "$dt" "$name" >>"$dir/results"
    ) 9>>"$dir/lock"
    rm -f "$dir/$name.out"
    exit 0
fi

jobs=${TEST_JOBS:-1}
case $jobs in ''|*[!0-9]*|0) echo "TEST_JOBS must be a positive number" >&2; exit 2 ;; esac
dir=$(mktemp -d "${TMPDIR:-/tmp}/riskd-run-XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
: >"$dir/results"

# Longest first, so the pool does not end waiting on one long test: the
# ones known to take a minute or more, then the others in the order given.
slow="test-failover test-lease test-crash test-scenarios test-late test-pipeline"
slow="$slow test-indicators-months test-state test-repeated test-sentinel"
order=""
for s in $slow; do
    for t in "$@"; do
        [ "$(basename "$t")" = "$s" ] && order="$order $t"
    done
done
for t in "$@"; do
    case " $slow " in *" $(basename "$t") "*) ;; *) order="$order $t" ;; esac
done

printf '%s\n' $order | TEST_JOBS=$jobs xargs -P "$jobs" -I{} sh "$0" --one "$dir" {}

pass=$(awk '$1 == 0' "$dir/results" | wc -l)
fail=$(awk '$1 != 0' "$dir/results" | wc -l)
failed=$(awk '$1 != 0 { printf " %s", $3 }' "$dir/results")
printf 'slowest:'; sort -k2,2rn "$dir/results" | head -5 | awk '{ printf " %s %ss", $3, $2 }'; echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$((pass + fail))" = "$#" ]

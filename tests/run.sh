#!/bin/sh
# Run each test binary in its own process with a time limit, print how long
# each took ("--- name: 12 s") and one closing line "N passed, N failed"
# counting binaries, after the five slowest.
# Usage: tests/run.sh BIN...   (TEST_TIMEOUT seconds per binary, default 300)
pass=0; fail=0; failed=""; times=""
limit=${TEST_TIMEOUT:-300}
for t in "$@"; do
    name=$(basename "$t")
    printf '=== %s\n' "$name"
    t0=$(date +%s)
    if timeout -k 5 "$limit" "$t"; then
        pass=$((pass + 1))
    else
        rc=$?
        [ "$rc" = 124 ] && echo "--- $name: timed out after ${limit}s"
        fail=$((fail + 1)); failed="$failed $name"
    fi
    dt=$(($(date +%s) - t0))
    printf -- '--- %s: %d s\n' "$name" "$dt"
    times="$times$dt $name
"
done
printf 'slowest:'; printf '%s' "$times" | sort -rn | head -5 | awk '{ printf " %s %ss", $2, $1 }'; echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

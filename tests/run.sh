#!/bin/sh
# Run each test binary in its own process with a time limit and print one
# closing line "N passed, N failed" counting binaries.
# Usage: tests/run.sh BIN...   (TEST_TIMEOUT seconds per binary, default 300)
pass=0; fail=0; failed=""
limit=${TEST_TIMEOUT:-300}
for t in "$@"; do
    name=$(basename "$t")
    printf '=== %s\n' "$name"
    if timeout -k 5 "$limit" "$t"; then
        pass=$((pass + 1))
    else
        rc=$?
        [ "$rc" = 124 ] && echo "--- $name: timed out after ${limit}s"
        fail=$((fail + 1)); failed="$failed $name"
    fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

#!/bin/sh
# tests/bench/riskweb.sh - riskweb with 1,000 live feeds (make bench-web).
#
# Starts a throwaway redis-server and $BUILD/riskweb (web.history 0) on free
# loopback ports under $BUILD/bench/web/ and runs $BUILD/bench/sse against
# them (tests/bench/sse.c): riskweb's memory with the clients connected,
# p50/p99 delay from XADD of an alert to its arrival at the last of the
# clients, and the same with one stalled client among them. It reports; it
# never fails on a slow result. Knobs: BENCH_WEB_CLIENTS (1000),
# BENCH_WEB_EVENTS (200 per phase), BENCH_WEB_SIZE (bytes of summary, 3000: 200 of them pass the stalled client's bound).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
run="$(pwd)/$BUILD/bench/web"
rm -rf "$run"; mkdir -p "$run"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port); wport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$run" \
    --daemonize yes --logfile "$run/redis.log" --pidfile "$run/redis.pid"
until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.1; done
cat > "$run/riskd.json" <<JSON
{"redis": {"port": $rport}, "metrics": {"listen": ""},
 "web": {"listen": "127.0.0.1:$wport", "history": 0}}
JSON
"$BUILD/riskweb" -c "$run/riskd.json" 2>"$run/riskweb.log" &
web=$!
trap 'kill -TERM $web 2>/dev/null; redis-cli -p $rport shutdown nosave >/dev/null 2>&1 || true' EXIT
until curl -sf "http://127.0.0.1:$wport/healthz" >/dev/null 2>&1; do sleep 0.1; done
echo "RISKWEB  ${BENCH_WEB_CLIENTS:-1000} live feeds on $(nproc) cores; per-client queue bound 256 KiB"
"$BUILD/bench/sse" -r "$rport" -w "$wport" -p "$web" -c "${BENCH_WEB_CLIENTS:-1000}" \
    -n "${BENCH_WEB_EVENTS:-200}" --size "${BENCH_WEB_SIZE:-3000}"

# tests/bench/redis.sh - sourced by the benchmark scripts (run.sh,
# takeover.sh, work.sh): a throwaway redis-server for one benchmark.
#
#   bench_redis DIR SALT
#
# starts redis-server (no persistence, daemonized, its pid file and log in
# DIR) on the first free loopback port from 16000 + (pid + SALT) mod 20000
# that answers PING within 5 s, trying ten ports; sets $port. Exits the
# script with a message when none starts. (SALT keeps scripts started
# together off each other's first port.)
bench_redis() {
    _dir=$1
    _p=$((16000 + ($$ + $2) % 20000))
    port=""
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        if redis-server --port "$_p" --bind 127.0.0.1 --dir "$_dir" --save '' --appendonly no \
            --daemonize yes --pidfile "$_dir/redis.pid" --logfile "$_dir/redis.log" 2>/dev/null; then
            _i=0
            while [ $_i -lt 50 ]; do
                if redis-cli -p "$_p" ping 2>/dev/null | grep -q PONG; then port=$_p; break; fi
                _i=$((_i + 1)); sleep 0.1
            done
            [ -n "$port" ] && break
        fi
        _p=$((_p + 1))
    done
    [ -n "$port" ] || { echo "cannot start redis-server" >&2; exit 1; }
}

#!/bin/sh
# Quick start: install the Debian packages riskd needs, build it, start a
# private redis-server on a free loopback port under build/demo/, start
# riskd against it, subscribe to every alert channel and feed a short demo
# so the alerts can be watched as they arrive.
#
#   sh tests/demo/run.sh            run the demo, then stop everything
#   DEMO_FOLLOW=1 sh tests/demo/run.sh   keep running until Ctrl-C
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)

pkgs="build-essential pkg-config libuv1-dev libhiredis-dev libjansson-dev libxxhash-dev libcmocka-dev libhttp-parser-dev libjs-chart.js redis-server redis-tools"
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo ">> installing:$missing"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

echo ">> building"
make -s

run="$top/build/demo"
rm -rf "$run"
mkdir -p "$run"
# A free loopback port from 6400 up: one nobody listens on (per /proc/net).
port_in_use() {
    hex=$(printf ':%04X ' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" { print $2 " " }' | grep -q "$hex"
}
port=6400
while port_in_use "$port"; do port=$((port + 1)); done
webport=9478
while port_in_use "$webport"; do webport=$((webport + 1)); done

cleanup() {
    [ -n "${sub_pid:-}" ] && kill "$sub_pid" 2>/dev/null || true
    [ -n "${riskd_pid:-}" ] && kill -TERM "$riskd_pid" 2>/dev/null && wait "$riskd_pid" 2>/dev/null || true
    [ -n "${web_pid:-}" ] && kill -TERM "$web_pid" 2>/dev/null && wait "$web_pid" 2>/dev/null || true
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

echo ">> redis-server on 127.0.0.1:$port (data in $run)"
redis-server --port "$port" --bind 127.0.0.1 --dir "$run" --save '' --appendonly no \
    --daemonize yes --logfile "$run/redis.log"
i=0
until redis-cli -p "$port" ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "redis-server did not start"; exit 1; }; sleep 0.1
done

cat > "$run/riskd.json" <<JSON
{
  "redis": {"port": $port},
  "metrics": {"listen": "127.0.0.1:0"},
  "plugins": ["$top/build/plugins/two_officers.so"],
  "clock": {"idle": "3s"},
  "web": {"listen": "127.0.0.1:$webport"}
}
JSON
# metrics on an ephemeral port would be undiscoverable: turn it off for the demo
sed -i 's/"listen": "127.0.0.1:0"/"listen": ""/' "$run/riskd.json"

echo ">> riskd (log in $run/riskd.log)"
"$top/build/riskd" -c "$run/riskd.json" 2>"$run/riskd.log" &
riskd_pid=$!

"$top/build/riskweb" -c "$run/riskd.json" 2>"$run/riskweb.log" &
web_pid=$!
echo ">> the dashboard: http://127.0.0.1:$webport/ (riskweb, log in $run/riskweb.log)"

echo ">> alerts as they arrive on alerts:* :"
redis-cli -p "$port" --raw psubscribe 'alerts:*' 2>/dev/null | awk '/^{/ { print "   " $0; fflush() }' &
sub_pid=$!
sleep 1

x() { redis-cli -p "$port" XADD "$1" '*' data "$2" >/dev/null; }
S=enforce:scan; C=enforce:case
day=86400000
t0=1740790800000   # 2025-03-01T09:00:00+08:00

# An inspection filed and scanned properly: no alert.
x $S "{\"type\":\"inspection.filed\",\"ts\":$t0,\"task_id\":\"T100\",\"unit_id\":\"MR-01\",\"officers\":[\"O7\",\"O8\"],\"enterprise_id\":\"E500\"}"
x $S "{\"type\":\"inspection.scanned\",\"ts\":$((t0 + 3600000)),\"task_id\":\"T100\",\"enterprise_id\":\"E500\"}"
# A filing with a single officer (two_officers plugin).
x $S "{\"type\":\"inspection.filed\",\"ts\":$((t0 + 60000)),\"task_id\":\"T101\",\"unit_id\":\"MR-01\",\"officers\":[\"O7\"],\"enterprise_id\":\"E501\"}"
# Three bad ratings of officer O7 (bad_rating, officer_repeated).
for k in 1 2 3; do
    x $S "{\"type\":\"inspection.rated\",\"ts\":$((t0 + k * 7200000)),\"task_id\":\"T10$k\",\"enterprise_id\":\"E50$k\",\"unit_id\":\"MR-01\",\"officers\":[\"O7\"],\"score\":1,\"comment\":\"rude\"}"
done
# A scan of a task nobody filed, and an enterprise reporting a visit without a QR code.
x $S "{\"type\":\"inspection.scanned\",\"ts\":$((t0 + 5 * 3600000)),\"task_id\":\"T-GHOST\",\"enterprise_id\":\"E777\",\"unit_id\":\"EC-02\"}"
x $S "{\"type\":\"inspection.reported\",\"ts\":$((t0 + 6 * 3600000)),\"enterprise_id\":\"E778\",\"unit_id\":\"EC-02\",\"note\":\"two officers, no code\"}"
# Five complaints against one unit in a week (complaint_cluster).
for k in 1 2 3 4 5; do
    x $C "{\"type\":\"case.complaint\",\"ts\":$((t0 + k * day)),\"complaint_id\":\"CP$k\",\"unit_id\":\"TR-03\",\"officers\":[\"O9\"]}"
done
# Six months of ordinary fines, then a month of very large ones (fine_growth).
m=0
while [ $m -lt 6 ]; do
    x $C "{\"type\":\"case.decided\",\"ts\":$((t0 - (6 - m) * 30 * day)),\"case_id\":\"K$m\",\"unit_id\":\"UM-04\",\"fine\":$((20000 + m * 1000))}"
    m=$((m + 1))
done
x $C "{\"type\":\"case.decided\",\"ts\":$((t0 + 6 * day)),\"case_id\":\"K9\",\"unit_id\":\"UM-04\",\"fine\":150000,\"confiscation\":30000}"
# Move event time past the grace period so the unfiled scan is reported.
x $S "{\"type\":\"clock.tick\",\"ts\":$((t0 + 7 * day))}"
x $C "{\"type\":\"clock.tick\",\"ts\":$((t0 + 7 * day))}"

sleep 3
echo ">> $(redis-cli -p "$port" XLEN alerts) alerts in the stream 'alerts'; 'riskd:dead' holds $(redis-cli -p "$port" XLEN riskd:dead) entries"
if [ "${DEMO_FOLLOW:-0}" = 1 ]; then
    echo ">> following; XADD to enforce:scan / enforce:case on port $port, Ctrl-C to stop"
    wait "$riskd_pid"
fi

#!/bin/sh
# Quick start: install the Debian packages riskd needs, build it, start a
# private redis-server on a free loopback port under build/demo/, load the
# sample reference lists (config/samples/), start riskd and riskweb against
# it, print every alert and notice as it arrives on alerts:* and feed a
# demo that trips every rule of every built-in detector (and of the
# example plugin two_officers), then retracts one alert and resolves
# others with late data and event time; end with a table of what fired by
# detector and rule and one of the notices by status.
#
#   sh tests/demo/run.sh                 run the demo, then stop everything
#   DEMO_FOLLOW=1 sh tests/demo/run.sh   keep running until Ctrl-C
#   sh tests/demo/run.sh --check [--dir DIR] [--port P] [--web-port P]
#       what the tests run: no install and no build (binaries from
#       $BUILD, default build/), data in DIR; exit 1 unless every rule fired,
#       a resolved and a retracted notice were written, and inspection_frequency's
#       repeat and multi_unit alerts were resolved
#
# Output is line by line all the way: alerts are read with the shell's
# `read` (no awk, whose Debian default mawk reads its input in blocks).
set -eu
cd "$(dirname "$0")/../.."
top=$(pwd)

check=0
run="$top/build/demo"
port=""
webport=""
while [ $# -gt 0 ]; do
    case "$1" in
        --check) check=1 ;;
        --dir) run=$2; shift ;;
        --port) port=$2; shift ;;
        --web-port) webport=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (expected --check, --dir DIR, --port P, --web-port P)" >&2
           exit 1 ;;
    esac
    shift
done
bin="$top/build"
if [ "$check" = 1 ]; then
    case "${BUILD:-build}" in
        /*) bin=${BUILD} ;;
        *) bin="$top/${BUILD:-build}" ;;
    esac
else
    sh tests/deps.sh build
    echo ">> building"
    make -s
fi

rm -rf "$run"
mkdir -p "$run"
# A free loopback port from a start: one nobody listens on (per /proc/net).
port_in_use() {
    hex=$(printf ':%04X ' "$1")
    while read -r _sl local _rem st _rest; do
        [ "$st" = 0A ] && case "$local " in *"$hex") return 0 ;; esac
    done <<EOF
$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
EOF
    return 1
}
if [ -z "$port" ]; then
    port=6400
    while port_in_use "$port"; do port=$((port + 1)); done
fi
if [ -z "$webport" ]; then
    webport=9478
    while port_in_use "$webport" || [ "$webport" = "$port" ]; do webport=$((webport + 1)); done
fi

cleanup() {
    [ -n "${sub_pid:-}" ] && kill "$sub_pid" 2>/dev/null || true
    [ -n "${riskd_pid:-}" ] && kill -TERM "$riskd_pid" 2>/dev/null && wait "$riskd_pid" 2>/dev/null || true
    [ -n "${web_pid:-}" ] && kill -TERM "$web_pid" 2>/dev/null && wait "$web_pid" 2>/dev/null || true
    [ -n "${redis_started:-}" ] && redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo ">> redis-server on 127.0.0.1:$port (data in $run)"
redis-server --port "$port" --bind 127.0.0.1 --dir "$run" --save '' --appendonly no \
    --daemonize yes --logfile "$run/redis.log" --pidfile "$run/redis.pid"
redis_started=1
# Our own server answers (not one another demo started on the same port).
i=0
until [ -s "$run/redis.pid" ] && redis-cli -p "$port" ping >/dev/null 2>&1 &&
      [ "$(redis-cli -p "$port" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')" = "$(cat "$run/redis.pid")" ]; do
    i=$((i + 1))
    if [ $i -ge 100 ]; then
        echo "redis-server did not start on port $port (see $run/redis.log)"; redis_started=""; exit 1
    fi
    sleep 0.1
done

# The feed's events are of March 2025: riskd moves event time to the wall
# clock only after clock.idle of quiet, long after the demo ends (with
# DEMO_FOLLOW=1 it then closes the demo's alerts, alerts.open_ttl, and
# resolves the window rules' ones).
cat > "$run/riskd.json" <<JSON
{
  "redis": {"port": $port},
  "metrics": {"listen": ""},
  "plugins": ["$bin/plugins/two_officers.so"],
  "clock": {"idle": "2m"},
  "web": {"listen": "127.0.0.1:$webport"}
}
JSON

echo ">> reference lists from config/samples/ (riskctl lists load)"
for kind in whitelist benchmarks exempt credentials names; do
    "$bin/riskctl" -c "$run/riskd.json" lists load "$kind" "config/samples/sample-$kind.csv" \
        --author demo | sed 's/^/   /'
done

echo ">> riskd (log in $run/riskd.log)"
"$bin/riskd" -c "$run/riskd.json" 2>"$run/riskd.log" &
riskd_pid=$!
i=0
until grep -q 'NOTICE ready' "$run/riskd.log"; do
    i=$((i + 1))
    if [ $i -ge 100 ] || ! kill -0 "$riskd_pid" 2>/dev/null; then
        echo "riskd did not become ready:"; cat "$run/riskd.log"; exit 1
    fi
    sleep 0.1
done

"$bin/riskweb" -c "$run/riskd.json" 2>"$run/riskweb.log" &
web_pid=$!
echo ">> the dashboard: http://127.0.0.1:$webport/ (riskweb, log in $run/riskweb.log)"

# Each alert as one line, as it arrives: [severity] detector/rule summary;
# each notice that ends one: => status detector/rule reason.
echo ">> alerts and notices as they arrive on alerts:* :"
redis-cli -p "$port" --raw psubscribe 'alerts:*' 2>/dev/null | {
    while IFS= read -r line; do
        case "$line" in
            '{'*)
                d=${line#*\"detector\":\"}; d=${d%%\"*}
                r=${line#*\"rule\":\"}; r=${r%%\"*}
                st=${line#*\"status\":\"}; st=${st%%\"*}
                if [ "$st" = firing ]; then
                    v=${line#*\"severity\":\"}; v=${v%%\"*}
                    s=${line#*\"summary\":\"}; s=${s%%\",\"evidence\"*}
                else
                    s=${line#*\"reason\":\"}; s=${s%%\",\"*}; s=${s%\"\}}
                fi
                case "$s" in *'\'*) s=$(printf '%s' "$s" | sed 's/\\\(["\\/]\)/\1/g') ;; esac
                if [ "$st" = firing ]; then
                    printf '   [%s] %s/%s  %s\n' "$v" "$d" "$r" "$s"
                else
                    j=${line#*\"subject\":\{}; j=$(printf '%s' "${j%%\}*}" | tr -d '"')
                    printf '   => %s %s/%s (%s)  %s\n' "$st" "$d" "$r" "$j" "$s"
                fi ;;
        esac
    done
} &
sub_pid=$!
# The subscription is in place once Redis counts it.
i=0
until [ "$(redis-cli -p "$port" pubsub numpat)" -ge 1 ] 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "could not subscribe to alerts:*"; exit 1; }; sleep 0.1
done

x() { redis-cli -p "$port" XADD "$1" '*' data "$2" >/dev/null; }
S=enforce:scan; C=enforce:case
min=60000; hour=3600000; day=86400000
t0=1740790800000   # 2025-03-01T09:00:00+08:00
# file TS TASK UNIT OFFICERS ENTERPRISE [MORE]: an inspection.filed
file() {
    x $S "{\"type\":\"inspection.filed\",\"ts\":$1,\"task_id\":\"$2\",\"unit_id\":\"$3\",\"officers\":[$4],\"enterprise_id\":\"$5\"${6:-}}"
}
# scan TS TASK ENTERPRISE [MORE]: an inspection.scanned
scan() {
    x $S "{\"type\":\"inspection.scanned\",\"ts\":$1,\"task_id\":\"$2\",\"enterprise_id\":\"$3\"${4:-}}"
}
# rate TS TASK ENTERPRISE SCORE [MORE]: an inspection.rated by MR-01
rate() {
    x $S "{\"type\":\"inspection.rated\",\"ts\":$1,\"task_id\":\"$2\",\"enterprise_id\":\"$3\",\"unit_id\":\"MR-01\",\"score\":$4${5:-}}"
}

# ---- enforce:scan, in event-time order ----
# An inspection filed and scanned properly: no alert.
file $t0 T100 MR-01 '"O7","O8"' E500
# A filing with a single officer (two_officers), never scanned
# (unfiled_inspection filed_not_scanned).
file $((t0 + min)) T101 MR-01 '"O7"' E501
scan $((t0 + hour)) T100 E500
# Three bad ratings of officer O7 (bad_rating bad_rating, officer_repeated).
for k in 1 2 3; do
    rate $((t0 + k * 2 * hour)) T10$k E50$k 1 ',"officers":["O7"],"comment":"rude"'
done
# A scan of a task nobody filed (scan_without_filing), and an enterprise
# reporting a visit without a QR code (reported_without_filing).
scan $((t0 + 7 * hour)) T-GHOST E777 ',"unit_id":"EC-02"'
x $S "{\"type\":\"inspection.reported\",\"ts\":$((t0 + 7 * hour + 10 * min)),\"enterprise_id\":\"E778\",\"unit_id\":\"EC-02\",\"note\":\"two officers, no code\"}"
# Two more bad ratings and fifteen good ones: 5 of MR-01's 20 ratings in
# 30 days are bad, above the share of 0.2 (bad_rating unit_ratio).
rate $((t0 + 8 * hour)) T104 E504 2 ',"officers":["O8"]'
rate $((t0 + 8 * hour + min)) T105 E505 1 ',"officers":["O8"]'
k=10
while [ $k -lt 25 ]; do
    rate $((t0 + 8 * hour + k * min)) T1$k E5$k 5
    k=$((k + 1))
done
# A task filed for one enterprise, its code scanned by another
# (enterprise_mismatch).
file $((t0 + 9 * hour)) T200 MR-01 '"O7","O8"' E510
scan $((t0 + 9 * hour + 30 * min)) T200 E511
# Two visits to E520 on one day, above 1 a day (inspection_frequency repeat).
file $((t0 + 10 * hour)) T201 MR-01 '"O7","O8"' E520
scan $((t0 + 10 * hour + 30 * min)) T201 E520
file $((t0 + 11 * hour)) T202 MR-01 '"O7","O8"' E520
scan $((t0 + 11 * hour + 30 * min)) T202 E520
# E530 visited by MR-01, then by EC-02 the next day, instead of together
# (inspection_frequency multi_unit).
file $((t0 + day)) T203 MR-01 '"O7","O8"' E530
scan $((t0 + day + 30 * min)) T203 E530
file $((t0 + 2 * day)) T204 EC-02 '"O7","O8"' E530
scan $((t0 + 2 * day + 30 * min)) T204 E530
# E501 is whitelisted with an allowance of 1 visit a year: a second visit
# (inspection_frequency whitelist).
file $((t0 + 3 * day)) T205 MR-01 '"O7","O8"' E501
scan $((t0 + 3 * day + 30 * min)) T205 E501
# O9's credential expired on 2024-03-14 (officer_credential uncertified).
file $((t0 + 4 * day)) T206 TR-03 '"O9","O10"' E540
scan $((t0 + 4 * day + 30 * min)) T206 E540

# ---- enforce:case, in event-time order ----
# Six months of ordinary fines of UM-04 (fine_growth's history).
m=0
while [ $m -lt 6 ]; do
    x $C "{\"type\":\"case.decided\",\"ts\":$((t0 - (6 - m) * 30 * day)),\"case_id\":\"K$m\",\"unit_id\":\"UM-04\",\"fine\":$((20000 + m * 1000))}"
    m=$((m + 1))
done
# A case out of an inspection nobody filed (case_without_filing).
x $C "{\"type\":\"case.opened\",\"ts\":$((t0 + hour)),\"case_id\":\"CS1\",\"unit_id\":\"MR-01\",\"source\":\"inspection\",\"enterprise_id\":\"E550\"}"
# Three of TR-03's four reviewed decisions corrected (review_correction).
k=1
for outcome in upheld revoked altered confirmed_illegal; do
    x $C "{\"type\":\"case.review\",\"ts\":$((t0 + (1 + k) * hour)),\"case_id\":\"RV$k\",\"unit_id\":\"TR-03\",\"outcome\":\"$outcome\"}"
    k=$((k + 1))
done
# A fine above A0101's benchmark (0 to 5000) on an item exempt from
# penalties (discretion out_of_benchmark, exempt_fined no_penalty), and
# C0102 (lighter) decided with no leniency (exempt_fined lighter).
x $C "{\"type\":\"case.decided\",\"ts\":$((t0 + 6 * hour)),\"case_id\":\"D1\",\"unit_id\":\"MR-01\",\"item_code\":\"A0101\",\"fine\":8000}"
x $C "{\"type\":\"case.decided\",\"ts\":$((t0 + 6 * hour + 10 * min)),\"case_id\":\"D2\",\"unit_id\":\"MR-01\",\"item_code\":\"C0102\",\"fine\":20000,\"leniency\":\"none\"}"
# Same item, different penalty: TR-03 fines B0310 120000, EC-02 600000
# (discretion disparity).
k=0
while [ $k -lt 6 ]; do
    x $C "{\"type\":\"case.decided\",\"ts\":$((t0 + 7 * hour + k * 10 * min)),\"case_id\":\"DT$k\",\"unit_id\":\"TR-03\",\"item_code\":\"B0310\",\"fine\":120000}"
    k=$((k + 1))
done
k=0
while [ $k -lt 6 ]; do
    x $C "{\"type\":\"case.decided\",\"ts\":$((t0 + 8 * hour + k * 10 * min)),\"case_id\":\"DE$k\",\"unit_id\":\"EC-02\",\"item_code\":\"B0310\",\"fine\":600000}"
    k=$((k + 1))
done
# Five complaints against one unit in a week (complaint_cluster cluster).
for k in 1 2 3 4 5; do
    x $C "{\"type\":\"case.complaint\",\"ts\":$((t0 + k * day)),\"complaint_id\":\"CP$k\",\"unit_id\":\"TR-03\",\"officers\":[\"O9\"]}"
done
# Twenty market cases in Xingqing district in a month, with no history
# (violation_hotspot hotspot).
k=1
while [ $k -le 20 ]; do
    x $C "{\"type\":\"case.opened\",\"ts\":$((t0 + 5 * day + hour + k * 10 * min)),\"case_id\":\"H$k\",\"unit_id\":\"MR-01\",\"source\":\"report\",\"region\":\"640104\",\"domain\":\"market\"}"
    k=$((k + 1))
done
# A month of very large fines of UM-04 (fine_growth growth).
x $C "{\"type\":\"case.decided\",\"ts\":$((t0 + 6 * day)),\"case_id\":\"K9\",\"unit_id\":\"UM-04\",\"fine\":150000,\"confiscation\":30000}"
# Move event time past every deadline (scan_without_filing, filed_not_scanned).
x $S "{\"type\":\"clock.tick\",\"ts\":$((t0 + 10 * day))}"
x $C "{\"type\":\"clock.tick\",\"ts\":$((t0 + 10 * day))}"
# Late data, after those alerts: EC-02's filing of T-GHOST, made at 15:55,
# before the scan's deadline of 16:10, shows the scan was filed in time
# (scan_without_filing retracted); T101's scan the next evening, past its
# deadline, settles it (filed_not_scanned resolved, scanned late). By now
# complaint_cluster's window has long held fewer than 5 complaints of TR-03
# (cluster resolved after alerts.keep_firing_for).
file $((t0 + 7 * hour - 5 * min)) T-GHOST EC-02 '"O7","O8"' E777
scan $((t0 + day + 10 * hour)) T101 E501 ',"unit_id":"MR-01"'

# Every rule the feed trips, as detector/rule.
rules="unfiled_inspection/scan_without_filing unfiled_inspection/reported_without_filing
unfiled_inspection/case_without_filing unfiled_inspection/enterprise_mismatch
unfiled_inspection/filed_not_scanned bad_rating/bad_rating bad_rating/officer_repeated
bad_rating/unit_ratio fine_growth/growth complaint_cluster/cluster
inspection_frequency/repeat inspection_frequency/whitelist inspection_frequency/multi_unit
discretion/out_of_benchmark discretion/disparity discretion/exempt_fined
review_correction/corrections violation_hotspot/hotspot officer_credential/uncertified
two_officers/too_few_officers"
# Notice statuses the feed causes (riskd writes closed ones too).
statuses="resolved retracted"
# Notices of the practice detectors the feed causes, as status:detector/rule:
# E520's two visits in a day and E530's two units in a week leave their
# windows long before the end of the feed.
practice_notices="resolved:inspection_frequency/repeat resolved:inspection_frequency/multi_unit"
# Every entry of the stream as status detector/rule, one a line.
entries() {
    redis-cli -p "$port" --raw XRANGE alerts - + 2>/dev/null |
        sed -n 's/^{.*"status":"\([^"]*\)".*"detector":"\([^"]*\)".*"rule":"\([^"]*\)".*/\1 \2\/\3/p'
}
# Wait (up to 30 s) until every rule fired, every status above was
# written, and the stream stopped growing.
i=0; last=-1
while :; do
    all_entries=$(entries)
    got=$(printf '%s\n' "$all_entries" | sed -n 's/^firing //p')
    n=$(printf '%s\n' "$got" | grep -c . || true)
    nn=$(printf '%s\n' "$all_entries" | grep -c . || true)
    nn=$((nn - n))
    all=1
    for r in $rules; do
        printf '%s\n' "$got" | grep -qx "$r" || { all=0; break; }
    done
    for st in $statuses; do
        printf '%s\n' "$all_entries" | grep -q "^$st " || { all=0; break; }
    done
    for pn in $practice_notices; do
        printf '%s\n' "$all_entries" | grep -qx "${pn%%:*} ${pn#*:}" || { all=0; break; }
    done
    [ "$all" = 1 ] && [ "$((n + nn))" = "$last" ] && break
    last=$((n + nn))
    i=$((i + 1)); [ $i -lt 60 ] || break
    sleep 0.5
done
sleep 0.2   # the subscriber prints the last lines

echo ">> $n alerts and $nn notices in the stream 'alerts'; 'riskd:dead' holds $(redis-cli -p "$port" XLEN riskd:dead) entries"
echo ">> 按检测器和规则统计的告警 (alerts by detector and rule):"
echo "   检测器                 规则                       条数"
missing=""
for r in $rules; do
    c=$(printf '%s\n' "$got" | grep -cx "$r" || true)
    [ "$c" -gt 0 ] || missing="$missing $r"
    printf '   %-22s %-26s %s\n' "${r%%/*}" "${r#*/}" "$c"
done
echo ">> 按状态统计的通知 (notices by status):"
echo "   状态          条数  规则"
for st in resolved retracted closed acknowledged; do
    of=$(printf '%s\n' "$all_entries" | sed -n "s/^$st //p")
    c=$(printf '%s\n' "$of" | grep -c . || true)
    # the rules, "xN" after one with more than one notice
    which=$(printf '%s\n' "$of" | grep . | sort | uniq -c |
        sed -e 's/^ *1 //' -e 's/^ *\([0-9]*\) \(.*\)/\2 x\1/' | sed -e ':a' -e 'N;$!ba' -e 's/\n/, /g')
    printf '   %-13s %-5s %s\n' "$st" "$c" "${which:--}"
    case " $statuses " in
        *" $st "*) [ "$c" -gt 0 ] || missing="$missing $st" ;;
    esac
done
for pn in $practice_notices; do
    printf '%s\n' "$all_entries" | grep -qx "${pn%%:*} ${pn#*:}" || missing="$missing $pn"
done
if [ -n "$missing" ]; then
    echo ">> rules or notices that did not appear:$missing (see $run/riskd.log)"
    [ "$check" = 1 ] && exit 1
fi
if [ "${DEMO_FOLLOW:-0}" = 1 ]; then
    echo ">> following; XADD to enforce:scan / enforce:case on port $port, Ctrl-C to stop"
    wait "$riskd_pid"
fi
exit 0

#!/bin/sh
# tests/deps.sh [build|all] - install the Debian packages riskd needs that
# are not installed yet (apt-get, through sudo when not root); when none is
# missing it runs no apt-get at all. The one list of them (README,
# "Dependencies", says why each):
#   build  what `make` and the demo need: the toolchain, the libraries,
#          redis-server and redis-cli (tests/demo/run.sh)
#   all    (default) also what `make check` and `make fuzz` use: valgrind,
#          cppcheck, clang, the man page tools, Alertmanager and promtool,
#          Chromium and its driver, poppler, a CJK font (make check, .ci/run)
set -eu
build="build-essential pkg-config libuv1-dev libhiredis-dev libjansson-dev libxxhash-dev
       libhttp-parser-dev libcsv-dev libcurl4-openssl-dev libcmocka-dev libjs-chart.js
       redis-server redis-tools"
test="valgrind cppcheck clang libclang-rt-14-dev man-db groff-base systemd procps
      prometheus-alertmanager prometheus chromium chromium-driver python3-selenium
      poppler-utils fonts-noto-cjk"
case "${1:-all}" in
    build) want=$build ;;
    all) want="$build $test" ;;
    *) echo "usage: tests/deps.sh [build|all]" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
    dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo ">> installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $missing >/dev/null

#!/usr/bin/env bash
# End-to-end LISP control-plane benchmark: a running `roamer run` map-server/map-resolver
# (software backend) in one network namespace, the load generator (examples/lisp_load.rs) in
# another, joined by a veth. Measures registrations/s (signed Map-Registers in, Map-Notifies
# counted back by nonce) and Map-Requests/s (ECM Map-Requests in, Map-Replies counted back),
# each with loss and p50/p99 latency, at the offered rates of RATES; then the in-process figure
# of scripts/bench-lisp-control.sh in the same run, as the peer. Prints figures; asserts nothing.
#
# Root. Environment:
#   RATES ("50000 100000 150000 200000": offered rates per second, each a round)
#   SECONDS_PER_ROUND (3), SOURCES (128 ITR addresses for Map-Requests: the map-resolver
#   answers at most 2000 a second per requester), PEER (1: run the in-process bench too, with
#   N=200000 REQUESTS=262144 REPEAT=1 unless set), BUILD (1), CPU_DAEMON / CPU_GEN ("-": no
#   pinning; default 1 and 0 on a machine with 2 CPUs or more), SHOW (1: also one
#   `show lisp site | json` with memory before/after and registrations offered during it).
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"50000 100000 150000 200000"}
SECS=${SECONDS_PER_ROUND:-3}
SOURCES=${SOURCES:-128}
PEER=${PEER:-1}
SHOW=${SHOW:-1}
if [ "$(nproc)" -ge 2 ]; then
    CPU_DAEMON=${CPU_DAEMON:-1}
    CPU_GEN=${CPU_GEN:-0}
else
    CPU_DAEMON=${CPU_DAEMON:--}
    CPU_GEN=${CPU_GEN:--}
fi
P=ce$$
MS=${P}m
GEN=${P}g
WORK=$(mktemp -d)
DAEMON_PID=

cleanup() {
    if [ -n "$DAEMON_PID" ]; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    ip netns del "$MS" 2>/dev/null || true
    ip netns del "$GEN" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${BUILD:-1}" = 1 ]; then
    echo "== building (release)"
    cargo build --quiet --release --bin roamer --example lisp_load
fi
ROAMER=$PWD/target/release/roamer
LOAD=$PWD/target/release/examples/lisp_load

pin() {
    if [ "$1" != - ] && command -v taskset >/dev/null; then echo "taskset -c $1"; fi
}

ip netns add "$MS"
ip netns add "$GEN"
ip link add "${P}m1" type veth peer name "${P}g1"
ip link set "${P}m1" netns "$MS"
ip link set "${P}g1" netns "$GEN"
ip -n "$MS" link set lo up
ip -n "$MS" link set "${P}m1" up
ip -n "$GEN" link set lo up
ip -n "$GEN" addr add 192.0.2.11/24 dev "${P}g1"
for k in $(seq 0 $((SOURCES - 1))); do
    ip -n "$GEN" addr add "192.0.2.$((100 + k % 150))/24" dev "${P}g1" 2>/dev/null || true
done
ip -n "$GEN" link set "${P}g1" up

cat >"$WORK/startup-config" <<EOF
hostname ms1
roamer platform port Ethernet1/1 ${P}m1
feature lisp
interface Ethernet1/1
  no switchport
  ip address 192.0.2.1/24
ip lisp map-server
ip lisp map-resolver
lisp site DC
  eid-prefix 10.0.0.0/8 accept-more-specifics
  authentication-key 0 bench-key
  roamer max-registrations 4000000
EOF
# shellcheck disable=SC2046
ip netns exec "$MS" $(pin "$CPU_DAEMON") "$ROAMER" run --config "$WORK/startup-config" \
    --socket "$WORK/roamer.sock" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 100); do
    grep -q ready "$WORK/daemon.log" && break
    sleep 0.1
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$DAEMON_PID/status" 2>/dev/null || echo 0; }
counter() {
    "$ROAMER" exec --socket "$WORK/roamer.sock" "show forwarding counters" 2>/dev/null |
        awk -v n="$1" '$0 ~ n {print $NF}' | head -1
}

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), Linux $(uname -r)," \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs," \
    "daemon on CPU $CPU_DAEMON, generator on CPU $CPU_GEN, load: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up: ARP both ways, for every ITR address too.
# shellcheck disable=SC2046
ip netns exec "$GEN" $(pin "$CPU_GEN") "$LOAD" register --rate 1000 --seconds 0.2 \
    --first 16000000 --wait 0.5 >/dev/null
# shellcheck disable=SC2046
ip netns exec "$GEN" $(pin "$CPU_GEN") "$LOAD" request --source 192.0.2.100 \
    --sources "$SOURCES" --rate 2000 --seconds 0.5 --first 16000000 --eids 100 --wait 0.5 \
    >/dev/null

RESULTS=$WORK/results
: >"$RESULTS"
first=0
for rate in $RATES; do
    n=$(awk -v r="$rate" -v s="$SECS" 'BEGIN {printf "%d", r * s}')
    echo "== registrations at $rate/s (EIDs from #$first)"
    # shellcheck disable=SC2046
    ip netns exec "$GEN" $(pin "$CPU_GEN") "$LOAD" register --rate "$rate" --seconds "$SECS" \
        --first "$first" | tee -a "$RESULTS"
    echo "== Map-Requests at $rate/s for those EIDs"
    sleep 1 # the next round's requesters start with full buckets
    # shellcheck disable=SC2046
    ip netns exec "$GEN" $(pin "$CPU_GEN") "$LOAD" request --source 192.0.2.100 \
        --sources "$SOURCES" --rate "$rate" --seconds "$SECS" --first "$first" --eids "$n" |
        tee -a "$RESULTS"
    first=$((first + n))
done
echo "== daemon counters: inject-queue-full $(counter inject-queue-full || true)," \
    "punt drops in show forwarding counters:"
"$ROAMER" exec --socket "$WORK/roamer.sock" "show forwarding counters" | grep -i "drop" || true
"$ROAMER" exec --socket "$WORK/roamer.sock" "show lisp statistics" |
    grep -iE "accepted|rate|refused" || true

if [ "$SHOW" = 1 ]; then
    registered=$("$ROAMER" exec --socket "$WORK/roamer.sock" "show lisp statistics | json" |
        sed -n 's/.*"registers_accepted": *\([0-9]*\).*/\1/p' | head -1)
    echo "== show lisp site | json with ${registered:-?} registrations accepted so far," \
        "20000 registrations/s offered during it"
    before=$(rss)
    # shellcheck disable=SC2046
    ip netns exec "$GEN" $(pin "$CPU_GEN") "$LOAD" register --rate 20000 --seconds 4 \
        --first 15000000 | sed 's/^/during show: /' &
    gen=$!
    sleep 1
    t0=$(date +%s.%N)
    bytes=$("$ROAMER" exec --socket "$WORK/roamer.sock" "show lisp site | json" | wc -c)
    t1=$(date +%s.%N)
    sleep 0.5
    after=$(rss)
    wait "$gen"
    echo "show lisp site | json: $bytes bytes in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s;" \
        "daemon RSS $before KiB before, $after KiB 0.5 s after"
fi

if [ "$PEER" = 1 ]; then
    echo "== in-process peer: scripts/bench-lisp-control.sh (N=${N:-200000})"
    N=${N:-200000} REQUESTS=${REQUESTS:-262144} REPEAT=${REPEAT:-1} \
        CPU=${CPU_DAEMON/-/0} BUILD=${BUILD:-1} scripts/bench-lisp-control.sh 2>&1 |
        grep -E "^(==|\||register|Map-Request|round)" || true
fi
echo "== summary (result lines)"
grep '^result' "$RESULTS" || true
echo "== load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

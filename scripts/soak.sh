#!/usr/bin/env bash
# A real soak of a scenario lab: registrations, traffic and memory over a long run (not in CI).
#
#   sudo scripts/soak.sh                # 30 minutes of the reliable-registration lab
#   DURATION=600 sudo scripts/soak.sh   # 10 minutes
#
# The lab of seed 003 (images/containerlab/reliable-registration.clab.yml: two xTR sites that
# register to a new map-server over TCP and to an old one over UDP) runs in network namespaces
# under `roamer lab`. Every second host-a and host-b ping each other once across LISP, and the
# new map-server's `show lisp site` is read; every minute the resident memory of every roamer
# daemon is sampled. At the end it prints the registration gaps (a second in which a site was
# not registered), the pings lost and the longest black hole, and each daemon's memory at the
# start and the end, and exits 1 if a site ever lost its registration or a flow stayed black
# for more than 5 s.
#
# Knobs: DURATION (seconds, default 1800), RELEASE=1 (build and run the release binary),
# KEEP_LOG=DIR (keep the lab's logs there).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-1800}
[ "$(id -u)" = 0 ] || { echo "soak.sh needs root (network namespaces)" >&2; exit 2; }
for tool in ip ping; do
    command -v "$tool" >/dev/null || { echo "soak.sh needs $tool (iproute2, iputils-ping)" >&2; exit 2; }
done

if [ "${RELEASE:-0}" = 1 ]; then
    cargo build -q --release --bin roamer
    ROAMER=$PWD/target/release/roamer
else
    cargo build -q --bin roamer
    ROAMER=$PWD/target/debug/roamer
fi

work=$(mktemp -d)
lab=soak$$
export ROAMER_LAB_DIR=$work/state
src=images/containerlab
sed "s/^name:.*/name: $lab/" "$src/reliable-registration.clab.yml" > "$work/lab.clab.yml"
cp -r "$src/reliable-registration" "$work/"

cleanup() {
    "$ROAMER" lab down "$work/lab.clab.yml" >/dev/null 2>&1 || true
    if [ -n "${KEEP_LOG:-}" ]; then
        mkdir -p "$KEEP_LOG" && cp "$ROAMER_LAB_DIR/$lab"/*.log "$KEEP_LOG"/ 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$ROAMER" lab up "$work/lab.clab.yml" >/dev/null
exec_on() { "$ROAMER" lab exec --topo "$work/lab.clab.yml" "$@"; }

# Wait (at most 60 s) for both sites to be registered over the sessions.
for _ in $(seq 60); do
    [ "$(exec_on new-msmr 'show lisp site' | grep -c 'yes#')" = 2 ] && break
    sleep 1
done

rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pids=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(" ".join("%s:%s" % (d["node"], d["pid"]) for d in s["daemons"]))' "$ROAMER_LAB_DIR/$lab/state.json")
declare -A rss_start rss_end
for np in $pids; do rss_start[${np%%:*}]=$(rss_of "${np#*:}"); done

echo "soak: lab $lab, ${DURATION}s, started $(date -u +%FT%TZ)"
gaps=0; lost_ab=0; lost_ba=0; sent=0; black=0; longest_black=0; t=0; reported=0
start=$(date +%s)
while [ $(( $(date +%s) - start )) -lt "$DURATION" ]; do
    t=$(( $(date +%s) - start ))
    ok=1
    ip netns exec "clab-$lab-host-a" ping -n -c 1 -W 1 192.168.0.22 >/dev/null 2>&1 || { lost_ab=$((lost_ab+1)); ok=0; }
    ip netns exec "clab-$lab-host-b" ping -n -c 1 -W 1 172.16.0.12 >/dev/null 2>&1 || { lost_ba=$((lost_ba+1)); ok=0; }
    sent=$((sent+1))
    if [ $ok = 1 ]; then black=0; else black=$((black+1)); fi
    [ $black -gt $longest_black ] && longest_black=$black
    site=$(exec_on new-msmr 'show lisp site' || true)
    registered=$(printf '%s\n' "$site" | grep -E ' yes#? ' | grep -cE ' (172\.16\.0\.0/24|192\.168\.0\.0/24)$' || true)
    if [ "$registered" != 2 ]; then
        gaps=$((gaps+1))
        echo "t=${t}s: registration gap:"; printf '%s\n' "$site" | sed 's/^/    /'
    fi
    if [ $(( t / 60 )) -gt "$reported" ]; then
        reported=$(( t / 60 ))
        line="t=${t}s: sites registered, pings lost ${lost_ab}+${lost_ba}/${sent}; RSS kB:"
        for np in $pids; do line+=" ${np%%:*}=$(rss_of "${np#*:}")"; done
        echo "$line"
    fi
    sleep 0.5
done
for np in $pids; do rss_end[${np%%:*}]=$(rss_of "${np#*:}"); done

echo "soak: ended $(date -u +%FT%TZ) after ${DURATION}s"
echo "registration gaps (seconds with a site not registered): $gaps"
echo "pings lost host-a->host-b: $lost_ab / $sent, host-b->host-a: $lost_ba / $sent"
echo "longest black hole: ${longest_black} rounds (one round about 1.5 s)"
echo "sessions at the end (xtr1):"; exec_on xtr1 'show lisp session' | sed 's/^/    /'
echo "memory (VmRSS kB, start -> end):"
for np in $pids; do
    n=${np%%:*}
    echo "    $n ${rss_start[$n]} -> ${rss_end[$n]}"
done
[ "$gaps" = 0 ] && [ "$longest_black" -le 3 ]

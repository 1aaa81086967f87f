#!/usr/bin/env bash
# LISP control-plane benchmark: the Map-Server and Map-Resolver with 1M registered host EIDs
# (control/benches/map_server_scale.rs), on one CPU, each figure next to a peer measured in the
# same run. Not part of scripts/test.sh: it prints figures and ratios, it asserts nothing.
#
# What runs (see the bench's header for the details):
#   register, first    1M Map-Registers (one /32 record each, HMAC-SHA1, P=1, M=1) into a fresh
#                      Map-Server through MapServer::register, prebuilt and signed beforehand.
#                      Peer: HMAC-SHA1 alone (hmac crate, same bytes), x1 = the verify, x2 = the
#                      verify plus the Map-Notify's signature.
#   register, refresh  the same 1M refreshed (P=0, M=0). Peer: HMAC-SHA1 x1.
#   Map-Request        2^20 prebuilt ECM Map-Requests through MapServer::resolve: proxy reply,
#                      forward to the ETR, negative reply (unregistered EID inside the site).
#                      Peer: a minimal resolver, Ecm::parse + IpLpm (the forwarding core's LPM)
#                      + the same Map-Reply / ECM copy, without the Map-Server's logic.
#   memory per EID     heap bytes the Map-Server holds per registered EID (counting allocator).
#                      Peer: IpLpm<u32> holding the same prefixes (an index alone).
#   lookup, expire     information lines.
#
# How to read the output: the table at the end, one row per figure. "roamer" is the Map-Server,
# "peer" what it is compared with, "ratio" roamer / peer (rates: 1.00 = as fast as the peer, so
# 1 - ratio is what the Map-Server adds on top of the peer's work; latencies and memory: times
# the peer). "target" and "verdict" give the issue's targets (>= 100k registrations/s,
# >= 150k Map-Requests/s with p99 <= 1 ms, <= 100 B per EID). Figures are medians of REPEAT
# rounds in which roamer and its peer alternate, so a change in the machine's load hits both;
# p50 / p99 are per request, from batches of 64 requests (a single slow request inside a batch
# is averaged with its 63 neighbours). The "round" lines above the table show the spread.
#
# Environment:
#   N (1000000 EIDs), REQUESTS (1048576 per run), REPEAT (3), EXPIRE_CALLS (100000)
#   CPU (0: the CPU to pin to with taskset; "-": no pinning)
#   BUILD (1; 0: use the bench binary already built)
set -euo pipefail
cd "$(dirname "$0")/.."

CPU=${CPU:-0}
export N=${N:-1000000}
export REQUESTS=${REQUESTS:-1048576}
export REPEAT=${REPEAT:-3}
export EXPIRE_CALLS=${EXPIRE_CALLS:-100000}

if [ "${BUILD:-1}" = 1 ]; then
    echo "== building (release, bench profile)"
    cargo bench --quiet -p roamer-control --bench map_server_scale --no-run
fi
BIN=$(cargo bench --quiet -p roamer-control --bench map_server_scale --no-run \
    --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*map_server_scale[^"]*\)".*/\1/p' | tail -1)
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "bench-lisp-control: cannot find the map_server_scale bench binary" >&2
    exit 1
fi

PIN=()
if [ "$CPU" != - ] && command -v taskset >/dev/null 2>&1; then
    PIN=(taskset -c "$CPU")
    echo "== pinned to CPU $CPU of $(nproc)"
else
    echo "== not pinned ($(nproc) CPUs)"
fi
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), Linux $(uname -r)," \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
    "load: $(cut -d' ' -f1-3 /proc/loadavg)"
"${PIN[@]}" "$BIN" --bench
echo "== load at end: $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env bash
# Forwarding benchmark: 64-byte-frame pps and TCP Gbps between two hosts in network namespaces,
# through five data paths measured side by side in one run:
#
#   copier   the minimal frame copier (software::copier over two AF_PACKET ports, vnet-hdr on)
#   bridge   the Linux bridge
#   l2       roamer, both hosts in one VLAN
#   l3       roamer, routing between two SVIs
#   lisp     two roamer xTRs: LISP encapsulation, a routed underlay link, decapsulation
#
# plus the ceiling of the tools themselves (the hosts joined by one veth pair, no switch).
#
#   h1 --veth-- [ switch namespace(s) ] --veth-- h2
#
# pps: `pktgen send` blasts identical 64-byte IPv4/UDP frames from h1 through an AF_PACKET
# socket (sendmmsg, 64 per call); `pktgen count` in h2 counts the ones that arrive. TCP: iperf3,
# one stream, h1 -> h2. Each pps figure is the median of $REPEAT runs.
#
# Prints a table with absolute numbers and the ratios the requirement names (L2 >= 0.9 x copier
# for pps and TCP, L3 >= 0.85 x copier, LISP >= 0.8 x roamer L3), and the machine load at start
# and end. Needs root. Everything it creates carries one random prefix and is deleted by name on
# exit (also on failure); processes it starts are stopped by their process id.
#
# Environment: PPS_SECONDS (3), TCP_SECONDS (5), REPEAT (3), PIN (1: sender and receiver on CPU 0,
# the switch on CPU 1; 0: let the scheduler place them), CASES ("copier bridge l2 l3 lisp").
set -euo pipefail
cd "$(dirname "$0")/.."

PPS_SECONDS=${PPS_SECONDS:-3}
TCP_SECONDS=${TCP_SECONDS:-5}
REPEAT=${REPEAT:-3}
PIN=${PIN:-1}
CASES=${CASES:-copier bridge l2 l3 lisp}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-forwarding: needs root (network namespaces, AF_PACKET)" >&2
    exit 1
fi

need_apt=()
command -v iperf3 >/dev/null 2>&1 || need_apt+=(iperf3)
command -v ethtool >/dev/null 2>&1 || need_apt+=(ethtool)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v ping >/dev/null 2>&1 || need_apt+=(iputils-ping)
command -v taskset >/dev/null 2>&1 || need_apt+=(util-linux)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

echo "== building (release)"
cargo build --release --quiet --bin roamer
cargo build --release --quiet -p roamer-platforms --example pktgen --example copier
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-target}
ROAMER=$TARGET_DIR/release/roamer
PKTGEN=$TARGET_DIR/release/examples/pktgen
COPIER=$TARGET_DIR/release/examples/copier

# One prefix for every namespace and device of this run: "rb" + 4 hex digits (interface names
# stay within 15 characters).
while :; do
    P=rb$(printf '%04x' $((RANDOM & 0xffff)))
    ip netns list | grep -q "^$P" || break
done
WORK=$(mktemp -d /tmp/bench-forwarding.XXXXXX)
NAMESPACES=()
PIDS=()

cleanup() {
    local pid ns
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    for ns in "${NAMESPACES[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    NAMESPACES=()
}
on_exit() {
    cleanup
    rm -rf "$WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

LOAD_START=$(uptime)
CPUS=$(nproc)
echo "== prefix $P, $CPUS CPUs, load at start: $LOAD_START"

# --- topology helpers -------------------------------------------------------------------------

# mkns NAME: a namespace ${P}NAME with lo up and IPv6 off (no router/neighbour chatter).
mkns() {
    ip netns add "$P$1"
    NAMESPACES+=("$P$1")
    ip -n "$P$1" link set lo up
    ip netns exec "$P$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$P$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
}

# link NS1 DEV1 NS2 DEV2: a veth pair ${P}DEV1 in ${P}NS1 <-> ${P}DEV2 in ${P}NS2, both up.
link() {
    ip -n "$P$1" link add "$P$2" type veth peer name "$P$4" netns "$P$3"
    ip -n "$P$1" link set "$P$2" up
    ip -n "$P$3" link set "$P$4" up
}

# host NS DEV CIDR [GW]: address (and default route) of a host.
host() {
    ip -n "$P$1" addr add "$3" dev "$P$2"
    if [ -n "${4:-}" ]; then
        ip -n "$P$1" route add default via "$4"
    fi
}

mac_of() { ip netns exec "$P$1" cat "/sys/class/net/$P$2/address"; }

# The MAC address h1 resolved for ADDR (after a ping).
neigh_mac() {
    ip -n "${P}h1" neigh show "$1" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'
}

# Command prefixes that pin hosts and switch to their CPUs (when PIN=1 and there are 2 CPUs or
# more). A prefix, not a function: a command started in the background with it is one process
# whose id is $! (taskset and `ip netns exec` replace themselves with the program).
HOST_CPU=0
SWITCH_CPU=1
ON_HOST_CPU=()
ON_SWITCH_CPU=()
if [ "$PIN" = 1 ] && [ "$CPUS" -ge 2 ]; then
    ON_HOST_CPU=(taskset -c "$HOST_CPU")
    ON_SWITCH_CPU=(taskset -c "$SWITCH_CPU")
fi

# wait_ping DST: h1 pings DST until it answers (at most ~10 s).
wait_ping() {
    local i
    for i in $(seq 1 20); do
        if ip netns exec "${P}h1" ping -c 1 -W 0.5 "$1" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    echo "h1 cannot reach $1" >&2
    return 1
}

# start_roamer NS CONFIG: roamer in namespace ${P}NS on the config file; waits for "ready".
start_roamer() {
    local ns=$1 cfg=$2 log=$WORK/$1.log
    "${ON_SWITCH_CPU[@]}" ip netns exec "$P$ns" "$ROAMER" run --config "$cfg" \
        --socket "$WORK/$ns.sock" 2>"$log" >/dev/null &
    PIDS+=($!)
    local i
    for i in $(seq 1 100); do
        if grep -q ready "$log"; then
            return 0
        fi
        sleep 0.1
    done
    echo "roamer in $P$ns did not become ready:" >&2
    cat "$log" >&2
    return 1
}

# --- measurements -----------------------------------------------------------------------------

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print v[int((NR + 1) / 2)] }'; }

# measure_pps DST_MAC SRC_IP DST_IP: median received pps h1 -> h2 over $REPEAT runs.
measure_pps() {
    local r out send_out runs=()
    for r in $(seq 1 "$REPEAT"); do
        out=$WORK/count.$r
        "${ON_HOST_CPU[@]}" ip netns exec "${P}h2" "$PKTGEN" count --dev "${P}h2e" \
            --seconds "$PPS_SECONDS" --warmup 0.5 --wait 5 >"$out" &
        local cpid=$!
        PIDS+=("$cpid")
        sleep 0.3
        send_out=$("${ON_HOST_CPU[@]}" ip netns exec "${P}h1" "$PKTGEN" send --dev "${P}h1e" \
            --dst-mac "$1" --src-ip "$2" --dst-ip "$3" --size 64 \
            --seconds "$(awk -v s="$PPS_SECONDS" 'BEGIN { print s + 1.5 }')")
        wait "$cpid" || true
        runs+=("$(sed -n 's/.* pps=\([0-9]*\).*/\1/p' "$out")")
        echo "     run $r: $(cat "$out")  [$send_out]" >&2
    done
    printf '%s\n' "${runs[@]}" | median
}

# measure_tcp DST_IP: iperf3 Gbit/s h1 -> h2 (receiver side).
measure_tcp() {
    local out=$WORK/iperf.txt try
    for try in 1 2 3; do
        "${ON_HOST_CPU[@]}" ip netns exec "${P}h2" iperf3 -s -1 -B "$1" >/dev/null 2>&1 &
        local spid=$!
        PIDS+=("$spid")
        sleep 0.4
        if "${ON_HOST_CPU[@]}" ip netns exec "${P}h1" iperf3 -c "$1" -t "$TCP_SECONDS" -O 1 -f g \
            >"$out" 2>&1; then
            wait "$spid" || true
            local gbps
            gbps=$(awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Gbits/sec") v = $i } END { print v + 0 }' "$out")
            echo "     iperf3: $(grep receiver "$out" | tr -s ' ')" >&2
            echo "$gbps"
            return 0
        fi
        kill "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
        sleep 0.5
    done
    echo "     iperf3 failed: $(tail -2 "$out")" >&2
    echo 0
}

declare -A PPS TCP NOTE

# measure CASE DST_MAC SRC_IP DST_IP
measure() {
    echo "   $1: 64-byte pps" >&2
    PPS[$1]=$(measure_pps "$2" "$3" "$4")
    echo "   $1: TCP" >&2
    TCP[$1]=$(measure_tcp "$4")
    echo "   $1: ${PPS[$1]} pps, ${TCP[$1]} Gbit/s" >&2
}

# Hosts in one subnet (copier, bridge, roamer L2): h1 10.91.0.1, h2 10.91.0.2.
two_hosts_one_subnet() {
    mkns h1
    mkns h2
    mkns s1
    link h1 h1e s1 p1
    link h2 h2e s1 p2
    host h1 h1e 10.91.0.1/24
    host h2 h2e 10.91.0.2/24
}

# --- the data paths ---------------------------------------------------------------------------

case_direct() {
    mkns h1
    mkns h2
    link h1 h1e h2 h2e
    host h1 h1e 10.91.0.1/24
    host h2 h2e 10.91.0.2/24
    wait_ping 10.91.0.2
    measure direct "$(mac_of h2 h2e)" 10.91.0.1 10.91.0.2
}

case_copier() {
    two_hosts_one_subnet
    "${ON_SWITCH_CPU[@]}" ip netns exec "${P}s1" "$COPIER" --a "${P}p1" --b "${P}p2" \
        >"$WORK/copier.log" 2>&1 &
    PIDS+=($!)
    local i
    for i in $(seq 1 50); do
        grep -q ready "$WORK/copier.log" && break
        sleep 0.1
    done
    NOTE[copier]=$(head -1 "$WORK/copier.log")
    wait_ping 10.91.0.2
    measure copier "$(mac_of h2 h2e)" 10.91.0.1 10.91.0.2
}

case_bridge() {
    two_hosts_one_subnet
    ip -n "${P}s1" link add "${P}br" type bridge
    ip -n "${P}s1" link set "${P}p1" master "${P}br"
    ip -n "${P}s1" link set "${P}p2" master "${P}br"
    ip -n "${P}s1" link set "${P}br" up
    wait_ping 10.91.0.2
    measure bridge "$(mac_of h2 h2e)" 10.91.0.1 10.91.0.2
}

case_l2() {
    two_hosts_one_subnet
    cat >"$WORK/l2.cfg" <<EOF
hostname bench-l2
roamer platform port Ethernet1/1 ${P}p1
roamer platform port Ethernet1/2 ${P}p2
vlan 10
interface Ethernet1/1
  switchport
  switchport access vlan 10
interface Ethernet1/2
  switchport
  switchport access vlan 10
EOF
    start_roamer s1 "$WORK/l2.cfg"
    wait_ping 10.91.0.2
    measure l2 "$(mac_of h2 h2e)" 10.91.0.1 10.91.0.2
}

case_l3() {
    mkns h1
    mkns h2
    mkns s1
    link h1 h1e s1 p1
    link h2 h2e s1 p2
    host h1 h1e 10.10.0.5/24 10.10.0.1
    host h2 h2e 10.20.0.6/24 10.20.0.1
    cat >"$WORK/l3.cfg" <<EOF
hostname bench-l3
roamer platform port Ethernet1/1 ${P}p1
roamer platform port Ethernet1/2 ${P}p2
feature interface-vlan
vlan 10,20
interface Ethernet1/1
  switchport
  switchport access vlan 10
interface Ethernet1/2
  switchport
  switchport access vlan 20
interface Vlan10
  ip address 10.10.0.1/24
interface Vlan20
  ip address 10.20.0.1/24
EOF
    start_roamer s1 "$WORK/l3.cfg"
    wait_ping 10.20.0.6
    measure l3 "$(neigh_mac 10.10.0.1)" 10.10.0.5 10.20.0.6
}

lisp_supported() {
    grep -q 'lisp map-cache' control/src/config/cli/commands.rs 2>/dev/null
}

case_lisp() {
    mkns h1
    mkns h2
    mkns s1
    mkns s2
    link h1 h1e s1 p1
    link h2 h2e s2 p2
    link s1 u1 s2 u2
    # The underlay carries 1500-byte host packets plus the 36 bytes of LISP encapsulation.
    ip -n "${P}s1" link set "${P}u1" mtu 9000
    ip -n "${P}s2" link set "${P}u2" mtu 9000
    host h1 h1e 10.10.0.5/24 10.10.0.1
    host h2 h2e 10.20.0.6/24 10.20.0.1
    xtr() { # NAME HOST_PORT_DEV UNDERLAY_DEV VLAN EID_NET SVI_ADDR RLOC PEER_EID PEER_RLOC
        cat <<EOF
hostname $1
roamer platform port Ethernet1/1 $2
roamer platform port Ethernet1/3 $3
feature interface-vlan
feature lisp
vlan $4
interface Ethernet1/1
  switchport
  switchport access vlan $4
interface Ethernet1/3
  no switchport
  ip address $7/24
interface Vlan$4
  ip address $6/24
ip lisp itr-etr
ip lisp database-mapping $5 $7 priority 1 weight 100
ip lisp map-cache $8 $9 priority 1 weight 100
EOF
    }
    xtr xtr1 "${P}p1" "${P}u1" 10 10.10.0.0/24 10.10.0.1 192.0.2.1 10.20.0.0/24 192.0.2.2 \
        >"$WORK/lisp1.cfg"
    xtr xtr2 "${P}p2" "${P}u2" 20 10.20.0.0/24 10.20.0.1 192.0.2.2 10.10.0.0/24 192.0.2.1 \
        >"$WORK/lisp2.cfg"
    start_roamer s1 "$WORK/lisp1.cfg"
    start_roamer s2 "$WORK/lisp2.cfg"
    wait_ping 10.20.0.6
    measure lisp "$(neigh_mac 10.10.0.1)" 10.10.0.5 10.20.0.6
}

# --- run --------------------------------------------------------------------------------------

echo "== sender, switch and receiver share the machine's $CPUS CPUs" \
    "$([ "$PIN" = 1 ] && [ "$CPUS" -ge 2 ] && echo "(PIN=1: hosts on CPU $HOST_CPU, switch on CPU $SWITCH_CPU)")"
for c in direct $CASES; do
    if [ "$c" = lisp ] && ! lisp_supported; then
        echo "== lisp: skipped (no 'ip lisp map-cache' configuration command in this tree)"
        NOTE[lisp]="skipped: no static map-cache command"
        continue
    fi
    echo "== $c"
    if ! "case_$c"; then
        echo "   $c: FAILED (see above)" >&2
        NOTE[$c]="failed"
        PPS[$c]=${PPS[$c]:-0}
        TCP[$c]=${TCP[$c]:-0}
    fi
    if [ -n "${NOTE[$c]:-}" ] && [ "$c" = copier ]; then
        echo "   copier: ${NOTE[$c]}"
    fi
    cleanup
done
LOAD_END=$(uptime)

# --- report -----------------------------------------------------------------------------------

ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0 && a > 0) printf "%.2f", a / b; else print "-" }'; }
verdict() { # RATIO TARGET
    awk -v r="$1" -v t="$2" 'BEGIN { if (r == "-") print "n/a"; else if (r + 0 >= t) print "met"; else print "MISSED" }'
}
mpps() { awk -v p="${1:-0}" 'BEGIN { printf "%.3f", p / 1e6 }'; }

label() {
    case $1 in
    direct) echo "tools only (h1-h2 veth, no switch)" ;;
    copier) echo "frame copier (AF_PACKET, vnet-hdr)" ;;
    bridge) echo "Linux bridge" ;;
    l2) echo "roamer L2 (same VLAN)" ;;
    l3) echo "roamer L3 (SVI to SVI)" ;;
    lisp) echo "roamer LISP encap+decap (2 xTRs)" ;;
    esac
}

echo
echo "== results ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $CPUS CPUs; PPS_SECONDS=$PPS_SECONDS REPEAT=$REPEAT TCP_SECONDS=$TCP_SECONDS PIN=$PIN)"
echo "load at start: ${LOAD_START#*load average: }"
echo "load at end:   ${LOAD_END#*load average: }"
echo "Sender, switch and receiver share the $CPUS CPUs (the kernel's veth work runs on the sending side's CPU)."
echo
printf '| %-36s | %10s | %9s | %-26s |\n' "data path" "64 B Mpps" "TCP Gb/s" "note"
printf '|%s|%s|%s|%s|\n' "--------------------------------------" "------------" "-----------" "----------------------------"
for c in direct copier bridge l2 l3 lisp; do
    [ "$c" = direct ] || [[ " $CASES " == *" $c "* ]] || continue
    printf '| %-36s | %10s | %9s | %-26s |\n' "$(label $c)" "$(mpps "${PPS[$c]:-0}")" \
        "${TCP[$c]:-0}" "${NOTE[$c]:-}"
done
echo
printf '| %-34s | %6s | %6s | %-7s |\n' "ratio" "value" "target" "verdict"
printf '|%s|%s|%s|%s|\n' "------------------------------------" "--------" "--------" "---------"
row() { # NAME A B TARGET
    local r
    r=$(ratio "$2" "$3")
    if [ -n "$4" ]; then
        printf '| %-34s | %6s | %6s | %-7s |\n' "$1" "$r" "$4" "$(verdict "$r" "$4")"
    else
        printf '| %-34s | %6s | %6s | %-7s |\n' "$1" "$r" "-" "info"
    fi
}
row "L2 pps / copier pps" "${PPS[l2]:-0}" "${PPS[copier]:-0}" 0.9
row "L2 TCP / copier TCP (vnet-hdr)" "${TCP[l2]:-0}" "${TCP[copier]:-0}" 0.9
row "L3 pps / copier pps" "${PPS[l3]:-0}" "${PPS[copier]:-0}" 0.85
row "L3 TCP / copier TCP" "${TCP[l3]:-0}" "${TCP[copier]:-0}" 0.85
row "LISP pps / roamer L3 pps" "${PPS[lisp]:-0}" "${PPS[l3]:-0}" 0.8
row "LISP TCP / roamer L3 TCP" "${TCP[lisp]:-0}" "${TCP[l3]:-0}" 0.8
row "L2 pps / Linux bridge pps" "${PPS[l2]:-0}" "${PPS[bridge]:-0}" ""
row "L2 TCP / Linux bridge TCP" "${TCP[l2]:-0}" "${TCP[bridge]:-0}" ""
row "copier pps / tools-only pps" "${PPS[copier]:-0}" "${PPS[direct]:-0}" ""

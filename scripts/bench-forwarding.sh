#!/usr/bin/env bash
# Forwarding benchmark: 64-byte-frame pps and TCP Gbit/s between two hosts in network
# namespaces, through five data paths measured side by side in one run:
#
#   copier   the minimal frame copier (software::copier over two AF_PACKET ports, vnet-hdr on)
#   bridge   the Linux bridge
#   l2       roamer, both hosts in one VLAN
#   l3       roamer, routing between two SVIs
#   lisp     two roamer xTRs: LISP encapsulation, a routed underlay link, decapsulation
#
#   kroute   plain Linux IP forwarding between two subnets
#   copier-xdp, l2-xdp, l3-xdp, lisp-xdp
#            the same over AF_XDP ports (`io af-xdp`; copier --io af-xdp); the plain rows force
#            `io af-packet`
#
# plus the ceiling of the tools themselves ("direct": the hosts joined by one veth pair, the
# generator and counter on AF_PACKET; "direct-xdp": the same pair, both on AF_XDP).
#
#   h1 --veth-- [ switch namespace(s) ] --veth-- h2
#
# All topologies are built first and stay up; the measurements then go round-robin over the
# data paths, $REPEAT rounds, and each figure is the median of its rounds, so a change in the
# machine's load during the run affects every data path alike.
#
# pps: `pktgen send` (platforms/examples/pktgen.rs) blasts identical 64-byte IPv4/UDP frames
# from h1 through an AF_XDP socket (PKTGEN_IO=af-xdp, the default: copy-mode transmit, 64
# frames per wake-up; or PKTGEN_IO=af-packet: sendmmsg) for PPS_SECONDS + 1.5 s;
# `pktgen count` in h2 counts the ones that arrive over PPS_SECONDS after a 0.5 s warm-up (h2's
# stack drops them at a UDP socket that is never read). TCP: iperf3, one stream, h1 -> h2,
# TCP_SECONDS (first second omitted), the receiver's figure.
#
# Prints a table with absolute numbers and the ratios the requirement names (L2 >= 0.9 x copier
# for pps and TCP, L3 >= 0.85 x copier, LISP >= 0.8 x roamer L3), and the machine load at start
# and end (the end figure includes the benchmark's own busy processes). Needs root. Everything it creates carries one random prefix and is deleted by name on
# exit (also on failure); the processes it starts are stopped by their process ids.
#
# Environment:
#   PPS_SECONDS (3), TCP_SECONDS (5), REPEAT (3 rounds)
#   PIN (1: sender, receiver and iperf3 on CPU 0, the switch on CPU 1; 0: no pinning)
#   CASES ("copier copier-xdp bridge kroute l2 l2-xdp l3 l3-xdp lisp lisp-xdp kl3 kl3x2 klisp vxlan"; "direct" and
#         "direct-xdp" are always measured)
#   PKTGEN_IO (af-xdp: the generator and counter of every row but "direct" use AF_XDP)
#   PERF (0; 1: in round 1, a 2-second perf profile of the switch processes of each data path,
#         of all CPUs for the Linux bridge, during pps and during TCP; installs linux-perf)
#   PERF_TOP (25 symbols)
#   BUILD (1; 0: use the binaries already in target/release)
#   NICE (-10: each benchmark process runs in a session of its own at this nice level, so it
#         takes precedence over other work on the machine alike for every data path; 0: off)
#   LISP_XTR2_CPU (unset: both xTRs on the switch CPU; N: the decapsulating xTR on CPU N)
#   BOX_CPU (0.4; 0: off): L3 and LISP are measured a second time ("l3-box", "lisp-box") with
#         every switch process held to this share of a CPU by a CPU cgroup of its own (CFS
#         bandwidth, 10 ms periods): one box of equal power per switch, as two xTRs are two
#         switches in a network. The L3 router gets one box, the two xTRs one each (both on
#         the switch CPU, so BOX_CPU must stay below one half). Needs the cgroup "cpu"
#         controller (v1 or v2); without it the box cases are reported as unsupported.
set -euo pipefail
cd "$(dirname "$0")/.."

PPS_SECONDS=${PPS_SECONDS:-3}
TCP_SECONDS=${TCP_SECONDS:-5}
REPEAT=${REPEAT:-3}
PIN=${PIN:-1}
CASES=${CASES:-copier copier-xdp bridge kroute l2 l2-xdp l3 l3-xdp lisp lisp-xdp kl3 kl3x2 klisp vxlan}
PKTGEN_IO=${PKTGEN_IO:-af-xdp}
PERF=${PERF:-0}
PERF_TOP=${PERF_TOP:-25}
NICE=${NICE:--10}
BOX_CPU=${BOX_CPU:-0.4}

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
if [ "$PERF" = 1 ] && ! command -v perf >/dev/null 2>&1; then
    need_apt+=(linux-perf)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ "${BUILD:-1}" = 1 ]; then
    echo "== building (release)"
    cargo build --release --quiet --bin roamer
    cargo build --release --quiet -p roamer-platforms --example pktgen --example copier
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-target}
ROAMER=$TARGET_DIR/release/roamer
PKTGEN=$TARGET_DIR/release/examples/pktgen
COPIER=$TARGET_DIR/release/examples/copier

# One prefix for every namespace and device of this run: "rb" + 4 hex digits; then one letter
# per data path and a short name (interface names stay within 15 characters).
while :; do
    P=rb$(printf '%04x' $((RANDOM & 0xffff)))
    ip netns list | grep -q "^$P" || break
done
WORK=$(mktemp -d /tmp/bench-forwarding.XXXXXX)
NAMESPACES=()
PIDS=()
BOX_GROUPS=()

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
    local group
    for group in "${BOX_GROUPS[@]}"; do
        rmdir "$group" 2>/dev/null || true
    done
    BOX_GROUPS=()
}
on_exit() {
    cleanup
    rm -rf "$WORK"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

LOAD_START=$(uptime)
CPUS=$(nproc)
echo "== prefix $P, $CPUS CPUs, load at start: ${LOAD_START#*load average: }"

# Command prefixes that pin hosts and switches to their CPUs (PIN=1, 2 CPUs or more). A prefix,
# not a function: a command started in the background with it is one process whose id is $!
# (taskset and `ip netns exec` replace themselves with the program).
# NICE (default -10) gives the benchmark's processes precedence over other work on the machine
# (compilers, tests), alike for every data path. With autogroup scheduling (one scheduling group
# per session), a nice value only counts within the session, so each process is started in a
# session of its own (setsid) whose group gets that nice value (/proc/self/autogroup).
HOST_CPU=0
SWITCH_CPU=1
# on_cpu CPU: the prefix for a command on CPU (or anywhere, for "-") in ON.
on_cpu() {
    ON=()
    if [ "$NICE" != 0 ]; then
        # shellcheck disable=SC2016 # expanded by the inner shell
        ON=(setsid sh -c 'echo "$0" >/proc/self/autogroup 2>/dev/null; exec "$@"' "$NICE"
            nice -n "$NICE")
    fi
    if [ "$1" != - ] && [ "$PIN" = 1 ] && [ "$CPUS" -ge 2 ]; then
        ON+=(taskset -c "$1")
    fi
}
on_cpu "$HOST_CPU"
ON_HOST_CPU=("${ON[@]}")
on_cpu "$SWITCH_CPU"
ON_SWITCH_CPU=("${ON[@]}")
PINNED=$([ "$PIN" = 1 ] && [ "$CPUS" -ge 2 ] && echo 1 || echo 0)

# --- topology helpers: names are $P$C<name>, C = the letter of the data path being built ------

# The box cases measure the topologies of l3 and lisp again: they share their letters.
declare -A LETTER=([direct]=d [direct-xdp]=d [copier]=c [copier-xdp]=k [bridge]=b [kroute]=n
    [l2]=s [l2-xdp]=t [l3]=r [l3-xdp]=u [lisp]=x [lisp-xdp]=y [l3-box]=r [lisp-box]=x
    [l3-xdp-box]=u [lisp-xdp-box]=y [kroute-tap]=m [kl3]=g [kl3x2]=w [klisp]=q [vxlan]=v)
# The port I/O of the roamer and copier cases, and of the generator per case.
io_of() { case $1 in *-xdp | *-xdp-box) echo af-xdp ;; *) echo af-packet ;; esac; }
gen_io() { case $1 in direct) echo af-packet ;; direct-xdp) echo af-xdp ;; *) echo "$PKTGEN_IO" ;; esac; }
C=

# mkns NAME: a namespace with lo up and IPv6 off (no router or neighbour chatter).
mkns() {
    ip netns add "$P$C$1"
    NAMESPACES+=("$P$C$1")
    ip -n "$P$C$1" link set lo up
    ip netns exec "$P$C$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$P$C$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
}

# link NS1 DEV1 NS2 DEV2: a veth pair DEV1 in NS1 <-> DEV2 in NS2, both up.
link() {
    ip -n "$P$C$1" link add "$P$C$2" type veth peer name "$P$C$4" netns "$P$C$3"
    ip -n "$P$C$1" link set "$P$C$2" up
    ip -n "$P$C$3" link set "$P$C$4" up
}

# host NS DEV CIDR [GW]: address (and default route) of a host.
host() {
    ip -n "$P$C$1" addr add "$3" dev "$P$C$2"
    if [ -n "${4:-}" ]; then
        ip -n "$P$C$1" route add default via "$4"
    fi
}

mac_of() { ip netns exec "$P$C$1" cat "/sys/class/net/$P$C$2/address"; }

# neigh_mac ADDR: the MAC address h1 resolved for ADDR (after a ping).
neigh_mac() {
    ip -n "$P${C}h1" neigh show "$1" |
        awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'
}

# ping_once DST: one ping from h1; true when answered.
ping_once() { ip netns exec "$P${C}h1" ping -c 1 -W 1 "$1" >/dev/null 2>&1; }

# wait_ping DST: h1 pings DST until it answers (at most ~15 s).
wait_ping() {
    local _
    for _ in $(seq 1 20); do
        ping_once "$1" && return 0
        sleep 0.2
    done
    echo "   h1 cannot reach $1 through $C" >&2
    return 1
}

# bg OUT CMD...: CMD in the background, output to OUT; its process id is recorded for the
# cleanup and left in LAST_PID.
bg() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# reap PID: waits for a process started with bg and drops it from the cleanup list (its id may
# be reused once it is reaped).
reap() {
    wait "$1" 2>/dev/null || true
    local keep=() pid
    for pid in "${PIDS[@]}"; do
        if [ "$pid" != "$1" ]; then keep+=("$pid"); fi
    done
    PIDS=("${keep[@]}")
}

# wait_line FILE WORD: waits (at most 10 s) until FILE contains WORD.
wait_line() {
    local _
    for _ in $(seq 1 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "   no '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

# start_roamer NS CONFIG [CPU]: roamer in the switch namespace NS (on the switch CPU, or on CPU
# when given and PIN=1); waits for its "ready" line.
start_roamer() {
    local log=$WORK/$C$1.log on=("${ON_SWITCH_CPU[@]}")
    if [ -n "${3:-}" ]; then
        on_cpu "$3"
        on=("${ON[@]}")
    fi
    bg "$log" "${on[@]}" ip netns exec "$P$C$1" "$ROAMER" run --config "$2" \
        --socket "$WORK/$C$1.sock"
    SWITCH_PIDS[$CASE]="${SWITCH_PIDS[$CASE]:+${SWITCH_PIDS[$CASE]},}$LAST_PID"
    wait_line "$log" ready
}

# What each data path's measurement needs: the destination MAC address of the generated frames
# as h1 sends them, and the addresses.
declare -A DST_MAC SRC_IP DST_IP PPS_RUNS TCP_RUNS CPU_RUNS FRAC_RUNS PPS TCP CPU FRAC NOTE READY
declare -A SWITCH_PIDS

# Hosts in one subnet (copier, bridge, roamer L2): h1 10.91.0.1, h2 10.91.0.2.
two_hosts_one_subnet() {
    mkns h1
    mkns h2
    mkns s1
    link h1 h1e s1 p1
    link h2 h2e s1 p2
    host h1 h1e 10.91.0.1/24
    host h2 h2e 10.91.0.2/24
    SRC_IP[$1]=10.91.0.1
    DST_IP[$1]=10.91.0.2
}

# Two hosts in two subnets behind one router s1: h1 10.10.0.5 (gateway 10.10.0.1) on p1,
# h2 10.20.0.6 (gateway 10.20.0.1) on p2.
routed_hosts() {
    mkns h1
    mkns h2
    mkns s1
    link h1 h1e s1 p1
    link h2 h2e s1 p2
    host h1 h1e 10.10.0.5/24 10.10.0.1
    host h2 h2e 10.20.0.6/24 10.20.0.1
}

# Two sites: h1 behind router s1 (port p1), h2 behind router s2 (port p2), the routers joined
# by the underlay link u1-u2 (no addresses yet).
two_sites() {
    mkns h1
    mkns h2
    mkns s1
    mkns s2
    link h1 h1e s1 p1
    link h2 h2e s2 p2
    link s1 u1 s2 u2
}

# kernel_forwards CASE: the kernel forwards (softirq on whichever CPU), so roamer's own CPU
# time says nothing about the case: no per-CPU figure.
kernel_forwards() {
    SWITCH_PIDS[$1]=
    NOTE[$1]="kernel forwarding: no per-CPU figure"
}

# --- the data paths ---------------------------------------------------------------------------

setup_direct() {
    mkns h1
    mkns h2
    link h1 h1e h2 h2e
    host h1 h1e 10.91.0.1/24
    host h2 h2e 10.91.0.2/24
    SRC_IP[direct]=10.91.0.1
    DST_IP[direct]=10.91.0.2
    wait_ping 10.91.0.2 || return 1
    DST_MAC[direct]=$(mac_of h2 h2e)
}

# direct-xdp: the hosts of "direct", the generator and counter on AF_XDP.
setup_direct-xdp() {
    if [ "${READY[direct]:-}" != 1 ]; then
        NOTE[direct-xdp]="direct not up"
        return 1
    fi
    DST_MAC[direct-xdp]=${DST_MAC[direct]}
    SRC_IP[direct-xdp]=${SRC_IP[direct]}
    DST_IP[direct-xdp]=${DST_IP[direct]}
}

setup_copier() {
    local io log=$WORK/$CASE.log
    io=$(io_of "$CASE")
    two_hosts_one_subnet "$CASE"
    bg "$log" "${ON_SWITCH_CPU[@]}" ip netns exec "$P${C}s1" "$COPIER" \
        --a "$P${C}p1" --b "$P${C}p2" --io "$io"
    SWITCH_PIDS[$CASE]=$LAST_PID
    wait_line "$log" ready || return 1
    if [ "$io" = af-xdp ]; then
        NOTE[$CASE]="$(sed -n 's/.* io=\(.*\)/\1/p' "$log")"
    elif grep -q 'vnet_hdr=true' "$log"; then
        NOTE[$CASE]="vnet-hdr on"
    else
        NOTE[$CASE]="vnet-hdr OFF"
    fi
    wait_ping 10.91.0.2 || return 1
    DST_MAC[$CASE]=$(mac_of h2 h2e)
}
setup_copier-xdp() { setup_copier; }

setup_bridge() {
    two_hosts_one_subnet bridge
    ip -n "$P${C}s1" link add "$P${C}br" type bridge
    ip -n "$P${C}s1" link set "$P${C}p1" master "$P${C}br"
    ip -n "$P${C}s1" link set "$P${C}p2" master "$P${C}br"
    ip -n "$P${C}s1" link set "$P${C}br" up
    wait_ping 10.91.0.2 || return 1
    DST_MAC[bridge]=$(mac_of h2 h2e)
}

# kroute: plain Linux IP forwarding in the switch namespace (the hosts of l3).
setup_kroute() {
    routed_hosts
    host s1 p1 10.10.0.1/24
    host s1 p2 10.20.0.1/24
    ip netns exec "$P${C}s1" sysctl -qw net.ipv4.ip_forward=1
    SRC_IP[kroute]=10.10.0.5
    DST_IP[kroute]=10.20.0.6
    wait_ping 10.20.0.6 || return 1
    DST_MAC[kroute]=$(neigh_mac 10.10.0.1)
}

# kroute-tap: kroute with a packet tap in the router like the kernel backend's control tap (an
# ETH_P_ALL AF_PACKET socket, outgoing frames ignored, a classic BPF filter that the forwarded
# frames fail): what that tap costs the kernel's forwarding.
setup_kroute-tap() {
    routed_hosts
    host s1 p1 10.10.0.1/24
    host s1 p2 10.20.0.1/24
    ip netns exec "$P${C}s1" sysctl -qw net.ipv4.ip_forward=1
    SRC_IP[kroute-tap]=10.10.0.5
    DST_IP[kroute-tap]=10.20.0.6
    bg "$WORK/${C}tap.log" ip netns exec "$P${C}s1" python3 -c "$(cat <<'TAPEOF'
import ctypes, signal, socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
s.setsockopt(263, 23, 1)  # SOL_PACKET, PACKET_IGNORE_OUTGOING
# ldh [12]; jeq #0x800 (else ret 0); ldb [23]; jeq #17; ret #0: a short filter that keeps nothing
insns = [(0x28, 0, 0, 12), (0x15, 0, 2, 0x800), (0x30, 0, 0, 23), (0x15, 0, 0, 17), (0x06, 0, 0, 0)]
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))
s.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(insns), ctypes.addressof(code)))
print("ready", flush=True)
signal.pause()
TAPEOF
)"
    wait_line "$WORK/${C}tap.log" ready
    wait_ping 10.20.0.6 || return 1
    DST_MAC[kroute-tap]=$(neigh_mac 10.10.0.1)
}

# roamer_io: " io af-packet" or " io af-xdp" for the case being built.
roamer_io() { echo " io $(io_of "$CASE")"; }

# Reports the I/O every port of the case's roamer(s) uses (show interface brief).
note_io() {
    local ns io=""
    for ns in "$@"; do
        io+="$("$ROAMER" exec --socket "$WORK/$C$ns.sock" \
            'show interface brief' 2>/dev/null |
            awk '/^Port I\/O/ { on = 1; next } on && !NF { exit } on { $1 = ""; print }' |
            sort -u | tr '\n' ';')"
    done
    NOTE[$CASE]=$(echo "$io" | tr -s ' ;' ' ;' | sed 's/^ //; s/;$//; s/; /;/g' | tr ';' '\n' | sort -u |
        paste -sd ';' -)
}

setup_l2() {
    two_hosts_one_subnet "$CASE"
    cat >"$WORK/$CASE.cfg" <<EOF
hostname bench-l2
roamer platform port Ethernet1/1 $P${C}p1$(roamer_io)
roamer platform port Ethernet1/2 $P${C}p2$(roamer_io)
vlan 10
interface Ethernet1/1
  switchport
  switchport access vlan 10
interface Ethernet1/2
  switchport
  switchport access vlan 10
EOF
    start_roamer s1 "$WORK/$CASE.cfg" || return 1
    wait_ping 10.91.0.2 || return 1
    DST_MAC[$CASE]=$(mac_of h2 h2e)
    note_io s1
}
setup_l2-xdp() { setup_l2; }

setup_l3() {
    routed_hosts
    SRC_IP[$CASE]=10.10.0.5
    DST_IP[$CASE]=10.20.0.6
    cat >"$WORK/$CASE.cfg" <<EOF
hostname bench-l3
roamer platform port Ethernet1/1 $P${C}p1$(roamer_io)
roamer platform port Ethernet1/2 $P${C}p2$(roamer_io)
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
    start_roamer s1 "$WORK/$CASE.cfg" || return 1
    wait_ping 10.20.0.6 || return 1
    DST_MAC[$CASE]=$(neigh_mac 10.10.0.1)
    note_io s1
}
setup_l3-xdp() { setup_l3; }

# xtr_config NAME HOST_DEV UNDERLAY_DEV VLAN EID_PREFIX SVI_ADDR RLOC PEER_EID_PREFIX PEER_RLOC
xtr_config() {
    cat <<EOF
hostname $1
roamer platform port Ethernet1/1 $2$(roamer_io)
roamer platform port Ethernet1/3 $3$(roamer_io)
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

lisp_supported() { grep -rq 'lisp map-cache' control/src/config/cli/commands/ 2>/dev/null; }

setup_lisp() {
    if ! lisp_supported; then
        NOTE[$CASE]="skipped: no static map-cache"
        return 1
    fi
    two_sites
    # The underlay carries 1500-byte host packets plus 36 bytes of LISP encapsulation (an
    # AF_XDP port takes an MTU up to 3498).
    local mtu=9000
    if [ "$(io_of "$CASE")" = af-xdp ]; then mtu=3000; fi
    ip -n "$P${C}s1" link set "$P${C}u1" mtu $mtu
    ip -n "$P${C}s2" link set "$P${C}u2" mtu $mtu
    host h1 h1e 10.10.0.5/24 10.10.0.1
    host h2 h2e 10.20.0.6/24 10.20.0.1
    SRC_IP[$CASE]=10.10.0.5
    DST_IP[$CASE]=10.20.0.6
    xtr_config xtr1 "$P${C}p1" "$P${C}u1" 10 10.10.0.0/24 10.10.0.1 192.0.2.1 10.20.0.0/24 \
        192.0.2.2 >"$WORK/${CASE}1.cfg"
    xtr_config xtr2 "$P${C}p2" "$P${C}u2" 20 10.20.0.0/24 10.20.0.1 192.0.2.2 10.10.0.0/24 \
        192.0.2.1 >"$WORK/${CASE}2.cfg"
    start_roamer s1 "$WORK/${CASE}1.cfg" || return 1
    start_roamer s2 "$WORK/${CASE}2.cfg" "${LISP_XTR2_CPU:-}" || return 1
    wait_ping 10.20.0.6 || return 1
    DST_MAC[$CASE]=$(neigh_mac 10.10.0.1)
    note_io s1 s2
}
setup_lisp-xdp() { setup_lisp; }

# --- the kernel backend (issue 17): the kernel forwards, roamer programs it ------------------

# kl3: roamer with the kernel backend routing between two routed ports (next to kroute: the
# same topology routed by Linux without roamer).
setup_kl3() {
    routed_hosts
    SRC_IP[kl3]=10.10.0.5
    DST_IP[kl3]=10.20.0.6
    cat >"$WORK/kl3.cfg" <<EOF
hostname bench-kl3
roamer platform backend kernel
roamer platform port Ethernet1/1 $P${C}p1
roamer platform port Ethernet1/2 $P${C}p2
interface Ethernet1/1
  no switchport
  ip address 10.10.0.1/24
interface Ethernet1/2
  no switchport
  ip address 10.20.0.1/24
EOF
    start_roamer s1 "$WORK/kl3.cfg" || return 1
    wait_ping 10.20.0.6 || return 1
    DST_MAC[kl3]=$(neigh_mac 10.10.0.1)
    kernel_forwards kl3
}

# krouter_config NAME HOST_DEV UNDERLAY_DEV GW_ADDR UNDERLAY_ADDR: a kernel-backend router's
# host port and underlay port, routed.
krouter_config() {
    cat <<EOF
hostname $1
roamer platform backend kernel
roamer platform port Ethernet1/1 $2
roamer platform port Ethernet1/3 $3
interface Ethernet1/1
  no switchport
  ip address $4/24
interface Ethernet1/3
  no switchport
  ip address $5/24
EOF
}

# kxtr_config NAME HOST_DEV UNDERLAY_DEV EID_PREFIX GW_ADDR RLOC PEER_EID_PREFIX PEER_RLOC
kxtr_config() {
    krouter_config "$1" "$2" "$3" "$5" "$6"
    cat <<EOF
feature lisp
ip lisp itr-etr
ip lisp database-mapping $4 $6 priority 1 weight 100
ip lisp map-cache $7 $8 priority 1 weight 100
EOF
}

# jumbo_sites CASE: two_sites with a 9000-octet underlay and the hosts addressed, h1 sending to h2.
jumbo_sites() {
    two_sites
    ip -n "$P${C}s1" link set "$P${C}u1" mtu 9000
    ip -n "$P${C}s2" link set "$P${C}u2" mtu 9000
    host h1 h1e 10.10.0.5/24 10.10.0.1
    host h2 h2e 10.20.0.6/24 10.20.0.1
    SRC_IP[$1]=10.10.0.5
    DST_IP[$1]=10.20.0.6
}

# kl3x2: the klisp topology without LISP: two kernel-backend routers, each with a static route
# to the other's site over the underlay. LISP's yardstick: the same two routers in the path.
setup_kl3x2() {
    jumbo_sites kl3x2
    {
        krouter_config krouter1 "$P${C}p1" "$P${C}u1" 10.10.0.1 192.0.2.1
        echo "ip route 10.20.0.0/24 192.0.2.2"
    } >"$WORK/kl3x2-1.cfg"
    {
        krouter_config krouter2 "$P${C}p2" "$P${C}u2" 10.20.0.1 192.0.2.2
        echo "ip route 10.10.0.0/24 192.0.2.1"
    } >"$WORK/kl3x2-2.cfg"
    start_roamer s1 "$WORK/kl3x2-1.cfg" || return 1
    start_roamer s2 "$WORK/kl3x2-2.cfg" || return 1
    wait_ping 10.20.0.6 || return 1
    DST_MAC[kl3x2]=$(neigh_mac 10.10.0.1)
    kernel_forwards kl3x2
}

# klisp: two kernel-backend xTRs, LISP encap/decap in their TC-eBPF programs.
setup_klisp() {
    jumbo_sites klisp
    kxtr_config kxtr1 "$P${C}p1" "$P${C}u1" 10.10.0.0/24 10.10.0.1 192.0.2.1 10.20.0.0/24 \
        192.0.2.2 >"$WORK/klisp1.cfg"
    kxtr_config kxtr2 "$P${C}p2" "$P${C}u2" 10.20.0.0/24 10.20.0.1 192.0.2.2 10.10.0.0/24 \
        192.0.2.1 >"$WORK/klisp2.cfg"
    start_roamer s1 "$WORK/klisp1.cfg" || return 1
    start_roamer s2 "$WORK/klisp2.cfg" || return 1
    wait_ping 10.20.0.6 || return 1
    DST_MAC[klisp]=$(neigh_mac 10.10.0.1)
    kernel_forwards klisp
}

# vxlan: the same two-router topology as klisp, the routers joined by a kernel VXLAN tunnel
# (no roamer): the yardstick for LISP's TCP.
setup_vxlan() {
    two_sites
    local n
    for n in 1 2; do
        ip -n "$P${C}s$n" link set "$P${C}u$n" mtu 9000
        host "s$n" "u$n" "192.0.2.$n/24"
        ip -n "$P${C}s$n" link add "$P${C}vx$n" type vxlan id 42 dstport 4789 \
            local "192.0.2.$n" remote "192.0.2.$((3 - n))" dev "$P${C}u$n"
        ip -n "$P${C}s$n" addr add "172.31.0.$n/30" dev "$P${C}vx$n"
        ip -n "$P${C}s$n" link set "$P${C}vx$n" up
        ip netns exec "$P${C}s$n" sysctl -qw net.ipv4.ip_forward=1
    done
    host h1 h1e 10.10.0.5/24 10.10.0.1
    host h2 h2e 10.20.0.6/24 10.20.0.1
    host s1 p1 10.10.0.1/24
    host s2 p2 10.20.0.1/24
    ip -n "$P${C}s1" route add 10.20.0.0/24 via 172.31.0.2
    ip -n "$P${C}s2" route add 10.10.0.0/24 via 172.31.0.1
    SRC_IP[vxlan]=10.10.0.5
    DST_IP[vxlan]=10.20.0.6
    wait_ping 10.20.0.6 || return 1
    DST_MAC[vxlan]=$(neigh_mac 10.10.0.1)
}

# --- boxes: a CPU budget per switch process (BOX_CPU) ------------------------------------------

# Where the cgroup "cpu" controller is: BOX_ROOT, with BOX_V=1 (cpu.cfs_quota_us) or 2 (cpu.max);
# empty when there is none.
BOX_ROOT=
BOX_V=
BOX_PERIOD_US=10000
box_probe() {
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        if grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
            grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
                echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || return 1
            BOX_ROOT=/sys/fs/cgroup
            BOX_V=2
        fi
    elif [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        BOX_ROOT=/sys/fs/cgroup/cpu
        BOX_V=1
    elif [ -f /sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us ]; then
        BOX_ROOT=/sys/fs/cgroup/cpu,cpuacct
        BOX_V=1
    fi
    [ -n "$BOX_ROOT" ]
}

# box_make PID: a cgroup of its own for PID with a quota of BOX_CPU; PID stays where it is
# until box_enter. Records the group and PID's present group.
declare -A BOX_OF HOME_OF
box_make() {
    local group=$BOX_ROOT/${P}box$1 quota
    quota=$(awk -v c="$BOX_CPU" -v p="$BOX_PERIOD_US" 'BEGIN { printf "%d", c * p }')
    mkdir "$group" || return 1
    BOX_GROUPS+=("$group")
    if [ "$BOX_V" = 2 ]; then
        echo "$quota $BOX_PERIOD_US" >"$group/cpu.max" || return 1
        HOME_OF[$1]=$BOX_ROOT$(sed -n 's/^0:://p' "/proc/$1/cgroup")
    else
        echo "$BOX_PERIOD_US" >"$group/cpu.cfs_period_us" || return 1
        echo "$quota" >"$group/cpu.cfs_quota_us" || return 1
        HOME_OF[$1]=$BOX_ROOT$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3 }' "/proc/$1/cgroup")
    fi
    BOX_OF[$1]=$group
}

# box_enter CASE / box_leave CASE: the switch processes of CASE into their boxes, and back.
box_enter() {
    local pid
    for pid in ${SWITCH_PIDS[$1]//,/ }; do
        echo "$pid" >"${BOX_OF[$pid]}/cgroup.procs"
    done
}
box_leave() {
    local pid
    for pid in ${SWITCH_PIDS[$1]//,/ }; do
        echo "$pid" >"${HOME_OF[$pid]}/cgroup.procs" 2>/dev/null || true
    done
}

# setup_box CASE BASE: the box case CASE measures BASE's topology with a box per switch process.
setup_box() {
    if [ "${READY[$2]:-}" != 1 ]; then
        NOTE[$1]="$2 not up"
        return 1
    fi
    if ! box_probe; then
        NOTE[$1]="unsupported: no cgroup cpu controller"
        return 1
    fi
    SWITCH_PIDS[$1]=${SWITCH_PIDS[$2]}
    DST_MAC[$1]=${DST_MAC[$2]}
    SRC_IP[$1]=${SRC_IP[$2]}
    DST_IP[$1]=${DST_IP[$2]}
    local pid
    for pid in ${SWITCH_PIDS[$1]//,/ }; do
        if ! box_make "$pid"; then
            NOTE[$1]="unsupported: cannot make a CPU cgroup"
            return 1
        fi
    done
}
setup_l3-box() { setup_box l3-box l3; }
setup_lisp-box() { setup_box lisp-box lisp; }
setup_l3-xdp-box() { setup_box l3-xdp-box l3-xdp; }
setup_lisp-xdp-box() { setup_box lisp-xdp-box lisp-xdp; }

# --- measurements -----------------------------------------------------------------------------

median() {
    tr ' ' '\n' | awk 'NF' | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print v[int((NR + 1) / 2)] }'
}

# profile CASE: a 2-second perf profile of the switch processes (with the kernel's work done in
# their context), or for the Linux bridge, which has none, of the CPUs.
profile() {
    local what=(-a) label="all CPUs"
    if [ -n "${SWITCH_PIDS[$1]:-}" ]; then
        what=(-p "${SWITCH_PIDS[$1]}")
        label="the switch processes"
    fi
    perf record -q -F 1999 -g "${what[@]}" -o "$WORK/perf.$1" -- sleep 2 >/dev/null 2>&1 ||
        return 0
    echo "     perf, $label, share by thread:"
    perf report -i "$WORK/perf.$1" --no-children --sort comm --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -6 | sed 's/  */ /g; s/^/       /' || true
    echo "     perf, $label, top symbols:"
    perf report -i "$WORK/perf.$1" --no-children --sort comm,dso,symbol --stdio -g none \
        2>/dev/null | grep -E '^ +[0-9.]+%' | head -"$PERF_TOP" |
        sed 's/  */ /g; s/ - - *$//; s/^/       /' | cut -c1-150 || true
}

# measure_pps CASE ROUND: one pps measurement, appended to PPS_RUNS[CASE].
measure_pps() {
    local case=$1 round=$2 h1=$P${LETTER[$1]}h1 h2=$P${LETTER[$1]}h2 cpid spid
    local d1=$P${LETTER[$1]}h1e d2=$P${LETTER[$1]}h2e
    C=${LETTER[$case]}
    ping_once "${DST_IP[$case]}" || true # refresh learned addresses after an idle while
    local gio
    gio=$(gen_io "$case")
    bg "$WORK/count" "${ON_HOST_CPU[@]}" ip netns exec "$h2" "$PKTGEN" count --io "$gio" --dev "$d2" \
        --seconds "$PPS_SECONDS" --warmup 0.5 --wait 5 --hold 5 --cpu-pids "${SWITCH_PIDS[$case]:-}"
    cpid=$LAST_PID
    sleep 0.3
    bg "$WORK/send" "${ON_HOST_CPU[@]}" ip netns exec "$h1" "$PKTGEN" send --io "$gio" --dev "$d1" \
        --dst-mac "${DST_MAC[$case]}" --src-ip "${SRC_IP[$case]}" --dst-ip "${DST_IP[$case]}" \
        --size 64 --seconds "$(awk -v s="$PPS_SECONDS" 'BEGIN { print s + 1.5 }')"
    spid=$LAST_PID
    if [ "$round" = 1 ] && [ "$PERF" = 1 ] && [ "$case" != direct ]; then
        sleep 0.8
        profile "$case" >"$WORK/perf.$case.txt"
    fi
    reap "$spid"
    # The counter holds its UDP sink open until the sender is done; then it can go.
    wait_line "$WORK/count" received || true
    kill "$cpid" 2>/dev/null || true
    reap "$cpid"
    local pps cpu
    pps=$(sed -n 's/.* pps=\([0-9]*\).*/\1/p' "$WORK/count")
    PPS_RUNS[$case]="${PPS_RUNS[$case]:-} ${pps:-0}"
    cpu=$(sed -n 's/.* switch_cpu=\([0-9.]*\).*/\1/p' "$WORK/count")
    if [ -n "$cpu" ]; then
        FRAC_RUNS[$case]="${FRAC_RUNS[$case]:-} $cpu"
        CPU_RUNS[$case]="${CPU_RUNS[$case]:-} $(awk -v p="${pps:-0}" -v c="$cpu" \
            'BEGIN { if (c > 0) printf "%.0f", p / c; else print 0 }')"
    fi
    printf '   %-7s pps  round %s: %s\n' "$case" "$round" "$(cat "$WORK/count")"
    printf '   %-7s               %s\n' "" "$(cat "$WORK/send")"
    if [ -f "$WORK/perf.$case.txt" ] && [ "$round" = 1 ]; then
        cat "$WORK/perf.$case.txt"
    fi
    return 0
}

# measure_tcp CASE ROUND: one iperf3 run (Gbit/s as the receiver counted), appended to
# TCP_RUNS[CASE].
measure_tcp() {
    local case=$1 round=$2 h1=$P${LETTER[$1]}h1 h2=$P${LETTER[$1]}h2 out=$WORK/iperf try spid
    local gbps=0
    for try in 1 2 3; do
        bg /dev/null "${ON_HOST_CPU[@]}" ip netns exec "$h2" iperf3 -s -1 -B "${DST_IP[$case]}"
        spid=$LAST_PID
        sleep 0.4
        bg "$out" "${ON_HOST_CPU[@]}" ip netns exec "$h1" iperf3 -c "${DST_IP[$case]}" \
            -t "$TCP_SECONDS" -O 1 -f g
        local client=$LAST_PID
        if [ "$round" = 1 ] && [ "$PERF" = 1 ] && [ "$case" != direct ] && [ "$try" = 1 ]; then
            sleep 1.5
            profile "$case" >"$WORK/perf.$case.tcp.txt"
        fi
        reap "$client"
        if grep -q receiver "$out"; then
            reap "$spid"
            gbps=$(awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Gbits/sec") v = $i }
                END { print v + 0 }' "$out")
            break
        fi
        kill "$spid" 2>/dev/null || true
        reap "$spid"
        sleep 0.5
    done
    TCP_RUNS[$case]="${TCP_RUNS[$case]:-} $gbps"
    printf '   %-7s TCP  round %s: %s\n' "$case" "$round" \
        "$(grep receiver "$out" | tr -s ' ' || tail -1 "$out")"
    printf '   %-7s               retransmissions: %s\n' "" \
        "$(awk '/sender/ { print $(NF - 1) }' "$out")"
    if [ -f "$WORK/perf.$case.tcp.txt" ] && [ "$round" = 1 ]; then
        cat "$WORK/perf.$case.tcp.txt"
    fi
    return 0
}

# measure pps|tcp CASE ROUND: one measurement, a box case with its switch processes in their
# boxes for its duration.
measure() {
    local boxed=0
    if [[ $2 == *-box ]]; then
        box_enter "$2" && boxed=1
    fi
    "measure_$1" "$2" "$3"
    if [ "$boxed" = 1 ]; then box_leave "$2"; fi
}

# --- run --------------------------------------------------------------------------------------

placement() {
    if [ "$PINNED" = 1 ]; then
        echo "hosts (sender, receiver, iperf3) pinned to CPU $HOST_CPU, switches to CPU $SWITCH_CPU"
    else
        echo "placed by the scheduler"
    fi
}
echo "== sender, switch and receiver share the machine's $CPUS CPUs ($(placement); nice $NICE)"
ALL=(direct direct-xdp)
for c in $CASES; do
    if [ "$c" != direct ] && [ "$c" != direct-xdp ]; then ALL+=("$c"); fi
done
if [ "$BOX_CPU" != 0 ]; then
    for c in l3 lisp l3-xdp lisp-xdp; do
        if [[ " ${ALL[*]} " == *" $c "* ]]; then ALL+=("$c-box"); fi
    done
fi
echo "== building the topologies"
for c in "${ALL[@]}"; do
    C=${LETTER[$c]:?unknown data path $c}
    CASE=$c
    if "setup_$c"; then
        READY[$c]=1
        echo "   $c: up"
    else
        NOTE[$c]=${NOTE[$c]:-setup failed}
        echo "   $c: ${NOTE[$c]}"
    fi
done
if [ "${READY[direct]:-}" = 1 ]; then
    echo "   veth offloads (h1 side): $(ip netns exec "$P${LETTER[direct]}h1" ethtool -k \
        "$P${LETTER[direct]}h1e" 2>/dev/null | grep -E '^(tcp-segmentation-offload|generic-receive-offload|tx-checksumming):' | tr -s ' \n' ' ')"
fi

for round in $(seq 1 "$REPEAT"); do
    echo "== round $round of $REPEAT: 64-byte pps"
    for c in "${ALL[@]}"; do
        if [ "${READY[$c]:-}" = 1 ]; then measure pps "$c" "$round"; fi
    done
    echo "== round $round of $REPEAT: TCP"
    for c in "${ALL[@]}"; do
        # direct-xdp differs from direct in the generator only: TCP is the same hosts' stacks.
        if [ "${READY[$c]:-}" = 1 ] && [ "$c" != direct-xdp ]; then measure tcp "$c" "$round"; fi
    done
done
LOAD_END=$(uptime)
for c in "${ALL[@]}"; do
    PPS[$c]=$(echo "${PPS_RUNS[$c]:-}" | median)
    TCP[$c]=$(echo "${TCP_RUNS[$c]:-}" | median)
    CPU[$c]=$(echo "${CPU_RUNS[$c]:-}" | median)
    FRAC[$c]=$(echo "${FRAC_RUNS[$c]:-}" | median)
done
cleanup

# --- report -----------------------------------------------------------------------------------

ratio() {
    awk -v a="${1:-0}" -v b="${2:-0}" \
        'BEGIN { if (b > 0 && a > 0) printf "%.2f", a / b; else print "-" }'
}
verdict() { # RATIO TARGET
    awk -v r="$1" -v t="$2" \
        'BEGIN { if (r == "-") print "n/a"; else if (r + 0 >= t) print "met"; else print "MISSED" }'
}
mpps() { awk -v p="${1:-0}" 'BEGIN { printf "%.3f", p / 1e6 }'; }

label() {
    case $1 in
    direct) echo "tools only, AF_PACKET pktgen" ;;
    direct-xdp) echo "tools only, AF_XDP pktgen" ;;
    copier) echo "frame copier (AF_PACKET)" ;;
    copier-xdp) echo "frame copier (AF_XDP)" ;;
    bridge) echo "Linux bridge" ;;
    kroute) echo "Linux IP forwarding" ;;
    l2) echo "roamer L2, AF_PACKET" ;;
    l3) echo "roamer L3, AF_PACKET" ;;
    lisp) echo "roamer LISP (2 xTRs), AF_PACKET" ;;
    l2-xdp) echo "roamer L2, AF_XDP" ;;
    l3-xdp) echo "roamer L3, AF_XDP" ;;
    lisp-xdp) echo "roamer LISP (2 xTRs), AF_XDP" ;;
    l3-box) echo "roamer L3 AF_PACKET, $BOX_CPU-CPU box" ;;
    lisp-box) echo "roamer LISP AF_PACKET, box per xTR" ;;
    l3-xdp-box) echo "roamer L3 AF_XDP, $BOX_CPU-CPU box" ;;
    lisp-xdp-box) echo "roamer LISP AF_XDP, box per xTR" ;;
    kroute-tap) echo "Linux IP forwarding + a filtered packet tap" ;;
    kl3) echo "roamer L3, kernel backend" ;;
    kl3x2) echo "roamer L3 (2 routers), kernel backend" ;;
    klisp) echo "roamer LISP (2 xTRs), kernel backend" ;;
    vxlan) echo "Linux routers over a VXLAN tunnel" ;;
    esac
}

echo
echo "== results: $(date -u '+%Y-%m-%d %H:%M UTC'), Linux $(uname -r), $CPUS CPUs," \
    "medians of $REPEAT rounds (pps ${PPS_SECONDS} s, TCP ${TCP_SECONDS} s)"
echo "load average at start: ${LOAD_START#*load average: }"
echo "load average at end:   ${LOAD_END#*load average: }"
echo "The sender, the switch and the receiver share these $CPUS CPUs ($(placement), nice $NICE);"
echo "the kernel's veth delivery runs on the sending side's CPU (for the Linux bridge: all of it)."
echo "CPU: the share of a CPU the switch processes got while pps was measured (their own threads;"
echo "below ~0.9 other work on the machine took the rest). Mpps/CPU: 64-byte pps per CPU-second"
echo "the switch processes used, which is what they cost whatever share they got."
echo
printf '| %-34s | %9s | %5s | %8s | %8s | %-30s |\n' "data path" "64 B Mpps" "CPU" "Mpps/CPU" \
    "TCP Gb/s" "rounds: kpps / Gb/s"
printf '|%s|%s|%s|%s|%s|%s|\n' "------------------------------------" "-----------" "-------" \
    "----------" "----------" "--------------------------------"
for c in "${ALL[@]}"; do
    if [ "${READY[$c]:-}" = 1 ]; then
        tcp_runs=${TCP_RUNS[$c]:-}
        rounds="$(echo "${PPS_RUNS[$c]}" | awk '{ for (i = 1; i <= NF; i++) printf "%s%d", (i > 1 ? " " : ""), $i / 1000 }') / ${tcp_runs# }"
        if [ -n "${NOTE[$c]:-}" ]; then rounds="$rounds (${NOTE[$c]})"; fi
        local_cpu=-
        if [ "${CPU[$c]:-0}" != 0 ]; then local_cpu=$(mpps "${CPU[$c]}"); fi
        frac=-
        if [ "${FRAC[$c]:-0}" != 0 ]; then frac=$(awk -v f="${FRAC[$c]}" 'BEGIN { printf "%.2f", f }'); fi
        tcp=${TCP[$c]}
        if [ -z "$tcp_runs" ]; then tcp=-; fi
        printf '| %-34s | %9s | %5s | %8s | %8s | %-30s |\n' "$(label "$c")" \
            "$(mpps "${PPS[$c]}")" "$frac" "$local_cpu" "$tcp" "$rounds"
    else
        printf '| %-34s | %9s | %5s | %8s | %8s | %-30s |\n' "$(label "$c")" "-" "-" "-" "-" \
            "${NOTE[$c]:-}"
    fi
done
echo
printf '| %-36s | %5s | %6s | %-7s | %-16s |\n' "ratio (of the medians)" "value" "target" "verdict" \
    "per round"
printf '|%s|%s|%s|%s|%s|\n' "--------------------------------------" "-------" "--------" "---------" \
    "------------------"
# per_round "A1 A2 .." "B1 B2 ..": the ratios round by round.
per_round() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= n; i++) printf "%s%s", (i > 1 ? " " : ""), (y[i] > 0 ? sprintf("%.2f", x[i] / y[i]) : "-")
    }'
}
row() { # NAME METRIC A B [TARGET]
    local r rounds=""
    case $2 in
    pps) r=$(ratio "${PPS[$3]:-0}" "${PPS[$4]:-0}")
        rounds=$(per_round "${PPS_RUNS[$3]:-}" "${PPS_RUNS[$4]:-}") ;;
    tcp) r=$(ratio "${TCP[$3]:-0}" "${TCP[$4]:-0}")
        rounds=$(per_round "${TCP_RUNS[$3]:-}" "${TCP_RUNS[$4]:-}") ;;
    cpu) r=$(ratio "${CPU[$3]:-0}" "${CPU[$4]:-0}")
        rounds=$(per_round "${CPU_RUNS[$3]:-}" "${CPU_RUNS[$4]:-}") ;;
    esac
    if [ -n "${5:-}" ]; then
        printf '| %-36s | %5s | %6s | %-7s | %-16s |\n' "$1" "$r" "$5" "$(verdict "$r" "$5")" "$rounds"
    else
        printf '| %-36s | %5s | %6s | %-7s | %-16s |\n' "$1" "$r" "-" "info" "$rounds"
    fi
}
row "tools AF_XDP pps / roamer L3 AF_PACKET" pps direct-xdp l3 3
row "tools AF_XDP pps / tools AF_PACKET pps" pps direct-xdp direct
row "L3 AF_XDP / L3 AF_PACKET, Mpps/CPU" cpu l3-xdp l3 3
row "L3 AF_XDP / L3 AF_PACKET, pps, box" pps l3-xdp-box l3-box 3
row "L2 AF_XDP pps / copier AF_XDP pps" pps l2-xdp copier-xdp 0.9
row "L3 AF_XDP pps / copier AF_XDP pps" pps l3-xdp copier-xdp 0.9
row "L2 AF_XDP / copier AF_XDP, Mpps/CPU" cpu l2-xdp copier-xdp 0.9
row "L3 AF_XDP / copier AF_XDP, Mpps/CPU" cpu l3-xdp copier-xdp 0.9
row "LISP AF_XDP / L3 AF_XDP pps, box" pps lisp-xdp-box l3-xdp-box 0.8
row "L3 TCP AF_XDP / L3 TCP AF_PACKET" tcp l3-xdp l3 1
row "L2 TCP AF_XDP / L2 TCP AF_PACKET" tcp l2-xdp l2 1
row "copier AF_XDP pps / copier AF_PACKET" pps copier-xdp copier
row "L3 AF_XDP pps / Linux IP forwarding" pps l3-xdp kroute
row "kernel L3 pps / Linux IP forwarding" pps kl3 kroute 0.95
row "kernel L3 TCP / Linux IP forwarding" tcp kl3 kroute 0.95
row "Linux forwarding + tap / Linux forwarding, pps" pps kroute-tap kroute
row "kernel L3 pps / Linux forwarding + tap" pps kl3 kroute-tap
# Issue 17's "kernel LISP pps >= 0.8 x kernel L3" is judged like for like: LISP takes two
# routers (encapsulating and decapsulating xTR), so its peer is the same two-router path without
# LISP; against one router (two veth hops and one forwarding step fewer) it is shown for information.
row "kernel LISP pps / kernel L3 pps, 1 router" pps klisp kl3
row "kernel LISP pps / kernel L3 pps, 2 routers each" pps klisp kl3x2 0.8
row "kernel LISP TCP / VXLAN TCP" tcp klisp vxlan 0.9
row "kernel L3 pps / software L3 AF_XDP pps" pps kl3 l3-xdp
row "kernel LISP pps / software LISP AF_XDP pps" pps klisp lisp-xdp
row "L2 pps / copier pps" pps l2 copier 0.9
row "L2 TCP / copier TCP (vnet-hdr)" tcp l2 copier 0.9
row "L3 pps / copier pps" pps l3 copier 0.85
row "L3 TCP / copier TCP" tcp l3 copier 0.85
row "LISP pps / L3 pps, a box per switch" pps lisp-box l3-box 0.8
row "LISP TCP / L3 TCP, a box per switch" tcp lisp-box l3-box 0.8
row "LISP pps / L3 pps, xTRs on one CPU" pps lisp l3 0.8
row "LISP TCP / L3 TCP, xTRs on one CPU" tcp lisp l3 0.8
row "L2 pps / Linux bridge pps" pps l2 bridge
row "L2 TCP / Linux bridge TCP" tcp l2 bridge
row "copier pps / tools-only pps" pps copier direct
row "L2 Mpps/CPU / copier Mpps/CPU" cpu l2 copier
row "L3 Mpps/CPU / copier Mpps/CPU" cpu l3 copier
row "LISP Mpps/CPU / L3 Mpps/CPU" cpu lisp l3
if [[ " ${ALL[*]} " == *" lisp "* ]] && [ "$PINNED" = 1 ] && [ -z "${LISP_XTR2_CPU:-}" ]; then
    echo
    echo "LISP: both xTRs run on CPU $SWITCH_CPU, so every LISP packet costs two switch passes on"
    echo "the one CPU that L3 has for one pass (LISP_XTR2_CPU=N puts the second xTR elsewhere)."
fi
if [ "${READY[lisp-box]:-}" = 1 ]; then
    echo
    echo "Box rows: every switch process limited to $BOX_CPU of a CPU (cgroup CFS bandwidth, one"
    echo "group per process): the L3 router is one such box, each xTR another, as in a network"
    echo "where the two xTRs are two switches of equal power."
fi

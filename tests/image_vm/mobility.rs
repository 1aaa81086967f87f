//! Seed 001's across-subnet mobility inside the VM image, every node a kernel-backend roamer in
//! a network namespace of the guest (whose kernel has bridge VLAN filtering and 802.1Q): the
//! map-server, xTR-A and xTR-B with the mobility subnet on `interface Vlan10` (an SVI on each
//! one's VLAN-filtering bridge) behind an HSRP group sharing one virtual MAC, xTR-B in another
//! subnet with `ip proxy-arp`, and xTR-C with the remote site behind a trunk port. The scenario runs as a shell
//! script from the config drive, started on the serial console; it prints what it saw between
//! markers, and the test reads it.

use crate::common::lisp_config as lisp;
use crate::common::mobility::{Xtrs, ms_config};

/// The mobile xTR `n` (1 = A at home, 10.9.0.0/24 extended-subnet; 2 = B in 10.2.2.0/24 with
/// proxy-ARP): `interface Vlan10` with its HSRP group 1 (the same virtual MAC at both sites).
fn mobile(n: u8) -> String {
    let (name, svi) = match n {
        1 => (
            "a",
            "  ip address 10.9.0.2/24\n  hsrp 1\n    timers 1 3\n    ip 10.9.0.1\n  \
             lisp mobility roam\n  lisp extended-subnet-mode\n",
        ),
        _ => (
            "b",
            "  ip address 10.2.2.2/24\n  hsrp 1\n    timers 1 3\n    ip 10.2.2.1\n  \
             ip proxy-arp\n  lisp mobility roam\n",
        ),
    };
    format!(
        "{}feature hsrp\ninterface Vlan10\n{svi}ip lisp itr-etr\n{}\
         lisp dynamic-eid roam\n  database-mapping 10.9.0.0/25 192.0.2.{n} priority 1 weight 100\n",
        lisp::kernel(lisp::xtr_node(
            "",
            name,
            'h',
            &[&format!("ip address 192.0.2.{n}/24")]
        )),
        lisp::mapping_system("ip", "192.0.2.100"),
    )
}

/// xTR-C: the remote site 10.3.0.0/24 on `interface Vlan10`, its host port a trunk (R sends
/// tagged frames from a VLAN device).
fn remote() -> String {
    let node = lisp::kernel(lisp::xtr_node("", "c", 'h', &["ip address 192.0.2.3/24"]));
    format!(
        "{}interface Vlan10\n  ip address 10.3.0.1/24\nip lisp itr-etr\n{}\
         ip lisp database-mapping 10.3.0.0/24 192.0.2.3 priority 1 weight 100\n",
        node.replace(
            "  switchport access vlan 10\n",
            "  switchport mode trunk\n  switchport trunk allowed vlan 10\n"
        ),
        lisp::mapping_system("ip", "192.0.2.100"),
    )
}

/// The files of the config drive besides `startup-config`: the four nodes' configurations and
/// the script.
pub fn drive_files() -> Vec<(&'static str, String)> {
    vec![
        ("m.conf", ms_config("", Xtrs::Kernel)),
        ("a.conf", mobile(1)),
        ("b.conf", mobile(2)),
        ("c.conf", remote()),
        (
            "mobility.sh",
            super::script_prelude("MOB", "mb", "k m a b c h r") + SCRIPT,
        ),
    ]
}

/// Run as `bash mobility.sh DIR` (DIR: the mounted drive). Namespaces `mb*`; everything it
/// created goes at the end, also on failure. `MOB-FAIL …` names a step that timed out;
/// `=== NAME ===` heads the output of a command the test checks; `MOB-END` ends it.
const SCRIPT: &str = r#"
# What a failed step leaves to look at.
diag() {
    for n in a b c; do
        show "cache-$n" $n 'show ip lisp map-cache'
        show "counters-$n" $n 'show forwarding counters'
        show "route-$n" $n 'show ip route'
        echo "=== log-$n ==="; tail -n 20 $W/$n.log
    done
    show site m 'show lisp site'
    ip netns exec mbr ping -c 2 -W 1 10.9.0.5
}
underlay m a b c
ip link add ha netns mba type veth peer name ea netns mbh
ip link add hb netns mbb type veth peer name eb netns mbh
ip link add hc netns mbc type veth peer name er netns mbr
for d in "a ha" "b hb" "c hc" "h ea" "h eb" "r er"; do set -- $d; ip -n mb$1 link set $2 up; done
ip -n mbh addr add 10.9.0.5/24 dev ea
ip -n mbh route add default via 10.9.0.1 dev ea
ip -n mbr link add link er name er.10 type vlan id 10
ip -n mbr link set er.10 up
ip -n mbr addr add 10.3.0.10/24 dev er.10
ip -n mbr route add default via 10.3.0.1
for n in m a b c; do
    ip netns exec mb$n roamer run --config $D/$n.conf --socket $W/$n.sock >$W/$n.log 2>&1 &
    pids="$pids $!"
done
site_has() { x m 'show lisp site' | grep "$1" | grep -q "$2"; }
active() { x $1 'show hsrp brief' | grep Vlan10 | grep -q Active; }
until_ok 180 "xTR-C registered" site_has 10.3.0.0/24 yes || exit 1
until_ok 120 "HSRP active at A" active a || exit 1
until_ok 120 "HSRP active at B" active b || exit 1
until_ok 120 "H reaches R through xTR-A" ip netns exec mbh ping -c 1 -W 1 10.3.0.10 || exit 1
until_ok 60 "H registered by xTR-A" site_has 10.9.0.5/32 192.0.2.1 || exit 1
# xTR-C's map-cache entry for H (its locators on the lines below it) names RLOC $1.
cached_at() {
    ip netns exec mbr ping -c 1 -W 1 10.9.0.5
    local c; c=$(x c 'show ip lisp map-cache 10.9.0.5')
    echo "$c" | grep -q 10.9.0.5/32 && echo "$c" | grep -q " $1 "
}
until_ok 60 "xTR-C caches H at xTR-A" cached_at 192.0.2.1 || { diag; exit 1; }
show neigh-before a 'show ip arp'
ip -n mbh neigh show 10.9.0.1 dev ea | sed 's/^/H-GATEWAY-BEFORE /'

# R pings H every 200 ms while H moves to xTR-B's site, keeping its address and gateway.
ip netns exec mbr ping -n -D -i 0.2 -W 1 -c 150 10.9.0.5 >$W/ping.txt 2>&1 &
pinger=$!
sleep 5
moved=$(date +%s.%N)
ip -n mbh addr flush dev ea
ip -n mbh link set ea down
ip -n mbh addr add 10.9.0.5/24 dev eb
ip -n mbh route add default via 10.9.0.1 dev eb
ip netns exec mbh ping -c 1 -W 2 10.3.0.10 >/dev/null
wait $pinger
after=$(awk -v m=$moved -F'[][]' '/bytes from/ && $2 > m { n++ } END { print n + 0 }' $W/ping.txt)
echo "MOB-REPLIES-AFTER-MOVE $after"
grep -c 'bytes from' $W/ping.txt | sed 's/^/MOB-REPLIES-TOTAL /'
until_ok 30 "H registered by xTR-B" site_has 10.9.0.5/32 192.0.2.2
until_ok 30 "xTR-C follows H to xTR-B" cached_at 192.0.2.2
ip -n mbh neigh show 10.9.0.1 dev eb | sed 's/^/H-GATEWAY-AFTER /'
show site m 'show lisp site'
show away a 'show ip lisp away'
show dyn-b b 'show lisp dynamic-eid summary'
show counters-b b 'show forwarding counters'
show hsrp-b b 'show hsrp brief'
show cache-c c 'show ip lisp map-cache 10.9.0.5'
echo "=== bridge-b ==="; ip netns exec mbb bridge vlan show
echo "=== bridge-c ==="; ip netns exec mbc bridge vlan show
echo "=== macvlan-b ==="; ip -n mbb -o link show type macvlan
echo "=== filters-b ==="; ip netns exec mbb tc filter show dev rmrvlan10 ingress 2>&1
for n in a b c; do echo "=== log-$n ==="; tail -n 15 $W/$n.log; done
echo MOB-END
"#;

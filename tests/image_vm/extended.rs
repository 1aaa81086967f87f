//! Seed 001's extended-subnet mode inside the VM image, every node a kernel-backend roamer in a
//! network namespace of the guest: xTR-1 and xTR-2 share VLAN 10 (an SVI on each one's
//! VLAN-filtering bridge) over a LAN extension between an access port of each. The xTR that
//! detects host H announces it with a site-based Map-Notify to the map-notify-group 239.1.1.1,
//! flooded on the VLAN; the kernel backend of the other xTR has joined the group on its SVI
//! (the `DynamicEidRange` row carries it), receives the notify through its raw socket, and
//! lists H with `*`. H moves from xTR-1 to xTR-2 and both agree again.

use crate::common::lisp_config as lisp;

/// xTR `n` (1 or 2): host port `h{n}` and LAN-extension port `l{n}` in VLAN 10, underlay `u{n}`.
fn xtr(n: u8) -> String {
    let node = lisp::kernel(lisp::node(
        &format!("xtr{n}"),
        &[&format!("h{n}"), &format!("l{n}")],
        &format!("u{n}"),
        &[&format!("ip address 192.0.2.{n}/24")],
    ));
    format!(
        "{node}interface Vlan10\n  ip address 10.9.0.{}/24\n  lisp mobility dc1-hosts\n  \
         lisp extended-subnet-mode\nip lisp itr-etr\n{}\
         lisp dynamic-eid dc1-hosts\n  database-mapping 10.9.0.0/25 192.0.2.{n} priority 1 weight 100\n  \
         map-notify-group 239.1.1.1\n",
        n + 1,
        lisp::mapping_system("ip", "192.0.2.100"),
    )
}

/// The files of the config drive besides `startup-config`.
pub fn drive_files() -> Vec<(&'static str, String)> {
    vec![
        (
            "m.conf",
            lisp::kernel(lisp::ms(
                "",
                &[("dc1", &["10.9.0.0/25 accept-more-specifics"])],
            )),
        ),
        ("x1.conf", xtr(1)),
        ("x2.conf", xtr(2)),
        (
            "extended.sh",
            super::script_prelude("XS", "xs", "k m 1 2 h") + SCRIPT,
        ),
    ]
}

/// Run as `bash extended.sh DIR`. Namespaces `xs*`, removed at the end (also on failure).
/// `XS-FAIL …` names a step that timed out; `=== NAME ===` heads a command's output the test
/// checks; `XS-END` ends it.
const SCRIPT: &str = r#"
diag() {
    for n in x1 x2; do
        show "dyn-$n" $n 'show lisp dynamic-eid summary'
        show "counters-$n" $n 'show forwarding counters'
        echo "=== log-$n ==="; tail -n 20 $W/$n.log
    done
    show site m 'show lisp site'
}
underlay m 1 2
ip link add l1 netns xs1 type veth peer name l2 netns xs2
ip link add h1 netns xs1 type veth peer name e1 netns xsh
ip link add h2 netns xs2 type veth peer name e2 netns xsh
for d in "1 l1" "2 l2" "1 h1" "2 h2" "h e1"; do set -- $d; ip -n xs$1 link set $2 up; done
ip -n xsh addr add 10.9.0.5/24 dev e1
ip netns exec xsm roamer run --config $D/m.conf --socket $W/m.sock >$W/m.log 2>&1 &
pids="$pids $!"
for n in 1 2; do
    ip netns exec xs$n roamer run --config $D/x$n.conf --socket $W/x$n.sock >$W/x$n.log 2>&1 &
    pids="$pids $!"
done
# dyn XTR FLAGGED: XTR's dynamic-EID summary lists H, marked `*` (learned from the site) or not.
dyn() {
    local row; row=$(x $1 'show lisp dynamic-eid summary' | grep 10.9.0.5) || return 1
    if [ "$2" = yes ]; then echo "$row" | grep -q '\*10.9.0.5'; else echo "$row" | grep -q ' 10.9.0.5'; fi
}
site_has() { x m 'show lisp site' | grep 10.9.0.5/32 | grep -q "$1"; }
until_ok 180 "H reaches its gateway at xTR-1" ip netns exec xsh ping -c 1 -W 1 10.9.0.2 || { diag; exit 1; }
until_ok 60 "xTR-1 holds H" dyn x1 no || { diag; exit 1; }
until_ok 60 "xTR-2 learns H from the site Map-Notify" dyn x2 yes || { diag; exit 1; }
show dyn-before-2 x2 'show lisp dynamic-eid summary'
echo "=== maddr-2 ==="; ip -n xs2 maddr show dev rmrvlan10
# H moves to xTR-2 and talks to its gateway there.
ip -n xsh addr flush dev e1
ip -n xsh link set e1 down
ip -n xsh link set e2 up
ip -n xsh addr add 10.9.0.5/24 dev e2
until_ok 60 "H reaches its gateway at xTR-2" ip netns exec xsh ping -c 1 -W 1 10.9.0.3 || { diag; exit 1; }
until_ok 60 "xTR-2 holds H" dyn x2 no || { diag; exit 1; }
until_ok 60 "xTR-1 learns H moved from the site Map-Notify" dyn x1 yes || { diag; exit 1; }
until_ok 60 "the map-server has H from xTR-2" site_has 192.0.2.2 || { diag; exit 1; }
show dyn-after-1 x1 'show lisp dynamic-eid summary'
show dyn-after-2 x2 'show lisp dynamic-eid summary'
show site m 'show lisp site'
echo "=== maddr-1 ==="; ip -n xs1 maddr show dev rmrvlan10
for n in x1 x2; do echo "=== log-$n ==="; tail -n 15 $W/$n.log; done
echo XS-END
"#;

/// The scenario above in a booted VM image, driven through its serial console.
#[test]
fn vm_kernel_backend_extended_subnet_xtrs_agree_through_the_map_notify_group() {
    let out = super::run_drive_scenario("extended", &drive_files(), "XS");
    let section = |name: &str| super::section(&out, name);
    assert!(
        !out.contains("XS-FAIL") && out.contains("XS-END"),
        "the scenario did not finish:\n{out}"
    );
    assert!(
        section("maddr-2").contains("239.1.1.1"),
        "xTR-2's SVI joined the map-notify-group:\n{out}"
    );
    assert!(
        section("dyn-before-2").contains("*10.9.0.5"),
        "xTR-2 learned H from xTR-1's site Map-Notify:\n{out}"
    );
    println!(
        "after the move, xTR-1:\n{}\nxTR-2:\n{}",
        section("dyn-after-1"),
        section("dyn-after-2")
    );
    let after_1 = section("dyn-after-1");
    let after_2 = section("dyn-after-2");
    assert!(
        after_1.contains("*10.9.0.5"),
        "xTR-1 learned the move:\n{out}"
    );
    assert!(
        after_2.contains(" 10.9.0.5") && !after_2.contains("*10.9.0.5"),
        "xTR-2 holds H:\n{out}"
    );
    assert!(section("maddr-1").contains("239.1.1.1"), "{out}");
}

//! The LISP eBPF data path's life cycle and tables, without traffic: the HAL table contract
//! (Exists / NotFound / Unsupported / table full at the map's capacity) and cleanup when the
//! process that loaded it is killed (TCX links go with their file descriptors). Traffic tests are
//! in lisp_ebpf_netns.rs.

use std::time::Duration;

use roamer_hal::{HalError, PortId, TableEntry, TableKind, TableOp};
use roamer_platforms::kernel::lisp_offload::LispOffload;
use roamer_test_support::{self as support, Netns, Veth};

mod lisp_ops;

use lisp_ops::{EID_IFACE, database, linked, map_cache};

#[test]
fn ebpf_tables_follow_the_hal_contract() {
    support::require_root("the LISP eBPF test loads BPF programs");
    let mut o = LispOffload::load().expect("load");
    let op = map_cache("10.20.0.0/24", "192.0.2.2");
    o.apply(&op).expect("add");
    assert!(matches!(o.apply(&op), Err(HalError::Exists { .. })));
    let update = TableOp::update(op.entry.clone());
    o.apply(&update).expect("update");
    assert_eq!(
        o.entries(TableKind::LispMapCache).expect("entries"),
        vec![op.entry.clone()]
    );
    o.apply(&TableOp::remove(op.entry.clone())).expect("remove");
    assert!(matches!(
        o.apply(&TableOp::remove(op.entry.clone())),
        Err(HalError::NotFound { .. })
    ));
    assert!(matches!(
        o.apply(&TableOp::update(op.entry.clone())),
        Err(HalError::NotFound { .. })
    ));
    assert!(
        o.entries(TableKind::LispMapCache)
            .expect("entries")
            .is_empty()
    );
    let fdb = TableOp::add(TableEntry::HelloFilter { port: PortId(1) });
    assert!(matches!(o.apply(&fdb), Err(HalError::Unsupported { .. })));
    // The database fills at its capacity with the software backend's table-full error.
    let mut full = None;
    for i in 0..5000u32 {
        let eid = format!("10.{}.{}.0/24", i / 256, i % 256);
        if let Err(e) = o.apply(&database(&eid, "192.0.2.1")) {
            full = Some((i, e));
            break;
        }
    }
    let (at, e) = full.expect("the database table fills");
    assert_eq!(at, 4096);
    assert!(
        matches!(
            e,
            HalError::TableFull {
                table: TableKind::LispDatabase,
                capacity: 4096,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(o.program_ids().len(), 2);
    assert!(o.event_fd() >= 0);
}

/// The child process of [`ebpf_programs_go_with_a_killed_process`], started by it inside its
/// namespace: loads, attaches to the device it is told, prints the program ids, then waits to
/// be killed.
#[test]
#[ignore = "the child process of ebpf_programs_go_with_a_killed_process, not a test of its own"]
fn killed_process_child() {
    let dev = std::env::var("ROAMER_KBPF_CHILD_DEV")
        .expect("run by ebpf_programs_go_with_a_killed_process only");
    let ifindex: u32 = std::fs::read_to_string(format!("/sys/class/net/{dev}/ifindex"))
        .expect("ifindex")
        .trim()
        .parse()
        .expect("ifindex number");
    let mut o = LispOffload::load().expect("load");
    o.attach_eid_facing(ifindex, EID_IFACE).expect("attach ITR");
    o.attach_underlay(ifindex).expect("attach ETR");
    let ids: Vec<String> = o.program_ids().iter().map(u32::to_string).collect();
    println!("ids {}", ids.join(" "));
    std::thread::sleep(Duration::from_secs(60));
}

/// TCX links belong to the process: killed with SIGKILL, it leaves nothing attached or loaded.
#[test]
fn ebpf_programs_go_with_a_killed_process() {
    use std::io::BufRead;
    support::require_root("the LISP eBPF test loads BPF programs and creates namespaces");
    support::require_tool("bpftool", "bpftool");
    let prefix = support::unique_prefix();
    let ns = Netns::new(&format!("{prefix}k")).expect("netns");
    let (a, b) = (format!("{prefix}ka"), format!("{prefix}kb"));
    let _veth = Veth::between(&a, &ns, &b, &ns).expect("veth");
    ns.ip(&["link", "set", &a, "up"]).expect("up");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = support::KillOnDrop(
        std::process::Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(&exe)
            .args([
                "--exact",
                "killed_process_child",
                "--ignored",
                "--nocapture",
            ])
            .env("ROAMER_KBPF_CHILD_DEV", &a)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("child process"),
    );
    let stdout = child.0.stdout.take().expect("child stdout");
    let ids: Vec<String> = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("ids ").map(str::to_string))
        .expect("the child's program ids")
        .split(' ')
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|id| linked(id)), "not attached: {ids:?}");
    child.0.kill().expect("SIGKILL the child");
    let _ = child.0.wait();
    for id in &ids {
        let gone = support::wait_until(Duration::from_secs(5), || {
            support::run("bpftool", &["prog", "show", "id", id]).is_err()
        });
        assert!(gone, "program {id} still loaded after SIGKILL");
    }
    assert!(
        !ids.iter().any(|id| linked(id)),
        "still attached after SIGKILL"
    );
}

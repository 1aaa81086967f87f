//! Root and tool checks. A test that cannot run fails, naming what it needs; it never passes
//! without having run.

/// Whether `tool` is on the `PATH`.
pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// Whether this process may create namespaces and interfaces (it runs as root).
pub fn privileged() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Fails the test (panics with `what` in its message) unless this process runs as root.
/// `why`: what root is needed for.
#[track_caller]
pub fn require_root(why: &str) {
    assert!(
        privileged(),
        "this test needs root ({why}) and cannot run without it: run it as root \
         (scripts/test.sh does)"
    );
}

/// Fails the test unless `tool` is on the PATH. `package`: the Debian package that has it.
#[track_caller]
pub fn require_tool(tool: &str, package: &str) {
    assert!(
        have(tool),
        "this test needs `{tool}`, which is not on the PATH: apt-get install {package} \
         (scripts/test.sh installs it)"
    );
}

//! `roamer validate` on the foundation example and its broken variants.

use std::path::PathBuf;
use std::process::Command;

const EXAMPLE: &str = include_str!("../examples/n7k-dc1.toml");

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn validate(text: &str) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("startup.toml");
    std::fs::write(&path, text).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_roamer"))
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run roamer");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        path,
        _dir: dir,
    }
}

impl Outcome {
    /// `PATH:LINE:`, where an error about the first line of `text` with `needle` starts.
    fn at(&self, text: &str, needle: &str) -> String {
        format!("{}:{}:", self.path.display(), line_of(text, needle))
    }
}

/// The example with the line card of slot 1 replaced by a `model` card.
fn with_card(model: &str) -> String {
    EXAMPLE.replace("N7K-M132XP-12", model)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle} not in config"))
}

#[test]
fn shipped_example_is_valid_with_a_summary() {
    let o = validate(EXAMPLE);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("n7k-dc1"), "{}", o.stdout);
    assert!(o.stdout.contains("slot 1 N7K-M132XP-12"), "{}", o.stdout);
    assert!(
        o.stderr.is_empty() || !o.stderr.contains(':'),
        "{}",
        o.stderr
    );
}

#[test]
fn old_epld_names_slot_model_and_both_versions() {
    let text = EXAMPLE.replace("186.008", "186.007");
    let o = validate(&text);
    assert_eq!(o.code, 2);
    let expected_prefix = format!("{} ", o.at(&text, "epld"));
    assert!(o.stderr.starts_with(&expected_prefix), "{}", o.stderr);
    for word in ["slot 1", "N7K-M132XP-12", "186.007", "186.008"] {
        assert!(o.stderr.contains(word), "missing {word}: {}", o.stderr);
    }
}

#[test]
fn f2_with_lisp_is_rejected_with_the_f2_message() {
    let text = with_card("N7K-F248XP-25").replace("epld = \"186.008\"\n", "");
    let o = validate(&text);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains(&format!(
            "{} slot 1: N7K-F248XP-25: LISP is not supported on F2 Series modules",
            o.at(&text, "model")
        )),
        "{}",
        o.stderr
    );
}

#[test]
fn f2_without_lisp_is_admitted() {
    let text = with_card("N7K-F248XP-25").replace("lisp = true", "lisp = false");
    let o = validate(&text);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("N7K-F248XP-25"));
}

#[test]
fn f3_needs_release_8_2_1() {
    let f3 = with_card("N7K-F348XP-25").replace("epld = \"186.008\"\n", "");
    let old = validate(&f3.replace("8.2(1)", "8.1(1)"));
    assert_eq!(old.code, 2);
    assert!(
        old.stderr.contains("8.2(1)") && old.stderr.contains("8.1(1)"),
        "{}",
        old.stderr
    );
    let new = validate(&f3);
    assert_eq!(new.code, 0, "{}", new.stderr);
}

#[test]
fn missing_licence_is_named() {
    let text = EXAMPLE.replace("licenses = [\"LAN_ENTERPRISE_SERVICES_PKG\"]\n", "");
    let o = validate(&text);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("LAN_ENTERPRISE_SERVICES_PKG"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.starts_with(&o.at(&text, "lisp = true")),
        "{}",
        o.stderr
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let text = EXAMPLE.replace("186.008", "186.007").replace(
        "[features]",
        "[[platform.linecard]]\nslot = 2\nmodel = \"N7K-F248XP-25E\"\n[features]",
    );
    let o = validate(&text);
    assert_eq!(o.code, 2);
    assert_eq!(o.stderr.lines().count(), 2, "{}", o.stderr);
}

#[test]
fn unknown_model_and_syntax_errors_are_positioned() {
    let o = validate(&with_card("N7K-X999"));
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("unknown line-card model"), "{}", o.stderr);

    let o = validate(&EXAMPLE.replace("lisp = true", "lisp = yes"));
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.starts_with(&o.at(EXAMPLE, "lisp = true")),
        "{}",
        o.stderr
    );
}

#[test]
fn unreadable_file_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_roamer"))
        .args(["validate", "/nonexistent/roamer.toml"])
        .output()
        .expect("run roamer");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

/// One EID prefix in two `lisp site`s is refused, naming both lines (issue 15, item 7).
#[test]
fn eid_prefix_in_two_sites_names_both_lines() {
    let text = "hostname ms\n\
                feature lisp\n\
                ip lisp map-server\n\
                lisp site dc\n\
                \x20 eid-prefix 10.1.1.0/24\n\
                \x20 authentication-key roamer-key\n\
                lisp site remote\n\
                \x20 eid-prefix 10.3.3.0/24\n\
                \x20 eid-prefix 10.1.1.0/24 accept-more-specifics\n\
                \x20 authentication-key roamer-key\n";
    let o = validate(text);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    let first = text
        .lines()
        .position(|l| l.ends_with("10.1.1.0/24"))
        .unwrap()
        + 1;
    let second = text
        .lines()
        .position(|l| l.contains("10.1.1.0/24 accept"))
        .unwrap()
        + 1;
    let p = o.path.display();
    let expected = format!(
        "{p}:{second}: eid-prefix 10.1.1.0/24 of lisp site remote is already configured in lisp site dc (at {p}:{first})"
    );
    assert!(o.stderr.contains(&expected), "{}", o.stderr);
    // Distinct prefixes in distinct sites stay valid.
    let ok = validate(&text.replace("10.1.1.0/24 accept", "10.4.4.0/24 accept"));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}

//! Every configuration example of the source documents is accepted as printed (prompts
//! included), and renders to CLI and TOML that validate again and are canonical.

use std::path::{Path, PathBuf};
use std::process::Command;

fn roamer(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roamer"))
        .args(args)
        .output()
        .expect("run roamer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cli"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "seed fixtures missing: {files:?}");
    files
}

#[test]
fn every_seed_example_validates_and_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in fixtures() {
        let name = file.display().to_string();
        let (code, _, err) = roamer(&["validate", &name]);
        assert_eq!(code, 0, "{name}: {err}");
        for (to, ext) in [("cli", "cli"), ("toml", "toml")] {
            let (code, rendered, err) = roamer(&["config", "convert", &name, "--to", to]);
            assert_eq!(code, 0, "{name} -> {to}: {err}");
            let again = dir.path().join(format!("again.{ext}"));
            std::fs::write(&again, &rendered).expect("write");
            let again_name = again.display().to_string();
            let (code, _, err) = roamer(&["validate", &again_name]);
            assert_eq!(
                code, 0,
                "{name} rendered as {to} does not validate: {err}\n{rendered}"
            );
            let (_, twice, _) = roamer(&["config", "convert", &again_name, "--to", to]);
            assert_eq!(twice, rendered, "{name}: {to} rendering is not canonical");
        }
    }
}

#[test]
fn rendered_config_never_shows_a_key_in_clear() {
    for (file, clear) in [
        ("001-extended-subnet.cli", "cisco"),
        ("001-across-subnets.cli", "some-password"),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/seeds")
            .join(file);
        let path = path.display().to_string();
        for to in ["cli", "toml"] {
            let (code, out, _) = roamer(&["config", "convert", &path, "--to", to]);
            assert_eq!(code, 0);
            assert!(!out.contains(clear), "{file} as {to} leaks the key:\n{out}");
            assert!(out.contains("key 7 ") || out.contains("\"7 "), "{out}");
        }
    }
}

#[test]
fn a_mistake_on_line_7_is_reported_at_line_7() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "feature lisp\nfeature interface-vlan\nfeature hsrp\ninterface Vlan10\n  ip address 10.3.3.5/24\n  hsrp 100\n    ip 10.9.9.1\n";
    let file = dir.path().join("bad.cli");
    std::fs::write(&file, text).expect("write");
    let name = file.display().to_string();
    let (code, _, err) = roamer(&["validate", &name]);
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("{name}:7: ")), "{err}");
    assert!(err.contains("10.9.9.1"), "{err}");

    let typo = text.replace("    ip 10.9.9.1", "    prioirty 110");
    std::fs::write(&file, typo).expect("write");
    let (code, _, err) = roamer(&["validate", &name]);
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("{name}:7: ")), "{err}");
    assert!(
        err.contains("'prioirty'") && err.contains("did you mean 'priority'"),
        "{err}"
    );
}

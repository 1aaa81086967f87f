//! The containerlab topologies shipped in `images/containerlab/`: every file loads as
//! `roamer lab` reads it, keeps to the fields containerlab's schema allows, and every startup
//! configuration it binds passes `roamer validate`; no configuration is left unbound.
#![allow(clippy::unwrap_used)]

mod lab_common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("images/containerlab")
}

fn roamer(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roamer"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn topologies() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".clab.yml"))
        .collect();
    files.sort();
    files
}

/// The keys containerlab's topology schema (clab.schema.json) knows, for what these files use.
const TOP_KEYS: &[&str] = &["name", "prefix", "mgmt", "topology", "settings", "debug"];
const TOPOLOGY_KEYS: &[&str] = &["defaults", "kinds", "nodes", "links", "groups"];
const NODE_KEYS: &[&str] = &[
    "kind",
    "image",
    "binds",
    "exec",
    "env",
    "labels",
    "group",
    "cmd",
    "entrypoint",
    "user",
    "ports",
    "mgmt-ipv4",
    "mgmt-ipv6",
    "startup-delay",
    "wait-for",
    "memory",
    "cpu",
];

fn keys(v: &Value) -> Vec<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_topology_loads_and_every_startup_configuration_validates() {
    let files = topologies();
    assert!(
        files.len() >= 4,
        "one topology per scenario (a)–(d): {files:?}"
    );
    let mut bound = BTreeSet::new();
    let mut names = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let doc: Value = serde_norway::from_str(&text).unwrap();
        let what = file.display().to_string();
        for k in keys(&doc) {
            assert!(TOP_KEYS.contains(&k.as_str()), "{what}: top-level {k}");
        }
        let name = doc["name"].as_str().unwrap().to_string();
        assert!(
            names.insert(name.clone()),
            "{what}: lab name {name} used twice"
        );
        let topo = &doc["topology"];
        for k in keys(topo) {
            assert!(TOPOLOGY_KEYS.contains(&k.as_str()), "{what}: topology.{k}");
        }
        let nodes = topo["nodes"].as_mapping().unwrap();
        for (node, spec) in nodes {
            let node = node.as_str().unwrap();
            for k in keys(spec) {
                assert!(NODE_KEYS.contains(&k.as_str()), "{what}: node {node}: {k}");
            }
            assert_eq!(spec["kind"].as_str(), Some("linux"), "{what}: node {node}");
            let image = spec["image"]
                .as_str()
                .or_else(|| topo["kinds"]["linux"]["image"].as_str())
                .unwrap_or_default();
            assert!(!image.is_empty(), "{what}: node {node} has no image");
            for bind in spec["binds"].as_sequence().into_iter().flatten() {
                let bind = bind.as_str().unwrap();
                let (src, target) = bind.split_once(':').unwrap();
                assert_eq!(target, "/etc/roamer/startup-config", "{what}: {bind}");
                let cfg = file.parent().unwrap().join(src);
                assert!(cfg.is_file(), "{what}: {bind}: no {}", cfg.display());
                bound.insert(cfg.canonicalize().unwrap());
                let (ok, out) = roamer(&["validate", cfg.to_str().unwrap()]);
                assert!(ok, "roamer validate {}:\n{out}", cfg.display());
            }
            if image.contains("roamer") {
                assert!(
                    spec["binds"].as_sequence().is_some(),
                    "{what}: roamer node {node} binds no startup configuration"
                );
            }
        }
        for link in topo["links"].as_sequence().unwrap() {
            let ends = link["endpoints"].as_sequence().unwrap();
            assert_eq!(ends.len(), 2, "{what}: {link:?}");
            for e in ends {
                let (node, iface) = e.as_str().unwrap().split_once(':').unwrap();
                assert!(nodes.contains_key(node), "{what}: endpoint {e:?}");
                assert!(
                    iface.starts_with("eth") && iface != "eth0",
                    "{what}: endpoint {e:?}: data ports are eth1 and up"
                );
            }
        }
        // And as `roamer lab` itself loads it, configurations included.
        let (ok, out) = roamer(&["lab", "validate", file.to_str().unwrap()]);
        assert!(
            ok && out.contains(": valid"),
            "roamer lab validate {what}:\n{out}"
        );
    }
    let mut configs = Vec::new();
    for e in std::fs::read_dir(dir()).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            for c in std::fs::read_dir(&p).unwrap() {
                configs.push(c.unwrap().path().canonicalize().unwrap());
            }
        }
    }
    for c in &configs {
        assert!(bound.contains(c), "{} is bound by no topology", c.display());
    }
}

#[test]
fn lab_validate_reports_a_bad_startup_configuration_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.clab.yml");
    lab_common::write_one_switch_lab(
        tmp.path(),
        &file,
        "x",
        "hostname sw\nfeature lisp\nip lisp itr-etr\nip lisp etr map-server 192.0.2.1\n",
    );
    lab_common::assert_config_error(
        Command::new(env!("CARGO_BIN_EXE_roamer"))
            .args(["lab", "validate"])
            .arg(&file),
        "sw.cfg:4:",
    );
}

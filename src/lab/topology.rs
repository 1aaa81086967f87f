//! The containerlab topology file: the subset `roamer lab` needs (lab name, node kinds, images,
//! binds, exec lines, links), resolved into namespaces and veth pairs.
//!
//! Fields containerlab knows and roamer does not use are accepted and ignored, so the same file
//! runs under containerlab and under `roamer lab`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::RoamerError;

/// Where containerlab binds the startup configuration inside a roamer container.
pub const STARTUP_TARGET: &str = super::container::STARTUP_CONFIG;

/// containerlab's MTU for veth links that name none.
pub const DEFAULT_MTU: u32 = 9500;

/// Linux interface names are at most 15 bytes.
const IFNAMSIZ: usize = 15;

#[derive(Debug, Deserialize)]
struct FileSpec {
    name: String,
    /// containerlab's container-name prefix: absent = `clab`, empty = none, `__lab-name` = the
    /// lab name alone.
    #[serde(default)]
    prefix: Option<String>,
    topology: TopologySpec,
}

#[derive(Debug, Default, Deserialize)]
struct TopologySpec {
    #[serde(default)]
    defaults: NodeSpec,
    #[serde(default)]
    kinds: BTreeMap<String, NodeSpec>,
    #[serde(default)]
    nodes: BTreeMap<String, Option<NodeSpec>>,
    #[serde(default)]
    links: Vec<LinkSpec>,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct NodeSpec {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    binds: Option<Vec<String>>,
    #[serde(default)]
    exec: Option<Vec<String>>,
}

/// A link in the brief form (`endpoints: ["a:eth1", "b:eth1"]`) or the extended form
/// (`type: veth`, `endpoints: [{node: a, interface: eth1, mac: …}, …]`).
#[derive(Debug, Deserialize)]
struct LinkSpec {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    endpoints: Vec<EndpointSpec>,
    #[serde(default)]
    mtu: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EndpointSpec {
    Brief(String),
    Extended {
        node: String,
        interface: String,
        #[serde(default)]
        mac: Option<String>,
    },
}

impl EndpointSpec {
    fn parts(&self) -> Option<(&str, &str, Option<&str>)> {
        match self {
            EndpointSpec::Brief(s) => s.split_once(':').map(|(n, i)| (n, i, None)),
            EndpointSpec::Extended {
                node,
                interface,
                mac,
            } => Some((node, interface, mac.as_deref())),
        }
    }
}

/// A resolved lab.
#[derive(Debug, Clone)]
pub struct Topology {
    pub lab: String,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// The network namespace, named as containerlab names the container (`clab-LAB-NODE`).
    pub netns: String,
    /// The node's image as the topology gives it (own, its kind's or the defaults'); empty
    /// when none is given.
    pub image: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Runs `roamer run` on this startup configuration (the bind's source, resolved), then its
    /// `exec` lines as roamer CLI commands.
    Roamer { config: PathBuf, exec: Vec<String> },
    /// A plain namespace that runs these lines with `sh -c`.
    Linux { exec: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub node: String,
    pub iface: String,
    /// The MAC the topology gives this end (extended link form), else the kernel's.
    pub mac: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
    pub mtu: u32,
    /// Temporary names of the two veth ends in the root namespace (unique per lab and link).
    pub tmp_a: String,
    pub tmp_b: String,
}

impl Topology {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// Reads and resolves a topology file.
pub fn load(path: &Path) -> Result<Topology, RoamerError> {
    let text = std::fs::read_to_string(path).map_err(|source| RoamerError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Resolves a topology text; `path` names the file (binds are relative to its directory).
pub fn parse(text: &str, path: &Path) -> Result<Topology, RoamerError> {
    let bad = |message: String| RoamerError::LabTopology {
        path: path.to_path_buf(),
        message,
    };
    let spec: FileSpec = serde_norway::from_str(text).map_err(|e| bad(e.to_string()))?;
    if spec.name.is_empty() || !spec.name.chars().all(name_char) {
        return Err(bad(format!(
            "lab name {:?}: use letters, digits, '-', '_' and '.'",
            spec.name
        )));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Binds are resolved to absolute paths: the lab state, the daemons' command lines and a
    // later `copy running-config startup-config` must not depend on where `roamer lab` ran.
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let prefix = match spec.prefix.as_deref() {
        None => format!("clab-{}-", spec.name),
        Some("") => String::new(),
        Some("__lab-name") => format!("{}-", spec.name),
        Some(p) => format!("{p}-{}-", spec.name),
    };
    let topo = spec.topology;
    let mut nodes = Vec::new();
    for (name, node) in &topo.nodes {
        if name.is_empty() || !name.chars().all(name_char) {
            return Err(bad(format!(
                "node name {name:?}: use letters, digits, '-', '_' and '.'"
            )));
        }
        let node = node.clone().unwrap_or_default();
        let kind = node
            .kind
            .clone()
            .or_else(|| topo.defaults.kind.clone())
            .unwrap_or_else(|| "linux".to_string());
        let inherited = topo.kinds.get(&kind);
        let pick = |f: fn(&NodeSpec) -> Option<&Vec<String>>| -> Vec<String> {
            f(&node)
                .or_else(|| inherited.and_then(f))
                .or_else(|| f(&topo.defaults))
                .cloned()
                .unwrap_or_default()
        };
        let image = node
            .image
            .clone()
            .or_else(|| inherited.and_then(|k| k.image.clone()))
            .or_else(|| topo.defaults.image.clone())
            .unwrap_or_default();
        let binds = pick(|n| n.binds.as_ref());
        let exec = pick(|n| n.exec.as_ref());
        let role = if image.contains("roamer") {
            let source = binds
                .iter()
                .find_map(|b| {
                    let mut parts = b.split(':');
                    let src = parts.next()?;
                    (parts.next()? == STARTUP_TARGET).then_some(src)
                })
                .ok_or_else(|| {
                    bad(format!(
                        "node {name}: a roamer node needs a bind to {STARTUP_TARGET} (its startup configuration)"
                    ))
                })?;
            Role::Roamer {
                config: dir.join(source),
                exec,
            }
        } else if kind == "linux" {
            Role::Linux { exec }
        } else {
            return Err(bad(format!(
                "node {name}: kind {kind:?} is not supported (only linux nodes run without containerlab)"
            )));
        };
        nodes.push(Node {
            name: name.clone(),
            netns: format!("{prefix}{name}"),
            image,
            role,
        });
    }
    let mut links = Vec::new();
    let mut used = BTreeSet::new();
    for (i, link) in topo.links.iter().enumerate() {
        if link.kind.as_deref().is_some_and(|k| k != "veth") {
            return Err(bad(format!(
                "link {}: type {:?} is not supported (only veth links)",
                i + 1,
                link.kind.as_deref().unwrap_or_default()
            )));
        }
        let [a, b] = link.endpoints.as_slice() else {
            return Err(bad(format!(
                "link {}: needs exactly two endpoints, has {}",
                i + 1,
                link.endpoints.len()
            )));
        };
        let mut ends = Vec::new();
        let mut names = Vec::new();
        for spec in [a, b] {
            let (node, iface, mac) = spec.parts().ok_or_else(|| {
                bad(format!(
                    "link {}: endpoint {spec:?}: expected NODE:IFACE",
                    i + 1
                ))
            })?;
            let e = format!("{node}:{iface}");
            if !topo.nodes.contains_key(node) {
                return Err(bad(format!("link endpoint {e:?}: no node {node:?}")));
            }
            if iface.is_empty() || iface.len() > IFNAMSIZ || iface.contains(['/', ' ']) {
                return Err(bad(format!(
                    "link endpoint {e:?}: interface name must be 1 to {IFNAMSIZ} characters"
                )));
            }
            if iface == "eth0" {
                return Err(bad(format!(
                    "link endpoint {e:?}: eth0 is the management interface"
                )));
            }
            if !used.insert(e.clone()) {
                return Err(bad(format!("link endpoint {e:?} is used twice")));
            }
            ends.push(Endpoint {
                node: node.to_string(),
                iface: iface.to_string(),
                mac: mac.map(str::to_string),
            });
            names.push(e);
        }
        let tag = format!(
            "{:08x}",
            fnv(&format!("{}\0{}", spec.name, names.join("\0"))) as u32
        );
        let b_end = ends.pop();
        let a_end = ends.pop();
        if let (Some(a), Some(b)) = (a_end, b_end) {
            links.push(Link {
                a,
                b,
                mtu: link.mtu.unwrap_or(DEFAULT_MTU),
                tmp_a: format!("rl{tag}a"),
                tmp_b: format!("rl{tag}b"),
            });
        }
    }
    Ok(Topology {
        lab: spec.name,
        nodes,
        links,
    })
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// FNV-1a: a hash that is the same in every build (temporary veth names).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LAB: &str = r#"
name: mob
topology:
  kinds:
    linux:
      image: alpine:3
  nodes:
    sw:
      kind: linux
      image: ghcr.io/example/roamer:latest
      binds:
        - configs/sw.cfg:/etc/roamer/startup-config
    h1:
      kind: linux
      exec:
        - ip addr add 10.10.0.11/24 dev eth1
  links:
    - endpoints: ["sw:eth1", "h1:eth1"]
"#;

    #[test]
    fn resolves_nodes_and_links_as_containerlab_names_them() {
        let t = parse(LAB, Path::new("/labs/mob.clab.yml")).unwrap();
        assert_eq!(t.lab, "mob");
        let sw = t.node("sw").unwrap();
        assert_eq!(sw.netns, "clab-mob-sw");
        assert_eq!(
            sw.role,
            Role::Roamer {
                config: PathBuf::from("/labs/configs/sw.cfg"),
                exec: Vec::new(),
            }
        );
        let h1 = t.node("h1").unwrap();
        assert_eq!(
            h1.role,
            Role::Linux {
                exec: vec!["ip addr add 10.10.0.11/24 dev eth1".into()]
            }
        );
        let l = &t.links[0];
        assert_eq!((l.a.node.as_str(), l.a.iface.as_str()), ("sw", "eth1"));
        assert_eq!((l.b.node.as_str(), l.b.iface.as_str()), ("h1", "eth1"));
        assert!(l.tmp_a.len() <= IFNAMSIZ && l.tmp_a != l.tmp_b);
    }

    #[test]
    fn reads_the_extended_link_form_with_macs_and_mtu() {
        let text = "name: x\nprefix: \"\"\ntopology:\n  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n  links:\n    - type: veth\n      mtu: 1500\n      endpoints:\n        - {node: a, interface: eth1, mac: \"02:00:00:00:00:0a\"}\n        - {node: b, interface: eth2}\n    - endpoints: [\"a:eth2\", \"b:eth1\"]\n";
        let t = parse(text, Path::new("x.yml")).unwrap();
        assert_eq!(t.node("a").unwrap().netns, "a");
        let named = parse(&text.replace("\"\"", "__lab-name"), Path::new("x.yml")).unwrap();
        assert_eq!(named.node("a").unwrap().netns, "x-a");
        let l = &t.links[0];
        assert_eq!(l.mtu, 1500);
        assert_eq!(l.a.mac.as_deref(), Some("02:00:00:00:00:0a"));
        assert_eq!(
            (l.b.node.as_str(), l.b.iface.as_str(), l.b.mac.as_deref()),
            ("b", "eth2", None)
        );
        assert_eq!(t.links[1].mtu, DEFAULT_MTU);
        assert_ne!(t.links[0].tmp_a, t.links[1].tmp_a);
    }

    #[test]
    fn rejects_what_cannot_run() {
        let p = Path::new("x.yml");
        for (text, needle) in [
            (
                "name: a\ntopology:\n  nodes:\n    n: {kind: linux}\n  links:\n    - endpoints: [\"n:eth1\", \"m:eth1\"]\n",
                "no node",
            ),
            (
                "name: a\ntopology:\n  nodes:\n    n: {kind: linux}\n    m: {kind: linux}\n  links:\n    - endpoints: [\"n:eth0\", \"m:eth1\"]\n",
                "management",
            ),
            (
                "name: a\ntopology:\n  nodes:\n    n: {kind: linux, image: roamer}\n",
                "startup configuration",
            ),
            (
                "name: a\ntopology:\n  nodes:\n    n: {kind: nokia_srlinux}\n",
                "not supported",
            ),
            ("name: a\ntopology: [\n", "x.yml"),
        ] {
            let e = parse(text, p).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn a_relative_topology_path_gives_absolute_startup_paths() {
        let text = "name: rel\ntopology:\n  nodes:\n    sw:\n      image: roamer:latest\n      binds:\n        - configs/sw.cfg:/etc/roamer/startup-config\n";
        let t = parse(text, Path::new("labs/x.clab.yml")).unwrap();
        let Role::Roamer { config, .. } = &t.nodes[0].role else {
            panic!("not a roamer node");
        };
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(config, &cwd.join("labs/configs/sw.cfg"));
        let bare = parse(text, Path::new("x.clab.yml")).unwrap();
        let Role::Roamer { config, .. } = &bare.nodes[0].role else {
            panic!("not a roamer node");
        };
        assert_eq!(config, &cwd.join("configs/sw.cfg"));
    }
}

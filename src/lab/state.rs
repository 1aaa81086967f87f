//! What `roamer lab up` created, kept in `$ROAMER_LAB_DIR/LAB/state.json` (default
//! `/run/roamer/lab/LAB/`) next to the daemons' sockets and logs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RoamerError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub lab: String,
    pub topology: PathBuf,
    pub nodes: Vec<NodeState>,
    pub links: Vec<LinkState>,
    pub daemons: Vec<DaemonState>,
    /// How the nodes run: network namespaces with daemons started by roamer (`netns`, the
    /// default, also for state files written before there was a choice) or containers.
    #[serde(default)]
    pub runtime: Runtime,
    /// The containers of a `docker` lab, recorded as soon as each is created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerState>,
}

/// `roamer lab up --runtime`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// One network namespace per node, roamer daemons started by `roamer lab` (no Docker).
    #[default]
    Netns,
    /// One Docker container per node (roamer:latest, roamer-host:latest), as containerlab runs
    /// them; needs a running Docker engine and the images loaded.
    Docker,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub node: String,
    /// `clab-LAB-NODE`, as containerlab names it.
    pub name: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    pub name: String,
    pub netns: String,
    /// The control socket of a roamer node.
    pub socket: Option<PathBuf>,
    /// The startup configuration of a roamer node (an absolute path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkState {
    pub a: String,
    pub b: String,
    pub tmp_a: String,
    pub tmp_b: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonState {
    pub node: String,
    pub pid: u32,
    pub socket: PathBuf,
}

/// The directory holding every lab's state.
pub fn base_dir() -> PathBuf {
    std::env::var_os("ROAMER_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/roamer/lab"))
}

pub fn lab_dir(lab: &str) -> PathBuf {
    base_dir().join(lab)
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

fn err(dir: &Path, e: impl std::fmt::Display) -> RoamerError {
    RoamerError::Lab(format!("{}: {e}", path(dir).display()))
}

impl State {
    /// Writes the state (temporary file, then rename: a reader never sees half of it).
    pub fn save(&self, dir: &Path) -> Result<(), RoamerError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(dir, e))?;
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, json).map_err(|e| err(dir, e))?;
        std::fs::rename(&tmp, path(dir)).map_err(|e| err(dir, e))
    }

    /// The state of a lab that is up, `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<State>, RoamerError> {
        match std::fs::read(path(dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| err(dir, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(dir, e)),
        }
    }
}

/// Every lab that is up, with its directory.
pub fn labs_up() -> Vec<(State, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(base_dir()) else {
        return Vec::new();
    };
    let mut labs: Vec<(State, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            State::load(&dir).ok().flatten().map(|s| (s, dir))
        })
        .collect();
    labs.sort_by(|a, b| a.0.lab.cmp(&b.0.lab));
    labs
}

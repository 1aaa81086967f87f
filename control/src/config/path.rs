//! Paths into the configuration model, shared by both syntaxes to point at the offending line.
//!
//! A path names model elements by identity (interface name, HSRP group, EID prefix), never by
//! position, so the TOML reader and the CLI reader resolve it the same way.

use std::collections::BTreeMap;
use std::fmt;

use toml::de::{DeTable, DeValue};

use super::line_of;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    /// A table key (TOML) / a mode or keyword (CLI).
    Key(String),
    /// The element of an array whose `field` equals `value`.
    Elem { field: &'static str, value: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigPath(pub Vec<Seg>);

impl ConfigPath {
    pub fn root() -> Self {
        ConfigPath(Vec::new())
    }

    pub fn key(mut self, k: impl Into<String>) -> Self {
        self.0.push(Seg::Key(k.into()));
        self
    }

    pub fn elem(mut self, field: &'static str, value: impl fmt::Display) -> Self {
        self.0.push(Seg::Elem {
            field,
            value: value.to_string(),
        });
        self
    }

    /// The path without its last segment.
    pub fn parent(&self) -> Option<ConfigPath> {
        let mut p = self.clone();
        p.0.pop().map(|_| p)
    }

    // Builders for the model's elements, used by parsers and validation alike.

    pub fn hostname() -> Self {
        Self::root().key("hostname")
    }

    pub fn platform(field: &str) -> Self {
        Self::root().key("platform").key(field)
    }

    pub fn linecard(slot: u8) -> Self {
        Self::root()
            .key("platform")
            .key("linecard")
            .elem("slot", slot)
    }

    pub fn feature(name: &str) -> Self {
        Self::root().key("features").key(name)
    }

    pub fn vlan(id: u16) -> Self {
        Self::root().key("vlan").elem("id", id)
    }

    pub fn interface(name: impl fmt::Display) -> Self {
        Self::root().key("interface").key(name.to_string())
    }

    pub fn hsrp(iface: impl fmt::Display, group: u16) -> Self {
        Self::interface(iface).key("hsrp").elem("group", group)
    }

    pub fn static_mac(mac: impl fmt::Display, vlan: impl fmt::Display) -> Self {
        Self::root()
            .key("static-mac")
            .elem("mac", mac)
            .key("vlan")
            .key(vlan.to_string())
    }

    pub fn route(prefix: impl fmt::Display) -> Self {
        Self::root().key("route").elem("prefix", prefix)
    }

    pub fn lisp_af(v6: bool) -> Self {
        Self::root()
            .key("lisp")
            .key(if v6 { "ipv6" } else { "ipv4" })
    }

    pub fn site(name: &str) -> Self {
        Self::root().key("lisp").key("site").key(name)
    }

    pub fn dynamic_eid(name: &str) -> Self {
        Self::root().key("lisp").key("dynamic-eid").key(name)
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|s| match s {
                Seg::Key(k) => k.clone(),
                Seg::Elem { field, value } => format!("[{field}={value}]"),
            })
            .collect();
        f.write_str(&parts.join("."))
    }
}

/// Where the elements of a parsed configuration were written.
#[derive(Debug, Clone)]
pub enum SourceMap {
    /// TOML text: paths are resolved against the document's spans on demand.
    Toml(String),
    /// CLI text: the line that created or last set each element.
    Cli(BTreeMap<ConfigPath, usize>),
}

impl SourceMap {
    /// The line of the element, or of its closest written ancestor.
    pub fn line(&self, path: &ConfigPath) -> Option<usize> {
        match self {
            SourceMap::Toml(text) => toml_line(text, path),
            SourceMap::Cli(lines) => {
                let mut p = Some(path.clone());
                while let Some(cur) = p {
                    if let Some(l) = lines.get(&cur) {
                        return Some(*l);
                    }
                    p = cur.parent();
                }
                None
            }
        }
    }
}

/// The line of the deepest element of `path` that the document has.
fn toml_line(text: &str, path: &ConfigPath) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut best: Option<usize> = None;
    let mut current: Option<&toml::Spanned<DeValue<'_>>> = None;
    for seg in &path.0 {
        let found =
            match seg {
                Seg::Key(k) => {
                    let table = match current {
                        None => Some(doc.get_ref()),
                        Some(v) => v.get_ref().as_table(),
                    };
                    table.and_then(|t| find_key(t, k))
                }
                Seg::Elem { field, value } => current
                    .and_then(|v| v.get_ref().as_array())
                    .and_then(|array| {
                        array.iter().find_map(|item| {
                            let (key_start, v) = find_key(item.get_ref().as_table()?, field)?;
                            (scalar_text(v.get_ref()).as_deref() == Some(value.as_str()))
                                .then_some((key_start, item))
                        })
                    }),
            };
        match found {
            Some((start, value)) => {
                best = Some(line_of(text, start));
                current = Some(value);
            }
            None => break,
        }
    }
    best
}

fn find_key<'a, 'i>(
    table: &'a DeTable<'i>,
    key: &str,
) -> Option<(usize, &'a toml::Spanned<DeValue<'i>>)> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(k, v)| (k.span().start, v))
}

fn scalar_text(v: &DeValue<'_>) -> Option<String> {
    match v {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_paths_resolve_to_lines() {
        let text = "hostname = \"a\"\n[platform]\nprofile = \"n7k\"\n[[platform.linecard]]\nslot = 1\nmodel = \"X\"\n[[platform.linecard]]\nslot = 2\nmodel = \"Y\"\nepld = \"1.2\"\n[interface.Vlan10]\nproxy-arp = true\n[[interface.Vlan10.hsrp]]\ngroup = 100\nip = \"10.3.3.1\"\n";
        let map = SourceMap::Toml(text.to_string());
        assert_eq!(map.line(&ConfigPath::hostname()), Some(1));
        assert_eq!(map.line(&ConfigPath::linecard(2).key("epld")), Some(10));
        assert_eq!(map.line(&ConfigPath::linecard(2)), Some(8));
        assert_eq!(
            map.line(&ConfigPath::hsrp("Vlan10", 100).key("ip")),
            Some(15)
        );
        assert_eq!(
            map.line(&ConfigPath::interface("Vlan10").key("proxy-arp")),
            Some(12)
        );
        // An unknown element falls back to its closest written ancestor.
        assert_eq!(map.line(&ConfigPath::hsrp("Vlan10", 7)), Some(13));
    }
}

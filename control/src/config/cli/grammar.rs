//! A command grammar as a token trie, built from patterns such as
//! `ip lisp database-mapping <eid:prefix> <rloc:ip> priority <pri:0-255> weight <wgt:0-100>`.
//!
//! Pattern syntax: `word` is a keyword (any unambiguous prefix is accepted, any case);
//! `<name:type>` a parameter; `{a|b|c}=name` alternative keywords recorded under `name`;
//! `[ ... ]` an optional group. Parameter types: `word`, `line` (rest of the line), `ip`,
//! `ipv4`, `ipv6`, `prefix`, `ifaddr` (address/len), `mac`, `ifname` (one or two tokens),
//! `vlans` (list), `MIN-MAX` (integer range).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Word,
    Line,
    Ip,
    Ipv4,
    Ipv6,
    Prefix,
    IfAddr,
    Mac,
    IfName,
    Vlans,
    Range(u64, u64),
}

impl ParamType {
    fn parse(spec: &str) -> Self {
        match spec {
            "word" => ParamType::Word,
            "line" => ParamType::Line,
            "ip" => ParamType::Ip,
            "ipv4" => ParamType::Ipv4,
            "ipv6" => ParamType::Ipv6,
            "prefix" => ParamType::Prefix,
            "ifaddr" => ParamType::IfAddr,
            "mac" => ParamType::Mac,
            "ifname" => ParamType::IfName,
            "vlans" => ParamType::Vlans,
            range => {
                let (a, b) = range
                    .split_once('-')
                    .unwrap_or_else(|| panic!("bad parameter type {range}"));
                ParamType::Range(
                    a.parse().unwrap_or_else(|_| panic!("bad range {range}")),
                    b.parse().unwrap_or_else(|_| panic!("bad range {range}")),
                )
            }
        }
    }

    /// How the help lists this parameter.
    pub fn describe(&self) -> String {
        match self {
            ParamType::Word => "WORD".into(),
            ParamType::Line => "LINE".into(),
            ParamType::Ip => "A.B.C.D|X:X::X".into(),
            ParamType::Ipv4 => "A.B.C.D".into(),
            ParamType::Ipv6 => "X:X::X".into(),
            ParamType::Prefix => "A.B.C.D/LEN|X:X::X/LEN".into(),
            ParamType::IfAddr => "A.B.C.D/LEN".into(),
            ParamType::Mac => "EEEE.EEEE.EEEE".into(),
            ParamType::IfName => "Ethernet<slot>/<port>|Vlan<id>".into(),
            ParamType::Vlans => "VLAN-LIST".into(),
            ParamType::Range(a, b) => format!("<{a}-{b}>"),
        }
    }

    /// Cheap syntactic acceptance; semantic checks happen in the command action.
    fn accepts(&self, token: &str) -> bool {
        match self {
            ParamType::Word | ParamType::Line => !token.is_empty(),
            ParamType::Ip => token.parse::<IpAddr>().is_ok(),
            ParamType::Ipv4 => token.parse::<Ipv4Addr>().is_ok(),
            ParamType::Ipv6 => token.parse::<Ipv6Addr>().is_ok(),
            ParamType::Prefix | ParamType::IfAddr => token
                .split_once('/')
                .is_some_and(|(a, l)| a.parse::<IpAddr>().is_ok() && l.parse::<u8>().is_ok()),
            ParamType::Mac => token.parse::<roamer_hal::Mac>().is_ok(),
            ParamType::IfName => token.parse::<super::super::model::InterfaceName>().is_ok(),
            ParamType::Vlans => token.parse::<super::super::model::VlanList>().is_ok(),
            ParamType::Range(a, b) => token.parse::<u64>().is_ok_and(|n| (*a..=*b).contains(&n)),
        }
    }
}

#[derive(Debug, Clone)]
enum Edge {
    Keyword {
        word: String,
        record: Option<String>,
    },
    Param {
        name: String,
        ty: ParamType,
    },
}

#[derive(Debug, Default, Clone)]
struct Node {
    edges: Vec<(Edge, usize)>,
    /// The command (index into the table) that may end here.
    terminal: Option<usize>,
}

/// The arguments of a matched command, by parameter name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Args(BTreeMap<String, String>);

impl Args {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// Why a line did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchError {
    /// No command continues with this token (position of the token in the line's tokens).
    Invalid {
        at: usize,
        expected: Vec<String>,
    },
    Ambiguous {
        at: usize,
        candidates: Vec<String>,
    },
    Incomplete,
}

/// A successful match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub command: usize,
    pub args: Args,
}

/// One help line for `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpItem {
    pub token: String,
    pub help: String,
}

/// The trie of one mode's commands.
#[derive(Debug, Clone)]
pub struct Grammar {
    nodes: Vec<Node>,
    help: BTreeMap<String, String>,
}

impl Default for Grammar {
    fn default() -> Self {
        Grammar {
            nodes: vec![Node::default()],
            help: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum Item {
    Edge(Edge),
    Optional(Vec<Item>),
}

fn parse_pattern(pattern: &str) -> Vec<Item> {
    fn parse_seq<'a>(tokens: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>) -> Vec<Item> {
        let mut out = Vec::new();
        while let Some(tok) = tokens.next() {
            match tok {
                "[" => out.push(Item::Optional(parse_seq(tokens))),
                "]" => return out,
                t if t.starts_with('<') => {
                    let inner = t.trim_start_matches('<').trim_end_matches('>');
                    let (name, ty) = inner
                        .split_once(':')
                        .unwrap_or_else(|| panic!("bad parameter {t}"));
                    out.push(Item::Edge(Edge::Param {
                        name: name.to_string(),
                        ty: ParamType::parse(ty),
                    }));
                }
                t if t.starts_with('{') => {
                    let (alts, name) = t
                        .trim_start_matches('{')
                        .split_once("}=")
                        .unwrap_or_else(|| panic!("alternatives need a name: {t}"));
                    let group: Vec<Item> = alts
                        .split('|')
                        .map(|w| {
                            Item::Edge(Edge::Keyword {
                                word: w.to_string(),
                                record: Some(name.to_string()),
                            })
                        })
                        .collect();
                    // Alternatives are encoded as a one-element optional of a marker: expand later.
                    out.push(Item::Optional(vec![Item::Optional(group)]));
                }
                word => out.push(Item::Edge(Edge::Keyword {
                    word: word.to_string(),
                    record: None,
                })),
            }
        }
        out
    }
    let spaced = pattern.replace('[', " [ ").replace(']', " ] ");
    let mut tokens = spaced.split_whitespace().peekable();
    parse_seq(&mut tokens)
}

/// Expands optional groups and alternatives into plain edge sequences.
fn expand(items: &[Item]) -> Vec<Vec<Edge>> {
    let mut seqs: Vec<Vec<Edge>> = vec![Vec::new()];
    for item in items {
        match item {
            Item::Edge(e) => seqs.iter_mut().for_each(|s| s.push(e.clone())),
            Item::Optional(inner) => {
                // An alternatives group is Optional([Optional(alts)]): exactly one alternative.
                if let [Item::Optional(alts)] = inner.as_slice() {
                    let mut next = Vec::new();
                    for s in &seqs {
                        for alt in alts {
                            if let Item::Edge(e) = alt {
                                let mut n = s.clone();
                                n.push(e.clone());
                                next.push(n);
                            }
                        }
                    }
                    seqs = next;
                } else {
                    let tails = expand(inner);
                    let mut next = seqs.clone();
                    for s in &seqs {
                        for t in &tails {
                            let mut n = s.clone();
                            n.extend(t.iter().cloned());
                            next.push(n);
                        }
                    }
                    seqs = next;
                }
            }
        }
    }
    seqs
}

fn keyword_matches(word: &str, token: &str) -> bool {
    word.len() >= token.len() && word[..token.len()].eq_ignore_ascii_case(token)
}

/// An edge of a node and the node it leads to.
type EdgeTo<'g> = &'g (Edge, usize);

/// The keyword edges of `edges` that `tok` abbreviates (or spells), and the one it spells
/// exactly (any case), if any.
fn keyword_edges<'g>(
    edges: &'g [(Edge, usize)],
    tok: &str,
) -> (Vec<EdgeTo<'g>>, Option<EdgeTo<'g>>) {
    let kw: Vec<EdgeTo<'g>> = edges
        .iter()
        .filter(|(e, _)| matches!(e, Edge::Keyword { word, .. } if keyword_matches(word, tok)))
        .collect();
    let exact = kw
        .iter()
        .find(|(e, _)| matches!(e, Edge::Keyword { word, .. } if word.eq_ignore_ascii_case(tok)))
        .copied();
    (kw, exact)
}

impl Grammar {
    /// Adds a pattern ending in command `command`; `help` documents its first keyword.
    pub fn add(&mut self, pattern: &str, command: usize, help: &str) {
        let items = parse_pattern(pattern);
        if let Some(Item::Edge(Edge::Keyword { word, .. })) = items.first() {
            self.help
                .entry(word.clone())
                .or_insert_with(|| help.to_string());
        }
        for seq in expand(&items) {
            let mut node = 0;
            for edge in seq {
                let existing = self.nodes[node]
                    .edges
                    .iter_mut()
                    .find(|(e, _)| same_edge(e, &edge));
                node = match existing {
                    Some((e, n)) => {
                        // One keyword, one edge: an alternative's record also applies to the
                        // plain path through the same word (harmless for commands not reading it).
                        if let (
                            Edge::Keyword {
                                record: r @ None, ..
                            },
                            Edge::Keyword {
                                record: Some(name), ..
                            },
                        ) = (e, &edge)
                        {
                            *r = Some(name.clone());
                        }
                        *n
                    }
                    None => {
                        self.nodes.push(Node::default());
                        let n = self.nodes.len() - 1;
                        self.nodes[node].edges.push((edge, n));
                        n
                    }
                };
            }
            if self.nodes[node].terminal.is_none() {
                self.nodes[node].terminal = Some(command);
            }
        }
    }

    /// Matches a tokenised line. With `allow_prefix` (a `no` form), the line may stop early
    /// where every command reachable from there is the same one.
    pub fn matches(&self, tokens: &[&str], allow_prefix: bool) -> Result<Matched, MatchError> {
        let mut node = 0;
        let mut args = Args::default();
        let mut i = 0;
        while i < tokens.len() {
            let tok = tokens[i];
            let edges = &self.nodes[node].edges;
            // Keywords first: an exact match wins, else a unique prefix.
            let (kw, exact) = keyword_edges(edges, tok);
            let chosen = match (exact, kw.len()) {
                (Some(e), _) => Some(e),
                (None, 1) => Some(kw[0]),
                (None, 0) => None,
                // Spellings of one thing (`startup-config`, `start-up-config`) are not ambiguous.
                (None, _) if self.same_commands(&kw) => Some(kw[0]),
                (None, _) => {
                    return Err(MatchError::Ambiguous {
                        at: i,
                        candidates: kw.iter().map(|(e, _)| edge_label(e)).collect(),
                    });
                }
            };
            if let Some((Edge::Keyword { word, record }, next)) = chosen {
                if let Some(name) = record {
                    args.0.insert(name.clone(), word.clone());
                }
                node = *next;
                i += 1;
                continue;
            }
            // Then parameters, in the order they were declared.
            let mut advanced = false;
            for (edge, next) in edges {
                let Edge::Param { name, ty } = edge else {
                    continue;
                };
                match ty {
                    ParamType::Line => {
                        args.0.insert(name.clone(), tokens[i..].join(" "));
                        i = tokens.len();
                    }
                    ParamType::IfName
                        if tokens.get(i + 1).is_some()
                            && !ty.accepts(tok)
                            && ty.accepts(&format!("{tok}{}", tokens[i + 1])) =>
                    {
                        args.0
                            .insert(name.clone(), format!("{tok}{}", tokens[i + 1]));
                        i += 2;
                    }
                    _ if ty.accepts(tok) => {
                        args.0.insert(name.clone(), tok.to_string());
                        i += 1;
                    }
                    _ => continue,
                }
                node = *next;
                advanced = true;
                break;
            }
            if !advanced {
                return Err(MatchError::Invalid {
                    at: i,
                    expected: edges.iter().map(|(e, _)| edge_label(e)).collect(),
                });
            }
        }
        if let Some(command) = self.nodes[node].terminal {
            return Ok(Matched { command, args });
        }
        if allow_prefix {
            let mut reachable = Vec::new();
            self.terminals_below(node, &mut reachable);
            reachable.sort_unstable();
            reachable.dedup();
            if let [command] = reachable.as_slice() {
                return Ok(Matched {
                    command: *command,
                    args,
                });
            }
        }
        Err(MatchError::Incomplete)
    }

    /// True when every candidate edge leads to the same set of commands.
    fn same_commands(&self, candidates: &[&(Edge, usize)]) -> bool {
        let reach = |node: usize| {
            let mut v = Vec::new();
            self.terminals_below(node, &mut v);
            v.sort_unstable();
            v.dedup();
            v
        };
        let first = reach(candidates[0].1);
        candidates[1..].iter().all(|(_, n)| reach(*n) == first)
    }

    fn terminals_below(&self, node: usize, out: &mut Vec<usize>) {
        if let Some(c) = self.nodes[node].terminal {
            out.push(c);
        }
        for (_, n) in &self.nodes[node].edges {
            self.terminals_below(*n, out);
        }
    }

    /// What may follow `tokens` (the last one possibly partial), for `?`.
    pub fn help(&self, tokens: &[&str], partial: &str) -> Vec<HelpItem> {
        let Some(node) = self.walk(tokens) else {
            return Vec::new();
        };
        let mut items: Vec<HelpItem> = self.nodes[node]
            .edges
            .iter()
            .filter(|(e, _)| match e {
                Edge::Keyword { word, .. } => keyword_matches(word, partial),
                Edge::Param { .. } => partial.is_empty(),
            })
            .map(|(e, _)| HelpItem {
                token: edge_label(e),
                help: match e {
                    Edge::Keyword { word, .. } if node == 0 => {
                        self.help.get(word).cloned().unwrap_or_default()
                    }
                    Edge::Keyword { .. } => String::new(),
                    Edge::Param { name, ty } => format!("{} ({})", name, ty.describe()),
                },
            })
            .collect();
        if partial.is_empty() && self.nodes[node].terminal.is_some() {
            items.push(HelpItem {
                token: "<CR>".into(),
                help: String::new(),
            });
        }
        items
    }

    /// The keywords that complete `partial` after `tokens`.
    pub fn complete(&self, tokens: &[&str], partial: &str) -> Vec<String> {
        let Some(node) = self.walk(tokens) else {
            return Vec::new();
        };
        let mut words: Vec<String> = self.nodes[node]
            .edges
            .iter()
            .filter_map(|(e, _)| match e {
                Edge::Keyword { word, .. } if keyword_matches(word, partial) => Some(word.clone()),
                _ => None,
            })
            .collect();
        words.sort();
        words.dedup();
        words
    }

    fn walk(&self, tokens: &[&str]) -> Option<usize> {
        let mut node = 0;
        let mut i = 0;
        while i < tokens.len() {
            let tok = tokens[i];
            let edges = &self.nodes[node].edges;
            let (kws, exact) = keyword_edges(edges, tok);
            if let Some((_, n)) = exact.or(if kws.len() == 1 { Some(kws[0]) } else { None }) {
                node = *n;
                i += 1;
                continue;
            }
            let mut moved = false;
            for (e, n) in edges {
                if let Edge::Param { ty, .. } = e {
                    if ty.accepts(tok) || *ty == ParamType::Line {
                        node = *n;
                        i += 1;
                        moved = true;
                        break;
                    }
                    if *ty == ParamType::IfName
                        && tokens
                            .get(i + 1)
                            .is_some_and(|next| ty.accepts(&format!("{tok}{next}")))
                    {
                        node = *n;
                        i += 2;
                        moved = true;
                        break;
                    }
                }
            }
            if !moved {
                return None;
            }
        }
        Some(node)
    }
}

fn same_edge(a: &Edge, b: &Edge) -> bool {
    match (a, b) {
        // Keywords are one edge per word, whatever they record.
        (Edge::Keyword { word: x, .. }, Edge::Keyword { word: y, .. }) => x == y,
        (Edge::Param { name: x, ty: tx }, Edge::Param { name: y, ty: ty_ }) => x == y && tx == ty_,
        _ => false,
    }
}

fn edge_label(e: &Edge) -> String {
    match e {
        Edge::Keyword { word, .. } => word.clone(),
        Edge::Param { ty, .. } => ty.describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grammar() -> Grammar {
        let mut g = Grammar::default();
        g.add("ip lisp {itr-etr|itr|etr}=role", 0, "IP configuration");
        g.add("ip lisp database-mapping <eid:prefix> <rloc:ip> priority <pri:0-255> weight <wgt:0-100>", 1, "");
        g.add("ip address <addr:ifaddr> [secondary]", 2, "");
        g.add("interface <name:ifname>", 3, "Configure interfaces");
        g.add("ip proxy-arp", 4, "");
        g.add("description <text:line>", 5, "Describe");
        g.add("lisp mobility <map:word>", 6, "");
        g.add(
            "copy running-config {startup-config|start-up-config}=dst",
            7,
            "",
        );
        g
    }

    fn toks(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    #[test]
    fn keywords_abbreviate_and_exact_wins() {
        let g = grammar();
        let m = g.matches(&toks("ip lisp itr"), false).unwrap();
        assert_eq!((m.command, m.args.get("role")), (0, Some("itr")));
        let m = g.matches(&toks("IP LISP itr-e"), false).unwrap();
        assert_eq!(m.args.get("role"), Some("itr-etr"));
        let m = g
            .matches(
                &toks("ip lisp data 172.16.0.0/16 172.16.1.1 pri 1 w 100"),
                false,
            )
            .unwrap();
        assert_eq!(m.command, 1);
        assert_eq!(m.args.get("rloc"), Some("172.16.1.1"));
        assert!(matches!(
            g.matches(&toks("ip lisp e"), false),
            Ok(Matched { command: 0, .. })
        ));
    }

    #[test]
    fn ambiguity_invalid_and_incomplete() {
        let g = grammar();
        assert!(matches!(
            g.matches(&toks("i"), false),
            Err(MatchError::Ambiguous { at: 0, .. })
        ));
        assert!(matches!(
            g.matches(&toks("ip bogus"), false),
            Err(MatchError::Invalid { at: 1, .. })
        ));
        assert!(matches!(
            g.matches(&toks("ip lisp"), false),
            Err(MatchError::Incomplete)
        ));
        assert!(matches!(
            g.matches(
                &toks("ip lisp database-mapping 1.2.3.0/24 1.1.1.1 priority 300 weight 1"),
                false
            ),
            Err(MatchError::Invalid { at: 6, .. })
        ));
    }

    #[test]
    fn spellings_of_one_command_are_not_ambiguous() {
        let g = grammar();
        let m = g.matches(&toks("copy run start"), false).unwrap();
        assert_eq!(m.command, 7);
        assert_eq!(m.args.get("dst"), Some("startup-config"));
    }

    #[test]
    fn interface_names_may_take_two_tokens() {
        let g = grammar();
        for line in [
            "interface VLAN 10",
            "interface Ethernet 2/0",
            "int e1/1",
            "interface Vlan10",
        ] {
            let m = g.matches(&toks(line), false).unwrap();
            assert_eq!(m.command, 3, "{line}");
        }
        assert_eq!(
            g.matches(&toks("interface VLAN 10"), false)
                .unwrap()
                .args
                .get("name"),
            Some("VLAN10")
        );
    }

    #[test]
    fn optional_groups_lines_and_no_prefixes() {
        let g = grammar();
        assert!(g.matches(&toks("ip address 10.3.3.5/24"), false).is_ok());
        assert!(
            g.matches(&toks("ip address 10.3.3.5/24 secondary"), false)
                .is_ok()
        );
        let m = g
            .matches(&toks("description uplink to core #1"), false)
            .unwrap();
        assert_eq!(m.args.get("text"), Some("uplink to core #1"));
        // `no lisp mobility` without the map name.
        assert!(g.matches(&toks("lisp mobility"), false).is_err());
        assert_eq!(g.matches(&toks("lisp mobility"), true).unwrap().command, 6);
    }

    #[test]
    fn help_and_completion() {
        let g = grammar();
        let items = g.help(&toks("ip lisp"), "");
        let names: Vec<&str> = items.iter().map(|i| i.token.as_str()).collect();
        assert!(names.contains(&"itr-etr") && names.contains(&"database-mapping"));
        assert_eq!(
            g.complete(&toks("ip"), "pro"),
            vec!["proxy-arp".to_string()]
        );
        assert_eq!(g.complete(&[], "int"), vec!["interface".to_string()]);
        let after = g.help(&toks("ip proxy-arp"), "");
        assert_eq!(after[0].token, "<CR>");
    }
}

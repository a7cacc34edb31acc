//! Assembling one mapping: duplicate-key detection and `<<` merge keys.
//!
//! Merge keys are not part of YAML 1.2, but Gitea and Forgejo read workflows
//! with go-yaml v3, which supports them, so workflows in the wild use them.
//! The rules follow go-yaml v3: the mapping's own keys win over merged ones,
//! and among merged mappings the earlier one wins.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::Write as _;

use super::error::YamlErrorKind;
use super::node::{Node, ScalarStyle, YamlValue};
use super::position::{Pos, Span};

/// A problem and where to report it.
pub(crate) type Located = (Pos, YamlErrorKind);

/// The key/value pairs of one mapping.
type Entries = Vec<(Node, Node)>;

/// Longest key text quoted in an error message.
const MAX_KEY_DISPLAY_CHARS: usize = 80;

/// Identity of a key for duplicate detection: positions and styles do not
/// matter, values do (`on` and `'on'` are the same key; `1` and `'1'` not).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyId {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    /// Sequences and mappings used as keys, by a canonical rendering.
    Collection(String),
}

impl KeyId {
    fn of(node: &Node) -> Self {
        match &node.value {
            YamlValue::Null => KeyId::Null,
            YamlValue::Bool(b) => KeyId::Bool(*b),
            YamlValue::Int(i) => KeyId::Int(*i),
            YamlValue::Float(f) => KeyId::Float(float_identity(*f)),
            YamlValue::String(s) => KeyId::Str(s.clone()),
            YamlValue::Sequence(_) | YamlValue::Mapping(_) => {
                let mut text = String::new();
                render_canonical(node, &mut text);
                KeyId::Collection(text)
            }
        }
    }
}

fn float_identity(f: f64) -> u64 {
    // 0.0 and -0.0 compare equal, so they are the same key.
    if f == 0.0 {
        0
    } else {
        f.to_bits()
    }
}

/// Renders a value without positions, in a flow-like syntax that is
/// unambiguous enough to compare keys and readable enough for messages.
fn render_canonical(node: &Node, out: &mut String) {
    match &node.value {
        YamlValue::Null => out.push_str("null"),
        YamlValue::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        YamlValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        YamlValue::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        YamlValue::String(s) => {
            let _ = write!(out, "{s:?}");
        }
        YamlValue::Sequence(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_canonical(item, out);
            }
            out.push(']');
        }
        YamlValue::Mapping(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_canonical(key, out);
                out.push_str(": ");
                render_canonical(value, out);
            }
            out.push('}');
        }
    }
}

/// How a key is shown in an error message.
fn display_key(key: &Node) -> String {
    let text = match key.as_str() {
        Some(s) => s.to_owned(),
        None => {
            let mut text = String::new();
            render_canonical(key, &mut text);
            text
        }
    };
    if text.chars().count() <= MAX_KEY_DISPLAY_CHARS {
        text
    } else {
        let mut short: String = text.chars().take(MAX_KEY_DISPLAY_CHARS).collect();
        short.push('…');
        short
    }
}

/// `<<` written as a plain scalar. A quoted `"<<"` is an ordinary key.
fn is_merge_key(key: &Node) -> bool {
    key.style == Some(ScalarStyle::Plain) && key.as_str() == Some("<<")
}

enum Item {
    Entry(Node, Node),
    /// The entries of the mappings named by one `<<` key, in priority order.
    Merge(Vec<Entries>),
}

/// Collects the entries of a mapping as the parser produces them.
#[derive(Default)]
pub(crate) struct MappingBuilder {
    items: Vec<Item>,
    /// Where each of the mapping's own keys was first written.
    own_keys: HashMap<KeyId, Pos>,
    merge_key_pos: Option<Pos>,
    /// A key whose value has not been parsed yet.
    pending_key: Option<Node>,
}

impl MappingBuilder {
    /// Feeds the next complete node: alternately a key and its value.
    ///
    /// On error, returns the position to report and the problem.
    pub(crate) fn push(&mut self, node: Node) -> Result<(), Located> {
        match self.pending_key.take() {
            None => {
                self.pending_key = Some(node);
                Ok(())
            }
            Some(key) => self.add_entry(key, node),
        }
    }

    fn add_entry(&mut self, key: Node, value: Node) -> Result<(), Located> {
        if is_merge_key(&key) {
            if let Some(first) = self.merge_key_pos {
                return Err((key.span.start, duplicate(&key, first)));
            }
            self.merge_key_pos = Some(key.span.start);
            let sources = merge_sources(value)?;
            self.items.push(Item::Merge(sources));
            return Ok(());
        }
        let id = KeyId::of(&key);
        if let Some(first) = self.own_keys.get(&id) {
            return Err((key.span.start, duplicate(&key, *first)));
        }
        self.own_keys.insert(id, key.span.start);
        self.items.push(Item::Entry(key, value));
        Ok(())
    }

    /// Returns the final entries, merged keys placed where the `<<` was.
    pub(crate) fn finish(mut self, end: Pos) -> Entries {
        // The parser always pairs keys with values; should a key be left
        // over anyway, keep it with an empty value rather than lose it.
        if let Some(key) = self.pending_key.take() {
            let value = Node::new(YamlValue::Null, Span::at(end), Some(ScalarStyle::Plain));
            self.items.push(Item::Entry(key, value));
        }
        if self.merge_key_pos.is_none() {
            return self
                .items
                .into_iter()
                .filter_map(|item| match item {
                    Item::Entry(key, value) => Some((key, value)),
                    Item::Merge(_) => None,
                })
                .collect();
        }
        let mut taken = self.own_keys;
        let mut entries = Vec::with_capacity(self.items.len());
        for item in self.items {
            match item {
                Item::Entry(key, value) => entries.push((key, value)),
                Item::Merge(sources) => {
                    for (key, value) in sources.into_iter().flatten() {
                        let id = KeyId::of(&key);
                        if let Entry::Vacant(slot) = taken.entry(id) {
                            slot.insert(key.span.start);
                            entries.push((key, value));
                        }
                    }
                }
            }
        }
        entries
    }
}

fn duplicate(key: &Node, first: Pos) -> YamlErrorKind {
    YamlErrorKind::DuplicateKey {
        key: display_key(key),
        first_line: first.line,
        first_col: first.col,
    }
}

/// The mappings a `<<` value stands for: one mapping, or a list of them.
fn merge_sources(value: Node) -> Result<Vec<Entries>, Located> {
    let invalid = |node: &Node| {
        (
            node.span.start,
            YamlErrorKind::InvalidMerge {
                found: node.kind_with_article().to_owned(),
            },
        )
    };
    match value.value {
        YamlValue::Mapping(entries) => Ok(vec![entries]),
        YamlValue::Sequence(items) => items
            .into_iter()
            .map(|item| match item.value {
                YamlValue::Mapping(entries) => Ok(entries),
                _ => Err(invalid(&item)),
            })
            .collect(),
        _ => Err(invalid(&value)),
    }
}

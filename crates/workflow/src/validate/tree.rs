//! Checks GitHub's template reader makes on the whole YAML tree, whatever
//! the keys mean: how deep collections nest, and keys that differ only in
//! case.

use std::borrow::Cow;
use std::collections::hash_map::{Entry, HashMap};

use super::reader::Reader;
use crate::yaml::{Node, YamlValue};

/// Deepest nesting of mappings and sequences GitHub reads in a workflow file.
pub(crate) const WORKFLOW_MAX_DEPTH: usize = 50;
/// Deepest nesting GitHub's runner reads in an `action.yml`.
pub(crate) const ACTION_MAX_DEPTH: usize = 100;

/// Reports collections nested deeper than `max_depth` (the root mapping is
/// level 1) and mapping keys equal to an earlier key of the same mapping
/// when case is ignored: GitHub compares every mapping's keys that way, so
/// `Build` and `build` are one job id defined twice, and `FOO` and `foo`
/// one variable.
pub(crate) fn check_tree(r: &mut Reader, root: &Node, max_depth: usize) {
    let mut too_deep_reported = false;
    walk(r, root, 1, max_depth, &mut too_deep_reported);
}

fn walk(r: &mut Reader, node: &Node, depth: usize, max_depth: usize, too_deep_reported: &mut bool) {
    let is_collection = matches!(node.value, YamlValue::Sequence(_) | YamlValue::Mapping(_));
    if is_collection && depth > max_depth {
        if !*too_deep_reported {
            *too_deep_reported = true;
            r.error(
                node.span.start,
                format!(
                    "mappings and sequences are nested more than {max_depth} levels deep here; \
                     GitHub reads no deeper"
                ),
            );
        }
        return;
    }
    match &node.value {
        YamlValue::Sequence(items) => {
            for item in items {
                walk(r, item, depth + 1, max_depth, too_deep_reported);
            }
        }
        YamlValue::Mapping(entries) => {
            check_keys_ignoring_case(r, entries);
            for (_, value) in entries {
                walk(r, value, depth + 1, max_depth, too_deep_reported);
            }
        }
        _ => {}
    }
}

fn check_keys_ignoring_case(r: &mut Reader, entries: &[(Node, Node)]) {
    if entries.len() < 2 {
        return;
    }
    let names: Vec<Option<Cow<'_, str>>> = entries.iter().map(|(k, _)| key_text(k)).collect();
    let report = |r: &mut Reader, i: usize, first: usize| {
        let (Some(name), Some(first_name)) = (&names[i], &names[first]) else {
            return;
        };
        let first_pos = entries[first].0.span.start;
        r.error(
            entries[i].0.span.start,
            format!(
                "'{name}' is already defined as '{first_name}' at line {}, column {}: keys \
                 that differ only in case are the same key",
                first_pos.line, first_pos.col
            ),
        );
    };
    let same = |a: &Option<Cow<'_, str>>, b: &str| {
        a.as_deref().is_some_and(|a| {
            // Most keys are ASCII, where a length check settles most pairs at once.
            if a.is_ascii() && b.is_ascii() {
                a.eq_ignore_ascii_case(b)
            } else {
                hearth_expr::eq_ignore_case(a, b)
            }
        })
    };
    if entries.len() <= SMALL_MAPPING {
        for (i, name) in names.iter().enumerate() {
            let Some(name) = name else { continue };
            if let Some(first) = names[..i].iter().position(|k| same(k, name)) {
                report(r, i, first);
            }
        }
        return;
    }
    // Large mappings (a workflow's jobs) go through a map of lower-cased ASCII keys;
    // the rare key with other characters is compared with every other one.
    let mut ascii: HashMap<String, usize> = HashMap::with_capacity(names.len());
    let mut others: Vec<usize> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let Some(name) = name else { continue };
        let earlier = if name.is_ascii() {
            match ascii.entry(name.to_ascii_lowercase()) {
                Entry::Occupied(first) => Some(*first.get()),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                    others.iter().copied().find(|&o| same(&names[o], name))
                }
            }
        } else {
            others.push(i);
            names[..i].iter().position(|k| same(k, name))
        };
        if let Some(first) = earlier.filter(|&first| first != i) {
            report(r, i, first);
        }
    }
}

/// Mappings with at most this many keys are checked pair by pair.
const SMALL_MAPPING: usize = 8;

/// A scalar key as GitHub turns it into a string.
fn key_text(key: &Node) -> Option<Cow<'_, str>> {
    match key.as_str() {
        Some(s) => Some(Cow::Borrowed(s)),
        None => super::reader::scalar_text(key).map(Cow::Owned),
    }
}

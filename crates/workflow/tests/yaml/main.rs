//! Tests of the YAML layer, as one test binary to keep link times down.

mod aliases_and_merges;
mod errors;
mod fuzz;
mod helpers;
mod positions;
mod schema_and_tags;

use hearth_workflow::yaml::{load, Node, YamlError};

/// Loads `source`, failing the test with the error's text if it does not load.
pub fn load_ok(source: &str) -> Node {
    match load(source, "test.yml") {
        Ok(node) => node,
        Err(e) => panic!("expected {source:?} to load, got: {e}"),
    }
}

/// Loads `source`, failing the test if it loads.
pub fn load_err(source: &str) -> YamlError {
    match load(source, "test.yml") {
        Ok(node) => panic!("expected {source:?} to fail, got: {node:?}"),
        Err(e) => e,
    }
}

/// Value of `key` in the root mapping.
pub fn field<'a>(root: &'a Node, key: &str) -> &'a Node {
    root.get(key)
        .unwrap_or_else(|| panic!("no key {key:?} in {root:?}"))
}

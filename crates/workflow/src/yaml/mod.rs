//! Loading YAML into a tree of positioned nodes.
//!
//! [`load`] parses one YAML document and returns its root [`Node`]. Every
//! node knows its [`Span`] in the source, and every failure is a
//! [`YamlError`] that prints as `file:line:col: message`.
//!
//! What the loader does beyond plain parsing:
//!
//! - **Core schema.** Plain scalars are resolved with the YAML 1.2 core
//!   schema, so `on`, `yes` and `no` are strings, not booleans. Quoted and
//!   block scalars are always strings, and [`Node::style`] records how each
//!   scalar was written.
//! - **Tags.** `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!seq`,
//!   `!!map` and the non-specific `!` are honoured; any other tag is an error.
//! - **Anchors and aliases.** `*name` is replaced by a copy of the node
//!   anchored with `&name`. The number of copied nodes is capped
//!   ([`LoadOptions::max_alias_nodes`]) to defeat "billion laughs" input.
//! - **Merge keys.** `<<: *base` and `<<: [*a, *b]` merge mappings the way
//!   go-yaml v3 (used by Gitea and Forgejo) does: the mapping's own keys
//!   win, and earlier merged mappings win over later ones.
//! - **Strictness.** Duplicate keys and a second document in the stream are
//!   errors, as they are on GitHub.
//! - **GitHub's comments.** A `#` right after a flow collection, a flow
//!   separator or a quoted scalar (`[one]#, two`) starts a comment, as it does
//!   for GitHub's YAML reader, although the YAML specification asks for a
//!   space before it.
//!
//! ```
//! use hearth_workflow::yaml::{load, YamlValue};
//!
//! let root = load("on: push\njobs: {}\n", "ci.yml").unwrap();
//! let (key, value) = root.entry("on").unwrap();
//! assert_eq!(key.span.start.line, 1);
//! assert_eq!(value.as_str(), Some("push"));
//! assert!(matches!(root.get("jobs").unwrap().value, YamlValue::Mapping(_)));
//! ```

mod builder;
mod error;
mod json;
mod mapping;
mod node;
mod position;
mod schema;

pub use error::{YamlError, YamlErrorKind};
pub use node::{Node, ScalarStyle, YamlValue};
pub use position::{Pos, Span};

pub(crate) use schema::resolve_plain;

/// Limits applied while loading; the defaults suit any real workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Most nodes that anchors and aliases may copy in total before loading
    /// fails with [`YamlErrorKind::AliasExpansionLimit`].
    pub max_alias_nodes: usize,
    /// Deepest nesting of sequences and mappings before loading fails with
    /// [`YamlErrorKind::TooDeep`]. Keeps recursive consumers of the tree
    /// (cloning, conversion to JSON) well within the stack.
    pub max_depth: usize,
}

impl LoadOptions {
    /// Default for [`LoadOptions::max_alias_nodes`].
    pub const DEFAULT_MAX_ALIAS_NODES: usize = 1_000_000;
    /// Default for [`LoadOptions::max_depth`].
    pub const DEFAULT_MAX_DEPTH: usize = 256;
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_alias_nodes: Self::DEFAULT_MAX_ALIAS_NODES,
            max_depth: Self::DEFAULT_MAX_DEPTH,
        }
    }
}

/// Loads the YAML document in `source` with the default [`LoadOptions`].
///
/// `file` labels the source in error messages; it is usually the path the
/// caller read `source` from. An empty stream (or one holding only
/// comments) loads as a null node at 1:1.
///
/// # Errors
///
/// Returns a [`YamlError`] for malformed YAML, duplicate keys, unsupported
/// tags, bad merge keys, recursive aliases, exceeded limits and streams with
/// more than one document.
pub fn load(source: &str, file: &str) -> Result<Node, YamlError> {
    load_with_options(source, file, &LoadOptions::default())
}

/// Like [`load`], with explicit limits.
///
/// # Errors
///
/// As for [`load`].
pub fn load_with_options(
    source: &str,
    file: &str,
    options: &LoadOptions,
) -> Result<Node, YamlError> {
    builder::build(source, file, options)
}

//! Workflow files for Hearth.
//!
//! This crate turns the text of a Forgejo / Gitea / GitHub Actions workflow
//! into data the runner can use. It never touches the file system: callers
//! read files themselves and pass the text together with a label (usually the
//! path) that is used in error messages.
//!
//! The foundation is the [`yaml`] module, which loads YAML into a tree of
//! [`yaml::Node`]s that remember where in the source every value came from,
//! so that every later error can point at `file:line:col`.

pub mod filters;
pub mod graph;
pub mod matrix;
pub mod model;
pub mod payload;
pub mod plan;
pub mod validate;
pub mod yaml;

pub use yaml::{
    load, load_with_options, LoadOptions, Node, Pos, ScalarStyle, Span, YamlError, YamlErrorKind,
    YamlValue,
};

//! Validation of workflows and actions against GitHub's schema.
//!
//! [`schema`] holds Hearth's restatement of GitHub's schema (keys of each
//! mapping, contexts allowed in expressions at each key, events and their
//! activity types). The loaders in [`crate::model`] walk the YAML tree with
//! the shared reader and collect every problem as a [`Diagnostic`].

mod diagnostic;
pub(crate) mod expression;
pub(crate) mod reader;
pub mod schema;
mod suggest;
pub(crate) mod tree;

pub use suggest::closest;

pub use diagnostic::{Diagnostic, Diagnostics};
pub(crate) use suggest::did_you_mean as suggest_hint;

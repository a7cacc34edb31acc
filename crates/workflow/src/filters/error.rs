//! Errors in the `on:` section's filters.

use super::pattern::PatternError;

/// Why the `on:` section, or one event's filters, is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// A pattern under `key` does not compile.
    #[error("on.{event}.{key}: {source}")]
    InvalidPattern {
        /// The event, such as `push`.
        event: String,
        /// The filter, such as `branches`.
        key: String,
        /// What is wrong with the pattern.
        source: PatternError,
    },

    /// Both a filter and its `-ignore` form are given for one event.
    #[error(
        "on.{event}: you cannot use both the `{key}` and `{key}-ignore` filters for the same event"
    )]
    Conflicting {
        /// The event, such as `push`.
        event: String,
        /// The positive filter: `branches`, `tags` or `paths`.
        key: String,
    },

    /// A filter has `!` patterns but no positive one, so it can never match.
    #[error("on.{event}.{key}: if you define a pattern with the `!` character, you must also define at least one pattern without it (the filter requires at least one positive pattern; use `{key}-ignore` to only exclude)")]
    OnlyNegative {
        /// The event, such as `push`.
        event: String,
        /// The filter: `branches`, `tags`, `paths` or `workflows`.
        key: String,
    },

    /// A filter that GitHub does not accept for this event, such as `tags`
    /// under `pull_request`.
    #[error("on.{event}: `{key}` is not a valid filter for the `{event}` event")]
    Unsupported {
        /// The event.
        event: String,
        /// The filter key.
        key: String,
    },

    /// A filter value of the wrong shape.
    #[error("on.{event}.{key}: expected {expected}, found {found}")]
    InvalidValue {
        /// The event.
        event: String,
        /// The filter key.
        key: String,
        /// What is accepted, such as `a string or a sequence of strings`.
        expected: &'static str,
        /// What was found, such as `a number`.
        found: String,
    },

    /// An event's configuration is neither a mapping nor empty.
    #[error("on.{event}: expected a mapping or nothing, found {found}")]
    InvalidEventConfig {
        /// The event.
        event: String,
        /// What was found.
        found: String,
    },

    /// The `on:` value itself is malformed.
    #[error("on: {message}")]
    InvalidOn {
        /// What is wrong.
        message: String,
    },
}

/// Describes a JSON value's kind for messages, such as `a number`.
pub(crate) fn describe(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.is_empty() => "an empty string".into(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a sequence".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

//! Reads typed values out of the YAML tree of a config file.
//!
//! Types follow what go-yaml accepts when act_runner decodes the same file, so a file that
//! works there works here: a string setting takes any scalar as written (`1.10` stays
//! `1.10`), a boolean also takes YAML 1.1's `yes`/`no`/`on`/`off`, a null value leaves the
//! default. A value of the wrong type stops loading with an error at the value's position;
//! questionable but usable input (unknown keys, durations without a unit) becomes a warning.

use hearth_workflow::yaml::{Node, Pos, ScalarStyle, YamlValue};
use indexmap::IndexMap;

use super::duration::parse_go_duration;
use super::size::parse_size;
use super::{ConfigError, Location, Warning};

/// Reads values from one file's tree, collecting warnings.
pub(super) struct Reader<'a> {
    file: &'a str,
    lines: Vec<&'a str>,
    warnings: Vec<Warning>,
}

impl<'a> Reader<'a> {
    /// A reader for the tree loaded from `source`, which `file` names in messages.
    pub fn new(source: &'a str, file: &'a str) -> Self {
        Reader {
            file,
            lines: source.lines().collect(),
            warnings: Vec::new(),
        }
    }

    /// The warnings collected so far.
    pub fn into_warnings(self) -> Vec<Warning> {
        self.warnings
    }

    /// An error at `node`.
    pub fn error(&self, node: &Node, message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            pos: node.span.start,
            message,
        }
    }

    /// A warning at `node`.
    pub fn warn(&mut self, node: &Node, message: String) {
        self.warnings.push(Warning {
            location: Some(self.location(node.span.start)),
            message,
        });
    }

    fn location(&self, pos: Pos) -> Location {
        Location {
            file: self.file.to_owned(),
            pos,
        }
    }

    /// The entries of a mapping; a null value (an empty section) has none.
    pub fn mapping<'n>(
        &self,
        node: &'n Node,
        path: &str,
    ) -> Result<&'n [(Node, Node)], ConfigError> {
        match &node.value {
            YamlValue::Null => Ok(&[]),
            YamlValue::Mapping(entries) => Ok(entries),
            _ => Err(self.wrong_type(node, path, "a mapping")),
        }
    }

    /// Warns about a key that `section` does not have, suggesting the closest of `known`.
    pub fn unknown_key(&mut self, key: &Node, section: &str, known: &[&str]) {
        let name = self
            .scalar_text(key)
            .unwrap_or_else(|| key.kind_name().to_owned());
        let path = join(section, &name);
        let hint = closest(&name, known)
            .map(|candidate| format!("; did you mean {}?", join(section, candidate)))
            .unwrap_or_default();
        self.warn(key, format!("unknown key {path} is ignored{hint}"));
    }

    /// A string setting: any scalar, as written; `None` for null.
    pub fn string(&self, node: &Node, path: &str) -> Result<Option<String>, ConfigError> {
        if node.is_null() {
            return Ok(None);
        }
        self.scalar_text(node)
            .map(Some)
            .ok_or_else(|| self.wrong_type(node, path, "a string"))
    }

    /// A boolean setting; `None` for null.
    pub fn boolean(&self, node: &Node, path: &str) -> Result<Option<bool>, ConfigError> {
        match &node.value {
            YamlValue::Null => Ok(None),
            YamlValue::Bool(value) => Ok(Some(*value)),
            // go-yaml still reads YAML 1.1's words when the target is a boolean.
            YamlValue::String(text) => match text.as_str() {
                "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(Some(true)),
                "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(Some(false)),
                _ => Err(self.wrong_type(node, path, "a boolean (true or false)")),
            },
            _ => Err(self.wrong_type(node, path, "a boolean (true or false)")),
        }
    }

    /// An integer setting; `None` for null.
    pub fn integer(&self, node: &Node, path: &str) -> Result<Option<i64>, ConfigError> {
        match &node.value {
            YamlValue::Null => Ok(None),
            YamlValue::Int(value) => Ok(Some(*value)),
            _ => Err(self.wrong_type(node, path, "an integer")),
        }
    }

    /// A duration in Go's syntax (`"1m30s"`), as signed nanoseconds; `None` for null.
    ///
    /// A bare number other than 0 is refused, as act_runner's go-yaml v3 refuses it: it would
    /// count nanoseconds (`timeout: 3600` is 3.6 µs), which is never what a person means.
    pub fn duration(&mut self, node: &Node, path: &str) -> Result<Option<i64>, ConfigError> {
        match &node.value {
            YamlValue::Null => Ok(None),
            YamlValue::String(text) => match parse_go_duration(text) {
                Ok(nanos) => Ok(Some(nanos)),
                Err(why) => Err(self.error(
                    node,
                    format!(
                        "{path}: {text:?} is not a duration: {why}; write e.g. 30s, 1m30s or 3h"
                    ),
                )),
            },
            YamlValue::Int(0) => Ok(Some(0)),
            YamlValue::Int(number) => Err(self.error(
                node,
                format!("{path}: a duration needs a unit (a bare {number} would be nanoseconds); write e.g. {number}s"),
            )),
            _ => Err(self.wrong_type(node, path, "a duration such as 30s, 1m30s or 3h")),
        }
    }

    /// A size in bytes, as a number or a string with a unit (`4MiB`); `None` for null.
    pub fn size(&self, node: &Node, path: &str) -> Result<Option<u64>, ConfigError> {
        let expected = "a size in bytes, e.g. 4194304 or 4MiB";
        match &node.value {
            YamlValue::Null => Ok(None),
            YamlValue::Int(bytes) => u64::try_from(*bytes)
                .map(Some)
                .map_err(|_| self.wrong_type(node, path, expected)),
            YamlValue::String(text) => parse_size(text).map(Some).ok_or_else(|| {
                self.error(node, format!("{path} must be {expected}, found {text:?}"))
            }),
            _ => Err(self.wrong_type(node, path, expected)),
        }
    }

    /// A list of strings, each with its node (for errors about one item); `None` for null.
    pub fn string_list<'n>(
        &self,
        node: &'n Node,
        path: &str,
    ) -> Result<Option<Vec<(String, &'n Node)>>, ConfigError> {
        let items = match &node.value {
            YamlValue::Null => return Ok(None),
            YamlValue::Sequence(items) => items,
            _ => return Err(self.wrong_type(node, path, "a list of strings")),
        };
        let mut list = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let text = self.string(item, &format!("{path}[{index}]"))?;
            list.push((text.unwrap_or_default(), item));
        }
        Ok(Some(list))
    }

    /// A mapping of strings to strings (environment variables); `None` for null.
    pub fn string_map(
        &self,
        node: &Node,
        path: &str,
    ) -> Result<Option<IndexMap<String, String>>, ConfigError> {
        let entries = match &node.value {
            YamlValue::Null => return Ok(None),
            YamlValue::Mapping(entries) => entries,
            _ => return Err(self.wrong_type(node, path, "a mapping of names to strings")),
        };
        let mut map = IndexMap::with_capacity(entries.len());
        for (key, value) in entries {
            let name = self
                .string(key, &format!("a key of {path}"))?
                .unwrap_or_default();
            let text = self.string(value, &join(path, &name))?.unwrap_or_default();
            map.insert(name, text);
        }
        Ok(Some(map))
    }

    /// "`path` must be `expected`, found a sequence".
    fn wrong_type(&self, node: &Node, path: &str, expected: &str) -> ConfigError {
        self.error(
            node,
            format!(
                "{path} must be {expected}, found {}",
                node.kind_with_article()
            ),
        )
    }

    /// The text of a scalar as it is written in the file (go-yaml gives string settings the
    /// source text, so `1.10` is not shortened to `1.1`); `None` for collections and null.
    fn scalar_text(&self, node: &Node) -> Option<String> {
        match &node.value {
            YamlValue::String(text) => Some(text.clone()),
            YamlValue::Bool(_) | YamlValue::Int(_) | YamlValue::Float(_) => Some(
                self.source_text(node)
                    .unwrap_or_else(|| resolved_text(&node.value)),
            ),
            YamlValue::Null | YamlValue::Sequence(_) | YamlValue::Mapping(_) => None,
        }
    }

    /// The source of a plain scalar on one line, unless it starts with a tag, anchor or
    /// alias (whose text is not the value).
    fn source_text(&self, node: &Node) -> Option<String> {
        let (start, end) = (node.span.start, node.span.end);
        if node.style != Some(ScalarStyle::Plain) || start.line != end.line || end.col <= start.col
        {
            return None;
        }
        let line = self.lines.get(start.line.checked_sub(1)?)?;
        let text: String = line
            .chars()
            .skip(start.col - 1)
            .take(end.col - start.col)
            .collect();
        let looks_like_value = !text.is_empty()
            && !text.starts_with(['!', '&', '*'])
            && !text.contains(char::is_whitespace);
        looks_like_value.then_some(text)
    }
}

/// A resolved scalar written back as text, for when its source cannot be used.
fn resolved_text(value: &YamlValue) -> String {
    match value {
        YamlValue::Bool(value) => value.to_string(),
        YamlValue::Int(value) => value.to_string(),
        YamlValue::Float(value) => value.to_string(),
        YamlValue::String(text) => text.clone(),
        YamlValue::Null | YamlValue::Sequence(_) | YamlValue::Mapping(_) => String::new(),
    }
}

/// `section.key`, or `key` at the top level.
pub(super) fn join(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_owned()
    } else {
        format!("{section}.{key}")
    }
}

/// The known key closest to `word`, if it is close enough to be a slip (the workflow
/// validator's rule: case and `-` for `_` ignored, then a small edit distance).
fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    hearth_workflow::validate::closest(word, known.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let known = ["fetch_interval", "fetch_timeout", "capacity", "file"];
        assert_eq!(closest("fetch_intervall", &known), Some("fetch_interval"));
        assert_eq!(closest("Fetch-Timeout", &known), Some("fetch_timeout"));
        assert_eq!(closest("capcity", &known), Some("capacity"));
        assert_eq!(closest("files", &known), Some("file"));
        assert_eq!(closest("banana", &known), None);
        assert_eq!(closest("x", &[]), None);
    }
}

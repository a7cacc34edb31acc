//! Reading a problem-matcher file: the `{"problemMatcher": [...]}` JSON the setup-* actions
//! ship, checked with the rules and messages of GitHub's runner (`IssueMatchersConfig.Validate`).
//!
//! GitHub reads the file with Newtonsoft.Json, which is lenient in ways real files rely on:
//! property names match in any case, an integer may be written as a string (`"file": "1"`),
//! `null` counts as absent, unknown properties are ignored and an empty file (or one without
//! `problemMatcher`) adds nothing. The same leniency applies here.
//!
//! Patterns are .NET ECMAScript regular expressions on GitHub; here they are compiled by the
//! `regex` crate, which has no look-around and no backreferences. A matcher whose pattern the
//! crate refuses is not an error of the file (GitHub would accept it): it is left out, and the
//! caller warns with [`Unsupported`]'s message.

use std::fmt;

use hearth_expr::eq_ignore_case;
use regex::Regex;
use serde_json::Value;

use super::{Matcher, Pattern, PatternGroups};
use crate::commands::Level;

/// Why a matcher file cannot be used at all. `Display` is the message for the log; GitHub
/// fails the step that adds such a file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or JSON of the wrong shape (`where` is a JSON path such as
    /// `problemMatcher[0].pattern[1].line`).
    #[error("{0}")]
    Syntax(String),
    /// A rule of GitHub's `Validate` is broken; the text is GitHub's message.
    #[error("{0}")]
    Invalid(String),
}

/// A matcher left out because a pattern uses what the `regex` crate does not support.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub owner: String,
    /// The pattern's place in the matcher's `pattern` list, from 0.
    pub pattern: usize,
    /// The crate's explanation.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Problem matcher '{}' is ignored: the regexp of its pattern {} cannot be used here \
             (Hearth supports JavaScript regular expressions without look-around or \
             backreferences): {}",
            self.owner,
            self.pattern + 1,
            self.reason
        )
    }
}

/// What a file holds: the matchers to add, in the file's order, and those left out.
#[derive(Debug, Default)]
pub struct Loaded {
    pub matchers: Vec<Matcher>,
    pub unsupported: Vec<Unsupported>,
}

/// A matcher as written, before its patterns are compiled.
#[derive(Debug)]
struct RawMatcher {
    owner: String,
    severity: String,
    patterns: Vec<RawPattern>,
}

#[derive(Debug, Default)]
struct RawPattern {
    regexp: String,
    groups: PatternGroups,
    looping: bool,
}

/// The owners a file names (for `remove-matcher` by file), without checking the rest.
pub fn owners(text: &[u8]) -> Result<Vec<String>, ConfigError> {
    Ok(read(text)?.into_iter().map(|m| m.owner).collect())
}

/// Reads and checks a matcher file. See the module documentation.
pub fn load(text: &[u8]) -> Result<Loaded, ConfigError> {
    let raw = read(text)?;
    let mut loaded = Loaded::default();
    let mut owners: Vec<&str> = Vec::with_capacity(raw.len());
    for matcher in &raw {
        match check(matcher)? {
            Ok(compiled) => loaded.matchers.push(compiled),
            Err(unsupported) => loaded.unsupported.push(unsupported),
        }
        if owners.iter().any(|o| eq_ignore_case(o, &matcher.owner)) {
            return Err(invalid(format!("Duplicate owner name '{}'", matcher.owner)));
        }
        owners.push(&matcher.owner);
    }
    Ok(loaded)
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

/// GitHub's checks of one matcher, in its order. The outer error is the file's; the inner
/// one a pattern this crate cannot compile (the other checks still run on the rest).
fn check(matcher: &RawMatcher) -> Result<Result<Matcher, Unsupported>, ConfigError> {
    let owner = &matcher.owner;
    if owner.is_empty() {
        return Err(invalid("Owner must not be empty".into()));
    }
    let default_severity = match matcher.severity.to_ascii_uppercase().as_str() {
        "" => None,
        "ERROR" => Some(Level::Error),
        "WARNING" => Some(Level::Warning),
        "NOTICE" => Some(Level::Notice),
        _ => {
            return Err(invalid(format!(
                "Matcher '{owner}' contains unexpected default severity '{}'",
                matcher.severity
            )))
        }
    };
    if matcher.patterns.is_empty() {
        return Err(invalid(format!(
            "Matcher '{owner}' does not contain any patterns"
        )));
    }

    let mut seen = PatternGroups::default();
    let mut patterns = Vec::with_capacity(matcher.patterns.len());
    let mut unsupported = None;
    let last = matcher.patterns.len() - 1;
    for (i, pattern) in matcher.patterns.iter().enumerate() {
        if pattern.looping && (i == 0 || i != last) {
            return Err(invalid(
                "Only the last pattern in a multiline matcher may set 'loop'".into(),
            ));
        }
        if pattern.looping && pattern.groups.message.is_none() {
            return Err(invalid("The loop pattern must set 'message'".into()));
        }
        let regex = match Regex::new(&pattern.regexp) {
            Ok(regex) => Some(regex),
            Err(e) => {
                unsupported.get_or_insert(Unsupported {
                    owner: owner.clone(),
                    pattern: i,
                    reason: e.to_string(),
                });
                None
            }
        };
        // Without a compiled pattern its group count is unknown: only "set twice" is checked.
        let groups = regex.as_ref().map(Regex::captures_len);
        for (name, value, tracked) in pattern.groups.pair_with(&mut seen) {
            let Some(value) = value else { continue };
            if tracked.is_some() {
                return Err(invalid(format!("The property '{name}' is set twice")));
            }
            if groups.is_some_and(|count| value < 0 || value as usize >= count) {
                return Err(invalid(format!(
                    "The property '{name}' is set to {value} which is out of range"
                )));
            }
            *tracked = Some(value);
        }
        if let Some(regex) = regex {
            patterns.push(Pattern {
                regex,
                groups: pattern.groups.clone(),
                looping: pattern.looping,
            });
        }
    }
    if seen.message.is_none() {
        return Err(invalid("At least one pattern must set 'message'".into()));
    }
    Ok(match unsupported {
        Some(unsupported) => Err(unsupported),
        None => Ok(Matcher {
            owner: owner.clone(),
            default_severity,
            patterns,
        }),
    })
}

/// The JSON, leniently, into matchers as written.
fn read(text: &[u8]) -> Result<Vec<RawMatcher>, ConfigError> {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| ConfigError::Syntax(format!("The file is not valid JSON: {e}")))?;
    let Value::Object(root) = &value else {
        return Err(ConfigError::Syntax(format!(
            "The file must hold a JSON object with a 'problemMatcher' list, not {}",
            kind(&value)
        )));
    };
    let matchers = match property(root, "problemMatcher") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ConfigError::Syntax(format!(
                "'problemMatcher' must be a list, not {}",
                kind(other)
            )))
        }
    };
    matchers
        .iter()
        .enumerate()
        .map(|(i, item)| read_matcher(item, &format!("problemMatcher[{i}]")))
        .collect()
}

fn read_matcher(value: &Value, at: &str) -> Result<RawMatcher, ConfigError> {
    let object = object(value, at)?;
    let patterns = match property(object, "pattern") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| read_pattern(item, &format!("{at}.pattern[{i}]")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ConfigError::Syntax(format!(
                "{at}.pattern must be a list, not {}",
                kind(other)
            )))
        }
    };
    Ok(RawMatcher {
        owner: string(object, "owner", at)?,
        severity: string(object, "severity", at)?,
        patterns,
    })
}

fn read_pattern(value: &Value, at: &str) -> Result<RawPattern, ConfigError> {
    let object = object(value, at)?;
    let int = |name: &str| integer(object, name, at);
    let looping = match property(object, "loop") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        None => false,
        Some(other) => {
            return Err(ConfigError::Syntax(format!(
                "{at}.loop must be true or false, not {}",
                kind(other)
            )))
        }
    };
    Ok(RawPattern {
        regexp: string(object, "regexp", at)?,
        groups: PatternGroups {
            file: int("file")?,
            from_path: int("fromPath")?,
            line: int("line")?,
            column: int("column")?,
            end_line: int("endLine")?,
            end_column: int("endColumn")?,
            severity: int("severity")?,
            code: int("code")?,
            message: int("message")?,
        },
        looping,
    })
}

type Object = serde_json::Map<String, Value>;

fn object<'v>(value: &'v Value, at: &str) -> Result<&'v Object, ConfigError> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(ConfigError::Syntax(format!(
            "{at} must be an object, not {}",
            kind(other)
        ))),
    }
}

/// A property by name, exact spelling first, then in any case (as Newtonsoft matches);
/// `null` is absent.
fn property<'v>(object: &'v Object, name: &str) -> Option<&'v Value> {
    object
        .get(name)
        .or_else(|| {
            object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn string(object: &Object, name: &str, at: &str) -> Result<String, ConfigError> {
    match property(object, name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(value @ (Value::Number(_) | Value::Bool(_))) => Ok(value.to_string()),
        Some(other) => Err(ConfigError::Syntax(format!(
            "{at}.{name} must be a string, not {}",
            kind(other)
        ))),
    }
}

fn integer(object: &Object, name: &str, at: &str) -> Result<Option<i64>, ConfigError> {
    let wrong = |value: &Value| {
        ConfigError::Syntax(format!(
            "{at}.{name} must be a group number, not {}",
            match value {
                Value::String(s) => format!("\"{s}\""),
                Value::Number(n) => n.to_string(),
                other => kind(other).to_owned(),
            }
        ))
    };
    match property(object, name) {
        None => Ok(None),
        Some(value @ Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| wrong(value)),
        Some(value @ Value::String(s)) => s.trim().parse().map(Some).map_err(|_| wrong(value)),
        Some(other) => Err(wrong(other)),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        match load(json.as_bytes()) {
            Ok(loaded) => panic!("loaded {loaded:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn reads_the_setup_actions_format_leniently() {
        let loaded = load(
            br#"{"problemMatcher": [{"Owner": "tsc", "severity": "Warning", "pattern": [
                {"regexp": "^(.+)\\((\\d+),(\\d+)\\): (error|warning) (TS\\d+): (.*)$",
                 "file": 1, "line": "2", "column": 3, "severity": 4, "code": 5, "message": 6,
                 "unknown": true}]}]}"#,
        )
        .unwrap();
        assert!(loaded.unsupported.is_empty());
        let [matcher] = &loaded.matchers[..] else {
            panic!("{loaded:?}")
        };
        assert_eq!(matcher.owner, "tsc");
        assert_eq!(matcher.default_severity, Some(Level::Warning));
        assert_eq!(matcher.patterns[0].groups.line, Some(2));
        assert_eq!(matcher.patterns[0].groups.message, Some(6));
    }

    #[test]
    fn an_empty_file_or_none_listed_adds_nothing() {
        assert!(load(b"").unwrap().matchers.is_empty());
        assert!(load(b"\xef\xbb\xbf {}").unwrap().matchers.is_empty());
        assert!(load(br#"{"problemMatcher": null}"#)
            .unwrap()
            .matchers
            .is_empty());
    }

    #[test]
    fn broken_files_say_what_is_wrong() {
        assert!(error("{").starts_with("The file is not valid JSON: "));
        assert_eq!(
            error("[]"),
            "The file must hold a JSON object with a 'problemMatcher' list, not a list"
        );
        assert_eq!(
            error(
                r#"{"problemMatcher": [{"owner": "a", "pattern": [{"regexp": "x", "line": {}}]}]}"#
            ),
            "problemMatcher[0].pattern[0].line must be a group number, not an object"
        );
    }

    #[test]
    fn githubs_rules_and_messages() {
        let one = |matcher: &str| error(&format!(r#"{{"problemMatcher": [{matcher}]}}"#));
        assert_eq!(
            one(r#"{"pattern": [{"regexp": "(x)", "message": 1}]}"#),
            "Owner must not be empty"
        );
        assert_eq!(
            one(
                r#"{"owner": "a", "severity": "fatal", "pattern": [{"regexp": "(x)", "message": 1}]}"#
            ),
            "Matcher 'a' contains unexpected default severity 'fatal'"
        );
        assert_eq!(
            one(r#"{"owner": "a", "pattern": []}"#),
            "Matcher 'a' does not contain any patterns"
        );
        assert_eq!(
            one(r#"{"owner": "a", "pattern": [{"regexp": "(x)", "message": 1, "loop": true}]}"#),
            "Only the last pattern in a multiline matcher may set 'loop'"
        );
        assert_eq!(
            one(
                r#"{"owner": "a", "pattern": [{"regexp": "(x)", "message": 1, "loop": true},
                   {"regexp": "(y)", "line": 1}]}"#
            ),
            "Only the last pattern in a multiline matcher may set 'loop'"
        );
        assert_eq!(
            one(r#"{"owner": "a", "pattern": [{"regexp": "(x)", "file": 1},
                   {"regexp": "(y)", "line": 1, "loop": true}]}"#),
            "The loop pattern must set 'message'"
        );
        assert_eq!(
            one(r#"{"owner": "a", "pattern": [{"regexp": "(x)", "file": 1},
                   {"regexp": "(y)", "file": 1, "message": 1}]}"#),
            "The property 'file' is set twice"
        );
        assert_eq!(
            one(r#"{"owner": "a", "pattern": [{"regexp": "(x)", "message": 2}]}"#),
            "The property 'message' is set to 2 which is out of range"
        );
        assert_eq!(
            one(r#"{"owner": "a", "pattern": [{"regexp": "(x)", "line": -1, "message": 1}]}"#),
            "The property 'line' is set to -1 which is out of range"
        );
        assert_eq!(
            one(r#"{"owner": "a", "pattern": [{"regexp": "(x)", "file": 1}]}"#),
            "At least one pattern must set 'message'"
        );
        assert_eq!(
            error(
                r#"{"problemMatcher": [{"owner": "a", "pattern": [{"regexp": "(x)", "message": 1}]},
                   {"owner": "A", "pattern": [{"regexp": "(x)", "message": 1}]}]}"#
            ),
            "Duplicate owner name 'A'"
        );
    }

    #[test]
    fn a_pattern_the_regex_crate_refuses_leaves_its_matcher_out_with_a_reason() {
        let loaded = load(
            br#"{"problemMatcher": [
                {"owner": "look", "pattern": [{"regexp": "^(?!skip)(.*)$", "message": 1}]},
                {"owner": "fine", "pattern": [{"regexp": "^(.*)$", "message": 1}]}]}"#,
        )
        .unwrap();
        assert_eq!(loaded.matchers.len(), 1);
        assert_eq!(loaded.matchers[0].owner, "fine");
        let [unsupported] = &loaded.unsupported[..] else {
            panic!("{loaded:?}")
        };
        assert_eq!(unsupported.owner, "look");
        let message = unsupported.to_string();
        assert!(
            message.starts_with("Problem matcher 'look' is ignored: the regexp of its pattern 1"),
            "{message}"
        );
        assert!(message.contains("look-around"), "{message}");
    }

    #[test]
    fn owners_of_a_file_for_removal() {
        assert_eq!(
            owners(br#"{"problemMatcher": [{"owner": "a"}, {"owner": "b", "pattern": 1}]}"#)
                .unwrap_err()
                .to_string(),
            "problemMatcher[1].pattern must be a list, not a number"
        );
        assert_eq!(
            owners(br#"{"problemMatcher": [{"owner": "a"}, {"owner": "b"}]}"#).unwrap(),
            ["a", "b"]
        );
    }
}

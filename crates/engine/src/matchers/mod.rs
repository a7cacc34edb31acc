//! Problem matchers (`::add-matcher::FILE`, `::remove-matcher owner=NAME::`): regular
//! expressions over a step's output lines whose matches become annotations, as GitHub's runner
//! applies them (`IssueMatcher`, `OutputManager`).
//!
//! - A file ([`config`]) holds matchers, each an `owner`, an optional default `severity` and
//!   one or more patterns. Adding a file puts its matchers first (in the file's order) and
//!   drops any earlier matcher with the same owner (any case); matchers stay for the rest of
//!   the job ([`MatcherSet`]).
//! - Each step matches with its own copy ([`StepMatchers`]): multi-line state never crosses
//!   steps. A matcher added during a step goes in front of that step's list; one removed
//!   leaves it at once.
//! - A line is tried against each matcher in turn (colour codes removed first); the first that
//!   reports a match resets the others' multi-line state, and when its match makes an
//!   annotation the line is done: at most one annotation per line.
//! - Several patterns must match consecutive lines, the last one completing the match; with
//!   `loop` the last one keeps matching the lines that follow, each match an annotation with
//!   what the earlier patterns captured.
//! - A match becomes an annotation ([`Found::annotation`]) when its message is not blank and
//!   its severity (the pattern's group, else the matcher's default, else `error`) is `error`,
//!   `warning` or `notice` in any case. Line and column must be plain digits. A file is taken
//!   relative to `fromPath`'s folder, then to the workspace, and is kept, relative to the
//!   workspace, only when it lies inside it (GitHub keeps files inside the repository).
//!
//! Where Hearth differs, and why:
//!
//! - It also reads `endLine` and `endColumn` groups (the format of editors' problem
//!   matchers), which GitHub's runner ignores; files that do not set them behave the same.
//! - GitHub keeps a file only when it exists inside a clone of the workflow's repository.
//!   The engine reaches the job's files only through the runtime, asynchronously, and a line
//!   is matched synchronously, so a file inside the workspace is kept whether or not it
//!   exists.
//! - Patterns run on the `regex` crate (see [`config`]), whose matching takes linear time, so
//!   there is no per-line timeout to give up on a matcher after.
//! - Colour codes are removed as GitHub's runner means to (its pattern for them looks for a
//!   NUL character followed by `33[`, which real output never holds).
//! - A line too long to be handled whole (the masker's pieces) is logged but not matched.

pub mod config;

use std::sync::Arc;

use hearth_expr::eq_ignore_case;
use regex::{Captures, Regex};

use crate::commands::{Annotation, Level};

/// One matcher of a file, its patterns compiled.
#[derive(Debug)]
pub struct Matcher {
    pub owner: String,
    /// The matcher's `severity`, for matches whose pattern captures none.
    pub default_severity: Option<Level>,
    patterns: Vec<Pattern>,
}

#[derive(Debug)]
struct Pattern {
    regex: Regex,
    groups: PatternGroups,
    /// Only on the last of several patterns: it matches again on the following lines.
    looping: bool,
}

/// Which capture group holds each part of a match (checked to exist by [`config`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PatternGroups {
    file: Option<i64>,
    from_path: Option<i64>,
    line: Option<i64>,
    column: Option<i64>,
    end_line: Option<i64>,
    end_column: Option<i64>,
    severity: Option<i64>,
    code: Option<i64>,
    message: Option<i64>,
}

impl PatternGroups {
    /// Each property's JSON name, this pattern's group and the one seen in earlier patterns,
    /// in the order GitHub checks them.
    #[allow(clippy::type_complexity)]
    fn pair_with<'s>(
        &self,
        seen: &'s mut PatternGroups,
    ) -> [(&'static str, Option<i64>, &'s mut Option<i64>); 9] {
        [
            ("file", self.file, &mut seen.file),
            ("line", self.line, &mut seen.line),
            ("column", self.column, &mut seen.column),
            ("endLine", self.end_line, &mut seen.end_line),
            ("endColumn", self.end_column, &mut seen.end_column),
            ("severity", self.severity, &mut seen.severity),
            ("code", self.code, &mut seen.code),
            ("message", self.message, &mut seen.message),
            ("fromPath", self.from_path, &mut seen.from_path),
        ]
    }
}

/// The matchers of a job, newest first.
#[derive(Clone, Debug, Default)]
pub struct MatcherSet {
    matchers: Vec<Arc<Matcher>>,
}

impl MatcherSet {
    /// Adds a file's matchers in front (in the file's order), replacing those of the same
    /// owners.
    pub fn add(&mut self, added: &[Arc<Matcher>]) {
        self.matchers
            .retain(|old| !added.iter().any(|new| same_owner(old, &new.owner)));
        self.matchers.splice(0..0, added.iter().cloned());
    }

    /// Removes the matchers of `owner` (any case).
    pub fn remove(&mut self, owner: &str) {
        self.matchers.retain(|m| !same_owner(m, owner));
    }

    pub fn owners(&self) -> impl Iterator<Item = &str> {
        self.matchers.iter().map(|m| m.owner.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }
}

fn same_owner(matcher: &Matcher, owner: &str) -> bool {
    eq_ignore_case(&matcher.owner, owner)
}

/// The matchers one step's output goes through, with their multi-line state.
#[derive(Debug, Default)]
pub struct StepMatchers {
    running: Vec<Running>,
}

#[derive(Debug)]
struct Running {
    matcher: Arc<Matcher>,
    /// `partial[i]`: what patterns `0..=i` captured on the lines just before, when they
    /// matched them.
    partial: Vec<Option<Found>>,
}

impl Running {
    fn new(matcher: Arc<Matcher>) -> Self {
        let partial = vec![None; matcher.patterns.len().saturating_sub(1)];
        Running { matcher, partial }
    }

    fn reset(&mut self) {
        self.partial.iter_mut().for_each(|p| *p = None);
    }

    /// GitHub's `IssueMatcher.Match`: patterns are tried last to first, so that each sees the
    /// state its predecessor had after the previous line.
    fn feed(&mut self, line: &str) -> Option<Found> {
        let matcher = Arc::clone(&self.matcher);
        let patterns = &matcher.patterns;
        let default = matcher.default_severity;
        if let [pattern] = &patterns[..] {
            let captures = pattern.regex.captures(line)?;
            return Some(Found::new(None, pattern, &captures, default));
        }
        let last = patterns.len() - 1;
        for (i, pattern) in patterns.iter().enumerate().rev() {
            let before = if i > 0 {
                self.partial[i - 1].take()
            } else {
                None
            };
            if i > 0 && before.is_none() {
                continue;
            }
            match pattern.regex.captures(line) {
                Some(captures) if i == last => {
                    let found = Found::new(before.as_ref(), pattern, &captures, default);
                    self.reset();
                    if pattern.looping {
                        self.partial[i - 1] = before;
                    }
                    return Some(found);
                }
                Some(captures) => {
                    self.partial[i] = Some(Found::new(before.as_ref(), pattern, &captures, None));
                    if i > 0 {
                        self.partial[i - 1] = before;
                    }
                }
                None if i == last => {}
                None => {
                    self.partial[i] = None;
                    if i > 0 {
                        self.partial[i - 1] = before;
                    }
                }
            }
        }
        None
    }
}

impl StepMatchers {
    /// A step's matchers: the job's, with fresh state.
    pub fn new(set: &MatcherSet) -> Self {
        StepMatchers {
            running: set
                .matchers
                .iter()
                .map(|m| Running::new(Arc::clone(m)))
                .collect(),
        }
    }

    /// A matcher added during the step goes first (GitHub's step-side order: a file's last
    /// matcher ends up in front), replacing one of the same owner.
    pub fn add(&mut self, matcher: &Arc<Matcher>) {
        self.remove(&matcher.owner);
        self.running.insert(0, Running::new(Arc::clone(matcher)));
    }

    pub fn remove(&mut self, owner: &str) {
        self.running.retain(|r| !same_owner(&r.matcher, owner));
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Matches one output line (without its line break). `Some` when a matcher matched it:
    /// an annotation, or why the match made none (for the debug log).
    pub fn feed(&mut self, line: &str, workspace: &str) -> Option<Result<Annotation, String>> {
        if self.running.is_empty() {
            return None;
        }
        let line = strip_colors(line);
        let mut skipped = None;
        for i in 0..self.running.len() {
            let Some(found) = self.running[i].feed(&line) else {
                continue;
            };
            for (j, other) in self.running.iter_mut().enumerate() {
                if j != i {
                    other.reset();
                }
            }
            match found.annotation(workspace) {
                Ok(annotation) => return Some(Ok(annotation)),
                Err(why) => skipped = Some(Err(why)),
            }
        }
        skipped
    }
}

/// What a match captured, across the lines of a multi-line match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub file: Option<String>,
    pub from_path: Option<String>,
    pub line: Option<String>,
    pub column: Option<String>,
    pub end_line: Option<String>,
    pub end_column: Option<String>,
    pub severity: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl Found {
    /// What earlier lines captured wins over this line's groups (each part is set by one
    /// pattern only); a severity still missing or empty is the matcher's default.
    fn new(
        before: Option<&Found>,
        pattern: &Pattern,
        captures: &Captures<'_>,
        default: Option<Level>,
    ) -> Found {
        let group = |index: Option<i64>| {
            let index = usize::try_from(index?).ok()?;
            // A group that took no part in the match is empty, as in .NET.
            Some(captures.get(index).map_or("", |m| m.as_str()).to_owned())
        };
        let g = &pattern.groups;
        let pick = |earlier: Option<&Option<String>>, index| {
            earlier.cloned().flatten().or_else(|| group(index))
        };
        let mut found = Found {
            file: pick(before.map(|b| &b.file), g.file),
            from_path: pick(before.map(|b| &b.from_path), g.from_path),
            line: pick(before.map(|b| &b.line), g.line),
            column: pick(before.map(|b| &b.column), g.column),
            end_line: pick(before.map(|b| &b.end_line), g.end_line),
            end_column: pick(before.map(|b| &b.end_column), g.end_column),
            severity: pick(before.map(|b| &b.severity), g.severity),
            code: pick(before.map(|b| &b.code), g.code),
            message: pick(before.map(|b| &b.message), g.message),
        };
        if found.severity.as_deref().is_none_or(str::is_empty) {
            if let Some(level) = default {
                found.severity = Some(level_name(level).to_owned());
            }
        }
        found
    }

    /// The annotation this match makes, or why it makes none (GitHub's `ConvertToIssue`).
    pub fn annotation(&self, workspace: &str) -> Result<Annotation, String> {
        let message =
            match self.message.as_deref() {
                Some(m) if !m.trim().is_empty() => m.to_owned(),
                _ => return Err(
                    "Skipping logging an issue for the matched line because the message is empty."
                        .into(),
                ),
            };
        let level = match self.severity.as_deref().unwrap_or("") {
            "" => Level::Error,
            s if s.eq_ignore_ascii_case("error") => Level::Error,
            s if s.eq_ignore_ascii_case("warning") => Level::Warning,
            s if s.eq_ignore_ascii_case("notice") => Level::Notice,
            s => {
                return Err(format!(
                "Skipped logging an issue for the matched line because the severity '{s}' is not supported."
            ))
            }
        };
        let number = |text: &Option<String>| text.as_deref().and_then(plain_int);
        Ok(Annotation {
            level,
            message,
            title: None,
            file: self
                .file
                .as_deref()
                .and_then(|file| workspace_file(file, self.from_path.as_deref(), workspace)),
            line: number(&self.line),
            end_line: number(&self.end_line),
            column: number(&self.column),
            end_column: number(&self.end_column),
        })
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    }
}

/// .NET's `int.TryParse` with `NumberStyles.None`: ASCII digits only, in range.
fn plain_int(text: &str) -> Option<i32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The file of a match relative to the workspace: rooted at `fromPath`'s folder, then at the
/// workspace, `.` and `..` resolved; `None` when blank or outside the workspace.
fn workspace_file(file: &str, from_path: Option<&str>, workspace: &str) -> Option<String> {
    if file.trim().is_empty() {
        return None;
    }
    let mut path = file.to_owned();
    if let Some(from) = from_path.filter(|f| !f.trim().is_empty()) {
        if !path.starts_with('/') {
            if let Some(folder) = from
                .rfind('/')
                .map(|i| &from[..i])
                .filter(|f| !f.is_empty())
            {
                path = format!("{folder}/{path}");
            }
        }
    }
    if !path.starts_with('/') {
        path = format!("{}/{path}", workspace.trim_end_matches('/'));
    }
    let path = normalize(&path);
    let workspace = normalize(workspace);
    let relative = path.strip_prefix(workspace.trim_end_matches('/'))?;
    let relative = relative.strip_prefix('/')?;
    (!relative.is_empty()).then(|| relative.to_owned())
}

/// An absolute POSIX path with `.`, `..` and repeated slashes resolved.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The line without terminal colour codes (`ESC [ digits-and-semicolons m`), which would
/// stand between a pattern and the text it describes.
fn strip_colors(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains("\x1b[") {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let code = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        let skip = if after[code..].starts_with('m') {
            code + 1
        } else {
            code
        };
        rest = &after[skip..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests;

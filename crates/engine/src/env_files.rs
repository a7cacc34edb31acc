//! The files a step writes to talk back to the runner: `GITHUB_ENV`, `GITHUB_OUTPUT`,
//! `GITHUB_STATE`, `GITHUB_PATH` and `GITHUB_STEP_SUMMARY`.
//!
//! Everything here is a pure function over text the engine has read (see [`decode`] for the
//! bytes). The rules are GitHub's runner's (`FileCommandManager`):
//!
//! - `GITHUB_ENV`, `GITHUB_OUTPUT` and `GITHUB_STATE` share one format ([`parse_key_values`]):
//!   `NAME=value` lines and `NAME<<DELIMITER` heredocs closed by a line that is exactly the
//!   delimiter. Empty lines between entries are skipped. The first malformed entry stops the
//!   file, but the entries before it have already taken effect, so both are returned.
//! - Lines end at LF. Off Windows a CR before the LF stays part of the line (a CRLF file's
//!   values keep their CRs, and a CRLF heredoc only closes because its delimiter has a CR too);
//!   GitHub's Windows runner also ends lines at CRLF. [`Newlines`] picks the behaviour.
//! - `GITHUB_ENV` refuses [`BLOCKED_ENV_NAMES`] with an error annotation but does not fail the
//!   step; a malformed file fails it.
//! - `GITHUB_PATH` has one path per line; each is moved to the front of the job's PATH
//!   additions ([`PrependPath`]).
//! - `GITHUB_STEP_SUMMARY` is only checked against GitHub's size limit ([`check_step_summary`]).

use std::borrow::Cow;
use std::fmt;

/// Names `GITHUB_ENV` will not set (compared case-insensitively), as GitHub's block list.
pub const BLOCKED_ENV_NAMES: &[&str] = &["NODE_OPTIONS"];

/// The largest step summary GitHub uploads, in bytes (1 MiB).
pub const STEP_SUMMARY_LIMIT: u64 = 1024 * 1024;

/// One of the files a step writes, for GitHub's failure message about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCommand {
    Env,
    Output,
    State,
    Path,
    StepSummary,
}

impl FileCommand {
    /// The name GitHub uses for the file in its messages (and in the `github` context).
    pub fn name(self) -> &'static str {
        match self {
            FileCommand::Env => "env",
            FileCommand::Output => "output",
            FileCommand::State => "state",
            FileCommand::Path => "path",
            FileCommand::StepSummary => "step_summary",
        }
    }

    /// GitHub's first error line when a file cannot be processed; the [`EnvFileError`] follows
    /// it and the step fails.
    pub fn unable_to_process(self) -> String {
        format!(
            "Unable to process file command '{}' successfully.",
            self.name()
        )
    }
}

/// Where lines end when the runner reads a key-value file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Newlines {
    /// Linux and macOS runners: at LF only; a CR before it stays in the line.
    #[default]
    Lf,
    /// Windows runners: at LF, and at CRLF without the CR.
    CrLf,
}

/// One `NAME=value` or heredoc entry, with the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// As written, except that a heredoc's name is trimmed. It can be empty: GitHub's check for
    /// an empty `NAME=value` name looks at the whole line, which is never empty there.
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// A malformed entry: the line it is on, and GitHub's message (the `Display` text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct EnvFileError {
    /// 1-based: the heredoc's first line for a missing delimiter, else the offending line.
    pub line: usize,
    pub kind: EnvFileErrorKind,
}

/// What is wrong with an entry. `Display` is GitHub's exact text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvFileErrorKind {
    /// A heredoc line with nothing before `<<` or nothing after it.
    #[error("Invalid format '{0}'. Name must not be empty and delimiter must not be empty")]
    EmptyNameOrDelimiter(String),
    /// A heredoc whose delimiter line never comes.
    #[error("Invalid value. Matching delimiter not found '{0}'")]
    DelimiterNotFound(String),
    /// A heredoc's last line ends the file without a line break and is not the delimiter.
    #[error("Invalid value. EOF marker missing new line.")]
    MissingNewline,
    /// A line that is neither `NAME=value` nor a heredoc, or is ambiguous between them.
    #[error("Invalid format '{0}'")]
    InvalidFormat(String),
}

/// The entries of a key-value file, and the error that stopped it, if any. The entries before
/// the error count: GitHub applies each as it reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyValues {
    pub pairs: Vec<Pair>,
    pub error: Option<EnvFileError>,
}

/// Decodes a file's bytes as the runner's `File.ReadAllText` does: a UTF-8, UTF-16 or UTF-32
/// byte-order mark picks the encoding and is dropped, anything else is UTF-8, and invalid
/// sequences become U+FFFD rather than an error.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    fn units<const N: usize>(bytes: &[u8], read: fn([u8; N]) -> u32) -> Vec<u32> {
        bytes
            .chunks(N)
            .map(|c| {
                let mut buf = [0u8; N];
                buf[..c.len()].copy_from_slice(c);
                // A trailing partial unit is invalid; map it to a lone surrogate (→ U+FFFD).
                if c.len() < N {
                    0xD800
                } else {
                    read(buf)
                }
            })
            .collect()
    }
    fn utf16(units: Vec<u32>) -> Cow<'static, str> {
        let units = units.into_iter().map(|u| u as u16);
        Cow::Owned(
            char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        )
    }
    fn utf32(units: Vec<u32>) -> Cow<'static, str> {
        Cow::Owned(
            units
                .into_iter()
                .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect(),
        )
    }
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest),
        [0xFF, 0xFE, 0, 0, rest @ ..] => utf32(units(rest, u32::from_le_bytes)),
        [0, 0, 0xFE, 0xFF, rest @ ..] => utf32(units(rest, u32::from_be_bytes)),
        [0xFF, 0xFE, rest @ ..] => utf16(units(rest, |b: [u8; 2]| u16::from_le_bytes(b) as u32)),
        [0xFE, 0xFF, rest @ ..] => utf16(units(rest, |b: [u8; 2]| u16::from_be_bytes(b) as u32)),
        _ => String::from_utf8_lossy(bytes),
    }
}

/// Reads lines the way the runner's `EnvFileKeyValuePairs.ReadLine` does.
struct Lines<'a> {
    text: &'a str,
    index: usize,
    number: usize,
    newlines: Newlines,
}

impl<'a> Lines<'a> {
    /// The next line and the line break that ended it (`None` at the end of the text).
    fn next(&mut self) -> Option<(&'a str, Option<&'static str>)> {
        if self.index >= self.text.len() {
            return None;
        }
        self.number += 1;
        let start = self.index;
        let rest = &self.text[start..];
        let Some(lf) = rest.find('\n') else {
            self.index = self.text.len();
            return Some((rest, None));
        };
        if self.newlines == Newlines::CrLf && rest[..lf].ends_with('\r') {
            self.index = start + lf + 1;
            return Some((&rest[..lf - 1], Some("\r\n")));
        }
        self.index = start + lf + 1;
        Some((&rest[..lf], Some("\n")))
    }
}

/// Parses a `GITHUB_OUTPUT`, `GITHUB_STATE` or `GITHUB_ENV` file (see [`parse_env`] for the
/// latter's block list).
///
/// A line is a heredoc header when it has `<<` and either no `=` before it or only whitespace
/// between the first `=` and the `<<` (`NAME=  <<EOF`); the name is what comes before (without
/// that `=`), trimmed, and the delimiter is everything after `<<`, verbatim. A line with `=` and
/// no `<<` is `NAME=value`, split at the first `=`, untrimmed. A line with `=` before `<<` and
/// something else between them is refused as GitHub refuses it (a name carrying an `=` could
/// otherwise turn a heredoc's body into entries), unless the `<<` is followed by whitespace,
/// which reads as text in a value (`NAME=a << b`).
///
/// GitHub's own tests pin each of these shapes (`MY_KEY_5=abc << def`, `MY_KEY_6=    <<EOF`,
/// `MY_KEY_7 <<=EOF=`, and the refused `PREFIX_...=...<<khkIhPxsVA==`); the whitespace-after-`<<`
/// rule that separates the last two kinds is inferred from those cases, not read from the code.
pub fn parse_key_values(text: &str, newlines: Newlines) -> KeyValues {
    let mut lines = Lines {
        text,
        index: 0,
        number: 0,
        newlines,
    };
    let mut out = KeyValues::default();
    while let Some((line, _)) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let number = lines.number;
        match entry(line) {
            Entry::Plain(name, value) => out.pairs.push(Pair {
                name: name.to_string(),
                value: value.to_string(),
                line: number,
            }),
            Entry::Heredoc(name, delimiter) => match heredoc(&mut lines, delimiter) {
                Ok(value) => out.pairs.push(Pair {
                    name: name.to_string(),
                    value,
                    line: number,
                }),
                Err((line, kind)) => {
                    out.error = Some(EnvFileError {
                        line: line.unwrap_or(number),
                        kind,
                    });
                    break;
                }
            },
            Entry::Invalid(kind) => {
                out.error = Some(EnvFileError { line: number, kind });
                break;
            }
        }
    }
    out
}

enum Entry<'a> {
    Plain(&'a str, &'a str),
    Heredoc(&'a str, &'a str),
    Invalid(EnvFileErrorKind),
}

fn entry(line: &str) -> Entry<'_> {
    let equals = line.find('=');
    let heredoc = line.find("<<");
    let invalid = || Entry::Invalid(EnvFileErrorKind::InvalidFormat(line.to_string()));
    match (equals, heredoc) {
        (None, None) => invalid(),
        (None, Some(h)) => header(line, &line[..h], &line[h + 2..]),
        (Some(e), Some(h)) if h < e => header(line, &line[..h], &line[h + 2..]),
        (Some(e), Some(h)) if line[e + 1..h].trim().is_empty() => {
            header(line, &line[..e], &line[h + 2..])
        }
        (Some(e), None) => Entry::Plain(&line[..e], &line[e + 1..]),
        (Some(e), Some(h)) if line[h + 2..].starts_with(char::is_whitespace) => {
            Entry::Plain(&line[..e], &line[e + 1..])
        }
        (Some(_), Some(_)) => invalid(),
    }
}

fn header<'a>(line: &str, name: &'a str, delimiter: &'a str) -> Entry<'a> {
    let name = name.trim();
    if name.is_empty() || delimiter.is_empty() {
        Entry::Invalid(EnvFileErrorKind::EmptyNameOrDelimiter(line.to_string()))
    } else {
        Entry::Heredoc(name, delimiter)
    }
}

type HeredocError = (Option<usize>, EnvFileErrorKind);

/// Reads a heredoc's body up to its delimiter line. The body keeps its inner line breaks but
/// not the one before the delimiter.
fn heredoc(lines: &mut Lines<'_>, delimiter: &str) -> Result<String, HeredocError> {
    let start = lines.index;
    let mut end = start;
    loop {
        let Some((line, newline)) = lines.next() else {
            return Err((
                None,
                EnvFileErrorKind::DelimiterNotFound(delimiter.to_string()),
            ));
        };
        if line == delimiter {
            break;
        }
        let Some(newline) = newline else {
            return Err((Some(lines.number), EnvFileErrorKind::MissingNewline));
        };
        end = lines.index - newline.len();
    }
    Ok(lines.text[start..end.max(start)].to_string())
}

/// What a `GITHUB_ENV` file sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvUpdates {
    /// Variables to set, in file order (a later entry for a name wins).
    pub set: Vec<Pair>,
    /// Entries refused by name; each is an error annotation, the step carries on.
    pub blocked: Vec<Blocked>,
    /// The malformed entry that stopped the file; the step fails.
    pub error: Option<EnvFileError>,
}

/// A `GITHUB_ENV` entry for a blocked name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The block list's spelling, which GitHub's message uses whatever the file wrote.
    pub name: &'static str,
    pub line: usize,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Can't store {} output parameter using '$GITHUB_ENV' command.",
            self.name
        )
    }
}

/// Parses a `GITHUB_ENV` file and applies the block list.
pub fn parse_env(text: &str, newlines: Newlines) -> EnvUpdates {
    let KeyValues { pairs, error } = parse_key_values(text, newlines);
    let mut out = EnvUpdates {
        error,
        ..EnvUpdates::default()
    };
    for pair in pairs {
        match BLOCKED_ENV_NAMES
            .iter()
            .find(|b| hearth_expr::eq_ignore_case(b, &pair.name))
        {
            Some(name) => out.blocked.push(Blocked {
                name,
                line: pair.line,
            }),
            None => out.set.push(pair),
        }
    }
    out
}

/// The paths in a `GITHUB_PATH` file, in file order: lines end at CRLF, LF or a lone CR (the
/// runner's `File.ReadAllLines`), and empty lines are skipped. Whitespace is kept.
pub fn parse_path_file(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        if end > 0 {
            out.push(rest[..end].to_string());
        }
        rest = &rest[end..];
        rest = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix(['\r', '\n']))
            .unwrap_or(rest);
    }
    out
}

/// The directories a job has added to PATH (`GITHUB_PATH`, or `add-path` where allowed).
///
/// Adding a directory moves it to the front, dropping an earlier copy (compared exactly), so
/// the last directory added is searched first: a file listing `a` then `b` gives `b:a:$PATH`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrependPath {
    /// Oldest first, as GitHub keeps the list.
    added: Vec<String>,
}

impl PrependPath {
    pub fn new() -> Self {
        PrependPath::default()
    }

    /// Adds one directory in front of all earlier ones.
    pub fn add(&mut self, path: &str) {
        self.added.retain(|p| p != path);
        self.added.push(path.to_string());
    }

    /// Adds a `GITHUB_PATH` file's paths, in file order.
    pub fn add_file(&mut self, text: &str) {
        for path in parse_path_file(text) {
            self.add(&path);
        }
    }

    /// The directories in the order they go into PATH: newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &str> {
        self.added.iter().rev().map(String::as_str)
    }

    /// The PATH a step sees: these directories, then `original` (omitted when empty), joined
    /// with `separator` (`:`, or `;` on Windows).
    pub fn prepend_to(&self, original: &str, separator: char) -> String {
        let mut parts: Vec<&str> = self.newest_first().collect();
        if !original.is_empty() {
            parts.push(original);
        }
        parts.join(&separator.to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
    }
}

/// What to do with a step summary of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepSummary {
    /// The file is empty: nothing to upload.
    Empty,
    /// Upload it (after masking secrets in it).
    Upload,
}

/// A step summary over [`STEP_SUMMARY_LIMIT`]. GitHub logs this error and uploads nothing; the
/// step's result is not changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of {}k, got {}k. For more information see: https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-markdown-summary", STEP_SUMMARY_LIMIT / 1024, .size / 1024)]
pub struct StepSummaryTooLarge {
    /// The file's size in bytes.
    pub size: u64,
}

/// Checks a `GITHUB_STEP_SUMMARY` file's size in bytes against GitHub's limit.
pub fn check_step_summary(size: u64) -> Result<StepSummary, StepSummaryTooLarge> {
    match size {
        0 => Ok(StepSummary::Empty),
        s if s > STEP_SUMMARY_LIMIT => Err(StepSummaryTooLarge { size: s }),
        _ => Ok(StepSummary::Upload),
    }
}

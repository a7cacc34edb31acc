//! Workflow commands in a step's output: `::name key=value,...::message` lines (and the older
//! `##[name key=value;...]message` form) that a step prints to talk to the runner.
//!
//! [`CommandParser`] is fed one output line at a time, without its line break, and says whether
//! the line is plain output or a command, and what the command asks for. It is stateful because
//! GitHub's runner is: `::stop-commands::TOKEN` turns command processing off until `::TOKEN::`,
//! and `::echo::on|off` decides whether later command lines are echoed into the log. One parser
//! serves one step, as GitHub makes one command manager per step.
//!
//! Parsing follows GitHub's runner (`ActionCommand.TryParseV2`, then `TryParse`, then
//! `ActionCommandManager.TryProcessCommand`) rule by rule, quirks included:
//!
//! - A line is a command only if it names a *registered* command; anything else, `::foo::bar`
//!   included, is plain output and stays in the log untouched.
//! - Command and property names are case-insensitive (`.NET`'s `OrdinalIgnoreCase`).
//! - The `::` form may be preceded by whitespace; the `##[` form may start anywhere in the line.
//! - Properties are split on `,` (`;` in the `##[` form), empty pieces are dropped, and each
//!   piece is split on its first `=` the way .NET's `Split('=', 2, RemoveEmptyEntries)` does: a
//!   property with an empty name or an empty value is dropped, and `=` right after the first
//!   one is skipped (`a==b` means `a` is `b`).
//! - Escapes are undone by plain sequential replacement, case-sensitively: the message undoes
//!   `%0D`, `%0A`, `%25`; property values also `%3A` (`:`) and `%2C` (`,`); the `##[` form
//!   undoes `%3B` (`;`), `%0D`, `%0A`, `%5D` (`]`), `%25` in both places.
//!
//! Where .NET's culture-sensitive `StartsWith`/`IndexOf` would treat zero-width characters as
//! ignorable, this module compares ordinally; no real output depends on that difference.
//!
//! What the engine does with a command (log it, mask, set outputs, fail the step) is its own
//! business; each [`Processed`] carries what it needs, including GitHub's exact messages.

use hearth_expr::eq_ignore_case;

/// The variable that re-enables `set-env` and `add-path` (read with .NET's `bool.TryParse`, see
/// [`dotnet_bool`]), from the runner's environment first and then from the step's `env` context.
pub const ALLOW_UNSECURE_COMMANDS: &str = "ACTIONS_ALLOW_UNSECURE_COMMANDS";

/// The variable that lets `::stop-commands::` take a token GitHub otherwise refuses (read with
/// the runner's `ConvertToBoolean`, see [`convert_to_boolean`]), process environment first and
/// then the step's `env` context.
pub const ALLOW_UNSECURE_STOP_COMMAND_TOKENS: &str = "ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS";

/// The commands GitHub's runner registers. A line naming anything else is not a command.
/// (`internal-set-repo-path` is registered only while a runner plugin runs, so never here.)
const REGISTERED: [&str; 15] = [
    "stop-commands",
    "set-env",
    "set-output",
    "save-state",
    "add-mask",
    "add-path",
    "add-matcher",
    "remove-matcher",
    "debug",
    "warning",
    "error",
    "notice",
    "group",
    "endgroup",
    "echo",
];

/// Names `set-env` refuses (compared case-insensitively), as GitHub's `_setEnvBlockList`.
pub const SET_ENV_BLOCKED_NAMES: &[&str] = &["NODE_OPTIONS"];

/// How a parser starts out; the engine fills it from the job and step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParserOptions {
    /// Whether command lines are echoed into the log at first. GitHub starts with echo on
    /// exactly when step debug logging (`ACTIONS_STEP_DEBUG`) is on.
    pub echo: bool,
    /// [`ALLOW_UNSECURE_COMMANDS`] is true: `set-env` and `add-path` work.
    pub allow_unsecure_commands: bool,
    /// [`ALLOW_UNSECURE_STOP_COMMAND_TOKENS`] is true: any `stop-commands` token is accepted.
    pub allow_unsecure_stop_tokens: bool,
}

/// What one output line turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Not a command (or commands are stopped): the line goes to the log (and to problem
    /// matchers) as it is.
    Output,
    /// A command. The line itself is consumed; only [`Processed::echo`] reaches the log.
    Command(Processed),
}

/// A recognised command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processed {
    /// What GitHub writes to the log for the line before acting on it: the line itself when
    /// echoing is on and the command is not one GitHub keeps quiet (`add-mask`, `debug`,
    /// `error`, `warning`, `notice`), `::add-mask::***` for a mask while echoing, and always the
    /// line for `stop-commands` and the resume token.
    pub echo: Option<String>,
    /// GitHub's deprecation warning for `set-output` and `save-state`, logged as a warning
    /// whether or not the command then works.
    pub deprecation: Option<String>,
    /// What the command asks for, or why GitHub refuses it.
    pub outcome: Result<Command, CommandError>,
}

/// What a command asks the engine to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Mask this value in all later output (never empty or all whitespace).
    AddMask(String),
    /// Open a collapsible group; GitHub logs it as `##[group]TITLE`.
    Group(String),
    /// Close the group; GitHub logs `##[endgroup]`.
    EndGroup,
    /// An error, warning or notice annotation.
    Annotation(Annotation),
    /// A debug message, shown only with step debug logging.
    Debug(String),
    /// Echoing of command lines is now on or off (the parser already applies it).
    Echo(bool),
    /// The legacy output command (deprecated, still honoured).
    SetOutput { name: String, value: String },
    /// The legacy state command (deprecated, still honoured).
    SaveState { name: String, value: String },
    /// The legacy environment command; only produced when unsecure commands are allowed.
    SetEnv { name: String, value: String },
    /// The legacy path command; only produced when unsecure commands are allowed.
    AddPath(String),
    /// Load the problem matchers in this file (a path as the step saw it).
    AddMatcher(String),
    /// Remove problem matchers by owner or by the file that defined them.
    RemoveMatcher(MatcherRef),
    /// Commands are off until a line names `token` as its command. GitHub also masks the token
    /// when it is longer than six UTF-16 units (`mask`), so it cannot be read back from the log.
    StopCommands { token: String, mask: bool },
    /// The resume token arrived; commands work again.
    ResumeCommands { token: String },
    /// GitHub accepts the line but only logs this issue; the step is not failed.
    Ignored(Issue),
}

/// Which problem matchers `remove-matcher` removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatcherRef {
    Owner(String),
    File(String),
}

/// A message GitHub logs as an annotation without failing the step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub level: Level,
    pub message: String,
}

pub use hearth_events::Level;

/// An `::error`, `::warning` or `::notice` annotation, after GitHub's line/column checks.
///
/// Numbers are read as .NET's `int.TryParse` reads them (surrounding ASCII whitespace, a sign,
/// 32-bit range); one that does not parse is left out. `file` is as the step wrote it: making it
/// relative to the workspace (and mapping container paths) is the engine's job, as it is the
/// runner's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub message: String,
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<i32>,
    pub end_line: Option<i32>,
    pub column: Option<i32>,
    pub end_column: Option<i32>,
}

/// Why GitHub refuses a command. `Display` is GitHub's exact text for the log.
///
/// Except for [`CommandError::InvalidStopToken`], GitHub logs two errors,
/// [`CommandError::unable_to_process`] and then this message, and the step fails when it ends.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// `set-env` or `add-path` without [`ALLOW_UNSECURE_COMMANDS`] (CVE-2020-15228).
    #[error("The `{0}` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/")]
    Disabled(&'static str),
    /// `set-env`, `set-output` or `save-state` without a non-empty `name` property.
    #[error("Required field 'name' is missing in ##[{0}] command.")]
    MissingName(&'static str),
    /// `add-path` (parameter `path`) or `echo` (parameter `value`) with an empty message;
    /// GitHub's text is .NET's `ArgumentNullException`.
    #[error("Value cannot be null. (Parameter '{0}')")]
    EmptyValue(&'static str),
    /// `echo` with something other than `on` or `off`.
    #[error(
        "Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: '{0}'."
    )]
    InvalidEcho(String),
    /// `stop-commands` with an empty token, `pause-logging`, or the name of a command. GitHub
    /// throws this out of its command manager: nothing is echoed, commands stay on, and the
    /// step fails.
    #[error("You cannot use a endToken that is an empty string, the string 'pause-logging', or another workflow command. For more information see: https://docs.github.com/actions/learn-github-actions/workflow-commands-for-github-actions#example-stopping-and-starting-workflow-commands or opt into insecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` environment variable to `true`.")]
    InvalidStopToken(String),
}

impl CommandError {
    /// GitHub's first error line for a refused command, naming the whole command line; `None`
    /// for an invalid stop token, which GitHub reports with its message alone.
    pub fn unable_to_process(&self, line: &str) -> Option<String> {
        match self {
            CommandError::InvalidStopToken(_) => None,
            _ => Some(format!("Unable to process command '{line}' successfully.")),
        }
    }
}

/// GitHub's warning for the deprecated `set-output` and `save-state` commands.
pub fn deprecation_warning(command: &str) -> String {
    format!(
        "The `{command}` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
    )
}

/// .NET's `bool.TryParse`: `true`/`false` in any case, surrounded by whitespace or NULs.
pub fn dotnet_bool(value: &str) -> Option<bool> {
    let value = value.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The runner's `StringUtil.ConvertToBoolean` with its default of false: `1`, `true` and
/// `$true` (any case) are true, anything else false.
pub fn convert_to_boolean(value: &str) -> bool {
    ["1", "true", "$true"]
        .iter()
        .any(|t| value.eq_ignore_ascii_case(t))
}

/// The workflow-command state of one step. See the module documentation.
#[derive(Clone, Debug)]
pub struct CommandParser {
    options: ParserOptions,
    echo: bool,
    /// The resume token while commands are stopped.
    stopped: Option<String>,
    /// A token registered as a command while stopped (when it is not a command already).
    extra: Option<String>,
    /// Registered commands a resume removed: GitHub drops the token from its command set on
    /// resume, even when an allowed unsecure token was a real command's name.
    removed: Vec<&'static str>,
}

impl CommandParser {
    pub fn new(options: ParserOptions) -> Self {
        CommandParser {
            options,
            echo: options.echo,
            stopped: None,
            extra: None,
            removed: Vec::new(),
        }
    }

    /// Whether command lines are echoed now.
    pub fn echo(&self) -> bool {
        self.echo
    }

    /// The token that resumes commands, while they are stopped.
    pub fn stop_token(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Classifies one output line (without its line break) and updates the state.
    pub fn feed(&mut self, line: &str) -> Line {
        let Some(raw) = self.parse(line) else {
            return Line::Output;
        };

        if let Some(token) = &self.stopped {
            if !token.is_empty() && eq_ignore_case(&raw.name, token) {
                let token = token.clone();
                self.unregister(&token);
                self.stopped = None;
                return Line::Command(Processed {
                    echo: Some(line.to_string()),
                    deprecation: None,
                    outcome: Ok(Command::ResumeCommands { token }),
                });
            }
            return Line::Output;
        }

        if eq_ignore_case(&raw.name, "stop-commands") {
            return Line::Command(self.stop(line, raw.data));
        }

        let Some(name) = canonical(&raw.name) else {
            // Only a resume token can be registered without being a command, and it is handled
            // above; GitHub would warn that it has no handler for it.
            return Line::Command(Processed {
                echo: None,
                deprecation: None,
                outcome: Ok(Command::Ignored(Issue {
                    level: Level::Warning,
                    message: format!("Can't find command extension for ##[{}.command].", raw.name),
                })),
            });
        };
        let echo = (self.echo && !omits_echo(name)).then(|| line.to_string());
        let deprecation =
            matches!(name, "set-output" | "save-state").then(|| deprecation_warning(name));
        let outcome = self.process(name, raw);
        let echo = match &outcome {
            Ok(Command::AddMask(_)) if self.echo => Some("::add-mask::***".to_string()),
            _ => echo,
        };
        if let Ok(Command::Echo(on)) = outcome {
            self.echo = on;
        }
        Line::Command(Processed {
            echo,
            deprecation,
            outcome,
        })
    }

    fn stop(&mut self, line: &str, token: String) -> Processed {
        let invalid = token.is_empty()
            || self.is_registered(&token)
            || eq_ignore_case(&token, "pause-logging");
        if invalid && !self.options.allow_unsecure_stop_tokens {
            return Processed {
                echo: None,
                deprecation: None,
                outcome: Err(CommandError::InvalidStopToken(token)),
            };
        }
        if !self.is_registered(&token) {
            self.extra = Some(token.clone());
        }
        self.stopped = Some(token.clone());
        let mask = token.encode_utf16().count() > 6;
        Processed {
            echo: Some(line.to_string()),
            deprecation: None,
            outcome: Ok(Command::StopCommands { token, mask }),
        }
    }

    fn process(&self, name: &'static str, raw: Raw) -> Result<Command, CommandError> {
        let Raw {
            properties, data, ..
        } = raw;
        let prop = |key: &str| {
            properties
                .iter()
                .find(|(k, _)| eq_ignore_case(k, key))
                .map(|(_, v)| v.clone())
        };
        let named = |command: &'static str| {
            prop("name")
                .filter(|n| !n.is_empty())
                .ok_or(CommandError::MissingName(command))
        };
        Ok(match name {
            "add-mask" if data.trim().is_empty() => Command::Ignored(Issue {
                level: Level::Warning,
                message: "Can't add secret mask for empty string in ##[add-mask] command.".into(),
            }),
            "add-mask" => Command::AddMask(data),
            "group" => Command::Group(data),
            "endgroup" => Command::EndGroup,
            "debug" => Command::Debug(data),
            "error" => Command::Annotation(annotation(Level::Error, data, &prop)),
            "warning" => Command::Annotation(annotation(Level::Warning, data, &prop)),
            "notice" => Command::Annotation(annotation(Level::Notice, data, &prop)),
            "echo" => {
                if data.is_empty() {
                    return Err(CommandError::EmptyValue("value"));
                }
                match data.trim() {
                    t if t.eq_ignore_ascii_case("on") => Command::Echo(true),
                    t if t.eq_ignore_ascii_case("off") => Command::Echo(false),
                    _ => return Err(CommandError::InvalidEcho(data)),
                }
            }
            "set-output" => Command::SetOutput {
                name: named("set-output")?,
                value: data,
            },
            "save-state" => Command::SaveState {
                name: named("save-state")?,
                value: data,
            },
            "set-env" => {
                if !self.options.allow_unsecure_commands {
                    return Err(CommandError::Disabled("set-env"));
                }
                let env_name = named("set-env")?;
                match SET_ENV_BLOCKED_NAMES
                    .iter()
                    .find(|b| eq_ignore_case(b, &env_name))
                {
                    Some(blocked) => Command::Ignored(Issue {
                        level: Level::Error,
                        message: format!(
                            "Can't update {blocked} environment variable using ::set-env:: command."
                        ),
                    }),
                    None => Command::SetEnv {
                        name: env_name,
                        value: data,
                    },
                }
            }
            "add-path" => {
                if !self.options.allow_unsecure_commands {
                    return Err(CommandError::Disabled("add-path"));
                }
                if data.is_empty() {
                    return Err(CommandError::EmptyValue("path"));
                }
                Command::AddPath(data)
            }
            "add-matcher" if data.is_empty() => Command::Ignored(Issue {
                level: Level::Warning,
                message: "File path must be specified.".into(),
            }),
            "add-matcher" => Command::AddMatcher(data),
            "remove-matcher" => match (prop("owner").filter(|o| !o.is_empty()), data.is_empty()) {
                (Some(_), false) => Command::Ignored(Issue {
                    level: Level::Warning,
                    message: "Either specify an owner name or a file path in ##[remove-matcher] command. Both values cannot be set.".into(),
                }),
                (None, true) => Command::Ignored(Issue {
                    level: Level::Warning,
                    message: "Either an owner name or a file path must be specified in ##[remove-matcher] command.".into(),
                }),
                (Some(owner), true) => Command::RemoveMatcher(MatcherRef::Owner(owner)),
                (None, false) => Command::RemoveMatcher(MatcherRef::File(data)),
            },
            // `stop-commands` is handled before; every other registered name is above.
            _ => Command::Ignored(Issue {
                level: Level::Warning,
                message: format!("Can't find command extension for ##[{name}.command]."),
            }),
        })
    }

    /// `TryParseV2`, then the legacy `TryParse`, against the current command set.
    fn parse(&self, line: &str) -> Option<Raw> {
        if line.is_empty() {
            return None;
        }
        self.parse_v2(line).or_else(|| self.parse_legacy(line))
    }

    fn parse_v2(&self, line: &str) -> Option<Raw> {
        let rest = line.trim_start().strip_prefix("::")?;
        let end = rest.find("::")?;
        let info = &rest[..end];
        let (name, props) = split_name(info);
        if !self.is_registered(name) {
            return None;
        }
        let properties = match props {
            Some(p) => properties(p.trim(), ',', unescape_property),
            None => Vec::new(),
        };
        Some(Raw {
            name: name.to_string(),
            properties,
            data: unescape_data(&rest[end + 2..]),
        })
    }

    fn parse_legacy(&self, line: &str) -> Option<Raw> {
        let start = line.find("##[")?;
        let close = start + line[start..].find(']')?;
        let info = &line[start + 3..close];
        let (name, props) = split_name(info);
        if !self.is_registered(name) {
            return None;
        }
        let properties = match props {
            Some(p) => properties(p, ';', unescape_legacy),
            None => Vec::new(),
        };
        Some(Raw {
            name: name.to_string(),
            properties,
            data: unescape_legacy(&line[close + 1..]),
        })
    }

    fn is_registered(&self, name: &str) -> bool {
        self.extra
            .as_deref()
            .is_some_and(|e| eq_ignore_case(e, name))
            || REGISTERED
                .iter()
                .any(|r| eq_ignore_case(r, name) && !self.removed.contains(r))
    }

    fn unregister(&mut self, name: &str) {
        if self
            .extra
            .as_deref()
            .is_some_and(|e| eq_ignore_case(e, name))
        {
            self.extra = None;
        } else if let Some(r) = REGISTERED.iter().find(|r| eq_ignore_case(r, name)) {
            self.removed.push(r);
        }
    }
}

/// The registered spelling of a command name.
fn canonical(name: &str) -> Option<&'static str> {
    REGISTERED.iter().find(|r| eq_ignore_case(r, name)).copied()
}

/// A parsed command line before its command is interpreted.
#[derive(Debug)]
struct Raw {
    name: String,
    properties: Vec<(String, String)>,
    data: String,
}

/// Commands whose line GitHub never echoes (`OmitEcho`): masks, debug and annotations.
fn omits_echo(name: &str) -> bool {
    matches!(name, "add-mask" | "debug" | "error" | "warning" | "notice")
}

/// The command name is everything up to the first space; the properties follow it.
fn split_name(info: &str) -> (&str, Option<&str>) {
    match info.find(' ') {
        // A leading space gives an empty name, which GitHub never looks past.
        Some(0) => ("", None),
        Some(i) => (&info[..i], Some(&info[i + 1..])),
        None => (info, None),
    }
}

/// Properties split on `separator`, later duplicates (any case) overriding earlier ones.
fn properties(text: &str, separator: char, unescape: fn(&str) -> String) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for piece in text.split(separator).filter(|p| !p.is_empty()) {
        let Some((key, value)) = split_pair(piece) else {
            continue;
        };
        let value = unescape(value);
        match out.iter_mut().find(|(k, _)| eq_ignore_case(k, key)) {
            Some(existing) => existing.1 = value,
            None => out.push((key.to_string(), value)),
        }
    }
    out
}

/// .NET's `piece.Split('=', 2, StringSplitOptions.RemoveEmptyEntries)` when it yields two parts.
fn split_pair(piece: &str) -> Option<(&str, &str)> {
    let (key, rest) = piece.trim_start_matches('=').split_once('=')?;
    let value = rest.trim_start_matches('=');
    (!value.is_empty()).then_some((key, value))
}

fn replace_all(text: &str, mappings: &[(&str, &str)]) -> String {
    mappings
        .iter()
        .fold(text.to_string(), |acc, (from, to)| acc.replace(from, to))
}

fn unescape_data(text: &str) -> String {
    replace_all(text, &[("%0D", "\r"), ("%0A", "\n"), ("%25", "%")])
}

fn unescape_property(text: &str) -> String {
    replace_all(
        text,
        &[
            ("%0D", "\r"),
            ("%0A", "\n"),
            ("%3A", ":"),
            ("%2C", ","),
            ("%25", "%"),
        ],
    )
}

fn unescape_legacy(text: &str) -> String {
    replace_all(
        text,
        &[
            ("%3B", ";"),
            ("%0D", "\r"),
            ("%0A", "\n"),
            ("%5D", "]"),
            ("%25", "%"),
        ],
    )
}

/// .NET's `int.TryParse` with its default `NumberStyles.Integer`.
fn dotnet_int(text: &str) -> Option<i32> {
    let text =
        text.trim_matches(|c: char| matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' '));
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Builds an annotation, applying GitHub's `ValidateLinesAndColumns`: an end without a start
/// becomes the start, columns need a line, columns are dropped for a multi-line range, and an
/// end before its start drops the pair. Comparisons use the raw texts and the numbers as first
/// parsed (0 when absent), as GitHub's do.
fn annotation(level: Level, message: String, prop: &dyn Fn(&str) -> Option<String>) -> Annotation {
    let mut line = prop("line");
    let mut end_line = prop("endLine");
    let mut col = prop("col");
    let mut end_col = prop("endColumn");

    let parsed = |v: &Option<String>| v.as_deref().and_then(dotnet_int);
    let (line_n, end_line_n) = (parsed(&line), parsed(&end_line));
    let (col_n, end_col_n) = (parsed(&col), parsed(&end_col));
    let mut has_line = line_n.is_some();
    let has_end_line = end_line_n.is_some();
    let mut has_col = col_n.is_some();
    let has_end_col = end_col_n.is_some();
    let has_column = has_col || has_end_col;

    if has_end_line && !has_line {
        line = end_line.clone();
        has_line = true;
    }
    if has_end_col && !has_col {
        col = end_col.clone();
        has_col = true;
    }
    if !has_line && has_column {
        col = None;
        end_col = None;
    }
    if has_end_line && line != end_line && has_column {
        col = None;
        end_col = None;
    }
    if has_line && has_end_line && end_line_n.unwrap_or(0) < line_n.unwrap_or(0) {
        line = None;
        end_line = None;
    }
    if has_col && has_end_col && end_col_n.unwrap_or(0) < col_n.unwrap_or(0) {
        col = None;
        end_col = None;
    }

    Annotation {
        level,
        message,
        title: prop("title"),
        file: prop("file"),
        line: parsed(&line),
        end_line: parsed(&end_line),
        column: parsed(&col),
        end_column: parsed(&end_col),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pair_follows_dotnet() {
        assert_eq!(split_pair("a=b"), Some(("a", "b")));
        assert_eq!(split_pair("a==b"), Some(("a", "b")));
        assert_eq!(split_pair("a=b==c"), Some(("a", "b==c")));
        assert_eq!(split_pair("==a=b"), Some(("a", "b")));
        assert_eq!(split_pair("a="), None);
        assert_eq!(split_pair("a=="), None);
        assert_eq!(split_pair("=a"), None);
        assert_eq!(split_pair("a"), None);
    }

    #[test]
    fn dotnet_int_accepts_what_int_tryparse_does() {
        assert_eq!(dotnet_int(" 12 "), Some(12));
        assert_eq!(dotnet_int("+3"), Some(3));
        assert_eq!(dotnet_int("-3"), Some(-3));
        assert_eq!(dotnet_int("2147483647"), Some(i32::MAX));
        assert_eq!(dotnet_int("2147483648"), None);
        assert_eq!(dotnet_int("1.0"), None);
        assert_eq!(dotnet_int("0x1"), None);
        assert_eq!(dotnet_int(""), None);
        assert_eq!(dotnet_int("+"), None);
        assert_eq!(dotnet_int("١"), None);
    }

    #[test]
    fn booleans_read_as_the_runner_reads_them() {
        assert_eq!(dotnet_bool(" True "), Some(true));
        assert_eq!(dotnet_bool("FALSE"), Some(false));
        assert_eq!(dotnet_bool("1"), None);
        assert!(convert_to_boolean("1"));
        assert!(convert_to_boolean("$TRUE"));
        assert!(!convert_to_boolean(" true"));
        assert!(!convert_to_boolean("yes"));
    }
}

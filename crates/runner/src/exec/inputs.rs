//! act's value flags and files: `--secret`, `--var`, `--env`, `--input`, their `--*-file`
//! counterparts, and the `--matrix` filter.
//!
//! Each kind of value feeds one expression context (`secrets`, `vars`, `env`, `inputs`). The
//! values come from dotenv files first, then from the flags, a flag overriding a file value
//! of the same name. When no file is named, the kind's default file in the working directory
//! (`.secrets`, `.vars`, `.env`, `.input`, act's defaults) is read if it exists.
//!
//! The functions take the raw strings the flags gave, so they know nothing of the argument
//! parser.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};
use thiserror::Error;

/// Values by name, in the order their names first appeared (files first, then flags).
pub type Values = IndexMap<String, String>;

/// The kind of a value: which context it feeds and how its flags behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Secret,
    Var,
    Env,
    Input,
}

impl Kind {
    /// The flag giving one value, for messages.
    pub fn flag(self) -> &'static str {
        match self {
            Kind::Secret => "--secret",
            Kind::Var => "--var",
            Kind::Env => "--env",
            Kind::Input => "--input",
        }
    }

    /// The flag naming a file of values, for messages.
    pub fn file_flag(self) -> &'static str {
        match self {
            Kind::Secret => "--secret-file",
            Kind::Var => "--var-file",
            Kind::Env => "--env-file",
            Kind::Input => "--input-file",
        }
    }

    /// act's default file, read from the working directory when no file flag is given.
    pub fn default_file(self) -> &'static str {
        match self {
            Kind::Secret => ".secrets",
            Kind::Var => ".vars",
            Kind::Env => ".env",
            Kind::Input => ".input",
        }
    }

    /// Secrets and variables have case-insensitive names on the forges, which store them
    /// upper-case (act upper-cases `--secret` and `--var` names too), so `-s token=…` and a
    /// `TOKEN` line in `.secrets` are the same secret.
    fn upper_case_names(self) -> bool {
        matches!(self, Kind::Secret | Kind::Var)
    }

    /// act reads a `--secret NAME` or `--var NAME` without `=VALUE` from the environment
    /// variable NAME (it would then prompt; Hearth fails instead). `--env NAME` and
    /// `--input NAME` give an empty value, as in act.
    fn reads_bare_name_from_environment(self) -> bool {
        matches!(self, Kind::Secret | Kind::Var)
    }
}

/// Why the values cannot be read. Messages never include a value, which may be a secret.
#[derive(Debug, Error)]
pub enum InputError {
    #[error("{flag} needs NAME=VALUE, but the name is empty")]
    EmptyName { flag: &'static str },
    #[error(
        "{flag} {name} has no value and the environment variable {name} is not set or empty; \
         pass {flag} {name}=VALUE or set {name}"
    )]
    MissingEnvironment { flag: &'static str, name: String },
    #[error("{} (from {flag}): file not found", path.display())]
    FileNotFound { flag: &'static str, path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: the file is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    #[error("{}:{line}:{column}: not a valid dotenv line (expected NAME=VALUE)", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error("--matrix {arg:?}: expected KEY:VALUE, as in --matrix node:20")]
    MatrixSyntax { arg: String },
    #[error("--matrix {arg:?}: the key is empty, expected KEY:VALUE")]
    MatrixEmptyKey { arg: String },
}

/// The raw values of every value flag, as the argument parser collected them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValueFlags {
    pub secrets: Vec<String>,
    pub secret_files: Vec<String>,
    pub vars: Vec<String>,
    pub var_files: Vec<String>,
    pub envs: Vec<String>,
    pub env_files: Vec<String>,
    pub inputs: Vec<String>,
    pub input_files: Vec<String>,
}

/// The values for the `secrets`, `vars`, `env` and `inputs` contexts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextValues {
    pub secrets: Values,
    pub vars: Values,
    pub env: Values,
    pub inputs: Values,
}

impl ValueFlags {
    /// Reads every kind of value, files relative to `workdir`, bare names from the process
    /// environment.
    pub fn load(&self, workdir: &Path) -> Result<ContextValues, InputError> {
        self.load_with_env(workdir, &|name| std::env::var(name).ok())
    }

    /// [`ValueFlags::load`] with the environment given by `env`, so that tests need not
    /// change the process environment.
    pub fn load_with_env(
        &self,
        workdir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ContextValues, InputError> {
        Ok(ContextValues {
            secrets: load_with_env(
                Kind::Secret,
                &self.secrets,
                &self.secret_files,
                workdir,
                env,
            )?,
            vars: load_with_env(Kind::Var, &self.vars, &self.var_files, workdir, env)?,
            env: load_with_env(Kind::Env, &self.envs, &self.env_files, workdir, env)?,
            inputs: load_with_env(Kind::Input, &self.inputs, &self.input_files, workdir, env)?,
        })
    }
}

/// The values of one kind: `files` (or the default file when `files` is empty), then `flags`
/// (`NAME=VALUE` or `NAME`), later ones overriding earlier ones. Bare names are read with
/// `env` (the process environment, or a test's).
pub fn load_with_env(
    kind: Kind,
    flags: &[String],
    files: &[String],
    workdir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Values, InputError> {
    let mut values = Values::new();
    for (name, value) in read_files(kind, files, workdir)? {
        insert(kind, &mut values, name, value);
    }
    for flag in flags {
        let (name, value) = parse_flag(kind, flag, env)?;
        insert(kind, &mut values, name, value);
    }
    Ok(values)
}

/// Adds one value, keeping the position of an earlier value of the same name.
fn insert(kind: Kind, values: &mut Values, name: String, value: String) {
    let name = if kind.upper_case_names() {
        name.to_uppercase()
    } else {
        name
    };
    values.insert(name, value);
}

/// One `NAME=VALUE` or `NAME` flag value. The value is everything after the first `=`, so it
/// may contain `=` itself.
fn parse_flag(
    kind: Kind,
    flag: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, String), InputError> {
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (flag, None),
    };
    if name.trim().is_empty() {
        return Err(InputError::EmptyName { flag: kind.flag() });
    }
    let value = match value {
        Some(value) => value.to_owned(),
        None => bare_name_value(kind, name, env)?,
    };
    Ok((name.to_owned(), value))
}

/// The value of a flag given as `NAME` alone.
fn bare_name_value(
    kind: Kind,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InputError> {
    if !kind.reads_bare_name_from_environment() {
        return Ok(String::new());
    }
    match env(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(InputError::MissingEnvironment {
            flag: kind.flag(),
            name: name.to_owned(),
        }),
    }
}

/// The values of the named files in order, or of the default file if none is named.
///
/// A named file must exist; the default file is optional, as in act. An empty file name reads
/// nothing, which is how a user turns the default file off (`--secret-file ''`, as with act).
fn read_files(
    kind: Kind,
    files: &[String],
    workdir: &Path,
) -> Result<Vec<(String, String)>, InputError> {
    if files.is_empty() {
        let path = workdir.join(kind.default_file());
        return Ok(read_dotenv(&path, kind, false)?.unwrap_or_default());
    }
    let mut values = Vec::new();
    for file in files.iter().filter(|file| !file.is_empty()) {
        if let Some(file_values) = read_dotenv(&workdir.join(file), kind, true)? {
            values.extend(file_values);
        }
    }
    Ok(values)
}

/// The entries of a dotenv file, or `None` when an optional file does not exist.
fn read_dotenv(
    path: &Path,
    kind: Kind,
    required: bool,
) -> Result<Option<Vec<(String, String)>>, InputError> {
    let Some(text) = read_text(path, kind, required)? else {
        return Ok(None);
    };
    parse_dotenv(&text, path).map(Some)
}

/// The file's text without a byte order mark, or `None` when an optional file is missing.
fn read_text(path: &Path, kind: Kind, required: bool) -> Result<Option<String>, InputError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return match required {
                true => Err(InputError::FileNotFound {
                    flag: kind.file_flag(),
                    path: path.to_owned(),
                }),
                false => Ok(None),
            };
        }
        Err(source) => {
            return Err(InputError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| InputError::NotText {
        path: path.to_owned(),
    })?;
    Ok(Some(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    }))
}

/// Parses dotenv text with `dotenvy` (quotes, multi-line quoted values, comments, `export`,
/// `$NAME` substitution), in file order; a name given twice keeps its last value.
pub(crate) fn parse_dotenv(text: &str, path: &Path) -> Result<Vec<(String, String)>, InputError> {
    let mut entries = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(entry) => entries.push(entry),
            Err(error) => return Err(dotenv_error(error, text, path)),
        }
    }
    Ok(entries)
}

/// Turns a `dotenvy` error into one naming the file, line and column.
///
/// `dotenvy` reports the text of the logical line (which may span several lines) and a byte
/// index into it, but not where that line is in the file; [`locate`] finds it. The line's
/// text is not repeated in the message: it may hold a secret.
fn dotenv_error(error: dotenvy::Error, text: &str, path: &Path) -> InputError {
    match error {
        dotenvy::Error::LineParse(line, index) => {
            let (line, column) = locate(text, &line, index);
            InputError::Parse {
                path: path.to_owned(),
                line,
                column,
            }
        }
        dotenvy::Error::Io(source) => InputError::Read {
            path: path.to_owned(),
            source,
        },
        other => InputError::Read {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        },
    }
}

/// The 1-based line and column of byte `index` of the logical line `logical` in `text`.
///
/// The logical line starts at the first line start from which `text` continues with it and
/// then ends (the end of the text, a line break, or a `#` where `dotenvy` cut a comment off).
/// An earlier line with the same text would have failed the same way, so the first such
/// place is the one. Falls back to the start of the text if it cannot be found. An index at
/// or past the end (`dotenvy`'s "the text ended inside a quoted value") points at the start
/// of the logical line, where the unterminated value began.
fn locate(text: &str, logical: &str, index: usize) -> (usize, usize) {
    let start = line_starts(text)
        .find(|&start| is_logical_line_at(text, start, logical))
        .unwrap_or(0);
    let within = if index < logical.len() { index } else { 0 };
    let mut offset = (start + within).min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The byte offsets at which the lines of `text` start.
fn line_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1))
}

fn is_logical_line_at(text: &str, start: usize, logical: &str) -> bool {
    let Some(rest) = text[start..].strip_prefix(logical) else {
        return false;
    };
    matches!(rest.chars().next(), None | Some('\n' | '\r' | '#'))
}

/// act's `--matrix KEY:VALUE` filter: only the matrix combinations it allows run.
///
/// Several values for one key are alternatives. As in act, a combination is allowed when each
/// of its keys that the filter names has one of the filter's values; keys the filter names
/// but the combination lacks do not constrain it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatrixFilter {
    allowed: IndexMap<String, Vec<String>>,
}

impl MatrixFilter {
    /// Parses `--matrix` values, each `KEY:VALUE` cut at the first `:` (so `image:node:20`
    /// is the key `image` with the value `node:20`).
    pub fn parse(args: &[String]) -> Result<Self, InputError> {
        let mut filter = MatrixFilter::default();
        for arg in args {
            let (key, value) = parse_matrix_arg(arg)?;
            let values = filter.allowed.entry(key.to_owned()).or_default();
            if !values.iter().any(|known| known == value) {
                values.push(value.to_owned());
            }
        }
        Ok(filter)
    }

    #[cfg(test)]
    /// Whether no `--matrix` was given, so every combination runs.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    #[cfg(test)]
    /// The keys the filter names, so a caller can warn about one no combination has.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.allowed.keys().map(String::as_str)
    }

    /// Whether the combination `matrix` may run.
    pub fn allows(&self, matrix: &Map<String, Value>) -> bool {
        matrix
            .iter()
            .all(|(key, value)| match self.allowed.get(key) {
                Some(allowed) => allowed.iter().any(|wanted| value_matches(value, wanted)),
                None => true,
            })
    }
}

fn parse_matrix_arg(arg: &str) -> Result<(&str, &str), InputError> {
    let Some((key, value)) = arg.split_once(':') else {
        return Err(InputError::MatrixSyntax {
            arg: arg.to_owned(),
        });
    };
    if key.trim().is_empty() {
        return Err(InputError::MatrixEmptyKey {
            arg: arg.to_owned(),
        });
    }
    Ok((key, value))
}

/// Whether a matrix value equals a filter value given as text.
///
/// act compares the value printed with Go's `%v`. Here strings compare exactly, numbers by
/// value (so `node:20` matches `20`, and `python:3.10` matches the `3.10` that YAML read as
/// the number 3.1), booleans as `true`/`false`, null as `null`, and sequences and mappings
/// as compact JSON.
fn value_matches(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(text) => text == wanted,
        Value::Number(number) => number_matches(number, wanted),
        Value::Bool(flag) => wanted == if *flag { "true" } else { "false" },
        Value::Null => wanted == "null",
        // Not `*value == wanted`: that would compare a JSON string with the text.
        Value::Array(_) | Value::Object(_) => {
            serde_json::to_string(value).is_ok_and(|json| json == wanted)
        }
    }
}

fn number_matches(number: &serde_json::Number, wanted: &str) -> bool {
    if number.to_string() == wanted {
        return true;
    }
    match (number.as_f64(), wanted.trim().parse::<f64>()) {
        (Some(have), Ok(want)) => have == want,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tempfile::TempDir;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|value| (*value).to_owned()).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn dir_with(files: &[(&str, &str)]) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn load_in(
        dir: &TempDir,
        kind: Kind,
        flags: &[&str],
        files: &[&str],
    ) -> Result<Values, InputError> {
        load_with_env(kind, &strings(flags), &strings(files), dir.path(), &no_env)
    }

    fn pairs(values: &Values) -> Vec<(&str, &str)> {
        values
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }

    fn parse_text(text: &str) -> Result<Vec<(String, String)>, InputError> {
        parse_dotenv(text, Path::new("test.env"))
    }

    fn parse_ok(text: &str) -> Vec<(String, String)> {
        match parse_text(text) {
            Ok(entries) => entries,
            Err(error) => panic!("{text:?} should parse: {error}"),
        }
    }

    fn entry(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    // --- flags --------------------------------------------------------------------------

    #[test]
    fn flag_value_may_contain_equals() {
        let dir = dir_with(&[]);
        let values = load_in(&dir, Kind::Env, &["A=b=c", "B=", "C==x"], &[]).unwrap();
        assert_eq!(pairs(&values), [("A", "b=c"), ("B", ""), ("C", "=x")]);
    }

    #[test]
    fn flag_with_empty_name_is_an_error() {
        let dir = dir_with(&[]);
        for flag in ["=value", "", " =x"] {
            let error = load_in(&dir, Kind::Secret, &[flag], &[]).unwrap_err();
            assert!(matches!(error, InputError::EmptyName { flag: "--secret" }));
            assert!(!error.to_string().contains("value"), "{error}");
        }
    }

    #[test]
    fn bare_secret_reads_environment() {
        let dir = dir_with(&[]);
        let env = |name: &str| (name == "TOKEN").then(|| "from-env".to_owned());
        let values =
            load_with_env(Kind::Secret, &strings(&["TOKEN"]), &[], dir.path(), &env).unwrap();
        assert_eq!(pairs(&values), [("TOKEN", "from-env")]);
    }

    #[test]
    fn bare_secret_without_environment_is_an_error_naming_it() {
        let dir = dir_with(&[]);
        let error = load_in(&dir, Kind::Secret, &["MY_TOKEN"], &[]).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, InputError::MissingEnvironment { .. }));
        assert!(message.contains("--secret MY_TOKEN"), "{message}");
        assert!(
            message.contains("environment variable MY_TOKEN"),
            "{message}"
        );
    }

    #[test]
    fn bare_secret_with_empty_environment_is_an_error() {
        let dir = dir_with(&[]);
        let env = |_: &str| Some(String::new());
        let result = load_with_env(Kind::Secret, &strings(&["X"]), &[], dir.path(), &env);
        assert!(matches!(result, Err(InputError::MissingEnvironment { .. })));
    }

    #[test]
    fn bare_var_reads_environment() {
        let dir = dir_with(&[]);
        let env = |name: &str| (name == "REGION").then(|| "eu".to_owned());
        let values = load_with_env(Kind::Var, &strings(&["REGION"]), &[], dir.path(), &env);
        assert_eq!(pairs(&values.unwrap()), [("REGION", "eu")]);
        let error = load_in(&dir, Kind::Var, &["REGION"], &[]).unwrap_err();
        assert!(error.to_string().starts_with("--var REGION"), "{error}");
    }

    #[test]
    fn bare_env_and_input_are_empty_like_act() {
        let dir = dir_with(&[]);
        let env = |_: &str| Some("ignored".to_owned());
        for kind in [Kind::Env, Kind::Input] {
            let values = load_with_env(kind, &strings(&["NAME"]), &[], dir.path(), &env);
            assert_eq!(pairs(&values.unwrap()), [("NAME", "")]);
        }
    }

    #[test]
    fn secret_and_var_names_are_upper_cased() {
        let dir = dir_with(&[(".secrets", "token=file\n")]);
        let values = load_in(&dir, Kind::Secret, &["Token=flag"], &[]).unwrap();
        assert_eq!(pairs(&values), [("TOKEN", "flag")]);
        let values = load_in(&dir, Kind::Var, &["region=eu"], &[]).unwrap();
        assert_eq!(pairs(&values), [("REGION", "eu")]);
    }

    #[test]
    fn env_and_input_names_keep_their_case() {
        let dir = dir_with(&[]);
        let values = load_in(&dir, Kind::Env, &["path=a", "PATH=b"], &[]).unwrap();
        assert_eq!(pairs(&values), [("path", "a"), ("PATH", "b")]);
    }

    #[test]
    fn later_flag_overrides_earlier_keeping_position() {
        let dir = dir_with(&[]);
        let values = load_in(&dir, Kind::Input, &["a=1", "b=2", "a=3"], &[]).unwrap();
        assert_eq!(pairs(&values), [("a", "3"), ("b", "2")]);
    }

    // --- files --------------------------------------------------------------------------

    #[test]
    fn default_files_are_read_when_present() {
        let dir = dir_with(&[
            (".secrets", "S=1\n"),
            (".vars", "V=2\n"),
            (".env", "E=3\n"),
            (".input", "I=4\n"),
        ]);
        let values = ValueFlags::default()
            .load_with_env(dir.path(), &no_env)
            .unwrap();
        assert_eq!(pairs(&values.secrets), [("S", "1")]);
        assert_eq!(pairs(&values.vars), [("V", "2")]);
        assert_eq!(pairs(&values.env), [("E", "3")]);
        assert_eq!(pairs(&values.inputs), [("I", "4")]);
    }

    #[test]
    fn missing_default_file_is_fine() {
        let dir = dir_with(&[]);
        let values = ValueFlags::default()
            .load_with_env(dir.path(), &no_env)
            .unwrap();
        assert_eq!(values, ContextValues::default());
    }

    #[test]
    fn missing_named_file_is_an_error_naming_it() {
        let dir = dir_with(&[(".secrets", "S=1\n")]);
        let error = load_in(&dir, Kind::Secret, &[], &["nope.secrets"]).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, InputError::FileNotFound { .. }));
        assert!(message.contains("nope.secrets"), "{message}");
        assert!(message.contains("--secret-file"), "{message}");
    }

    #[test]
    fn named_file_replaces_default_file() {
        let dir = dir_with(&[(".env", "DEFAULT=1\n"), ("other.env", "OTHER=2\n")]);
        let values = load_in(&dir, Kind::Env, &[], &["other.env"]).unwrap();
        assert_eq!(pairs(&values), [("OTHER", "2")]);
    }

    #[test]
    fn empty_file_name_turns_default_off() {
        let dir = dir_with(&[(".env", "DEFAULT=1\n")]);
        let values = load_in(&dir, Kind::Env, &[], &[""]).unwrap();
        assert!(values.is_empty());
    }

    #[test]
    fn absolute_file_path_ignores_workdir() {
        let files = dir_with(&[("abs.env", "A=1\n")]);
        let elsewhere = dir_with(&[]);
        let path = files.path().join("abs.env");
        let path = path.to_str().unwrap();
        let values = load_in(&elsewhere, Kind::Env, &[], &[path]).unwrap();
        assert_eq!(pairs(&values), [("A", "1")]);
    }

    #[test]
    fn later_files_override_earlier_and_flags_override_files() {
        let dir = dir_with(&[("a.env", "X=a\nY=a\n"), ("b.env", "Y=b\nZ=b\n")]);
        let values = load_in(&dir, Kind::Env, &["Z=flag", "W=flag"], &["a.env", "b.env"]);
        assert_eq!(
            pairs(&values.unwrap()),
            [("X", "a"), ("Y", "b"), ("Z", "flag"), ("W", "flag")]
        );
    }

    #[test]
    fn directory_as_file_is_a_read_error() {
        let dir = dir_with(&[]);
        fs::create_dir(dir.path().join(".env")).unwrap();
        let error = load_in(&dir, Kind::Env, &[], &[]).unwrap_err();
        assert!(matches!(error, InputError::Read { .. }), "{error}");
        assert!(error.to_string().contains(".env"), "{error}");
    }

    #[test]
    fn non_utf8_file_is_an_error() {
        let dir = dir_with(&[]);
        fs::write(dir.path().join(".env"), b"A=\xff\n").unwrap();
        let error = load_in(&dir, Kind::Env, &[], &[]).unwrap_err();
        assert!(matches!(error, InputError::NotText { .. }), "{error}");
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let dir = dir_with(&[(".env", "\u{feff}A=1\n")]);
        let values = load_in(&dir, Kind::Env, &[], &[]).unwrap();
        assert_eq!(pairs(&values), [("A", "1")]);
    }

    #[test]
    fn parse_error_names_file_and_line_without_the_value() {
        let dir = dir_with(&[("bad.secrets", "GOOD=1\n# note\n\nnot a line hunter2\n")]);
        let error = load_in(&dir, Kind::Secret, &[], &["bad.secrets"]).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, InputError::Parse { line: 4, .. }),
            "{message}"
        );
        assert!(message.contains("bad.secrets:4:"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    // --- dotenv syntax (dotenvy) ----------------------------------------------------------

    #[test]
    fn dotenv_quotes() {
        let entries = parse_ok("A=\"double quoted\"\nB='single quoted'\nC=plain\n");
        assert_eq!(
            entries,
            [
                entry("A", "double quoted"),
                entry("B", "single quoted"),
                entry("C", "plain")
            ]
        );
    }

    #[test]
    fn dotenv_equals_in_value() {
        assert_eq!(
            parse_ok("URL=https://x/?a=b&c=d\nB='=='\n"),
            [entry("URL", "https://x/?a=b&c=d"), entry("B", "==")]
        );
    }

    #[test]
    fn dotenv_multi_line_values() {
        let text = "KEY=\"-----BEGIN-----\nline two\n-----END-----\"\nNEXT=1\n";
        assert_eq!(
            parse_ok(text),
            [
                entry("KEY", "-----BEGIN-----\nline two\n-----END-----"),
                entry("NEXT", "1")
            ]
        );
        assert_eq!(parse_ok("S='a\nb'\n"), [entry("S", "a\nb")]);
    }

    #[test]
    fn dotenv_escapes_in_double_quotes() {
        assert_eq!(parse_ok(r#"A="a\nb\"c""#), [entry("A", "a\nb\"c")]);
        assert_eq!(parse_ok(r"A='a\nb'"), [entry("A", r"a\nb")]);
    }

    #[test]
    fn dotenv_comments_and_blank_lines() {
        let text = "# leading comment\n\n   # indented comment\nA=1 # trailing\nB=\"x # not a comment\"\nC=#\n";
        assert_eq!(
            parse_ok(text),
            [
                entry("A", "1"),
                entry("B", "x # not a comment"),
                entry("C", "")
            ]
        );
    }

    #[test]
    fn dotenv_export_prefix() {
        assert_eq!(
            parse_ok("export A=1\nexport  B='two'\nexport=3\n"),
            [entry("A", "1"), entry("B", "two"), entry("export", "3")]
        );
    }

    #[test]
    fn dotenv_empty_values_and_spaces() {
        assert_eq!(
            parse_ok("A=\nB = spaced \nC=''\n"),
            [entry("A", ""), entry("B", "spaced"), entry("C", "")]
        );
    }

    #[test]
    fn dotenv_crlf_line_endings() {
        assert_eq!(
            parse_ok("A=1\r\nB=\"2\"\r\n"),
            [entry("A", "1"), entry("B", "2")]
        );
    }

    #[test]
    fn dotenv_substitution_from_earlier_lines() {
        let text = "HEARTH_TEST_BASE_7f3a=/opt\nP=${HEARTH_TEST_BASE_7f3a}/bin\nQ='${HEARTH_TEST_BASE_7f3a}'\n";
        assert_eq!(
            parse_ok(text),
            [
                entry("HEARTH_TEST_BASE_7f3a", "/opt"),
                entry("P", "/opt/bin"),
                entry("Q", "${HEARTH_TEST_BASE_7f3a}")
            ]
        );
    }

    #[test]
    fn dotenv_duplicate_names_last_wins() {
        let dir = dir_with(&[(".vars", "A=1\nB=2\nA=3\n")]);
        let values = load_in(&dir, Kind::Var, &[], &[]).unwrap();
        assert_eq!(pairs(&values), [("A", "3"), ("B", "2")]);
    }

    #[test]
    fn dotenv_line_without_equals_is_an_error_with_line() {
        assert!(matches!(
            parse_text("A=1\nJUSTANAME\n"),
            Err(InputError::Parse { line: 2, .. })
        ));
    }

    #[test]
    fn dotenv_bad_key_is_an_error_with_line() {
        assert!(matches!(
            parse_text("A=1\nB=2\n1BAD=x\n"),
            Err(InputError::Parse {
                line: 3,
                column: 1,
                ..
            })
        ));
    }

    #[test]
    fn dotenv_unterminated_quote_is_an_error() {
        let error = parse_text("A=1\nB=\"never closed\nmore\n").unwrap_err();
        assert!(
            matches!(
                error,
                InputError::Parse {
                    line: 2,
                    column: 1,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().starts_with("test.env:"), "{error}");
    }

    #[test]
    fn dotenv_error_after_multi_line_value_counts_physical_lines() {
        let text = "A=\"one\ntwo\nthree\"\nB=ok\nbroken line\n";
        assert!(matches!(
            parse_text(text),
            Err(InputError::Parse { line: 5, .. })
        ));
    }

    #[test]
    fn dotenv_error_line_is_not_confused_by_an_earlier_prefix() {
        assert!(matches!(
            parse_text("FOO=1\nFOO\n"),
            Err(InputError::Parse { line: 2, .. })
        ));
    }

    #[test]
    fn locate_handles_out_of_range_index() {
        assert_eq!(locate("A=1\nbad", "bad", 99), (2, 1));
        assert_eq!(locate("A=1\nbad", "bad", 2), (2, 3));
        assert_eq!(locate("A=1\né=x", "é=x", 1), (2, 1));
        assert_eq!(locate("", "", 0), (1, 1));
        assert_eq!(locate("x", "not there", 0), (1, 1));
    }

    // --- matrix filter ------------------------------------------------------------------

    fn filter(args: &[&str]) -> MatrixFilter {
        match MatrixFilter::parse(&strings(args)) {
            Ok(filter) => filter,
            Err(error) => panic!("{args:?} should parse: {error}"),
        }
    }

    fn combo(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn empty_filter_allows_everything() {
        let filter = filter(&[]);
        assert!(filter.is_empty());
        assert!(filter.allows(&combo(json!({"node": 20}))));
        assert!(filter.allows(&Map::new()));
    }

    #[test]
    fn matrix_number_matches_as_written() {
        let filter = filter(&["node:20"]);
        assert!(filter.allows(&combo(json!({"node": 20}))));
        assert!(filter.allows(&combo(json!({"node": "20"}))));
        assert!(!filter.allows(&combo(json!({"node": 18}))));
        assert!(!filter.allows(&combo(json!({"node": "20.x"}))));
    }

    #[test]
    fn matrix_float_matches_by_value() {
        let filter = filter(&["python:3.10"]);
        assert!(filter.allows(&combo(json!({"python": 3.1}))));
        assert!(filter.allows(&combo(json!({"python": "3.10"}))));
        assert!(!filter.allows(&combo(json!({"python": "3.1"}))));
        assert!(filter_allows(&["v:1"], json!({"v": 1.0})));
    }

    fn filter_allows(args: &[&str], value: Value) -> bool {
        filter(args).allows(&combo(value))
    }

    #[test]
    fn matrix_values_for_one_key_are_alternatives() {
        let filter = filter(&["node:18", "node:20", "os:linux"]);
        assert!(filter.allows(&combo(json!({"node": 18, "os": "linux"}))));
        assert!(filter.allows(&combo(json!({"node": 20, "os": "linux"}))));
        assert!(!filter.allows(&combo(json!({"node": 22, "os": "linux"}))));
        assert!(!filter.allows(&combo(json!({"node": 20, "os": "windows"}))));
    }

    #[test]
    fn matrix_keys_the_combination_lacks_do_not_constrain() {
        assert!(filter_allows(&["arch:arm64"], json!({"node": 20})));
    }

    #[test]
    fn matrix_strings_compare_exactly() {
        assert!(filter_allows(&["os:Linux"], json!({"os": "Linux"})));
        assert!(!filter_allows(&["os:Linux"], json!({"os": "linux"})));
        assert!(!filter_allows(&["os: linux"], json!({"os": "linux"})));
    }

    #[test]
    fn matrix_value_may_contain_colons_and_be_empty() {
        assert!(filter_allows(
            &["image:node:20"],
            json!({"image": "node:20"})
        ));
        assert!(filter_allows(&["flag:"], json!({"flag": ""})));
        assert!(!filter_allows(&["flag:"], json!({"flag": "x"})));
    }

    #[test]
    fn matrix_bool_null_and_structures() {
        assert!(filter_allows(&["exp:true"], json!({"exp": true})));
        assert!(!filter_allows(&["exp:true"], json!({"exp": false})));
        assert!(filter_allows(&["x:null"], json!({"x": null})));
        assert!(filter_allows(&["c:{\"a\":1}"], json!({"c": {"a": 1}})));
        assert!(filter_allows(&["l:[1,2]"], json!({"l": [1, 2]})));
    }

    #[test]
    fn matrix_duplicate_values_are_kept_once() {
        let filter = filter(&["node:20", "node:20"]);
        assert_eq!(filter.keys().collect::<Vec<_>>(), ["node"]);
        assert_eq!(filter.allowed["node"], ["20"]);
    }

    #[test]
    fn matrix_syntax_errors() {
        let error = MatrixFilter::parse(&strings(&["node"])).unwrap_err();
        assert!(matches!(error, InputError::MatrixSyntax { .. }));
        assert!(error.to_string().contains("--matrix \"node\""), "{error}");
        assert!(matches!(
            MatrixFilter::parse(&strings(&[":20"])),
            Err(InputError::MatrixEmptyKey { .. })
        ));
        assert!(matches!(
            MatrixFilter::parse(&strings(&[""])),
            Err(InputError::MatrixSyntax { .. })
        ));
    }
}

//! Workflow commands: the data-driven cases in `tests/data/commands/`, a few checks that do not
//! fit a case file, and a property test.
//!
//! A case file is a JSON object with `description`, `source` (where the rule comes from),
//! optional `options` (the [`ParserOptions`] fields) and `steps`: lines fed in order to one
//! parser, each with what to `expect`: `"output"`, or an object with the `command` (or the
//! `error` message), the `echo` line if any, and `deprecated: true` for set-output/save-state.

use std::path::Path;

use hearth_engine::commands::{
    Annotation, Command, CommandError, CommandParser, Level, Line, MatcherRef, ParserOptions,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn level(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Notice => "notice",
    }
}

fn annotation(a: &Annotation) -> Value {
    let mut map = Map::new();
    map.insert("level".into(), json!(level(a.level)));
    map.insert("message".into(), json!(a.message));
    let strings = [("title", &a.title), ("file", &a.file)];
    for (key, value) in strings {
        if let Some(v) = value {
            map.insert(key.into(), json!(v));
        }
    }
    let numbers = [
        ("line", a.line),
        ("end_line", a.end_line),
        ("column", a.column),
        ("end_column", a.end_column),
    ];
    for (key, value) in numbers {
        if let Some(v) = value {
            map.insert(key.into(), json!(v));
        }
    }
    json!({ "annotation": map })
}

fn command(c: &Command) -> Value {
    match c {
        Command::AddMask(v) => json!({ "add-mask": v }),
        Command::Group(v) => json!({ "group": v }),
        Command::EndGroup => json!({ "endgroup": null }),
        Command::Annotation(a) => annotation(a),
        Command::Debug(v) => json!({ "debug": v }),
        Command::Echo(on) => json!({ "echo": on }),
        Command::SetOutput { name, value } => {
            json!({ "set-output": { "name": name, "value": value } })
        }
        Command::SaveState { name, value } => {
            json!({ "save-state": { "name": name, "value": value } })
        }
        Command::SetEnv { name, value } => json!({ "set-env": { "name": name, "value": value } }),
        Command::AddPath(v) => json!({ "add-path": v }),
        Command::AddMatcher(v) => json!({ "add-matcher": v }),
        Command::RemoveMatcher(MatcherRef::Owner(o)) => json!({ "remove-matcher": { "owner": o } }),
        Command::RemoveMatcher(MatcherRef::File(f)) => json!({ "remove-matcher": { "file": f } }),
        Command::StopCommands { token, mask } => {
            json!({ "stop-commands": { "token": token, "mask": mask } })
        }
        Command::ResumeCommands { token } => json!({ "resume-commands": token }),
        Command::Ignored(issue) => {
            json!({ "ignored": { "level": level(issue.level), "message": issue.message } })
        }
    }
}

fn describe(line: &Line) -> Value {
    let Line::Command(p) = line else {
        return json!("output");
    };
    let mut map = Map::new();
    if let Some(echo) = &p.echo {
        map.insert("echo".into(), json!(echo));
    }
    if p.deprecation.is_some() {
        map.insert("deprecated".into(), json!(true));
    }
    match &p.outcome {
        Ok(c) => map.insert("command".into(), command(c)),
        Err(e) => map.insert("error".into(), json!(e.to_string())),
    };
    Value::Object(map)
}

fn options(case: &Value) -> ParserOptions {
    let flag = |key: &str| case["options"][key].as_bool().unwrap_or(false);
    ParserOptions {
        echo: flag("echo"),
        allow_unsecure_commands: flag("allow_unsecure_commands"),
        allow_unsecure_stop_tokens: flag("allow_unsecure_stop_tokens"),
    }
}

fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Value = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
    let steps = case["steps"].as_array().ok_or("`steps` must be an array")?;
    let mut parser = CommandParser::new(options(&case));
    for (i, step) in steps.iter().enumerate() {
        let line = step["line"].as_str().ok_or("`line` must be a string")?;
        let actual = describe(&parser.feed(line));
        if actual != step["expect"] {
            return Err(format!(
                "step {} ({line:?})\n  expected: {}\n  actual:   {actual}",
                i + 1,
                step["expect"]
            ));
        }
    }
    Ok(())
}

#[test]
fn command_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/commands");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/commands exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 15, "too few cases: {}", paths.len());
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| run_case(p).err().map(|e| format!("{}: {e}", p.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
}

fn feed(line: &str) -> Line {
    CommandParser::new(ParserOptions::default()).feed(line)
}

#[test]
fn refused_commands_name_the_line_except_stop_tokens() {
    let line = "::set-env name=A::b";
    let Line::Command(p) = feed(line) else {
        panic!("not a command");
    };
    let error = p.outcome.unwrap_err();
    assert_eq!(error, CommandError::Disabled("set-env"));
    assert_eq!(
        error.unable_to_process(line).as_deref(),
        Some("Unable to process command '::set-env name=A::b' successfully.")
    );
    assert_eq!(
        CommandError::InvalidStopToken(String::new()).unable_to_process("::stop-commands::"),
        None
    );
}

#[test]
fn deprecation_warning_is_githubs_text() {
    let Line::Command(p) = feed("::save-state name=a::b") else {
        panic!("not a command");
    };
    assert_eq!(
        p.deprecation.as_deref(),
        Some("The `save-state` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/")
    );
}

#[test]
fn parser_state_is_visible() {
    let mut parser = CommandParser::new(ParserOptions::default());
    assert!(!parser.echo());
    parser.feed("::echo::on");
    assert!(parser.echo());
    assert_eq!(parser.stop_token(), None);
    parser.feed("::stop-commands::tok123");
    assert_eq!(parser.stop_token(), Some("tok123"));
    parser.feed("::tok123::");
    assert_eq!(parser.stop_token(), None);
}

#[test]
fn invalid_stop_token_leaves_commands_on() {
    let mut parser = CommandParser::new(ParserOptions::default());
    let Line::Command(p) = parser.feed("::stop-commands::error") else {
        panic!("not a command");
    };
    assert_eq!(p.echo, None);
    assert!(matches!(p.outcome, Err(CommandError::InvalidStopToken(t)) if t == "error"));
    assert_eq!(parser.stop_token(), None);
    assert!(matches!(parser.feed("::error::x"), Line::Command(_)));
}

#[test]
fn stop_token_masking_counts_utf16_units() {
    let token_of = |line: &str| match feed(line) {
        Line::Command(p) => match p.outcome {
            Ok(Command::StopCommands { mask, .. }) => mask,
            other => panic!("{other:?}"),
        },
        Line::Output => panic!("output"),
    };
    assert!(!token_of("::stop-commands::abcdef"));
    assert!(token_of("::stop-commands::abcdefg"));
    // Three astral characters are six UTF-16 units; four are eight.
    assert!(!token_of("::stop-commands::😀😀😀"));
    assert!(token_of("::stop-commands::😀😀😀😀"));
}

fn arbitrary_line() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "::",
        ":",
        "##[",
        "]",
        "[",
        " ",
        ",",
        ";",
        "=",
        "%",
        "%25",
        "%0A",
        "%0D",
        "%3A",
        "%2C",
        "%3B",
        "%5D",
        "error",
        "warning",
        "notice",
        "debug",
        "group",
        "endgroup",
        "echo",
        "on",
        "off",
        "add-mask",
        "set-output",
        "save-state",
        "set-env",
        "add-path",
        "add-matcher",
        "remove-matcher",
        "stop-commands",
        "pause-logging",
        "name",
        "line",
        "endLine",
        "col",
        "endColumn",
        "file",
        "title",
        "owner",
        "tok",
        "-1",
        "2147483648",
        "\t",
        "\u{a0}",
        "ı",
        "😀",
        "\u{200b}",
        "é",
    ]);
    prop_oneof![
        prop::collection::vec(pieces, 0..16).prop_map(|v| v.concat()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary lines, fed in sequence to one parser, never panic, and a line without `::` or
    /// `##[` is always plain output.
    #[test]
    fn arbitrary_lines_never_panic(lines in prop::collection::vec(arbitrary_line(), 1..12),
                                   echo: bool, unsecure: bool, unsecure_stop: bool) {
        let mut parser = CommandParser::new(ParserOptions {
            echo,
            allow_unsecure_commands: unsecure,
            allow_unsecure_stop_tokens: unsecure_stop,
        });
        for line in &lines {
            let result = parser.feed(line);
            if !line.contains("::") && !line.contains("##[") {
                prop_assert_eq!(result, Line::Output);
            }
        }
    }
}

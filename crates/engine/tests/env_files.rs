//! Environment files: the data-driven cases in `tests/data/env_files/`, the parts that do not
//! fit a case file (decoding, PATH order, the step summary limit), and property tests.
//!
//! A case file is a JSON object with `description`, `source`, `kind` (`key_values` for
//! `GITHUB_OUTPUT`/`GITHUB_STATE`, `env` for `GITHUB_ENV`, `path` for `GITHUB_PATH`), optional
//! `newlines` (`lf`, the default, or `crlf`), the file's `text`, and what to `expect`:
//! `pairs` as `[name, value, line]` and `error` as `{line, message}` (or null); for `env` the
//! `set` pairs, the `blocked` entries and the `error`; for `path` the `paths`.

use std::path::Path;

use hearth_engine::env_files::{
    check_step_summary, decode, parse_env, parse_key_values, parse_path_file, EnvFileError,
    FileCommand, Newlines, Pair, PrependPath, StepSummary, StepSummaryTooLarge, STEP_SUMMARY_LIMIT,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn pairs(pairs: &[Pair]) -> Value {
    pairs
        .iter()
        .map(|p| json!([p.name, p.value, p.line]))
        .collect()
}

fn error(error: &Option<EnvFileError>) -> Value {
    match error {
        Some(e) => json!({ "line": e.line, "message": e.to_string() }),
        None => Value::Null,
    }
}

fn run_case(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Value = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
    let input = case["text"].as_str().ok_or("`text` must be a string")?;
    let newlines = match case["newlines"].as_str() {
        None | Some("lf") => Newlines::Lf,
        Some("crlf") => Newlines::CrLf,
        Some(other) => return Err(format!("unknown newlines {other:?}")),
    };
    let actual = match case["kind"].as_str() {
        Some("key_values") => {
            let parsed = parse_key_values(input, newlines);
            json!({ "pairs": pairs(&parsed.pairs), "error": error(&parsed.error) })
        }
        Some("env") => {
            let parsed = parse_env(input, newlines);
            let blocked: Vec<Value> = parsed
                .blocked
                .iter()
                .map(|b| json!({ "line": b.line, "message": b.to_string() }))
                .collect();
            json!({ "set": pairs(&parsed.set), "blocked": blocked, "error": error(&parsed.error) })
        }
        Some("path") => json!({ "paths": parse_path_file(input) }),
        other => return Err(format!("unknown kind {other:?}")),
    };
    if actual != case["expect"] {
        return Err(format!(
            "\n  expected: {}\n  actual:   {actual}",
            case["expect"]
        ));
    }
    Ok(())
}

#[test]
fn env_file_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/env_files");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/env_files exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 25, "too few cases: {}", paths.len());
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

#[test]
fn decode_follows_byte_order_marks() {
    assert_eq!(decode(b"A=1\n"), "A=1\n");
    assert_eq!(decode(b"\xEF\xBB\xBFA=1\n"), "A=1\n");
    assert_eq!(decode(b"\xFF\xFEA\x00=\x001\x00"), "A=1");
    assert_eq!(decode(b"\xFE\xFF\x00A\x00=\x001"), "A=1");
    assert_eq!(decode(b"\xFF\xFE\x00\x00A\x00\x00\x00"), "A");
    assert_eq!(decode(b"\x00\x00\xFE\xFF\x00\x00\x00A"), "A");
    assert_eq!(decode(b"A=\xFF\n"), "A=\u{FFFD}\n");
    assert_eq!(decode(b"\xFF\xFEA"), "\u{FFFD}");
}

#[test]
fn path_additions_put_the_newest_first() {
    let mut path = PrependPath::new();
    assert!(path.is_empty());
    path.add_file("/a\n/b\n");
    path.add("/c");
    path.add_file("/a\n");
    assert_eq!(path.newest_first().collect::<Vec<_>>(), ["/a", "/c", "/b"]);
    assert_eq!(
        path.prepend_to("/usr/bin:/bin", ':'),
        "/a:/c:/b:/usr/bin:/bin"
    );
    assert_eq!(path.prepend_to("", ';'), "/a;/c;/b");
}

#[test]
fn step_summary_limit_is_one_mebibyte() {
    assert_eq!(check_step_summary(0), Ok(StepSummary::Empty));
    assert_eq!(check_step_summary(1), Ok(StepSummary::Upload));
    assert_eq!(
        check_step_summary(STEP_SUMMARY_LIMIT),
        Ok(StepSummary::Upload)
    );
    let too_big = check_step_summary(STEP_SUMMARY_LIMIT + 1).unwrap_err();
    assert_eq!(
        too_big,
        StepSummaryTooLarge {
            size: STEP_SUMMARY_LIMIT + 1
        }
    );
    assert_eq!(
        too_big.to_string(),
        "$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of 1024k, got 1024k. For more information see: https://docs.github.com/actions/using-workflows/workflow-commands-for-github-actions#adding-a-markdown-summary"
    );
    assert!(check_step_summary(3 * 1024 * 1024)
        .unwrap_err()
        .to_string()
        .contains("got 3072k."));
}

#[test]
fn file_commands_have_githubs_names() {
    assert_eq!(
        FileCommand::Env.unable_to_process(),
        "Unable to process file command 'env' successfully."
    );
    let names: Vec<_> = [
        FileCommand::Env,
        FileCommand::Output,
        FileCommand::State,
        FileCommand::Path,
        FileCommand::StepSummary,
    ]
    .iter()
    .map(|f| f.name())
    .collect();
    assert_eq!(names, ["env", "output", "state", "path", "step_summary"]);
}

fn arbitrary_file() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\n",
        "\r\n",
        "\r",
        "=",
        "<<",
        "EOF",
        "A",
        "NODE_OPTIONS",
        " ",
        "\t",
        "x",
        "é",
        "😀",
    ]);
    prop_oneof![
        prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text never panics any parser, lines stay within the file, and a file of
    /// well-formed plain entries round-trips.
    #[test]
    fn arbitrary_files_never_panic(text in arbitrary_file(), crlf: bool) {
        let newlines = if crlf { Newlines::CrLf } else { Newlines::Lf };
        let lines = text.split('\n').count();
        let parsed = parse_key_values(&text, newlines);
        for pair in &parsed.pairs {
            prop_assert!(pair.line >= 1 && pair.line <= lines);
        }
        if let Some(e) = &parsed.error {
            prop_assert!(e.line >= 1 && e.line <= lines);
        }
        parse_env(&text, newlines);
        parse_path_file(&text);
        decode(text.as_bytes());
    }

    #[test]
    fn plain_entries_round_trip(entries in prop::collection::vec(("[A-Z_]{1,8}", "[^\r\n<]{0,12}"), 0..8)) {
        let text: String = entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let parsed = parse_key_values(&text, Newlines::Lf);
        prop_assert_eq!(parsed.error, None);
        let got: Vec<(String, String)> = parsed.pairs.into_iter().map(|p| (p.name, p.value)).collect();
        prop_assert_eq!(got, entries);
    }
}

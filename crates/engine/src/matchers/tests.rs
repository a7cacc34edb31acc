use super::*;

const WORKSPACE: &str = "/work/repo";

fn set(json: &str) -> MatcherSet {
    let mut set = MatcherSet::default();
    add(&mut set, json);
    set
}

fn add(set: &mut MatcherSet, json: &str) {
    let loaded = config::load(json.as_bytes()).expect("a valid matcher file");
    assert!(loaded.unsupported.is_empty(), "{:?}", loaded.unsupported);
    let added: Vec<Arc<Matcher>> = loaded.matchers.into_iter().map(Arc::new).collect();
    set.add(&added);
}

/// Each line's annotation, `None` for lines no matcher turned into one.
fn run(matchers: &mut StepMatchers, lines: &[&str]) -> Vec<Option<Annotation>> {
    lines
        .iter()
        .map(|line| matchers.feed(line, WORKSPACE).and_then(Result::ok))
        .collect()
}

fn annotation(level: Level, message: &str) -> Annotation {
    Annotation {
        level,
        message: message.to_owned(),
        title: None,
        file: None,
        line: None,
        end_line: None,
        column: None,
        end_column: None,
    }
}

const ESLINT_COMPACT: &str = r#"{"problemMatcher": [{"owner": "eslint-compact", "pattern": [{
    "regexp": "^(.+):\\sline\\s(\\d+),\\scol\\s(\\d+),\\s(Error|Warning|Info)\\s-\\s(.+)\\s\\((.+)\\)$",
    "file": 1, "line": 2, "column": 3, "severity": 4, "message": 5, "code": 6}]}]}"#;

#[test]
fn a_single_line_pattern_makes_an_annotation_with_its_groups() {
    let mut step = StepMatchers::new(&set(ESLINT_COMPACT));
    let found = run(
        &mut step,
        &[
            "badFile.js: line 50, col 11, Error - 'myVar' is defined but never used. (no-unused-vars)",
            "nothing to see",
            "/work/repo/src/b.js: line 2, col 1, Warning - Unexpected console statement. (no-console)",
        ],
    );
    assert_eq!(
        found,
        [
            Some(Annotation {
                file: Some("badFile.js".into()),
                line: Some(50),
                column: Some(11),
                ..annotation(Level::Error, "'myVar' is defined but never used.")
            }),
            None,
            Some(Annotation {
                file: Some("src/b.js".into()),
                line: Some(2),
                column: Some(1),
                ..annotation(Level::Warning, "Unexpected console statement.")
            }),
        ]
    );
}

#[test]
fn an_unknown_severity_or_an_empty_message_makes_no_annotation() {
    let mut step = StepMatchers::new(&set(ESLINT_COMPACT));
    assert_eq!(
        step.feed("a.js: line 1, col 1, Info - hello (rule)", WORKSPACE),
        Some(Err("Skipped logging an issue for the matched line because the severity 'Info' is not supported.".into()))
    );
    let mut step = StepMatchers::new(&set(
        r#"{"problemMatcher": [{"owner": "m", "pattern": [{"regexp": "^E:(.*)$", "message": 1}]}]}"#,
    ));
    assert_eq!(
        step.feed("E:   ", WORKSPACE),
        Some(Err(
            "Skipping logging an issue for the matched line because the message is empty.".into()
        ))
    );
}

#[test]
fn severity_comes_from_the_group_then_the_matcher_default_then_error() {
    let json = |default: &str| {
        format!(
            r#"{{"problemMatcher": [{{"owner": "m", {default} "pattern": [
                {{"regexp": "^(\\w*): (.*)$", "severity": 1, "message": 2}}]}}]}}"#
        )
    };
    let mut with_default = StepMatchers::new(&set(&json(r#""severity": "warning","#)));
    let mut without = StepMatchers::new(&set(&json("")));
    let lines = ["NOTICE: from the line", ": no severity captured"];
    assert_eq!(
        run(&mut with_default, &lines),
        [
            Some(annotation(Level::Notice, "from the line")),
            Some(annotation(Level::Warning, "no severity captured")),
        ]
    );
    assert_eq!(
        run(&mut without, &lines),
        [
            Some(annotation(Level::Notice, "from the line")),
            Some(annotation(Level::Error, "no severity captured")),
        ]
    );
}

const TWO_LINES: &str = r#"{"problemMatcher": [{"owner": "two", "pattern": [
    {"regexp": "^in (\\S+):$", "file": 1},
    {"regexp": "^  (\\d+): (.+)$", "line": 1, "message": 2}]}]}"#;

#[test]
fn a_multi_line_match_needs_consecutive_lines() {
    let mut step = StepMatchers::new(&set(TWO_LINES));
    let found = run(
        &mut step,
        &[
            "in src/a.c:",
            "  3: first",
            "  4: not looping, so no match",
            "in src/b.c:",
            "something else",
            "  5: the file line is no longer just before",
            "  6: nor here",
        ],
    );
    let first = Annotation {
        file: Some("src/a.c".into()),
        line: Some(3),
        ..annotation(Level::Error, "first")
    };
    assert_eq!(found, [None, Some(first), None, None, None, None, None]);
}

#[test]
fn a_looping_last_pattern_matches_every_following_line() {
    let json = TWO_LINES.replace(r#""message": 2}"#, r#""message": 2, "loop": true}"#);
    let mut step = StepMatchers::new(&set(&json));
    let found = run(
        &mut step,
        &[
            "in src/a.c:",
            "  3: one",
            "  9: two",
            "done",
            "  10: after the loop ended",
            "in ./lib/../src/b.c:",
            "  1: three",
        ],
    );
    let at = |file: &str, line, message| {
        Some(Annotation {
            file: Some(file.into()),
            line: Some(line),
            ..annotation(Level::Error, message)
        })
    };
    assert_eq!(
        found,
        [
            None,
            at("src/a.c", 3, "one"),
            at("src/a.c", 9, "two"),
            None,
            None,
            None,
            at("src/b.c", 1, "three"),
        ]
    );
}

#[test]
fn three_patterns_carry_what_each_captured() {
    let mut step = StepMatchers::new(&set(r#"{"problemMatcher": [{"owner": "three", "pattern": [
            {"regexp": "^file (.+)$", "file": 1},
            {"regexp": "^severity (.+)$", "severity": 1},
            {"regexp": "^at (\\d+):(\\d+) (.+)$", "line": 1, "column": 2, "message": 3}]}]}"#));
    let found = run(
        &mut step,
        &[
            "file x.py",
            "severity warning",
            "at 4:2 bad",
            "file y.py",
            "at 1:1 skipped a line",
        ],
    );
    assert_eq!(
        found,
        [
            None,
            None,
            Some(Annotation {
                file: Some("x.py".into()),
                line: Some(4),
                column: Some(2),
                ..annotation(Level::Warning, "bad")
            }),
            None,
            None,
        ]
    );
}

#[test]
fn one_line_makes_at_most_one_annotation_newest_matcher_first() {
    let mut set = set(
        r#"{"problemMatcher": [{"owner": "old", "pattern": [{"regexp": "^(.*)$", "message": 1}]}]}"#,
    );
    add(
        &mut set,
        r#"{"problemMatcher": [{"owner": "new", "severity": "notice",
            "pattern": [{"regexp": "^(.*)$", "message": 1}]}]}"#,
    );
    assert_eq!(set.owners().collect::<Vec<_>>(), ["new", "old"]);
    let mut step = StepMatchers::new(&set);
    assert_eq!(
        run(&mut step, &["hello"]),
        [Some(annotation(Level::Notice, "hello"))]
    );
}

#[test]
fn a_matcher_with_the_same_owner_replaces_the_old_one() {
    let mut set = set(
        r#"{"problemMatcher": [{"owner": "m", "pattern": [{"regexp": "^A(.*)$", "message": 1}]},
            {"owner": "other", "pattern": [{"regexp": "^Z(.*)$", "message": 1}]}]}"#,
    );
    add(
        &mut set,
        r#"{"problemMatcher": [{"owner": "M", "pattern": [{"regexp": "^B(.*)$", "message": 1}]}]}"#,
    );
    assert_eq!(set.owners().collect::<Vec<_>>(), ["M", "other"]);
    let mut step = StepMatchers::new(&set);
    assert_eq!(
        run(&mut step, &["Aold", "Bnew", "Zother"]),
        [
            None,
            Some(annotation(Level::Error, "new")),
            Some(annotation(Level::Error, "other")),
        ]
    );
}

#[test]
fn removal_by_owner_in_the_job_and_in_a_running_step() {
    let mut set = set(ESLINT_COMPACT);
    let mut step = StepMatchers::new(&set);
    step.remove("ESLINT-COMPACT");
    set.remove("ESLINT-COMPACT");
    assert!(step.is_empty() && set.is_empty());
    let line = "a.js: line 1, col 1, Error - x (y)";
    assert_eq!(step.feed(line, WORKSPACE), None);
}

#[test]
fn a_matcher_added_during_a_step_goes_first_and_state_starts_fresh_per_step() {
    let set = set(TWO_LINES);
    let mut step = StepMatchers::new(&set);
    assert_eq!(run(&mut step, &["in a.c:"]), [None]);
    // The next step does not continue the first one's half-done match.
    let mut next = StepMatchers::new(&set);
    assert_eq!(run(&mut next, &["  1: x"]), [None]);

    let loaded = config::load(
        br#"{"problemMatcher": [{"owner": "all", "severity": "warning",
            "pattern": [{"regexp": "^(.*)$", "message": 1}]}]}"#,
    )
    .unwrap();
    next.add(&Arc::new(loaded.matchers.into_iter().next().unwrap()));
    assert_eq!(
        run(&mut next, &["in a.c:"]),
        [Some(annotation(Level::Warning, "in a.c:"))]
    );
}

#[test]
fn a_match_resets_the_other_matchers_half_done_state() {
    let mut set = set(TWO_LINES);
    add(
        &mut set,
        r#"{"problemMatcher": [{"owner": "hash", "pattern": [{"regexp": "^# (.*)$", "message": 1}]}]}"#,
    );
    let mut step = StepMatchers::new(&set);
    // Both see "in a.c:" (only `two` matches it, half-way); "# note" is `hash`'s match,
    // which resets `two`, so "  1: x" completes nothing.
    assert_eq!(
        run(&mut step, &["in a.c:", "# note", "  1: x"]),
        [None, Some(annotation(Level::Error, "note")), None]
    );
}

#[test]
fn files_are_made_relative_to_the_workspace_or_dropped() {
    let cases = [
        ("src/a.rs", None, Some("src/a.rs")),
        ("./src/../lib/a.rs", None, Some("lib/a.rs")),
        ("/work/repo/src/a.rs", None, Some("src/a.rs")),
        ("/work/repo//src/./a.rs", None, Some("src/a.rs")),
        ("/elsewhere/a.rs", None, None),
        ("../outside.rs", None, None),
        ("/work/repository/a.rs", None, None),
        ("/work/repo", None, None),
        ("   ", None, None),
        ("a.c", Some("sub/dir/Makefile"), Some("sub/dir/a.c")),
        ("a.c", Some("Makefile"), Some("a.c")),
        ("a.c", Some("/work/repo/pkg/Makefile"), Some("pkg/a.c")),
        ("/work/repo/x.c", Some("sub/Makefile"), Some("x.c")),
        ("a.c", Some("  "), Some("a.c")),
    ];
    for (file, from, want) in cases {
        assert_eq!(
            workspace_file(file, from, WORKSPACE).as_deref(),
            want,
            "{file} from {from:?}"
        );
    }
}

#[test]
fn from_path_comes_from_its_own_group() {
    let mut step = StepMatchers::new(&set(r#"{"problemMatcher": [{"owner": "make", "pattern": [
            {"regexp": "^(\\S+): (\\S+):(\\d+): (.*)$", "fromPath": 1, "file": 2, "line": 3, "message": 4}]}]}"#));
    assert_eq!(
        run(&mut step, &["pkg/Makefile: util.c:7: oops"]),
        [Some(Annotation {
            file: Some("pkg/util.c".into()),
            line: Some(7),
            ..annotation(Level::Error, "oops")
        })]
    );
}

#[test]
fn line_and_column_must_be_plain_digits() {
    assert_eq!(plain_int("12"), Some(12));
    assert_eq!(plain_int("+1"), None);
    assert_eq!(plain_int(" 1"), None);
    assert_eq!(plain_int("99999999999"), None);
    assert_eq!(plain_int(""), None);
}

#[test]
fn colour_codes_are_removed_before_matching() {
    assert_eq!(strip_colors("\x1b[31;1merror\x1b[0m: x"), "error: x");
    assert_eq!(strip_colors("\x1b[Kplain"), "Kplain");
    assert_eq!(strip_colors("no codes"), "no codes");
    let mut step = StepMatchers::new(&set(ESLINT_COMPACT));
    let found = step.feed(
        "\x1b[4ma.js\x1b[24m: line 1, col 2, \x1b[31mError\x1b[39m - x (y)",
        WORKSPACE,
    );
    assert_eq!(
        found,
        Some(Ok(Annotation {
            file: Some("a.js".into()),
            line: Some(1),
            column: Some(2),
            ..annotation(Level::Error, "x")
        }))
    );
}

#[test]
fn end_line_and_end_column_groups_are_read() {
    let mut step = StepMatchers::new(&set(
        r#"{"problemMatcher": [{"owner": "range", "pattern": [{
            "regexp": "^(\\S+):(\\d+):(\\d+)-(\\d+):(\\d+) (.*)$",
            "file": 1, "line": 2, "column": 3, "endLine": 4, "endColumn": 5, "message": 6}]}]}"#,
    ));
    assert_eq!(
        run(&mut step, &["a.rs:1:2-3:4 span"]),
        [Some(Annotation {
            file: Some("a.rs".into()),
            line: Some(1),
            column: Some(2),
            end_line: Some(3),
            end_column: Some(4),
            ..annotation(Level::Error, "span")
        })]
    );
}

#[test]
fn javascript_escapes_and_groups_compile() {
    // Escaped punctuation that JavaScript allows and setup-* matchers use (quotes, slashes),
    // non-capturing groups and optional parts.
    let mut step = StepMatchers::new(&set(r#"{"problemMatcher": [{"owner": "js", "pattern": [{
            "regexp": "^\\s*at \\\"(.*)\\\", \\'(\\d+)\\' (?:in [\\/\\\\]?(\\w+))?\\:\\s(.*)$",
            "file": 1, "line": 2, "code": 3, "message": 4}]}]}"#));
    assert_eq!(
        run(&mut step, &[r#"  at "lib/x.py", '12' in /main: boom"#]),
        [Some(Annotation {
            file: Some("lib/x.py".into()),
            line: Some(12),
            ..annotation(Level::Error, "boom")
        })]
    );
}

use hearth_workflow::yaml::{load, Pos, YamlErrorKind};

use serde_json::json;

use super::{field, load_err, load_ok};

#[test]
fn duplicate_key_is_reported_at_the_second_occurrence() {
    let source = "\
jobs:
  build:
    runs-on: a
    steps: []
    runs-on: b
";
    let error = load(source, "ci.yml").expect_err("duplicate");
    assert_eq!(error.pos, Pos::new(5, 5));
    assert_eq!(
        error.kind,
        YamlErrorKind::DuplicateKey {
            key: "runs-on".to_owned(),
            first_line: 3,
            first_col: 5,
        }
    );
    assert_eq!(
        error.to_string(),
        "ci.yml:5:5: duplicate key `runs-on` in mapping (first defined at line 3, column 5)"
    );
}

#[test]
fn keys_are_compared_by_value_not_spelling() {
    let error = load_err("on: push\n'on': pull_request\n");
    assert!(matches!(error.kind, YamlErrorKind::DuplicateKey { .. }));
    assert_eq!(error.pos, Pos::new(2, 1));

    let error = load_err("{a: 1, b: 2, a: 3}");
    assert_eq!(error.pos, Pos::new(1, 14));

    let error = load_err("0x10: a\n16: b\n");
    assert_eq!(error.pos, Pos::new(2, 1));

    let error = load_err("? [a, b]\n: 1\n? [a, b]\n: 2\n");
    assert_eq!(error.pos, Pos::new(3, 3));

    // Different types are different keys.
    assert!(load("1: a\n'1': b\ntrue: c\n'true': d\n", "t.yml").is_ok());
}

#[test]
fn a_second_merge_key_is_a_duplicate() {
    let error = load_err("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n");
    assert!(
        matches!(error.kind, YamlErrorKind::DuplicateKey { .. }),
        "{error}"
    );
    assert_eq!(error.pos, Pos::new(4, 3));
}

#[test]
fn syntax_errors_point_at_the_problem() {
    // (source, line, col, words expected in the message)
    let cases = [
        ("a: b\n  c: d\n", 2, 4, "mapping values are not allowed"),
        (
            "key: value: other\n",
            1,
            11,
            "mapping values are not allowed",
        ),
        ("a: @foo\n", 1, 4, "unexpected character"),
        ("a: \"unterminated\n", 1, 4, "quoted scalar"),
        ("a:\n  - b\n c: d\n", 3, 2, "did not find expected key"),
        ("a: b\nc: [1, 2\nd: e\n", 3, 2, ""),
    ];
    for (source, line, col, words) in cases {
        let error = load_err(source);
        assert!(
            matches!(error.kind, YamlErrorKind::Syntax { .. }),
            "{source:?}: {error}"
        );
        assert_eq!(
            (error.line(), error.col()),
            (line, col),
            "{source:?}: {error}"
        );
        assert!(error.message().contains(words), "{source:?}: {error}");
        assert!(error
            .to_string()
            .starts_with(&format!("test.yml:{line}:{col}: invalid YAML: ")));
    }
}

#[test]
fn a_second_document_is_rejected() {
    let error = load_err("a: 1\n---\nb: 2\n");
    assert_eq!(error.kind, YamlErrorKind::MultipleDocuments);
    assert_eq!(error.pos, Pos::new(2, 1));

    let error = load_err("---\na: 1\n---\n");
    assert_eq!(error.kind, YamlErrorKind::MultipleDocuments);
    assert_eq!(error.pos, Pos::new(3, 1));
}

#[test]
fn errors_display_compiler_style() {
    let error = load("name: x\nbody: !Nope x\n", ".github/workflows/ci.yml").expect_err("bad tag");
    assert_eq!(error.file, ".github/workflows/ci.yml");
    assert_eq!(
        error.to_string(),
        format!(".github/workflows/ci.yml:2:7: {}", error.message())
    );
}

/// GitHub's YAML reader takes a `#` right after a flow collection, a flow separator
/// or a quoted scalar as the start of a comment; so does the loader, and nothing
/// after the comment moves.
#[test]
fn a_hash_right_after_a_token_starts_a_comment_as_on_github() {
    let source = "a: [one]#, two\nb: {k: v}#c\nc: [x,#note\n  y]\nd: 'q'#c\ne: \"é\"#€ ü\nf: [1]\n";
    let root = load_ok(source);
    assert_eq!(field(&root, "a").to_json(), json!(["one"]));
    assert_eq!(field(&root, "b").to_json(), json!({"k": "v"}));
    assert_eq!(field(&root, "c").to_json(), json!(["x", "y"]));
    assert_eq!(field(&root, "d").as_str(), Some("q"));
    assert_eq!(field(&root, "e").as_str(), Some("é"));
    let (key, value) = root.entry("f").expect("f");
    assert_eq!(key.span.start, Pos::new(7, 1));
    assert_eq!(value.span.start, Pos::new(7, 4));
}

/// Inside a scalar a `#` with no space before it is text, as in any YAML reader.
#[test]
fn a_hash_inside_a_plain_scalar_is_text() {
    let root = load_ok("a: x]#y\nb: one#two\nc: [a#b]\n");
    assert_eq!(field(&root, "a").as_str(), Some("x]#y"));
    assert_eq!(field(&root, "b").as_str(), Some("one#two"));
    assert_eq!(field(&root, "c").to_json(), json!(["a#b"]));
}

/// Every comment of that kind costs one more read of the file, so their number is capped.
#[test]
fn comments_right_after_tokens_are_capped() {
    let lines = |n: usize| {
        (0..n)
            .map(|i| format!("k{i:03}: [1]#c\n"))
            .collect::<String>()
    };
    assert_eq!(load_ok(&lines(100)).as_mapping().map(<[_]>::len), Some(100));
    let error = load_err(&lines(101));
    assert_eq!(error.pos, Pos::new(101, 10));
    assert!(
        error.message().contains("more than 100 comments"),
        "{error}"
    );
}

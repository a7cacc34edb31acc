use hearth_workflow::yaml::{load_with_options, LoadOptions, Node, Pos, YamlErrorKind, YamlValue};

use super::{field, load_err, load_ok};

fn keys(node: &Node) -> Vec<String> {
    node.as_mapping()
        .expect("mapping")
        .iter()
        .map(|(k, _)| k.as_str().expect("string key").to_owned())
        .collect()
}

#[test]
fn aliases_expand_to_copies_of_the_anchored_node() {
    let source = "\
defaults: &defaults
  runs-on: ubuntu-latest
  timeout-minutes: 10
job: *defaults
list: [&x 1, *x, *x]
";
    let root = load_ok(source);
    let defaults = field(&root, "defaults");
    let job = field(&root, "job");
    assert_eq!(job.to_json(), defaults.to_json());
    // The copy itself sits at the alias; its contents point at the text
    // they were copied from.
    assert_eq!(job.span.start, Pos::new(4, 6));
    assert_eq!(
        job.entry("runs-on").expect("key").0.span.start,
        Pos::new(2, 3)
    );
    let list = field(&root, "list").as_sequence().expect("sequence");
    let values: Vec<_> = list.iter().map(|n| n.value.clone()).collect();
    assert_eq!(values, vec![YamlValue::Int(1); 3]);
    assert_eq!(list[2].span.start, Pos::new(5, 18));
}

#[test]
fn redefined_anchors_refer_to_the_latest_definition() {
    let root = load_ok("a: &x 1\nb: *x\nc: &x 2\nd: *x\n");
    assert_eq!(field(&root, "b").as_i64(), Some(1));
    assert_eq!(field(&root, "d").as_i64(), Some(2));
}

#[test]
fn aliases_can_be_keys() {
    let root = load_ok("a: &k name\n*k : value\n");
    assert_eq!(field(&root, "name").as_str(), Some("value"));
}

#[test]
fn merge_key_with_one_mapping() {
    let source = "\
base: &base
  runs-on: ubuntu-latest
  env: {A: 1}
job:
  <<: *base
  env: {B: 2}
";
    let root = load_ok(source);
    let job = field(&root, "job");
    assert_eq!(keys(job), vec!["runs-on", "env"]);
    assert_eq!(field(job, "runs-on").as_str(), Some("ubuntu-latest"));
    // Merges are shallow: the job's own `env` replaces the base one.
    assert_eq!(field(job, "env").to_json(), serde_json::json!({"B": 2}));
}

#[test]
fn merge_order_own_keys_then_earlier_merged_mappings() {
    let source = "\
first: &first {a: 1, b: 2}
second: &second {b: 20, c: 30, d: 40}
m:
  x: 0
  <<: [*first, *second]
  a: 100
";
    let root = load_ok(source);
    let m = field(&root, "m");
    // Merged keys take the place of the `<<` entry.
    assert_eq!(keys(m), vec!["x", "b", "c", "d", "a"]);
    assert_eq!(
        m.to_json(),
        serde_json::json!({"x": 0, "b": 2, "c": 30, "d": 40, "a": 100})
    );
}

#[test]
fn merge_accepts_inline_mappings_and_nested_merges() {
    let source = "\
a: &a {x: 1}
b: &b
  <<: *a
  y: 2
c:
  <<: [*b, {z: 3}]
";
    let root = load_ok(source);
    assert_eq!(
        field(&root, "c").to_json(),
        serde_json::json!({"x": 1, "y": 2, "z": 3})
    );
}

#[test]
fn merged_keys_are_not_duplicates() {
    let root = load_ok("a: &a {k: 1}\nb:\n  k: 2\n  <<: *a\n");
    assert_eq!(field(field(&root, "b"), "k").as_i64(), Some(2));
}

#[test]
fn quoted_merge_key_is_an_ordinary_key() {
    let root = load_ok("a: &a {k: 1}\nb:\n  \"<<\": *a\n");
    let b = field(&root, "b");
    assert_eq!(keys(b), vec!["<<"]);
}

#[test]
fn merge_values_must_be_mappings() {
    let error = load_err("a:\n  <<: text\n");
    assert_eq!(
        error.kind,
        YamlErrorKind::InvalidMerge {
            found: "a string".to_owned()
        }
    );
    assert_eq!(error.pos, Pos::new(2, 7));

    let error = load_err("m: &m {k: v}\na:\n  <<: [*m, [1]]\n");
    assert_eq!(
        error.kind,
        YamlErrorKind::InvalidMerge {
            found: "a sequence".to_owned()
        }
    );
    assert_eq!(error.pos, Pos::new(3, 12));
}

#[test]
fn recursive_alias_is_rejected() {
    let error = load_err("a: &x [1, *x]\n");
    assert_eq!(error.kind, YamlErrorKind::RecursiveAlias);
    assert_eq!(error.pos, Pos::new(1, 11));
}

#[test]
fn unknown_alias_is_a_syntax_error() {
    let error = load_err("a: *nope\n");
    assert!(
        matches!(error.kind, YamlErrorKind::Syntax { .. }),
        "{error}"
    );
    assert_eq!(error.pos, Pos::new(1, 4));
}

/// The classic "billion laughs": nine levels of nine aliases each.
fn billion_laughs() -> String {
    let mut source = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let (previous, name) = (pair[0], pair[1]);
        let items = vec![format!("*{previous}"); 9].join(",");
        source.push_str(&format!("{name}: &{name} [{items}]\n"));
    }
    source
}

#[test]
fn alias_bombs_are_stopped() {
    let started = std::time::Instant::now();
    let error = load_err(&billion_laughs());
    assert!(
        matches!(
            error.kind,
            YamlErrorKind::AliasExpansionLimit { limit: 1_000_000 }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("alias"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn alias_limit_is_configurable() {
    let source = "a: &a [1, 2, 3]\nb: [*a, *a]\n";
    let mut options = LoadOptions::default();
    options.max_alias_nodes = 12;
    assert!(load_with_options(source, "t.yml", &options).is_ok());
    options.max_alias_nodes = 11;
    let error = load_with_options(source, "t.yml", &options).expect_err("over the limit");
    assert_eq!(error.kind, YamlErrorKind::AliasExpansionLimit { limit: 11 });
    assert_eq!(error.pos, Pos::new(2, 9));
}

#[test]
fn nesting_depth_is_limited_including_through_aliases() {
    // Block sequences nested on one line: `- - - ... x`.
    let deep = format!("{}x\n", "- ".repeat(300));
    let error = load_err(&deep);
    assert_eq!(error.kind, YamlErrorKind::TooDeep { limit: 256 });
    assert_eq!(error.pos, Pos::new(1, 2 * 256 + 1));

    let mut options = LoadOptions::default();
    options.max_depth = 10;
    let error =
        load_with_options("[[[[[[[[[[[[]]]]]]]]]]]]", "t.yml", &options).expect_err("too deep");
    assert_eq!(error.kind, YamlErrorKind::TooDeep { limit: 10 });
    assert_eq!(error.pos, Pos::new(1, 11));

    let fine = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(load_ok(&fine).as_sequence().is_some());

    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let source = format!(
        "a: &a {nested}\nb: {}*a{}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let error = load_err(&source);
    assert_eq!(error.kind, YamlErrorKind::TooDeep { limit: 256 });
}
